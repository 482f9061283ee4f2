"""The catalogue of texts the bank sends, and the SMS encoding rules they are measured by."""

from __future__ import annotations

import re

import pytest

from conversations import State, step
from conversations.commands import parse
from conversations.gsm import GSM7_BASIC, GSM7_EXTENDED, is_gsm7, segments, to_gsm
from conversations.machine import Facts, MemberFacts
from conversations.texts import CATALOGUE, MissingText, placeholders, render

try:  # hours with their unit ("12.75 hours"), where the catalogue has them
    from conversations.texts import Hours
except ImportError:  # pragma: no cover - an older catalogue
    Hours = None  # type: ignore[assignment,misc]

# Entries named command_* are the words members text, not texts the bank sends.
ENGLISH = {key: text for key, text in CATALOGUE["en"].items() if not key.startswith("command_")}

# Realistic, long-ish values: what a real bank and member would fill in.
BANK = "Clapham Park Time Bank"
NAMES = ["Mohammed", "Christabelle"]  # an ordinary name and a 12-letter one
WHAT = "help with the weekly shop"  # 25 characters, as a member writes it


def _hours(minutes: int) -> object:
    return Hours(minutes) if Hours is not None else f"{minutes / 60:g} hours"


REALISTIC: dict[str, object] = {
    "bank": BANK,
    "name": "Mohammed",
    "area": "Brixton Hill",
    "skills": "gardening, cooking, lifts",  # 25 characters
    "availability": "weekday mornings, Sundays",  # 25 characters
    "hours": "-12.75",  # a bare number where the template writes the unit itself
    "member_id": 12345,
    # Texts about hours given and received.
    "n": "12.75",
    "who": "Christabelle",
    "other": "Christabelle",
    "payer": "Christabelle",
    "payee": "Mohammed",
    "what": WHAT,
    "ref": 1234,
    "balance": _hours(-765),
    "limit": _hours(-1200),
    "date": "12 Nov",
    "source": "community fund",
    "command": "DONE",
    "refs": "1234, 1235, 1236",
    "phone": "+447700900123",
    "confirmation": 1235,
    "example": "RECORD 07700900123 1.5 gardening",
    # Brokers: a broadcast's own words, audiences, counts, names, a login code.
    "text": "Seed swap and tea at St Mark's hall, Saturday 2pm. Bring cuttings!",
    "audience": "@Brixton-Hill #gardening",
    "count": 1250,
    "credited": 22,
    "segments": 2,
    "total": 2500,
    "coming": 24,
    "not_coming": 3,
    "sent": 1180,
    "names": "Mohammed, Christabelle, Ana, Kemi and 20 more",
    "more": 20,
    "paid": 24,
    "already": 2,
    "code": "483920",
    # Care: a bank's own words, as a bank would set them.
    "contact_hours": "weekdays 10am to 4pm",
    "support": "020 7946 0123",
    "crisis": "Samaritans 116 123, free, day or night",
    "masked": "+44*******0123",
    "broker": "Bea",
    # Languages (LANG): a bank's choices, each by its own name, and one chosen.
    "choices": "1 English, 2 Soomaali, 3 Polski, 4 Cymraeg",
    "lang": "Soomaali",
}
# Every language by its own name: Bengali script makes a text UCS-2 (70 a segment).
ALL_CHOICES = "1 English, 2 বাংলা, 3 Soomaali, 4 Türkçe, 5 Polski, 6 Cymraeg"
# Texts that show the member's own words (or several lines of them) may take two segments.
MEMBER_VALUES = {"profile", "profile_pending", "statement_more", "statement_last", "mine_list",
                 "broadcast",
                 # Care: a kind answer to distress, with the bank's own lines, and a broker's
                 # own words, may take two.
                 "care_distress", "care_distress_no_line", "care_broker_reply"}
# Texts that do not ask for anything back, though they say "please".
NOT_ASKING = {
    "hours_too_many",  # "please ask your broker"
    "invalid_request",  # "Please text again": resend the same words, whatever they were
    "try_again",  # the same: the bank could not take the text (a database or Redis outage)
}
# Texts answered by a number alone ("Reply 1 for Sam, 2 for Ann": who is texting from a
# shared phone), which tests/test_offline_members.py follows through.
NUMBER_ANSWERS = {"who_is_texting", "who_is_texting_again"}
# Capital words that are part of an example's values rather than commands.
# NOW: LEAVE NOW confirms leaving. TALK: the inbox's command (care), built alongside.
ARGUMENT_WORDS = {"FUND", "NOW", "TALK"}
CARRIER_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                 "OPTOUT", "HELP", "INFO", "UNSTOP")


