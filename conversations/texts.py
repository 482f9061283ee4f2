"""Every text the bank sends, in one catalogue, with named placeholders.

A translation is a new language block with the same keys; texts are never assembled from
fragments, so each can be translated whole. Keep English texts within one SMS segment (160
GSM-7 characters) with realistic names filled in; ``tests/test_texts.py`` checks every one.
Never ask a member to send STOP, START, HELP or YES alone for anything else: carriers and
Twilio act on those words themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter

from conversations.gsm import to_gsm

DEFAULT_LANGUAGE = "en"

CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        # People the bank does not know yet
        "welcome": (
            "Hi! This is {bank}: neighbours help each other and every hour given earns an "
            "hour back. To join, reply JOIN and your first name, e.g. JOIN Sam"
        ),
        "join_needs_name": "To join {bank}, reply JOIN and your first name, e.g. JOIN Sam",
        "welcome_back": (
            "Hi {name}, you left {bank} earlier. To come back, reply JOIN {name}"
        ),
        "joined": (
            "Welcome to {bank}, {name}! What could you help neighbours with? "
            "e.g. shopping, gardening, a chat. Reply with a few words, or SKIP"
        ),
        "joined_pending": (
            "Thanks {name}! Someone from {bank} will be in touch to welcome you. Meanwhile, "
            "what could you help with? e.g. shopping. Reply, or SKIP"
        ),
        "rejoined": "Welcome back to {bank}, {name}! Your hours are as you left them. "
                    "Reply BALANCE to see them",
        "already_member": (
            "You're already a member of {bank}, {name}. Reply BALANCE for your hours "
            "or PROFILE for your details"
        ),
        # Profile questions after joining, each skippable
        "ask_area": "Thanks! Which area do you live in? e.g. Brixton. Reply, or SKIP",
        "ask_availability": (
            "When are you usually free? e.g. weekday mornings. Reply, or SKIP"
        ),
        "profile_done": (
            "All set, {name}. Reply BALANCE for your hours, PROFILE for your details "
            "or MENU for what you can do"
        ),
        "profile": (
            "{name}. Area: {area}. Can help with: {skills}. Free: {availability}. To change "
            "one, reply NAME, AREA, SKILLS or FREE and the new words"
        ),
        "profile_pending": (
            "{name} (waiting for a welcome from {bank}). Area: {area}. Can help with: "
            "{skills}. Free: {availability}. To change, reply AREA, SKILLS or FREE + words"
        ),
        "profile_updated": "Saved, {name}. Reply PROFILE to see your details",
        "profile_field_empty": "Please add the new words, e.g. AREA Brixton or SKILLS gardening",
        "not_given": "not given",
        # Balance
        "balance": "Balance: {hours} hours. Every hour you give earns an hour of help",
        "balance_one": "Balance: {hours} hour. Every hour you give earns an hour of help",
        # Leaving and opting out
        "left": (
            "You have left {bank}, {name}. Your hours are kept. If you want to come back, "
            "reply JOIN {name}"
        ),
        "stopped": (
            "You won't get any more texts from {bank}. To get texts again, reply START"
        ),
        "started": "Welcome back! {bank} will text you again. Reply MENU for what you can do",
        "already_started": "You're getting texts from {bank}. Reply MENU for what you can do",
        # Help and not understood
        "help_member": (
            "{bank}: neighbours help each other, 1 hour given = 1 hour back. Reply BALANCE, "
            "PROFILE, or LEAVE to leave. Questions? Call your broker"
        ),
        "help_stranger": (
            "{bank}: neighbours help each other, 1 hour given = 1 hour back. To join, reply "
            "JOIN and your first name, e.g. JOIN Sam"
        ),
        "unknown_member": (
            "Sorry {name}, I didn't understand. Reply BALANCE for your hours, PROFILE for "
            "your details, or LEAVE to leave the bank"
        ),
        "unknown_skip": "There's no question to skip. Reply BALANCE for your hours or "
                        "PROFILE for your details",
        "empty": "Your message was empty. Reply MENU to see what you can do",
        "empty_stranger": "Your message was empty. To join {bank}, reply JOIN and your first "
                          "name, e.g. JOIN Sam",
        "picture": "Thanks! I can only read words, not pictures. Reply MENU to see what you "
                   "can do",
        "picture_stranger": "Thanks! I can only read words, not pictures. To join {bank}, "
                            "reply JOIN and your first name, e.g. JOIN Sam",
        "bad_name": "Please send your first name in letters, e.g. JOIN Sam",
        "unsupported_sender": "Sorry, the time bank can only answer texts from a mobile "
                              "phone number.",
        "invalid_request": "Sorry, that message could not be read. Please text again.",
        # Brokers
        "broker_new_member": (
            "New member waiting for a welcome at {bank}: {name} (member {member_id}). "
            "Approve with: timebank member approve {member_id}"
        ),
        "approved": "Good news, {name}: you're now an active member of {bank}. "
                    "Reply MENU for what you can do",
    },
}


class MissingText(KeyError):
    """A catalogue key or placeholder that does not exist."""


def render(key: str, language: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text for ``key`` in ``language`` (English when not translated), values filled in."""
    texts = CATALOGUE.get(language) or CATALOGUE[DEFAULT_LANGUAGE]
    template = texts.get(key) or CATALOGUE[DEFAULT_LANGUAGE].get(key)
    if template is None:
        raise MissingText(key)
    try:
        return to_gsm(template.format_map(_Strict(params)))
    except KeyError as exc:
        raise MissingText(f"{key}: missing value {exc}") from None


def placeholders(key: str, language: str = DEFAULT_LANGUAGE) -> set[str]:
    template = CATALOGUE[language][key]
    return {field for _, field, _, _ in Formatter().parse(template) if field}


class _Strict(dict[str, object]):
    def __init__(self, params: Mapping[str, object]) -> None:
        super().__init__(params)

    def __missing__(self, key: str) -> object:
        raise KeyError(key)
