"""Members' words in their own language: the catalogue each translation adds, and the care
lists (conversations/phrases/<code>.toml) that read distress, a wish to talk, thanks.

Each language's tests carry its name (``_somali``, ``_turkish``, …): helpers translating
other languages add theirs beside these.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

from conversations import State, care, catalogue, step
from conversations.gsm import cheapest, segments
from conversations.machine import Facts, MemberFacts
from conversations.texts import hours_text, render
from tests.test_texts import MEMBER_VALUES, NAMES, values_for

# Words carriers and Twilio act on: never a command word in any language.
_CARRIER = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
            "START", "UNSTOP", "HELP", "INFO", "YES"}


def _command_words(code: str) -> dict[str, list[str]]:
    """Each command's words in the language: ``{"command_yes": ["HAA"], …}``."""
    language = catalogue.languages()[code]
    return {key: [w.strip().upper() for w in entry.forms[0].split(",") if w.strip()]
            for key, entry in language.entries.items() if key.startswith("command_")}


def _after_words(code: str) -> set[str]:
    """The language's words that follow a command (``word_now``: "HADDA"), which its texts
    name after the command ("KABAX HADDA")."""
    language = catalogue.languages()[code]
    return {w.strip().upper() for key, entry in language.entries.items()
            if key.startswith("word_") for w in entry.forms[0].split(",") if w.strip()}


def _over_budget(code: str) -> list[tuple[str, int, str]]:
    """Texts that cost more than 2 segments (3 for the long ones) with realistic values and
    the longer of the test names, as the bank would send them."""
    over = []
    for key in catalogue.english().entries:
        if key.startswith(("command_", "word_")):
            continue
        budget = 3 if key in MEMBER_VALUES else 2
        for name in NAMES:
            values = values_for(key, name=name, other=name)
            values.setdefault("count", 3)
            text = cheapest(render(key, code, **values))
            if segments(text) > budget:
                over.append((key, segments(text), text))
    return over


def _distress(text: str, code: str) -> bool:
    return care.is_distress(text, code)


# --- Somali --------------------------------------------------------------------------------

def test_the_somali_catalogue_is_complete_and_every_entry_is_usable_somali():
    language = catalogue.languages()["so"]
    assert language.name == "Soomaali"
    assert language.nplurals == 2
    problems = [f for f in catalogue.check()
                if f.language == "so" and f.problem != "machine-drafted, not yet reviewed"]
    assert problems == []
    for key in catalogue.english().entries:
        assert catalogue.usable("so", key) is not None, key


@pytest.mark.parametrize("word", ["Somali", "soomaali", "Af Soomaali", "SOMALI", "so"])
def test_a_member_can_name_somali_as_they_write_it_somali(word):
    assert catalogue.by_name(word) == "so"


def test_somali_texts_fit_their_segment_budget_somali():
    assert _over_budget("so") == []


def test_somali_hours_take_their_plural_and_the_text_is_somali_somali():
    assert render("hours", "so", n=1) == "1 saac"
    assert render("hours", "so", n=3) == "3 saacadood"
    text = render("confirm_ask", "so", other="Ana", hours=render("hours", "so", n=2),
                  what="beerta", ref=17)
    assert "HAA 17" in text and "MAYA 17" in text and "YES" not in text


def test_somali_command_words_are_one_each_and_never_a_carrier_word_somali():
    words = _command_words("so")
    assert set(words) == {k for k in catalogue.english().entries if k.startswith("command_")}
    flat = [w for ws in words.values() for w in ws]
    assert len(flat) == len(set(flat)), "a word used for two commands"
    assert not set(flat) & _CARRIER
    for w in flat:
        assert re.fullmatch(r"[A-Z]+", w), w  # one plain word, typed on any phone


def test_somali_texts_ask_for_the_somali_command_words_somali():
    words = _command_words("so")
    # Every capital word in a Somali text is a Somali command word, a carrier word the
    # English text has (START), or an argument the bank reads in English (NOW, FUND, RECORD's
    # example) — never the English command left untranslated.
    allowed = {"START", "NOW", "FUND"} | _after_words("so") | {
        w for ws in words.values() for w in ws}
    for key, entry in catalogue.languages()["so"].entries.items():
        if key.startswith(("command_", "word_")) or key in {"broker_new_member",
                                                             "broker_caps_bank"}:
            continue
        for form in entry.forms:
            for word in re.findall(r"\b[A-Z]{2,}\b", form):
                assert word in allowed, (key, word)


