"""The words that come after a command, in each language the bank texts in (issue 11):
LEAVE's confirming word, GIVE's fund, AWAY's lengths and dates, the hour units after DONE's
number, needs written as sentences, and a wish to talk in English from any member. The words
are catalogue entries (``word_*``) and phrase lists, so the tests read them from there."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from app.care import away
from conversations import State, care, catalogue, forgiving, step
from conversations import words as after
from conversations.commands import parse
from conversations.machine import (
    LEAVE_QUESTION,
    Facts,
    Give,
    GoAway,
    Join,
    Leave,
    MemberFacts,
    ReachPerson,
    ReportHours,
    SetLanguage,
    SetProfile,
)
from ledger.models import Member
from tests.helpers import join

LANGUAGES = ("bn", "so", "tr", "pl", "cy")
# Each language's LEAVE and its confirming word, as a member of it writes them.
LEAVE_NOW = {"bn": "LEAVE এখনই", "so": "KABAX HADDA", "tr": "AYRIL ŞİMDİ",
             "pl": "WYPISZ TERAZ", "cy": "GADAEL NAWR"}
FUND = {"bn": "ফান্ড", "so": "sanduuqa", "tr": "fon", "pl": "fundusz", "cy": "cronfa"}
HOURS = {"bn": "২ ঘণ্টা", "so": "2 saacadood", "tr": "2 saat", "pl": "2 godziny", "cy": "2 awr"}
LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # a Wednesday


def facts(language: str) -> Facts:
    return Facts(bank_name="Clapham Park Time Bank",
                 member=MemberFacts(id=1, name="Sam", status="active", language=language))


# --- the catalogue -------------------------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_has_every_word_and_each_is_marked_for_review(language):
    keys = [k for k in catalogue.english().entries if k.startswith("word_")]
    assert len(keys) == 9
    for key in keys:
        entry = catalogue.languages()[language].entries[key]
        assert catalogue.usable(language, key) is not None, key
        assert not entry.reviewed, key  # machine-drafted until a speaker has checked it
        assert after.own(key, language), key
    names = catalogue.languages()[language].entries["word_month_names"].forms[0]
    assert len(names.split(",")) == 12


@pytest.mark.parametrize("language", ["so", "tr", "pl", "cy"])
def test_the_texts_name_the_languages_own_words(language):
    texts = catalogue.languages()[language].entries
    leave_command = LEAVE_NOW[language].split()[0]
    assert LEAVE_NOW[language] in texts["leave_ask"].forms[0]
    assert parse(leave_command, language).name == "LEAVE"
    assert " NOW" not in texts["leave_ask"].forms[0]
    assert not re.search(r"\bFUND\b", texts["give_usage"].forms[0])
    assert FUND[language].upper() in texts["give_usage"].forms[0].upper()


# --- LEAVE and its confirming word ---------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_leave_is_confirmed_with_the_languages_word(language):
    text = LEAVE_NOW[language]
    assert parse(text, language).name == "LEAVE"
    outcome = step(State(question=LEAVE_QUESTION), facts(language), text)
    assert outcome.effects == [Leave()]
    # And the English words still work for everyone.
    assert step(State(question=LEAVE_QUESTION), facts(language), "LEAVE NOW").effects == [
        Leave()]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_confirming_word_alone_or_in_a_sentence_makes_nobody_leave(language):
    word = LEAVE_NOW[language].split()[1]
    command = LEAVE_NOW[language].split()[0]
    for text in (word, f"{word} {command}", f"{command} {word} please", f"{command} me {word}",
                 f"I will {command} {word}", f"{command}{word}"):
        outcome = step(State(question=LEAVE_QUESTION), facts(language), text)
        assert Leave() not in outcome.effects, text


def test_another_languages_confirming_word_does_not_confirm():
    # A Somali member's "LEAVE TERAZ" is not leaving: only their own word and English's.
    for language, other in (("so", "TERAZ"), ("pl", "HADDA"), ("cy", "ŞİMDİ"), ("tr", "NAWR")):
        assert parse(f"LEAVE {other}", language).name is None, (language, other)
        outcome = step(State(question=LEAVE_QUESTION), facts(language), f"LEAVE {other}")
        assert Leave() not in outcome.effects


@pytest.mark.every_language
def test_a_polish_member_leaves_by_text_with_teraz(make_phone, services):
    sam = join(make_phone("+447700900651"), "Sam")
    with services.db.writing() as session:
        session.execute(update(Member).where(Member.phone == sam.number).values(language="pl"))
    asked = sam.reply("WYPISZ")
    assert "WYPISZ TERAZ" in asked
    sam.text("WYPISZ TERAZ")
    with services.db.reading() as session:
        status = session.scalar(select(Member.status).where(Member.phone == sam.number))
    assert status == "left"


# --- GIVE 1 FUND -----------------------------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_give_to_the_fund_in_each_language(language):
    outcome = step(State(), facts(language), f"GIVE 1 {FUND[language]}")
    assert outcome.effects == [Give(60, "FUND")]
    # A member named like another language's fund word is still that member.
    other = "fundusz" if language != "pl" else "cronfa"
    assert step(State(), facts(language), f"GIVE 1 {other}").effects == [Give(60, other)]


@pytest.mark.every_language
def test_a_welsh_member_gives_to_the_fund_by_text(make_phone, services):
    sam = join(make_phone("+447700900652"), "Sam")
    sam.text("LANG Cymraeg")  # as a member chooses it, so every cache knows
    preview = sam.reply("RHOI 1 CRONFA")
    # The preview of a gift to the fund, not "who is Cronfa?".
    assert "i gronfa gymunedol" in preview and "IE " in preview, preview


# The way out of a language one cannot read is one's own word for LANG.
OWN_LANG = {"bn": "ভাষা", "so": "LUQAD", "tr": "DİL", "pl": "JĘZYK", "cy": "IAITH"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_languages_word_for_lang_works_from_any_language(language):
    for reading in ("en", *LANGUAGES):
        command = parse(f"{OWN_LANG[language]} 3", reading)
        assert (command.name, command.args) == ("LANG", "3"), (language, reading)


@pytest.mark.parametrize("text", ["Dil needs a lift to the hospital on Saturday",
                                  "Bhasa can you help me move a wardrobe", "Iaith is my cat"])
def test_a_name_like_a_word_for_lang_starting_a_sentence_is_words(text):
    # Dil is a name: the sentence goes to a broker as before, not answered with the languages.
    assert parse(text, "en").name is None


def test_luqad_interrupts_a_question_as_lang_does():
    # Right after JOIN is when a member left in English is most lost.
    outcome = step(State(question="skills"), facts("en"), "LUQAD")
    assert not any(isinstance(effect, SetProfile) for effect in outcome.effects)
    assert "choices" in outcome.replies[0].params


@pytest.mark.every_language
def test_a_member_left_in_english_finds_somali_with_luqad(make_phone, services):
    sam = join(make_phone("+447700900653"), "Sam")
    assert "Soomaali" in sam.reply("LUQAD")
    sam.text("LUQAD Soomaali")
    with services.db.reading() as session:
        assert session.scalar(select(Member.language).where(Member.phone == sam.number)) == "so"


# --- JOIN in one's own language --------------------------------------------------------------

SIX = ("en", "bn", "so", "tr", "pl", "cy")
OWN_JOIN = {"bn": "যোগদান", "so": "KUBIIR", "tr": "KATIL", "pl": "DOŁĄCZ", "cy": "YMUNO"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_joining_with_ones_own_word_for_join_chooses_that_language(language):
    outcome = step(State(), Facts(bank_name="Lambeth Time Bank", languages=SIX),
                   f"{OWN_JOIN[language]} Sam")
    assert outcome.effects == [Join("Sam"), SetLanguage(language)]
    assert [r.key for r in outcome.replies] == ["joined"]  # then the questions, in it


@pytest.mark.parametrize("words", ["JOIN Sam", "join sam", "Joinn Sam"])
def test_joining_in_english_words_still_asks_which_language(words):
    outcome = step(State(), Facts(bank_name="Lambeth Time Bank", languages=SIX), words)
    assert outcome.effects == [Join("Sam")]
    assert [r.key for r in outcome.replies] == ["join_language"]


def test_a_language_the_bank_does_not_offer_is_not_chosen_by_its_join_word():
    outcome = step(State(), Facts(bank_name="Lambeth Time Bank", languages=("en", "bn")),
                   "KUBIIR Sam")
    assert outcome.effects == [Join("Sam")]  # Somali is not offered: which language?
    assert [r.key for r in outcome.replies] == ["join_language"]
    alone = step(State(), Facts(bank_name="Lambeth Time Bank"), "KUBIIR Sam")
    assert alone.effects == [Join("Sam")] and alone.replies[0].key == "joined"


# --- DONE 2 <unit> Name ----------------------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_the_hour_unit_is_not_part_of_the_name(language):
    outcome = step(State(), facts(language), f"DONE {HOURS[language]} Ana")
    assert outcome.effects == [ReportHours(120, "Ana")]
    assert step(State(), facts(language), "DONE 2 hours Ana").effects == [ReportHours(120, "Ana")]


def test_a_name_that_is_not_a_unit_stays_whole():
    assert step(State(), facts("pl"), "DONE 2 Ana Maria").effects == [
        ReportHours(120, "Ana Maria")]
    # Another language's unit is a word of the name: Turkish "saat" is not Polish.
    assert step(State(), facts("pl"), "DONE 2 Saat").effects == [ReportHours(120, "Saat")]


# --- AWAY: lengths and dates -----------------------------------------------------------------

def back_on(words: str) -> str:
    bank = SimpleNamespace(timezone="Europe/London")
    until = away.read_until(words, bank, NOW)  # type: ignore[arg-type]
    assert until is not None
    return until.astimezone(LONDON).date().isoformat()


@pytest.mark.parametrize(("words", "day"), [
    ("3 weeks", "2026-12-23"), ("until 24.12", "2026-12-24"), ("24.12.", "2026-12-24"),
    ("till 24/12", "2026-12-24"),
    ("৩ সপ্তাহ", "2026-12-23"), ("10 দিন", "2026-12-12"), ("২৪ ডিসেম্বর পর্যন্ত", "2026-12-24"),
    ("24/12 porjonto", "2026-12-24"), ("৩ সপ্তাহের জন্য", "2026-12-23"), ("2 মাস", "2027-01-31"),
    ("3 toddobaad", "2026-12-23"), ("10 maalmood", "2026-12-12"), ("2 bilood", "2027-01-31"),
    ("ilaa 24 Diseembar", "2026-12-24"), ("ilaa 24.12", "2026-12-24"),
    ("3 hafta", "2026-12-23"), ("10 gün", "2026-12-12"), ("2 ay", "2027-01-31"),
    ("24 Aralık'a kadar", "2026-12-24"), ("24.12'ye kadar", "2026-12-24"),
    ("2 haftalığına", "2026-12-16"),
    ("3 tygodnie", "2026-12-23"), ("10 dni", "2026-12-12"), ("2 miesiące", "2027-01-31"),
    ("na 3 tygodnie", "2026-12-23"), ("do 24 grudnia", "2026-12-24"), ("do 24.12", "2026-12-24"),
    ("do 5 stycznia", "2027-01-05"),
    ("3 wythnos", "2026-12-23"), ("10 diwrnod", "2026-12-12"), ("2 fis", "2027-01-31"),
    ("tan 24 Rhagfyr", "2026-12-24"), ("tan 24.12", "2026-12-24"), ("am 3 wythnos", "2026-12-23"),
])
def test_away_lengths_and_dates_in_each_language(words, day):
    assert back_on(words) == day


@pytest.mark.parametrize("words", ["3 parsecs", "do 2 grudnia", "tan 31.02", "400 dni",
                                   "0 hafta", "kadar", "teraz", "3 saat", "24.13"])
def test_away_words_it_cannot_read_are_refused(words):
    bank = SimpleNamespace(timezone="Europe/London")
    with pytest.raises(away.AwayWords):
        away.read_until(words, bank, NOW)  # type: ignore[arg-type]


# --- needs written as sentences --------------------------------------------------------------

@pytest.mark.parametrize(("language", "text"), [
    ("bn", "কেউ কি আমাকে শুক্রবার বাজার করতে সাহায্য করতে পারবেন?"),
    ("bn", "শুক্রবার বাজার করতে আমার সাহায্য দরকার"),
    ("bn", "keu ki amake shukrobar bazar korte sahajjo korte parben"),
    ("so", "Qof ma i caawin karaa dukaanka jimcaha?"),
    ("so", "Waxaan u baahanahay caawimaad dukaanka jimcaha"),
    ("pl", "Czy ktoś może mi pomóc z zakupami w piątek?"),
    ("pl", "czy ktos moze mi pomoc z zakupami w piatek"),
    ("tr", "Biri cuma günü alışverişime yardım edebilir mi?"),
    ("cy", "All rhywun fy helpu i siopa ddydd Gwener?"),
    ("pl", "can someone help me with my shopping on friday"),  # English, from anyone
])
def test_a_need_written_as_a_sentence_in_each_language(language, text):
    assert forgiving.looks_like_need(text, language)
    outcome = step(State(), facts(language), text)
    assert outcome.state.confirm is not None  # asked before anything is posted
    assert outcome.effects == []


@pytest.mark.parametrize(("language", "text"), [
    ("bn", "আমি আনাকে শুক্রবার বাজারে সাহায্য করেছি"),  # I helped Ana
    ("bn", "কেউ কি আমার ব্যালেন্স বলতে পারবেন"),  # can someone tell me my balance
    ("so", "Qof ayaa i caawiyay maanta aad baad u mahadsantahay"),
    ("so", "Qof ma ii sheegi karaa haraagayga saacadaha"),
    ("pl", "Pomogłam Ani z zakupami w piątek"),
    ("pl", "Czy ktoś wie ile mam godzin teraz"),
    ("tr", "Biri bana cuma günü yardım etti teşekkürler"),
    ("cy", "Diolch am yr help ddydd Gwener diwethaf"),
])
def test_an_everyday_sentence_is_not_a_need(language, text):
    assert not forgiving.looks_like_need(text, language)


def test_need_phrases_are_data_marked_for_review():
    from importlib import resources

    for language in LANGUAGES:
        text = (resources.files("conversations") / "phrases" / f"{language}.toml").read_text(
            encoding="utf-8")
        head, _, table = text.partition("[need]")
        assert table and "status: machine-drafted" in head.rsplit("\n\n", 1)[-1], language


# --- TALK in English from any member ---------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_a_wish_to_talk_in_english_from_a_member_of_another_language(language):
    assert care.wants_a_person("Can someone call me please", language)
    assert not care.wants_a_person("please dont call me", language)
    outcome = step(State(), facts(language), "Can someone call me please")
    assert outcome.effects == [ReachPerson(distress=False)]
    assert outcome.route == care.TALK



# The examples in the AWAY texts, as written in each language (not "AWAY 3 weeks"), are read
# by the bank: the command, then the words after it through read_until.
AWAY_EXAMPLES = {
    "pl": {"away_usage": ["3 tygodnie", "do 24 grudnia"],
           "away_back_tomorrow": ["2 tygodnie"], "back_not_away": ["2 tygodnie"]},
    "cy": {"away_usage": ["3 wythnos", "tan 24 Rhagfyr"],
           "away_back_tomorrow": ["2 wythnos"], "back_not_away": ["2 wythnos"]},
}


@pytest.mark.parametrize("language", sorted(AWAY_EXAMPLES))
def test_the_away_examples_in_the_texts_are_read(language):
    entries = catalogue.languages()[language].entries
    away_word = entries["command_away"].forms[0].split(",")[0].strip()
    for key, examples in AWAY_EXAMPLES[language].items():
        text = catalogue.usable(language, key)
        assert text is not None, key
        form = text.forms[0]
        assert not re.search(r"\b(AWAY|weeks?|until|Dec)\b", form), (key, form)
        for example in examples:
            written = f"{away_word} {example}"
            assert written in form, (key, written, form)
            command = parse(written, language)
            assert (command.name, command.args) == ("AWAY", example)
            assert back_on(example) > NOW.date().isoformat(), written
            assert GoAway(example) in step(State(), facts(language), written).effects