def values_for(key: str, **overrides: object) -> dict[str, object]:
    values = {**REALISTIC, **overrides}
    template = ENGLISH[key]
    if "{hours} hour" not in template:
        values["hours"] = _hours(765)  # "12.75 hours"
    if "entries" in placeholders(key):
        name = str(values.get("other", "Christabelle"))
        line = render("statement_in", date="12 Nov", hours=_hours(765), other=name, what=WHAT)
        values["entries"] = "\n".join([line] * 3)
    return values


def rendered(key: str, **overrides: object) -> str:
    return render(key, **values_for(key, **overrides))


def capital_words(text: str) -> set[str]:
    return set(re.findall(r"\b[A-Z]{2,}\b", text))


def commands_named(text: str) -> set[str]:
    return {w for w in capital_words(text) - ARGUMENT_WORDS if parse(w).name is not None}


def asks_for_an_answer(key: str) -> bool:
    text = ENGLISH[key]
    return key not in NOT_ASKING and key not in NUMBER_ANSWERS and bool(
        re.search(r"(?<!they )\b(reply|please|try)\b", text, re.IGNORECASE) or "?" in text
    )


# --- Every text in one segment ----------------------------------------------------------------

def test_every_placeholder_has_a_realistic_value():
    for key in ENGLISH:
        assert placeholders(key) <= set(values_for(key)), key


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("key", sorted(set(ENGLISH) - MEMBER_VALUES))
def test_each_text_fits_one_sms_segment(key, name):
    text = rendered(key, name=name, other=name)
    assert is_gsm7(text), (key, text)
    assert segments(text) == 1, (key, len(text), text)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("key", sorted(MEMBER_VALUES & set(ENGLISH)))
def test_texts_with_the_members_own_words_fit_two_segments(key, name):
    text = rendered(key, name=name, other=name)
    assert is_gsm7(text)
    assert segments(text) <= 2, (key, len(text), text)


def test_a_profile_with_nothing_given_fits_two_segments():
    for key in ("profile", "profile_pending"):
        text = rendered(key, name="Christabelle", area="not given", skills="not given",
                        availability="not given")
        assert segments(text) <= 2, (key, len(text))


def test_templates_themselves_are_gsm7():
    for key, template in ENGLISH.items():
        assert is_gsm7(to_gsm(template)), key
        assert to_gsm(template) == template, f"{key}: typographic characters in the template"


def test_every_language_has_the_same_texts_and_placeholders():
    for language, texts in CATALOGUE.items():
        assert set(texts) <= set(CATALOGUE["en"]), language
        for key in texts:
            assert placeholders(key, language) == placeholders(key), (language, key)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("key", sorted(k for k in ENGLISH if "choices" in placeholders(k)))
def test_the_language_choices_fit_two_segments_in_every_script(key, name):
    text = rendered(key, name=name, choices=ALL_CHOICES)
    assert not is_gsm7(text)
    assert segments(text) <= 2, (key, len(text), text)


# --- Words used and not used -------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(ENGLISH))
def test_no_text_calls_members_service_users_or_patients(key):
    for name in NAMES:
        text = rendered(key, name=name).lower()
        for word in ("service user", "service-user", "patient", "beneficiar"):
            assert word not in text, (key, word)


@pytest.mark.parametrize("key", sorted(k for k in ENGLISH if asks_for_an_answer(k)))
def test_every_text_that_expects_an_answer_names_the_reply_in_capitals(key):
    # Rendered: some texts name the command through a value ("e.g. {command} 2 Ana").
    text = rendered(key)
    assert commands_named(text), (key, text)


def test_every_text_that_says_reply_names_a_command():
    for key, text in ENGLISH.items():
        if key in NUMBER_ANSWERS:
            assert re.search(r"Reply 1 for \{name\}, 2 for \{other\}", text), key
        elif re.search(r"(?<!they )\breply\b", text, re.IGNORECASE):
            assert commands_named(rendered(key)), key


@pytest.mark.parametrize("key", ["joined", "joined_pending", "ask_area", "ask_availability"])
def test_every_question_says_it_can_be_skipped(key):
    assert "SKIP" in capital_words(ENGLISH[key])


@pytest.mark.parametrize("key", sorted(ENGLISH))
def test_no_text_asks_for_a_carrier_keyword(key):
    # Carriers and Twilio act on these words themselves: never ask for one for anything else.
    text = ENGLISH[key]
    found = capital_words(text) & set(CARRIER_WORDS)
    assert not found, (key, found)
    if key != "stopped":
        assert "START" not in capital_words(text), key


YES_NO_FOLLOWED_BY = r" (\{ref\}|\d+|and the number|with the number|or NO with the number)"


@pytest.mark.parametrize("key", sorted(ENGLISH))
def test_yes_and_no_are_never_asked_for_alone(key):
    # YES or NO alone could answer a carrier's own question; always with the reference.
    text = ENGLISH[key]
    for match in re.finditer(r"\b(YES|NO)\b", text):
        after = text[match.end():]
        assert re.match(YES_NO_FOLLOWED_BY, after), (key, text)


