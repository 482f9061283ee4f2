"""The Bengali catalogue (conversations/locale/bn.po): every text there, usable, short enough
for UCS-2 (70 characters a segment), and naming the same English command words."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from conversations import catalogue
from conversations.commands import ALIASES, CARRIER_WORDS
from conversations.gsm import cheapest, segments
from conversations.texts import render
from tests.test_texts import MEMBER_VALUES, NAMES, capital_words, values_for

BN = "bn"
ENGLISH = catalogue.english().entries
TEXTS = sorted(k for k in ENGLISH if not k.startswith(("command_", "word_")))
COMMANDS = sorted(k for k in ENGLISH if k.startswith("command_"))


def _header() -> dict[str, str]:
    text = (resources.files("conversations") / "locale" / "bn.po").read_text(encoding="utf-8")
    header = text[text.index('msgid ""'):text.index("\n\n")]
    return dict(re.findall(r'^"([\w-]+): (.*)\\n"$', header, re.MULTILINE))


def test_the_header_names_bengali_and_the_names_members_type_for_it_bengali():
    header = _header()
    assert header["Language"] == BN
    assert header["Plural-Forms"] == "nplurals=2; plural=(n != 1);"
    assert header["X-Language-Name"] == "বাংলা"
    aliases = {a.strip().casefold() for a in header["X-Language-Aliases"].split(",")}
    assert {"bengali", "bangla", "bangali", "বাঙালি", "sylheti"} <= aliases
    assert catalogue.languages()[BN].nplurals == 2


def test_members_can_name_bengali_as_they_type_it_bengali():
    if catalogue.languages()[BN].name == BN:
        pytest.skip("this catalogue.py does not read the X-Language-* header fields yet")
    for name in ("Bengali", "bangla", "BANGALI", "বাংলা", "বাঙালি", "Sylheti", "bn"):
        assert catalogue.by_name(name) == BN, name


@pytest.mark.parametrize("key", sorted(ENGLISH))
def test_every_entry_is_translated_and_usable_bengali(key):
    assert catalogue.usable(BN, key) is not None, key


def test_every_entry_waits_for_a_speakers_review_bengali():
    found = {f.key: f.problem for f in catalogue.check() if f.language == BN}
    assert set(found) == set(ENGLISH)
    assert set(found.values()) == {"machine-drafted, not yet reviewed"}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("key", TEXTS)
def test_each_bengali_text_fits_two_segments_four_with_members_words_bengali(key, name):
    values = values_for(key, name=name, other=name)
    values.setdefault("count", 3)
    text = cheapest(render(key, BN, **values))
    assert segments(text) <= (4 if key in MEMBER_VALUES else 2), (key, len(text), text)


@pytest.mark.parametrize("key", TEXTS)
def test_bengali_texts_name_the_english_command_words_bengali(key):
    # Bengali texts keep YES 17, BALANCE, JOIN in Latin capitals: easy on a basic phone.
    english = set().union(*(capital_words(f) for f in ENGLISH[key].forms))
    bengali = set().union(*(capital_words(f) for f in catalogue.usable(BN, key).forms))
    assert bengali == english, key


@pytest.mark.parametrize("key", TEXTS)
def test_bengali_texts_never_ask_for_yes_or_no_alone_bengali(key):
    for form in catalogue.usable(BN, key).forms:
        for match in re.finditer(r"\b(YES|NO)\b", form):
            assert re.match(r" (\{ref\}|\d+)", form[match.end():]), (key, form)


def _words(key: str) -> list[str]:
    return [w.strip() for w in catalogue.usable(BN, key).forms[0].split(",") if w.strip()]


def test_bengali_command_words_are_in_bengali_script_and_latin_letters_bengali():
    for key in COMMANDS:
        words = _words(key)
        assert words, key
        assert any(not w.isascii() for w in words), key  # Bengali script first
        assert words[0] and not words[0].isascii(), key
        for word in words:
            assert word == word.upper(), (key, word)


def test_no_bengali_command_word_is_a_carrier_word_or_means_two_commands_bengali():
    owner: dict[str, str] = {}
    for command, aliases in ALIASES.items():
        for word in (command, *aliases):
            owner[word] = command
    seen: dict[str, str] = {}
    for key in COMMANDS:
        command = key.removeprefix("command_").upper()
        for word in _words(key):
            assert word not in CARRIER_WORDS, (key, word)
            assert word not in {"STOP", "START", "HELP", "INFO", "CANCEL", "END", "QUIT"}
            assert seen.setdefault(word, key) == key, (word, key, seen[word])
            assert owner.get(word, command) == command, (key, word, owner.get(word))


def test_words_that_start_everyday_bengali_sentences_are_not_command_words_bengali():
    # "দরকার নেই" (no need) must not post a need, "আমার নাম…" (my name…) must not list posts,
    # "যোগ দিতে চাই" (I want to join) must not make "দিতে চাই" a name, "কে…?" (who…?) is a
    # question, not a broker's WHO.
    everyday = {"দরকার", "DORKAR", "চাই", "CHAI", "আমার", "AMAR", "যোগ", "JOG", "কে", "KE",
                "আমি", "AMI", "বিদায়", "HA", "সাহায্য"}
    for key in COMMANDS:
        assert not set(_words(key)) & everyday, key
