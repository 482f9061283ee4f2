"""Hours in each language's own plural forms, chosen by its file's Plural-Forms rule."""

from __future__ import annotations

import pytest

from conversations import catalogue
from conversations.gsm import cheapest, segments
from conversations.texts import Hours, hours_text, render
from tests.test_texts import MEMBER_VALUES, NAMES, values_for


def _hours_in_balance(language: str, hours: int) -> str:
    text = render("balance", language, hours=Hours(hours * 60))
    return text


# --- Polish: one (1), few (2-4, 22-24, not 12-14), many (0, 5-21, 25 ...) -------------------

@pytest.mark.parametrize(("hours", "shown"), [
    (1, "1 godzina"), (2, "2 godziny"), (5, "5 godzin"), (12, "12 godzin"),
    (22, "22 godziny"), (25, "25 godzin"),
    # Round the rule's edges: the teens are "many", 112 too; 102 and 1001 are not "one".
    (3, "3 godziny"), (4, "4 godziny"), (13, "13 godzin"), (14, "14 godzin"),
    (21, "21 godzin"), (102, "102 godziny"), (112, "112 godzin"), (0, "0 godzin"),
])
def test_polish_hours_take_the_right_form(hours, shown):
    assert render("hours", "pl", n=hours) == shown
    assert hours_text(hours * 60, "pl") == shown
    assert _hours_in_balance("pl", hours).startswith(f"Saldo: {shown}.")


@pytest.mark.parametrize(("minutes", "shown"), [
    (90, "1,5 godziny"), (15, "0,25 godziny"), (-765, "-12,75 godziny"), (-120, "-2 godziny"),
    (-60, "-1 godzina"), (-300, "-5 godzin"),
])
def test_polish_hours_after_a_fraction_or_below_zero(minutes, shown):
    assert hours_text(minutes, "pl") == shown
    assert render("balance", "pl", hours=Hours(minutes)).startswith(f"Saldo: {shown}.")


def test_polish_weeks_and_open_needs_take_the_right_form():
    def quiet(count: int) -> str:
        return render("care_entry_quiet", "pl", name="Ania", member_id=7, count=count)
    assert quiet(1).endswith("od 1 tygodnia")
    assert quiet(3).endswith("od 3 tygodni")
    assert quiet(12).endswith("od 12 tygodni")
    one = render("away_needs_open", "pl", count=1, ref=42)
    assert "Twoja otwarta prośba" in one and "{count}" not in one
    assert "(3)" in render("away_needs_open", "pl", count=3, ref=42)


# --- Welsh: zero, one, two, few (3), many (6), other --------------------------------------------
# After a numeral Welsh keeps the noun singular; "awr" begins with a vowel, so no mutation
# shows after the digits, and zero is "dim awr".

@pytest.mark.parametrize(("hours", "shown"), [
    (0, "dim awr"), (1, "1 awr"), (2, "2 awr"), (3, "3 awr"), (6, "6 awr"), (5, "5 awr"),
    (8, "8 awr"),
    (4, "4 awr"), (7, "7 awr"), (10, "10 awr"), (11, "11 awr"), (20, "20 awr"),
])
def test_welsh_hours_take_the_right_form(hours, shown):
    assert render("hours", "cy", n=hours) == shown
    assert hours_text(hours * 60, "cy") == shown
    assert _hours_in_balance("cy", hours).startswith(f"Balans: {shown}.")


def test_welsh_has_six_forms_chosen_by_the_rule():
    welsh = catalogue.languages()["cy"]
    assert [welsh.plural(n) for n in (0, 1, 2, 3, 6, 5, 8)] == [0, 1, 2, 3, 4, 5, 5]
    assert len(catalogue.usable("cy", "hours").forms) == 6


@pytest.mark.parametrize(("minutes", "shown"), [
    (90, "1.5 awr"), (15, "0.25 awr"), (-765, "-12.75 awr"), (-120, "-2 awr"), (-60, "-1 awr"),
])
def test_welsh_hours_after_a_fraction_or_below_zero(minutes, shown):
    assert hours_text(minutes, "cy") == shown


