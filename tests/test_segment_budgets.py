"""Segment budgets: what each text may cost, in every language, with realistic values.

Every template in every language (``catalogue.languages()``: a new ``<code>.po`` is checked
as soon as it is there) is rendered with long but real values (a 35-character bank name,
12-character names with letters outside GSM-7, a 30-character skill, 3-digit numbers, a
balance of -12.75 hours) and measured as it is sent: after ``conversations.gsm.cheapest``.

- English: one segment for every text a member receives in an ordinary exchange (ORDINARY);
  two at most for the rest (help, brokers' texts, care) and for the long ones (LONG).
- Bengali (UCS-2: 70 characters, 67 a part): two at most for the ordinary texts; five for
  the rest.
- Every other language (Somali, Turkish, Polish, Welsh, …): two at most for the ordinary
  texts; three for the rest.

Entries named ``command_*`` are the words members text, not texts. Also: every entry renders
in every language with all its placeholders and every plural form.
"""

from __future__ import annotations

import pytest

from conversations import catalogue
from conversations.gsm import cheapest, segments
from conversations.texts import Hours, MissingText, hours_text, placeholders, render

BANK = "South London and Maudsley Time Bank"  # 35 characters
NAMES = ["Christabelle", "Zoë Williams", "Siân Roberts", "Ayşe Yılmaz"]  # 12 or so, accented
SKILL = "lifts to the hospital and back"  # 30 characters
BROADCAST_WORDS = 160  # a broadcast's own words, at most, for the two-segment budget
BROADCAST = ("Seed swap and tea at St Mark's hall on Saturday from 2pm to 4pm. Bring cuttings, "
             "pots or just yourselves! Ask Bea about lifts and step-free access, all welcome")
assert len(BANK) == 35 and len(SKILL) == 30 and len(BROADCAST) <= BROADCAST_WORDS

# Texts that show a page of lines or a member's own words at length (STATEMENT and MORE,
# PROFILE, MINE, broadcasts up to BROADCAST_WORDS characters), the lists brokers read, and
# the kind answer to distress with the bank's own lines.
LONG = {
    "statement_more", "statement_last", "profile", "profile_pending", "mine_list",
    "broadcast", "care_distress", "care_distress_no_line", "care_broker_reply",
    "for_member",  # "For Sam: " and any other text, on a phone two members share
}
# What a member receives in an ordinary exchange (balance, asks, confirmations, receipts,
# gifts, RSVPs): one segment in English. Other English texts (help, brokers, care) two.
ORDINARY = {
    "balance", "ask_helper", "ask_helper_no_area", "confirm_ask", "confirm_ask_helper",
    "confirm_reminder", "receipt_payer", "receipt_payee", "already_confirmed", "give_preview",
    "give_preview_fund", "give_done", "give_canceled", "gift_received", "rsvp_yes", "rsvp_no",
    "rsvp_canceled", "activity_credited", "done_requested", "done_already_asked",
    "done_reminder", "need_posted", "offer_posted", "match_helper", "match_requester",
    "match_too_late", "match_declined", "match_closed", "match_released",
    "intro_helper_waiting", "intro_requester_waiting", "disputed_member", "disputed_other",
    "limit_reached", "nobody_found", "need_expiring", "renewed", "post_closed",
    "statement_empty", "statement_end", "record_received",
}
ENGLISH_OTHERS = 2
BUDGETS = {"en": (1, 2), "bn": (2, 5)}
OTHERS = (2, 3)

TEXTS = sorted(key for key in catalogue.english().entries if not key.startswith("command_"))
LANGUAGES = sorted(catalogue.languages())