@pytest.mark.parametrize("text", [
    "Waxaan rabaa inaan dhinto",
    "waxan rabaa inan dhinto",
    "WAAN IS DILAYAA",
    "ma rabo inaan noolaado mar dambe",
    "Aad baan u niyad jabsanahay, rajo ma qabo",
    "kiniinno badan ayaan qaatay",
    "guriga ammaan kuma ihi",
    "Waan is gooyay xalay",
    # English from a Somali member is read too.
    "I want to die",
])
def test_somali_distress_is_recognised_somali(text):
    assert _distress(text, "so")


@pytest.mark.parametrize("text", [
    "Berri ma imaan karo, waan ka xumahay",  # I can't come tomorrow, sorry
    "Hooyaday way dhimatay sanad hore, waxaan rabaa inaan caawiyo dadka",
    "ma rabo nolosha magaalada, beerta ayaan jeclahay",
    "Waxaan rabaa inaan wax barto",  # I want to learn
    "Niyad wanaagsan",
    "BAAHI gaadiid rugta caafimaadka",
])
def test_everyday_somali_is_not_distress_somali(text):
    assert not _distress(text, "so")


def test_somali_wishes_to_talk_and_the_other_way_somali():
    assert care.wants_a_person("Fadlan ii soo wac", "so")
    assert care.wants_a_person("Waxaan rabaa inaan la hadlo qof", "so")
    assert care.wants_a_person("waan kelinimaysanahay", "so")
    assert not care.wants_a_person("Ha ii soo wicin fadlan", "so")
    assert not care.wants_a_person("Ha ii soo wac", "so")
    assert care.for_a_broker("iga daa", "so")


@pytest.mark.parametrize(("text", "kind"), [
    ("Mahadsanid walaal", care.THANKS), ("mahadsanid 🙏", care.THANKS),
    ("Haye", care.ACKNOWLEDGEMENT), ("waa hagaag", care.ACKNOWLEDGEMENT),
    ("Ilaahay ha ku barakeeyo", care.THANKS), ("mahadsanid, berri ma imaan karo", None),
])
def test_somali_small_talk_somali(text, kind):
    assert care.small_talk(text, "so") == kind


def test_a_somali_member_in_distress_reaches_a_person_not_a_menu_somali():
    facts = Facts(bank_name="Clapham Park Time Bank",
                  member=MemberFacts(id=1, name="Xaawo", status="active", language="so"))
    outcome = step(State(), facts, "waan is dilayaa")
    assert outcome.route == care.DISTRESS
    assert outcome.replies == []


# --- Turkish -------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["İSTEMİYORUM", "istemiyorum", "ISTEMIYORUM", "ıstemıyorum",
                                   "İstemiyorum"])
def test_the_turkish_dotted_and_dotless_i_read_alike_turkish(typed):
    # Python's lower() makes "İ" an "i" and a combining dot, which would split the word.
    assert care.words_of(typed) == "istemiyorum"
    assert care.words_of("YALNIZIM") == care.words_of("yalnızım") == "yalnizim"


_PLAIN = str.maketrans({"Ç": "C", "Ş": "S", "Ğ": "G", "Ö": "O", "Ü": "U", "İ": "I"})


def test_the_turkish_catalogue_is_complete_and_every_entry_is_usable_turkish():
    language = catalogue.languages()["tr"]
    assert language.name == "Türkçe"
    assert language.nplurals == 2
    problems = [f for f in catalogue.check()
                if f.language == "tr" and f.problem != "machine-drafted, not yet reviewed"]
    assert problems == []
    for key in catalogue.english().entries:
        assert catalogue.usable("tr", key) is not None, key


@pytest.mark.parametrize("word", ["Turkish", "Türkçe", "TÜRKÇE", "turkce", "Turk", "tr"])
def test_a_member_can_name_turkish_as_they_write_it_turkish(word):
    assert catalogue.by_name(word) == "tr"


def test_turkish_texts_fit_their_segment_budget_turkish():
    assert _over_budget("tr") == []


def test_turkish_texts_are_sent_in_plain_letters_when_that_is_cheaper_turkish():
    text = cheapest(render("rejoined", "tr", bank="Clapham Park Time Bank", name="Ayşe"))
    assert segments(text) == 1
    assert "BAKIYE" in text and "ş" not in text and "ı" not in text


def test_turkish_hours_have_one_form_and_a_decimal_comma_turkish():
    assert render("hours", "tr", n=1) == "1 saat"
    assert render("hours", "tr", n=3) == "3 saat"
    assert hours_text(765, "tr") == "12,75 saat"
    text = render("confirm_ask", "tr", other="Ana", hours=hours_text(120, "tr"), what="bahçe",
                  ref=17)
    assert "EVET 17" in text and "HAYIR 17" in text and "YES" not in text