def test_start_is_named_where_a_member_stopped():
    assert "reply START" in ENGLISH["stopped"]


def test_capital_words_in_texts_are_commands_the_bank_understands():
    for key, text in ENGLISH.items():
        if key == "broker_new_member" or key.startswith("word_"):
            continue  # word_*: the words after a command (NOW, FUND), not texts
        for word in capital_words(text) - ARGUMENT_WORDS:
            assert parse(word).name is not None, (key, word)


def test_a_member_renaming_is_shown_the_name_command():
    facts = Facts(bank_name=BANK, member=MemberFacts(id=1, name="Sam", status="active"))
    (reply,) = step(State(), facts, "NAME 😀").replies
    text = render(reply.key, **reply.params)
    assert "NAME" in capital_words(text), text


# --- Rendering -------------------------------------------------------------------------------

def test_render_fills_values_and_makes_them_gsm7():
    text = render("profile", name="Sam", area="“Brixton” – Hill…", skills="‘IT’ help",
                  availability="Sundays\u00a0only")
    assert "Area: \"Brixton\" - Hill..." in text
    assert "Can help with: 'IT' help" in text
    assert "Free: Sundays only" in text
    assert is_gsm7(text)


def test_render_refuses_an_unknown_key_or_a_missing_value():
    with pytest.raises(MissingText):
        render("no_such_text")
    with pytest.raises(MissingText):
        render("welcome")


def test_render_falls_back_to_english():
    assert render("welcome", "xx", bank=BANK) == render("welcome", bank=BANK)
    assert render("welcome", "", bank=BANK) == render("welcome", bank=BANK)


def test_braces_in_values_are_kept_as_they_are():
    assert "{bank}" in render("profile_updated", name="{bank}")


# --- GSM-7 and segments -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("typographic", "plain"),
    [("‘", "'"), ("’", "'"), ("‚", "'"), ("′", "'"), ("“", '"'), ("”", '"'), ("„", '"'),
     ("–", "-"), ("—", "-"), ("−", "-"), ("‐", "-"), ("…", "..."), ("\u00a0", " "),
     ("\u202f", " "), ("\u2009", " "), ("•", "-")],
)
def test_to_gsm_swaps_typographic_characters(typographic, plain):
    assert to_gsm(f"a{typographic}b") == f"a{plain}b"
    assert is_gsm7(to_gsm(f"a{typographic}b"))
    assert not is_gsm7(typographic)


def test_to_gsm_keeps_what_is_already_gsm7_and_what_it_cannot_swap():
    assert to_gsm(GSM7_BASIC + GSM7_EXTENDED) == GSM7_BASIC + GSM7_EXTENDED
    assert to_gsm("Hi 😀") == "Hi 😀"
    assert to_gsm("It’s “fine” — really…") == "It's \"fine\" - really..."


def test_the_gsm7_alphabet():
    assert len(set(GSM7_BASIC)) == len(GSM7_BASIC) == 127  # 128 less the escape
    assert len(set(GSM7_EXTENDED)) == 10
    assert is_gsm7("Café £5 @ 10:00 é ü Ä ¿ §")
    assert is_gsm7("[x] {y} €1 ~ ^ | \\")
    for ch in ("😀", "ç", "ć", "আ", "ا", "你", "`", "\u2019", "\t"):
        assert not is_gsm7(ch), ch


@pytest.mark.parametrize(
    ("text", "count"),
    [("", 1), ("a", 1), ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
     ("a" * 459, 3), ("a" * 460, 4),
     # Extended characters take two septets.
     ("€" * 80, 1), ("€" * 81, 2), ("a" * 159 + "€", 2), ("a" * 158 + "€", 1),
     ("[" * 80, 1), ("{}" * 41, 2),
     # One character outside GSM-7 makes the whole text UCS-2: 70 a segment, 67 when split.
     ("😀", 1), ("ç" * 70, 1), ("ç" * 71, 2), ("ç" * 134, 2), ("ç" * 135, 3),
     ("a" * 69 + "ç", 1), ("a" * 70 + "ç", 2), ("a" * 159 + "😀", 3),
     # An emoji is two UTF-16 code units.
     ("a" * 68 + "😀", 1), ("a" * 69 + "😀", 2), ("😀" * 35, 1), ("😀" * 36, 2)],
)
def test_segments(text, count):
    assert segments(text) == count


def test_an_emoji_makes_a_short_text_ucs2():
    text = "Thanks! " * 10  # 80 GSM-7 characters: one segment
    assert segments(text) == 1
    assert segments(text + "🙏") == 2
    assert segments(to_gsm("‘Thanks’ " * 10)) == 1