def realistic(key: str, language: str, name: str) -> dict[str, object]:
    values: dict[str, object] = {
        "bank": BANK, "name": name, "other": name, "who": name, "payer": name,
        "payee": "Mohammed Ali", "area": "Brixton Hill", "skills": SKILL,
        "availability": "weekday mornings and Sundays", "what": SKILL, "hours": Hours(765),
        "balance": Hours(-765), "limit": Hours(-1200), "ref": 317, "confirmation": 318,
        "refs": "317, 318, 319", "member_id": 417, "date": "12 Nov", "count": 125,
        "n": 125, "command": "DONE", "phone": "+447700900123", "example": "DONE 1.5 Ana",
        "source": render("community_fund", language), "text": BROADCAST,
        "audience": "@Brixton-Hill #gardening", "credited": 22, "segments": 2, "total": 250,
        "coming": 24, "not_coming": 3, "sent": 118, "more": 20, "paid": 24, "already": 2,
        "names": f"{name}, Mohammed Ali, Ana, Kemi", "code": "483920",
        "contact_hours": "weekdays 10am to 4pm", "support": "020 7946 0123",
        "crisis": "Samaritans 116 123, free, day or night", "masked": "+44*******0123",
        "broker": "Bea",
        # LANG: the choices by their own names (Bengali script makes these texts UCS-2).
        "choices": "1 English, 2 বাংলা, 3 Soomaali, 4 Türkçe, 5 Polski, 6 Cymraeg",
        "lang": "Soomaali",
    }
    if key == "broker_caps_bank":
        values["limit"] = 500  # texts a day, not hours
    if "entries" in placeholders(key, language):
        values["entries"] = entries(key, language, name)
    return {k: v for k, v in values.items() if k in placeholders(key, language)}


def entries(key: str, language: str, name: str) -> str:
    """A page of three statement lines, or a MINE list of three needs and offers."""
    if key.startswith("mine"):
        items = [render(f"mine_entry_{kind}", language, ref=ref, what=SKILL)
                 for kind, ref in (("need", 317), ("offer", 318), ("need", 319))]
        return "; ".join(items)
    lines = [render("statement_in", language, date="12 Nov", hours=Hours(765), other=name,
                    what=SKILL),
             render("statement_out", language, date="3 Nov", hours=Hours(90),
                    other="Mohammed Ali", what=SKILL),
             render("statement_in", language, date="1 Nov", hours=Hours(120), other=name,
                    what=SKILL)]
    return "\n".join(lines)


def budget(key: str, language: str) -> int:
    ordinary, long = BUDGETS.get(language, OTHERS)
    if key in ORDINARY:
        return ordinary
    if key in LONG or language != catalogue.SOURCE:
        return long
    return ENGLISH_OTHERS


def test_the_ordinary_texts_are_texts():
    assert not (ORDINARY | LONG) - set(TEXTS)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", TEXTS)
def test_every_text_fits_its_budget(key, language):
    for name in NAMES:
        text = cheapest(render(key, language, **realistic(key, language, name)))
        assert segments(text) <= budget(key, language), (key, language, len(text), text)


def test_every_placeholder_has_a_realistic_value():
    for key in TEXTS:
        for language in LANGUAGES:
            assert placeholders(key, language) <= set(realistic(key, language, "Sam")) | {
                "n", "count"}, (key, language)


# --- Every entry renders, with every plural form -------------------------------------------

NUMBERS = [0, 1, 2, 3, 4, 5, 6, 7, 11, 12, 14, 21, 22, 25, 100, 101, 102, 111, 1000]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_numbers_reach_every_plural_form_of_the_language(language):
    rule = catalogue.languages()[language]
    assert {rule.plural(n) for n in NUMBERS} == set(range(rule.nplurals))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", TEXTS)
def test_every_entry_renders_with_every_placeholder_and_plural(key, language):
    values = realistic(key, language, "Zoë Williams")
    entry = catalogue.english().entries[key]
    numbers = NUMBERS if entry.plural else [125]
    for number in numbers:
        for field in ("n", "count"):
            if field in placeholders(key, language):
                values[field] = number
        try:
            text = render(key, language, **values)
        except MissingText as exc:  # pragma: no cover - the failure message
            pytest.fail(f"{language} {key} n={number}: {exc}")
        assert text and "{" not in text.replace(BANK, ""), (key, language, text)


@pytest.mark.parametrize("language", LANGUAGES)
def test_hours_render_with_their_unit_in_every_language(language):
    for minutes in [0, 15, 60, 90, 120, 180, 300, 360, 1320, -765, 765, -60]:
        shown = hours_text(minutes, language)
        assert shown and "{" not in shown, (language, minutes)