def test_welsh_weeks_and_open_needs_take_the_right_form():
    for count in (1, 2, 3, 6, 12):
        text = render("care_entry_quiet", "cy", name="Siân", member_id=7, count=count)
        assert text.endswith(f"yn dawel ers {count} wythnos"), text
    one = render("away_needs_open", "cy", count=1, ref=42)
    assert one.startswith("Mae eich angen agored") and "{count}" not in one
    assert render("away_needs_open", "cy", count=3, ref=42).startswith("Mae eich 3 angen agored")


def test_welsh_catalogue_is_whole_and_usable():
    _assert_whole_and_usable("cy", nplurals=6)


def test_polish_catalogue_is_whole_and_usable():
    _assert_whole_and_usable("pl", nplurals=3)


def _assert_whole_and_usable(code: str, nplurals: int) -> None:
    language = catalogue.languages()[code]
    assert language.nplurals == nplurals
    english = catalogue.english()
    for key in english.entries:
        assert catalogue.usable(code, key) is not None, (code, key)
    problems = [f for f in catalogue.check() if f.language == code
                and f.problem != "machine-drafted, not yet reviewed"]
    assert problems == []
    assert catalogue.by_name(language.name) == code
    for alias in language.aliases:
        assert catalogue.by_name(alias.lower()) == code, alias


# --- Command words in each language (the catalogue's command_* entries) -----------------------

CARRIER_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
                 "START", "UNSTOP", "HELP", "INFO"}
# Texts that keep an English word on purpose: LEAVE NOW (NOW is read in English only, so the
# English pair is the one that works) and START (a carrier word, always English).
KEPT_ENGLISH = {"stopped": {"START"}}


def _command_words(code: str) -> dict[str, list[str]]:
    words = {}
    for key in catalogue.english().entries:
        if key.startswith("command_"):
            entry = catalogue.usable(code, key)
            assert entry is not None, (code, key)
            words[key.removeprefix("command_").upper()] = [
                w.strip() for w in entry.forms[0].split(",") if w.strip()]
    return words


def _assert_command_words(code: str) -> None:
    words = _command_words(code)
    seen: dict[str, str] = {}
    for command, spellings in words.items():
        assert spellings, command
        for word in spellings:
            assert word == word.upper(), (command, word)
            assert word not in CARRIER_WORDS, (command, word)
            assert seen.setdefault(word, command) == command, (word, seen[word], command)
    # Where the English names a command, the translation names the language's main word.
    english_commands = set(words)
    for key, entry in catalogue.english().entries.items():
        if key.startswith("command_"):
            continue
        english = entry.forms[-1]
        translated = catalogue.usable(code, key)
        assert translated is not None
        for form in translated.forms:
            for command in english_commands:
                if f" {command} " not in f" {english} ".replace(",", " ").replace(".", " "):
                    continue
                main = words[command][0]
                if command in KEPT_ENGLISH.get(key, set()):
                    assert command in form, (key, form)
                else:
                    assert main in form, (key, command, main, form)
            for carrier in CARRIER_WORDS - KEPT_ENGLISH.get(key, set()):
                assert f" {carrier} " not in f" {form} ", (key, carrier)


def test_polish_command_words_are_distinct_never_carrier_words_and_used_in_texts():
    _assert_command_words("pl")


def test_welsh_command_words_are_distinct_never_carrier_words_and_used_in_texts():
    _assert_command_words("cy")


# --- What a text costs in each language (docs: TRANSLATORS budgets) ----------------------------

def _assert_budget(code: str) -> None:
    """Every text with realistic values, as the bank sends it (``cheapest``: Polish and Welsh
    letters kept when that costs no more): one segment for all but the texts with members' own
    words, two at most for those."""
    for key in catalogue.english().entries:
        if key.startswith(("command_", "word_")):  # words the bank reads, never sends
            continue
        for name in NAMES:
            values = values_for(key, name=name, other=name)
            values.setdefault("count", 3)
            text = cheapest(render(key, code, **values))
            most = 2 if key in MEMBER_VALUES else 1
            assert segments(text) <= most, (code, key, len(text), text)


def test_polish_texts_fit_their_segments():
    _assert_budget("pl")


def test_welsh_texts_fit_their_segments():
    _assert_budget("cy")