def test_turkish_command_words_are_one_each_and_never_a_carrier_word_turkish():
    words = _command_words("tr")
    assert set(words) == {k for k in catalogue.english().entries if k.startswith("command_")}
    flat = [w for ws in words.values() for w in ws]
    assert len(flat) == len(set(flat)), "a word used for two commands"
    assert not set(flat) & _CARRIER
    for w in flat:
        assert re.fullmatch(r"[A-ZÇĞİÖŞÜ]+", w), w


def test_every_turkish_command_word_works_however_the_member_types_its_letters_turkish():
    # As the bank's own text shows it (cheapest: "İHTİYAÇ" → "IHTIYAÇ"), as a phone without
    # Turkish letters types it ("IHTIYAC"), and as upper() reads a lower-case "ihtiyaç"
    # ("IHTIYAÇ"): every spelling is listed, or is the English word that always works.
    english = {e.forms[0] for k, e in catalogue.english().entries.items()
               if k.startswith("command_")}
    for key, ws in _command_words("tr").items():
        for w in ws:
            for spelling in (cheapest(w), w.translate(_PLAIN), w.replace("İ", "I")):
                assert spelling in ws or spelling in english, (key, w, spelling)


def test_turkish_texts_ask_for_the_turkish_command_words_turkish():
    words = _command_words("tr")
    allowed = {"START", "NOW", "FUND"} | _after_words("tr") | {
        w for ws in words.values() for w in ws}
    for key, entry in catalogue.languages()["tr"].entries.items():
        if key.startswith(("command_", "word_")) or key in {"broker_new_member",
                                                             "broker_caps_bank"}:
            continue
        for form in entry.forms:
            for word in re.findall(r"\b[A-ZÇĞİÖŞÜ]{2,}\b", form):
                assert word in allowed, (key, word)


@pytest.mark.parametrize("text", [
    "Ölmek istiyorum",
    "ÖLMEK İSTİYORUM",
    "olmek istiyorum",
    "YAŞAMAK İSTEMİYORUM",
    "yasamak istemiyorum artik",
    "Yaşamak ıstemıyorum",
    "Kendimi öldüreceğim",
    "kendime zarar verdim dün gece",
    "Artık dayanamıyorum, umudum kalmadı",
    "çok fazla hap içtim",
    "evde güvende değilim",
    "intihar",
    "I can't go on",
])
def test_turkish_distress_is_recognised_however_it_is_typed_turkish(text):
    assert _distress(text, "tr")


@pytest.mark.parametrize("text", [
    "Salı günü gelemiyorum, kusura bakmayın",
    "Bahçede yardım lazım",
    "Dün intihar saldırısı haberini gördünüz mü?",
    "Pazartesi yorgunluktan ölüyordum haha",
    "Hayatımda ilk kez bahçe işi yaptım",
    "İYİ GÜNLER, İHTİYAÇ alışveriş",
])
def test_everyday_turkish_is_not_distress_turkish(text):
    assert not _distress(text, "tr")


def test_turkish_wishes_to_talk_and_the_other_way_turkish():
    assert care.wants_a_person("Beni arayın lütfen", "tr")
    assert care.wants_a_person("BENİ ARAYIN", "tr")
    assert care.wants_a_person("biriyle konusmak istiyorum", "tr")
    assert care.wants_a_person("Çok yalnızım", "tr")
    assert not care.wants_a_person("Beni aramayın", "tr")
    assert not care.wants_a_person("Hayır, beni arayın demedim", "tr")
    assert care.for_a_broker("Beni rahat bırakın", "tr")
    assert care.for_a_broker("BENİ RAHAT BIRAKIN", "tr")


@pytest.mark.parametrize(("text", "kind"), [
    ("Çok teşekkürler abla", care.THANKS), ("TEŞEKKÜRLER", care.THANKS),
    ("tesekkur ederim 🙏", care.THANKS), ("sağ olun", care.THANKS),
    ("Tamam", care.ACKNOWLEDGEMENT), ("tmm 👍", care.ACKNOWLEDGEMENT),
    ("İyi geceler", care.ACKNOWLEDGEMENT), ("iyi değilim", None),
])
def test_turkish_small_talk_turkish(text, kind):
    assert care.small_talk(text, "tr") == kind


def test_a_turkish_member_in_distress_reaches_a_person_not_a_menu_turkish():
    facts = Facts(bank_name="Clapham Park Time Bank",
                  member=MemberFacts(id=1, name="Ayşe", status="active", language="tr"))
    outcome = step(State(), facts, "YAŞAMAK İSTEMİYORUM")
    assert outcome.route == care.DISTRESS
    assert outcome.replies == []


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


# --- Bengali (bn) ----------------------------------------------------------------------

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
