"""Matching in the bank's six languages (English, Bengali, Somali, Turkish, Polish, Welsh):
within each (stems, synonyms, words typed without special letters) and across them through
the categories they share, so a Bengali need finds an English-speaking helper. Members'
words are matched, never translated: an ask shows the need as its member wrote it."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.matching import Helper, MatchIndex, Need, Vocabulary, words
from ledger.vocabulary import LANGUAGES, load, tokens
from tests.helpers import join


def ranked(helpers: list[Helper], text: str, area: str | None = None, **kwargs: object
           ) -> list[int]:
    index = MatchIndex.build(helpers)
    return [c.member_id for c in index.rank(Need(99, text, area), **kwargs)]  # type: ignore[arg-type]


def categories(text: str) -> set[str]:
    return {t for t in Vocabulary().terms(text) if t[0] == "#"}


# --- the data files ----------------------------------------------------------------------

def test_every_language_names_the_same_categories_in_one_word_entries():
    english = set(load("en").categories)
    for code in LANGUAGES:
        language = load(code)
        assert set(language.categories) == english, code
        for entries in language.categories.values():
            assert entries, code
            assert all(len(tokens(w)) == 1 for w in entries)  # the loader checks it too


def test_every_language_file_says_it_needs_a_speakers_review():
    from importlib import resources

    for code in LANGUAGES:
        text = resources.files("ledger.vocabulary").joinpath(f"{code}.toml").read_text()
        assert "machine-drafted, needs review by a speaker" in "".join(text.splitlines()[:5])


# --- words and tokens --------------------------------------------------------------------

def test_a_bengali_word_is_one_word_with_its_vowel_signs():
    assert tokens("বাজার কেনাকাটা") == ["বাজার", "কেনাকাটা"]
    assert tokens("হাসপাতালে যেতে হবে") == ["হাসপাতালে", "যেতে", "হবে"]
    # Decomposed input (ya + nukta written apart, as some keyboards send it) is the same word
    # once normalised.
    decomposed = unicodedata.normalize("NFD", "কেনাকাটায়")
    assert tokens(decomposed) == tokens("কেনাকাটায়")
    # Bengali digits are not words; joiners inside a word do not cut it.
    assert tokens("৩টা বাজার") == ["টা", "বাজার"]
    assert tokens("র\u200dয") == ["রয"]


def test_stop_words_of_every_language_say_nothing():
    assert words("আমার বাজার করতে সাহায্য দরকার") == ["বাজার"]
    assert words("Potrzebuję pomocy z zakupami") == ["zakupami"]
    assert words("Waxaan u baahanahay caawin dukaanka") == ["dukaanka"]
    assert words("Bana bahçe işleri için yardım lazım") == ["bahçe"]
    assert words("Mae angen help arna i gyda siopa") == ["arna", "siopa"]


def test_turkish_capital_dotted_i_and_accents_typed_or_not():
    assert categories("İngilizce ders") == {"#language", "#teaching"}
    assert Vocabulary().terms("alışveriş") == Vocabulary().terms("alisveris")
    assert Vocabulary().terms("zakupów") == Vocabulary().terms("zakupow")


# --- within each language: stems and synonyms --------------------------------------------

@pytest.mark.parametrize(("need", "offer"), [
    # Bengali: case endings, and Bengali written in Latin letters.
    ("বাজারে যেতে হবে", "বাজার করতে পারি"),
    ("কেনাকাটায় সাহায্য", "দোকান থেকে জিনিস এনে দিতে পারি"),
    ("bazar korte hobe", "kenakata"),
    # Somali: definite endings, and two spellings of "car".
    ("Waxaan u baahanahay dukaanka", "iibsasho iyo dukaan"),
    ("gaadhi isbitaalka", "gaari"),
    # Turkish: case endings, with and without Turkish letters.
    ("bahçede yardım", "bahce isleri"),
    ("alisverise gitmek", "market alışverişi"),
    # Polish: case forms, with and without Polish letters.
    ("pomoc przy zakupach", "zakupy"),
    ("ogrodzie", "ogrod i trawnik"),
    # Welsh: mutations ("fy ngardd", "ei gwmni") and the verb ending ("garddio").
    ("help yn fy ngardd", "garddio"),
    ("angen cwmni", "sgwrs a phaned"),
    # English.
    ("help with my garden", "gardening"),
    ("a lift to the clinic", "driving"),
])
def test_within_each_language_stems_and_synonyms_find_the_helper(need, offer):
    helpers = [Helper(1, "Helper", offer), Helper(2, "Other", "knitting, piano")]
    assert ranked(helpers, need)[:1] == [1]


def test_a_word_in_no_category_still_finds_the_same_word():
    helpers = [Helper(1, "Ola", "skrzypce"), Helper(2, "Ana", "driving"),
               Helper(3, "Rumi", "সেতার"), Helper(4, "Val", "violins")]
    assert ranked(helpers, "lekcje skrzypce") == [1]
    assert ranked(helpers, "সেতার শিখতে চাই") == [3]
    assert ranked(helpers, "a violin teacher") == [4]


# --- across languages, through the categories --------------------------------------------

@pytest.mark.parametrize(("need", "offer"), [
    ("আমার বাজার করতে সাহায্য দরকার", "shopping"),          # Bengali need, English helper
    ("bazar korte hobe", "weekly shopping"),                  # Bengali in Latin letters
    ("গাড়িতে হাসপাতালে যেতে হবে", "lifts in my car"),
    ("Waxaan u baahanahay dukaanka", "zakupy"),               # Somali need, Polish helper
    ("carruurta ilaalin", "opieka nad dziećmi"),
    ("Mae angen help gyda siopa", "market alışverişi"),       # Welsh need, Turkish helper
    ("bahçe işleri", "garddio"),                              # Turkish need, Welsh helper
    ("psa na spacer", "dog walking"),                         # Polish need, English helper
    ("help with my computer", "কম্পিউটার"),                   # English need, Bengali helper
])
def test_across_languages_a_need_finds_a_helper_through_the_category(need, offer):
    helpers = [Helper(1, "Helper", offer), Helper(2, "Other", "knitting, piano")]
    assert ranked(helpers, need)[:1] == [1]


def test_a_helper_who_writes_two_languages_is_not_a_long_list():
    index = MatchIndex.build([Helper(1, "Ola", "zakupy, shopping, siopa, alışveriş, বাজার")])
    assert index.spread[1].categories == 1
    assert index.spread[1].focus == 1.0


def test_homographs_of_other_languages_are_no_stop_words_there():
    # "ci" is "to you" in Polish but a dog in Welsh; it is not dropped as a stop word.
    assert "#pets" in categories("mynd â'r ci am dro")


# --- an attacker: one word of every category in every language ---------------------------

EVERY_LANGUAGE = " ".join(
    entries[0] for code in LANGUAGES for entries in load(code).categories.values()
)


@pytest.mark.parametrize(("need", "focused"), [
    ("আমার বাজার করতে সাহায্য দরকার", "shopping"),
    ("Waxaan u baahanahay dukaanka", "zakupy, sklep"),
    ("bahçe işleri", "garddio"),
    ("help with my garden", "gardening, weeding, mowing"),
    ("a lift to the clinic", "driving"),
])
def test_a_list_of_every_category_in_every_language_does_not_outrank_a_focused_helper(
        need, focused):
    assert len(EVERY_LANGUAGE.split()) == 6 * 16
    helpers = [
        # The list shares the very word of the need and lives in its area, free every day.
        Helper(1, "Stu", EVERY_LANGUAGE, "Lambeth", "every day, mornings, afternoons"),
        Helper(2, "Fay", focused, "Brixton"),
    ]
    index = MatchIndex.build(helpers)
    first, *rest = index.rank(Need(99, need, "Lambeth"), limit=2)
    assert first.member_id == 2
    assert index.spread[1].categories == 16  # counted by category, not by language
    assert rest == [] or rest[0].score < first.score


# --- end to end: a Bengali need reaches an English-speaking helper ------------------------

def test_a_bengali_need_by_text_reaches_an_english_helpers_ask_as_written(make_phone, outbox):
    ana = join(make_phone("+447700900911"), "Ana", "shopping and errands", "Lambeth")
    sam = join(make_phone("+447700900912"), "Sam", "piano lessons", "Lambeth")
    rumi = join(make_phone("+447700900913"), "Rumi", area="Lambeth")
    need = "আমার বাজার করতে সাহায্য দরকার"
    rumi.text(f"NEED {need}")
    outbox.run_jobs()
    [ask] = outbox.to(ana.number)
    assert need in ask and ask.startswith("Rumi needs: ")  # the need as Rumi wrote it
    assert outbox.to(sam.number) == []


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x0985, max_codepoint=0x09D7,
                                      categories=("Lo", "Mn", "Mc")), min_size=1, max_size=12))
def test_a_word_of_bengali_letters_and_signs_is_never_cut(word):
    if unicodedata.category(word[0]).startswith("M"):
        word = "ক" + word  # a word starts with a letter
    assert tokens(word) == [unicodedata.normalize("NFC", word)]
