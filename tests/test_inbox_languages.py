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


# --- Welsh (cy) --------------------------------------------------------------------------------


def test_welsh_phrases_are_read_from_their_own_file():
    welsh = care.phrases("cy")
    assert welsh is not care.phrases("en")
    assert "eisiau marw" in welsh.distress
    assert "dod ar cyfan i ben" in welsh.distress  # "dod â'r cyfan i ben" typed plainly


@pytest.mark.parametrize("text", [
    "Dwi eisiau marw",
    "dwi isio marw",  # the north
    "Dwi'n moyn marw",  # the south
    "Dw i am ladd fy hun",  # soft mutation after "am"
    "Rwy'n meddwl lladd fy hun",
    "Dwi ddim eisiau byw rhagor",
    "Dwi'n methu mynd ymlaen",
    "Dwi’n teimlo’n isel iawn",
    "Dwi'n methu ymdopi â'r cyfan",
    "Dwi ddim yn saff adre",
    "Dw i wedi cymryd gormod o dabledi",
    "Mae'n well heb fi",
])
def test_distress_in_welsh_is_recognised(text):
    assert care.is_distress(text, "cy"), text


@pytest.mark.parametrize("text", [
    "Dwi'n methu mynd ymlaen ddydd Mawrth, sori",  # can't go on Tuesday
    "Methu mynd ymlaen i'r dref heddiw",
    "Mae'r blodau wedi marw yn yr ardd",  # a single word is never enough
    "Dwi'n gallu helpu gyda siopa",
    "Diolch yn fawr!",
    "Mae'r tîm argyfwng wedi ffonio",  # the crisis team, not a person in crisis
    "Cwrs hyfforddiant gorddos ymwybyddiaeth",
])
def test_everyday_welsh_is_not_distress(text):
    assert not care.is_distress(text, "cy"), text


def test_welsh_wish_to_talk_and_the_other_way():
    assert care.wants_a_person("Ffoniwch fi plis", "cy")
    assert care.wants_a_person("Ga i siarad â rhywun?", "cy")
    assert care.wants_a_person("Dwi'n teimlo'n unig", "cy")
    assert not care.wants_a_person("Dim angen siarad, diolch", "cy")
    assert not care.wants_a_person("Peidiwch ffoniwch fi", "cy")
    assert not care.wants_a_person("Galla i helpu ddydd Sadwrn", "cy")


def test_welsh_words_for_a_broker():
    assert care.for_a_broker("Gadewch lonydd i mi!", "cy")
    assert care.for_a_broker("dim mwy o negeseuon plis", "cy")
    assert not care.for_a_broker("Mae gen i neges am y clwb cinio", "cy")


@pytest.mark.parametrize(("text", "kind"), [
    ("Diolch yn fawr!", care.THANKS),
    ("diolch o galon xx", care.THANKS),
    ("iawn diolch", care.THANKS),
    ("Grêt 👍", care.ACKNOWLEDGEMENT),
    ("gret", care.ACKNOWLEDGEMENT),  # without the circumflex
    ("nos da", care.ACKNOWLEDGEMENT),
])
def test_welsh_small_talk(text, kind):
    assert care.small_talk(text, "cy") == kind


@pytest.mark.parametrize("text", [
    "diolch, ond dwi ddim yn gallu dod",
    "unwaith eto",  # fillers alone are not small talk
    "iawn 😢",
])
def test_welsh_texts_that_are_more_than_small_talk(text):
    assert care.small_talk(text, "cy") is None
