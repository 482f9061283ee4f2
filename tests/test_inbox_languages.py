"""Members' words in their own language reach a person: distress, a wish to talk, words for a
broker and small talk read from ``conversations/phrases/<code>.toml`` (``conversations.care``).

Each language has its own section; the functions name the language (``_polish``, ``_welsh``)
so sections written for other languages sit beside them.
"""

from __future__ import annotations

import pytest

from conversations import care

# --- Polish (pl) -------------------------------------------------------------------------------


def test_polish_phrases_are_read_from_their_own_file():
    polish = care.phrases("pl")
    assert polish is not care.phrases("en")
    assert "chcę umrzeć" in polish.distress
    assert "chce umrzec" in polish.distress  # typed without Polish letters


@pytest.mark.parametrize("text", [
    "Chcę umrzeć",
    "chce umrzec...",
    "Nie chcę już żyć, nie chcę żyć",
    "Nie mam po co żyć",
    "Zabiję się dziś",
    "juz nie daje rady!!",
    "Nie daję sobie rady",
    "Nie daję sobie rady z tym wszystkim",
    "Nie daję sobie rady z ogrodem",  # as in English: coping reaches a broker
    "Mam dość życia",
    "Myślę o samobójstwie",
    "Robię sobie krzywdę",
    "Przedawkowałam",
    "Nie jestem bezpieczna w domu",
    "Wszystkim będzie lepiej beze mnie",
])
def test_distress_in_polish_is_recognised(text):
    assert care.is_distress(text, "pl"), text


@pytest.mark.parametrize("text", [
    "Nie dam rady w piątek, przepraszam",  # can't make Friday
    "Nie dam rady przyjść, mam wizytę u lekarza",
    "Kupię chleb i mleko w sklepie",
    "Umrzeć ze śmiechu można z tym psem",  # a single word is never enough
    "Dziękuję bardzo!",
    "Zły dzień, ale jutro będzie lepiej",
])
def test_everyday_polish_is_not_distress(text):
    assert not care.is_distress(text, "pl"), text


def test_polish_wish_to_talk_and_the_other_way():
    assert care.wants_a_person("Zadzwońcie do mnie proszę", "pl")
    assert care.wants_a_person("czy ktos moze zadzwonic?", "pl")
    assert care.wants_a_person("Czuję się bardzo samotna", "pl")
    assert not care.wants_a_person("Nie dzwońcie do mnie", "pl")
    assert not care.wants_a_person("Proszę nie dzwońcie do mnie", "pl")
    assert not care.wants_a_person("Mogę pomóc w ogrodzie w sobotę", "pl")


def test_polish_words_for_a_broker():
    assert care.for_a_broker("Zostawcie mnie w spokoju!", "pl")
    assert care.for_a_broker("nie piszcie do mnie wiecej", "pl")
    assert not care.for_a_broker("Piszę w sprawie zakupów", "pl")


@pytest.mark.parametrize(("text", "kind"), [
    ("Dziękuję bardzo!", care.THANKS),
    ("dzieki wielkie xx", care.THANKS),
    ("ok dzięki", care.THANKS),
    ("Dobrze 👍", care.ACKNOWLEDGEMENT),
    ("w porządku", care.ACKNOWLEDGEMENT),
    ("spoko", care.ACKNOWLEDGEMENT),
])
def test_polish_small_talk(text, kind):
    assert care.small_talk(text, "pl") == kind


@pytest.mark.parametrize("text", [
    "dziękuję, ale nie mogę przyjść",  # more than thanks: a person reads it
    "jeszcze raz",  # fillers alone are not small talk
    "dobrze 😢",  # a tear is not a nod
])
def test_polish_texts_that_are_more_than_small_talk(text):
    assert care.small_talk(text, "pl") is None
