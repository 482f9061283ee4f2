"""Care in members' own languages: the phrase lists in conversations/phrases/<code>.toml are
read whole, recognise distress and a wish to talk, and leave everyday sentences alone.

Bengali first (other languages add their own tests here, named with the language)."""

from __future__ import annotations

import tomllib
import unicodedata
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

from conversations import care

BN = "bn"


def _phrases_in(data: Any) -> Iterator[str]:
    """Every phrase in a phrases file: list items, and the phrases keyed in unless tables."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, list) and key not in ("phrases", "negations", "thanks",
                                                       "acknowledgements", "fillers", "emoji"):
                yield key  # an unless_followed_by entry: the phrase it qualifies
            yield from _phrases_in(value)
    elif isinstance(data, list):
        for value in data:
            yield from _phrases_in(value)
    elif isinstance(data, str):
        yield data


def _bengali_file() -> dict[str, Any]:
    source = resources.files("conversations") / "phrases" / "bn.toml"
    return tomllib.loads(source.read_text(encoding="utf-8"))


# --- Reading Bengali words -----------------------------------------------------------------

def test_words_of_keeps_vowel_signs_and_viramas_with_their_letters_bengali():
    # 'া' 'ি' '্' 'ঁ' are marks, not letters: they used to split every word apart.
    assert care.words_of("আমি আর বাঁচতে চাই না!") == "আমি আর বাঁচতে চাই না"
    assert care.words_of("আত্মহত্যা।") == "আত্মহত্যা"
    assert care.words_of("ধন্যবাদ, ভাই") == "ধন্যবাদ ভাই"


def test_words_of_reads_decomposed_and_joined_spellings_alike_bengali():
    # Phones send "ো" as one character or as "ে" + "া", and some put zero-width joiners in.
    word = "বেঁচে থাকতে চাই না"
    assert care.words_of(unicodedata.normalize("NFD", word)) == care.words_of(word)
    assert care.words_of("র\u200d্যাব") == care.words_of("র্যাব")
    assert care.words_of("ক\u200cষ") == "কষ"


def test_a_stray_mark_is_not_a_word_bengali():
    assert care.words_of("\u09be \u09cd") == ""
    assert care.words_of("ok \u09be") == "ok"


def test_bengali_digits_are_read_as_numbers_bengali():
    assert care.words_of("YES ১৭") == "yes 17"
    assert care.words_of("০১২৩৪৫৬৭৮৯") == "0123456789"


def test_every_bengali_phrase_survives_reading_whole_bengali():
    # A phrase that words_of tears apart or changes could never match a member's text.
    for phrase in _phrases_in(_bengali_file()):
        assert care.words_of(phrase) == unicodedata.normalize("NFC", phrase).lower(), phrase


def test_the_bengali_file_is_marked_machine_drafted_bengali():
    source = resources.files("conversations") / "phrases" / "bn.toml"
    first = source.read_text(encoding="utf-8").splitlines()[0]
    assert "machine-drafted" in first and "reviewed by a speaker" in first


def test_no_single_ambiguous_bengali_word_is_distress_bengali():
    # Single words only where they have no everyday meaning: suicide, in its spellings.
    allowed = {"আত্মহত্যা", "আত্মহত্যার", "attohotta", "atmohotta", "atmahatya", "attohatya"}
    singles = {p for p in care.phrases(BN).distress if " " not in p}
    english = {p for p in care.phrases().distress if " " not in p}
    assert singles - english <= allowed
    for word in ("মরে", "শেষ", "কষ্ট", "একা", "মন", "খারাপ", "ব্যথা", "ভয়"):
        assert not care.is_distress(word, BN), word


# --- Distress -------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "আমি আর বাঁচতে চাই না",
    "আমার মরে যেতে ইচ্ছে করে",
    "আমি নিজেকে শেষ করে দেব",
    "আত্মহত্যার কথা ভাবছি",
    "আর পারছি না। সব শেষ",
    "আর পারছিনা",
    "বাসায় নিরাপদ নই, ভয় লাগছে",
    "অনেক ওষুধ খেয়ে ফেলেছি",
    "ami ar bachte chai na",
    "Ar parchi na bhai",
    "more jete icche kore",
    "suicide korbo",
])
def test_a_bengali_distress_phrase_is_recognised_bengali(text):
    assert care.is_distress(text, BN)


def test_distress_is_recognised_however_the_phone_wrote_it_bengali():
    text = "বেঁচে থাকতে চাই না"
    assert care.is_distress(unicodedata.normalize("NFD", text), BN)
    assert care.is_distress(text.replace(" ", "  ") + "…", BN)


def test_english_distress_from_a_member_who_reads_bengali_is_recognised_bengali():
    # A member's language is for the texts the bank sends; they may write in English.
    assert care.is_distress("I want to die", BN)
    assert care.is_distress("ami r parchi na, I can't cope", BN)
    assert not care.is_distress("I can't go on Tuesday", BN)


@pytest.mark.parametrize("text", [
    "আমি মঙ্গলবার আসতে পারব না",  # I can't come on Tuesday
    "আমার বাগানে সাহায্য দরকার",  # I need help in my garden
    "আজ শরীরটা ভালো না, কাল কথা হবে",  # not well today, talk tomorrow
    "বাজার করতে পারি, গাড়ি চালাতে পারি",  # I can shop, I can drive
    "আত্মহত্যা প্রতিরোধ ট্রেনিং কবে?",  # when is the suicide prevention training?
    "ami bazar korte pari",
])
def test_an_everyday_bengali_sentence_is_not_distress_bengali(text):
    assert not care.is_distress(text, BN)


# --- Talking to a person, words for a broker, small talk --------------------------------------

@pytest.mark.parametrize("text", [
    "আমাকে একটু ফোন দিন",
    "কারো সাথে কথা বলতে চাই",
    "সমন্বয়কের সাথে কথা বলা দরকার",
    "খুব একা লাগছে",
    "amake ekta phone diben?",
    "please call me",
])
def test_a_bengali_wish_to_talk_to_a_person_is_recognised_bengali(text):
    assert care.wants_a_person(text, BN)


@pytest.mark.parametrize("text", [
    "ফোন করবেন না",  # please don't call
    "এখন কথা বলতে চাই না",  # I don't want to talk now
    "phone diben na",
    "please don't call me",
    "আমি বাগানে সাহায্য করতে পারি",
])
def test_a_bengali_wish_the_other_way_is_not_a_wish_to_talk_bengali(text):
    assert not care.wants_a_person(text, BN)


def test_bengali_words_for_a_broker_bengali():
    assert care.for_a_broker("আমাকে বিরক্ত করবেন না", BN)
    assert care.for_a_broker("ar message diben na", BN)
    assert not care.for_a_broker("আমাকে মেসেজ দিবেন", BN)


@pytest.mark.parametrize(("text", "kind"), [
    ("ধন্যবাদ", care.THANKS),
    ("অনেক ধন্যবাদ ভাই 🙏", care.THANKS),
    ("dhonnobad apu", care.THANKS),
    ("Jazakallah khair", care.THANKS),
    ("thank you!", care.THANKS),
    ("ঠিক আছে", care.ACKNOWLEDGEMENT),
    ("জি আচ্ছা 👍", care.ACKNOWLEDGEMENT),
    ("thik ache", care.ACKNOWLEDGEMENT),
    ("ok", care.ACKNOWLEDGEMENT),
    ("আলহামদুলিল্লাহ", care.ACKNOWLEDGEMENT),
])
def test_bengali_small_talk_bengali(text, kind):
    assert care.small_talk(text, BN) == kind


@pytest.mark.parametrize("text", [
    "ধন্যবাদ, কিন্তু আমি আর পারছি না",  # thanks, but I can't go on
    "ঠিক আছে 😢",
    "অনেক",  # a filler alone
    "আমার ব্যালেন্স কত?",
])
def test_bengali_text_that_is_not_only_small_talk_bengali(text):
    assert care.small_talk(text, BN) is None


# --- Through the conversation: a member who reads texts in Bengali ----------------------------

def _bengali_member_says(text: str):
    from conversations import Facts, MemberFacts, State, step

    member = MemberFacts(id=7, name="রহিমা", status="active", language=BN)
    return step(State(), Facts(bank_name="Clapham Park Time Bank", member=member), text)


@pytest.mark.parametrize("text", ["আমি আর বাঁচতে চাই না", "ar parchi na", "I want to die"])
def test_a_bengali_members_distress_reaches_a_person_bengali(text):
    outcome = _bengali_member_says(text)
    assert outcome.route == care.DISTRESS
    assert [e.distress for e in outcome.effects] == [True]


def test_a_bengali_members_wish_to_talk_and_thanks_are_read_bengali():
    from conversations.texts import render

    talk = _bengali_member_says("আমাকে একটু ফোন দিন")
    assert talk.route == care.TALK and talk.effects
    thanks = _bengali_member_says("অনেক ধন্যবাদ 🙏")
    assert thanks.route == care.SMALL_TALK
    (reply,) = thanks.replies
    text = render(reply.key, BN, **reply.params)
    assert "ধন্যবাদ" in text and "MENU" in text
    assert _bengali_member_says("ঠিক আছে").replies == []
    everyday = _bengali_member_says("আমি মঙ্গলবার আসতে পারব না")
    assert everyday.route == care.NOT_UNDERSTOOD


def test_keeping_bengali_marks_leaves_a_capital_turkish_i_plain_bengali():
    # Marks are kept with their letters now; "İ".lower() is "i" + a combining dot, which
    # must not make "İYİYİM" a different word from "iyiyim".
    assert care.words_of("İYİYİM") == "iyiyim"
    assert care.words_of("Zoë café") == "zoë café"
