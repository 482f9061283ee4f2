"""Finding members who can help with a need: by what they offer, where they live, when they
are free, and fairly (the same helpers are not asked again and again).

Pure ranking over facts the caller loads; no I/O. Words are compared by stems, by the
categories time banks use ("lift" finds "driving", "computer" finds "IT help"), and with
tolerance for typos. The categories' words are data, one file per language the bank knows
(``ledger/vocabulary/``: English, Bengali, Somali, Turkish, Polish, Welsh), extendable per
bank; a word is tried against every language, so a Bengali need ("বাজার") finds an English
helper ("shopping") through the category they share. Members' words are never translated.
Links count as no words. Day words (availability) are English only for now.

A helper whose offers are a long list of unrelated words (every skill there is, to be asked
about every need) fits any one need less: their score is scaled down by how many unrelated
things they list, so a gardener who lists three gardening words comes before them.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from ledger.links import without_links
from ledger.vocabulary import LANGUAGES, Language, fold, tokens
from ledger.vocabulary import languages as vocabulary_languages
from ledger.vocabulary import load as load_language

# Category → the English words members use for it (``ledger/vocabulary/en.toml``; the other
# languages' files map the same categories to their own words).
VOCABULARY: dict[str, tuple[str, ...]] = dict(load_language("en").categories)
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
        "weekday", "weekdays", "weekend", "weekends", "morning", "mornings", "afternoon",
        "afternoons", "evening", "evenings")
TYPO_SCORE = 85  # rapidfuzz ratio at which a word counts as a misspelling of another
# A helper may list this many unrelated things (a category of the vocabulary; a word in none
# counts half, as it fits only needs with that very word), in this many different words, at
# full weight; past either, their score is scaled down in proportion.
FOCUSED_TOPICS = 8
FOCUSED_WORDS = 20


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """An English stem, folded: "gardening" → "garden", "lifts" → "lift" (what a word in no
    category, and day words, are compared by)."""
    return _ENGLISH.key(word)


_ENGLISH = load_language("en")
# Words that say nothing about the help in any language, unless another language has them
# as a word of a category (a word is tried against every language).
_STOP = frozenset().union(*(language.stop_words for language in vocabulary_languages())) - {
    fold(word) for language in vocabulary_languages()
    for entries in language.categories.values() for word in entries}


def words(text: str | None) -> list[str]:
    """The words of ``text`` (NFC, lower case, whole Bengali words), stop words of every
    language left out."""
    return [w for w in tokens(text) if (w if w.isascii() else fold(w)) not in _STOP]


def _bengali(word: str) -> bool:
    return "\u0980" <= word[0] <= "\u09ff"


def _fallback_key(word: str) -> str:
    """What a word no language's vocabulary knows is compared by: its English stem, or its
    Bengali one if it is written in Bengali script (so the same word still finds itself)."""
    if _bengali(word):
        return load_language("bn").key(word)
    return stem(word)


def _typo_of(word: str, known: list[str]) -> str | None:
    """The vocabulary word ``word`` is a misspelling of, if any. With six languages' words
    to be near, a plain word of one ("time", "been") is often one letter from a word of
    another ("çim", "beer"): a typo keeps the first letter, and a short word's typo is not a
    changed last letter (that is most often another word)."""
    if len(word) <= 6:  # short words: one letter wrong, missing, extra or swapped
        for close, _distance, _ in process.extract(word, known, scorer=OSA.distance,
                                                   score_cutoff=1, limit=8):
            if close[0] == word[0] and len(close) >= 3 and not (
                    len(close) == len(word) and close[:-1] == word[:-1]):
                return str(close)
        return None
    similar = process.extractOne(word, known, scorer=fuzz.ratio, score_cutoff=TYPO_SCORE)
    if similar is not None and similar[0][0] == word[0]:
        return str(similar[0])
    return None


# Key → the key of the word as written in the vocabulary (so that "zakupow", typed without
# Polish letters, is the same word as "zakupów") and the categories it speaks of.
_Table = dict[str, tuple[str, frozenset[str]]]


@lru_cache(maxsize=32)
def _tables(codes: tuple[str, ...], extras: tuple[tuple[str, tuple[str, ...]], ...]
            ) -> tuple[tuple[Language, ...], tuple[tuple[Language, _Table], ...],
                       dict[str, frozenset[str]], dict[str, tuple[str, frozenset[str]]]]:
    """Each language's words, and the categories of every key of every language, with a
    bank's own words (``extras``) in every language. Made once per set of words: stemming
    them all takes a while."""
    every: dict[str, set[str]] = defaultdict(set)
    tables: list[tuple[Language, _Table]] = []
    for language in map(load_language, codes):
        canonical: dict[str, str] = {}
        found: dict[str, set[str]] = defaultdict(set)
        entries: dict[str, list[str]] = {k: list(v) for k, v in language.categories.items()}
        for category, more in extras:
            entries.setdefault(category, []).extend(w for m in more for w in tokens(m))
        for category, vocabulary in entries.items():
            for word in vocabulary:
                written = language.key(word.lower())
                for key in language.keys(word.lower()):
                    canonical.setdefault(key, written)
                    found[key].add(category)
                    every[key].add(category)
        tables.append((language, {k: (canonical[k], frozenset(v)) for k, v in found.items()}))
    return (tuple(language for language, _ in tables), tuple(tables),
            {k: frozenset(v) for k, v in every.items()}, {})


class Vocabulary:
    """Words to categories, in every language the bank knows, with stems; a bank may add
    its own words (to every language: a bank's word is looked for however it is written).

    A word is tried against each language's vocabulary, each with its own stemming, and
    speaks of every category any of them finds it in: a Bengali "বাজার" and an English
    "shopping" both speak of ``#shopping``. The word itself is compared by one key, the stem
    of the first language (``ledger.vocabulary.LANGUAGES``) that knows it, else by
    ``_fallback_key``."""

    CACHE_WORDS = 100_000  # words read and kept (most members write the same few words)

    def __init__(self, extra: Mapping[str, Iterable[str]] | None = None,
                 languages: Iterable[str] = LANGUAGES) -> None:
        extras = tuple(sorted((category, tuple(more)) for category, more in (extra or {}).items()))
        # The words read so far are kept with the tables, for every vocabulary of the same
        # words: an index built anew reads most words from there.
        self.languages, self._tables, categories, self._read = _tables(tuple(languages),
                                                                       extras)
        self.categories: Mapping[str, frozenset[str]] = categories
        self.known = list(categories)
        # A short word is mended only to a word of its own script's first language (English,
        # or Bengali): one letter from some word of six languages is too many words.
        own = {code: [key for language, table in self._tables if language.code == code
                      for key in table] for code in ("en", "bn")}
        self._known_short = own

    def _mend(self, root: str) -> str:
        if len(root) <= 6:
            short = self._known_short["bn" if _bengali(root) else "en"]
            return _typo_of(root, short) or root
        return _typo_of(root, self.known) or root

    def read(self, word: str) -> tuple[str, frozenset[str]]:
        """The key ``word`` is compared by and the categories it speaks of, in any language
        (a typo mended against every language's words)."""
        kept = self._read.get(word)
        if kept is not None:
            return kept
        key: str | None = None
        categories: set[str] = set()
        for language, table in self._tables:
            for variant in language.variants(word):
                found = table.get(language.key(variant))
                if found:
                    key = key or found[0]
                    categories.update(found[1])
                    break
        if key is None:
            key = _fallback_key(word)
            if len(word) >= 4:
                key = self._mend(key)
                categories.update(self.categories.get(key, ()))
        if len(self._read) >= self.CACHE_WORDS:
            self._read.clear()
        self._read[word] = kept = (key, frozenset(categories))
        return kept

    def terms(self, text: str | None) -> set[str]:
        """The stems and categories a text speaks of (typos mended against the vocabulary);
        the words of a link are not among them."""
        found: set[str] = set()
        for word in words(without_links(text)):
            key, categories = self.read(word)
            found.add(key)
            found.update(f"#{category}" for category in categories)
        return found


@dataclass(frozen=True)
class Helper:
    """What matching knows of a possible helper (loaded by the caller)."""

    member_id: int
    name: str
    offers: str = ""
    area: str | None = None
    availability: str | None = None
    recent_asks: int = 0
    # Asked about as many needs today as the bank allows: waves pass them by until tomorrow.
    asked_enough_today: bool = False


@dataclass(frozen=True)
class Need:
    member_id: int
    text: str
    area: str | None = None


@dataclass(frozen=True)
class Candidate:
    """A helper the bank could ask, with the reasons a broker can see."""

    member_id: int
    score: float
    reasons: tuple[str, ...]


_DAY_STEMS = frozenset(stem(d) for d in DAYS)


@dataclass(frozen=True)
class Spread:
    """How much a helper lists: different words, the categories they fall in, and the words
    in none."""

    words: int
    categories: int
    loose: int

    @property
    def focus(self) -> float:
        """1, or less for a long list of unrelated things: what their score is scaled by."""
        unrelated = self.categories + self.loose / 2
        return (min(1.0, FOCUSED_TOPICS / max(1.0, unrelated))
                * min(1.0, FOCUSED_WORDS / max(1, self.words)))


@dataclass
class MatchIndex:
    """Helpers' terms, places and free times, computed once, and an inverted index from term
    to helpers, so that ranking a need touches only the helpers who could fit it.

    Built from helpers' profiles, it can be kept between needs (``ledger.match_cache``): how
    often each was asked lately changes with every wave, so :meth:`rank` takes that as
    ``recent`` rather than from the profiles."""

    vocabulary: Vocabulary
    helpers: dict[int, Helper] = field(default_factory=dict)
    terms: dict[int, frozenset[str]] = field(default_factory=dict)
    places: dict[int, str] = field(default_factory=dict)
    free: dict[int, frozenset[str]] = field(default_factory=dict)
    spread: dict[int, Spread] = field(default_factory=dict)
    focus: dict[int, float] = field(default_factory=dict)
    by_term: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    @classmethod
    def build(cls, helpers: Iterable[Helper], vocabulary: Vocabulary | None = None
              ) -> MatchIndex:
        index = cls(vocabulary or Vocabulary())
        for helper in helpers:
            index.add(helper)
        return index

    def refreshed(self, helpers: Iterable[Helper]) -> MatchIndex:
        """A new index of ``helpers``, reusing what this one worked out for every helper whose
        offers are unchanged (reading offers, typos mended, is the costly part)."""
        index = MatchIndex(self.vocabulary)
        for helper in helpers:
            member_id = helper.member_id
            old = self.helpers.get(member_id)
            if old is not None and old.offers == helper.offers:
                index._put(helper, self.terms[member_id], self.spread[member_id])
            else:
                index.add(helper)
        return index

    def add(self, helper: Helper) -> None:
        terms = frozenset(self.vocabulary.terms(helper.offers))
        spread = Spread(
            words=sum(1 for t in terms if t[0] != "#"),
            categories=sum(1 for t in terms if t[0] == "#"),
            loose=sum(1 for t in terms if t[0] != "#" and t not in self.vocabulary.categories),
        )
        self._put(helper, terms, spread)

    def _put(self, helper: Helper, terms: frozenset[str], spread: Spread) -> None:
        member_id = helper.member_id
        self.helpers[member_id] = helper
        self.terms[member_id] = terms
        self.places[member_id] = _place(helper.area)
        self.free[member_id] = frozenset(
            stem(w) for w in words(helper.availability) if stem(w) in _DAY_STEMS
        )
        self.spread[member_id] = spread
        self.focus[member_id] = spread.focus
        for term in terms:
            self.by_term[term].add(member_id)

    def rank(self, need: Need, *, limit: int = 3, exclude: Iterable[int] = (),
             recent: Mapping[int, int] | None = None) -> list[Candidate]:
        """The best ``limit`` helpers for ``need``: only those whose offers fit it at all,
        then by how well (less for a long list of unrelated offers), same area first, free
        when asked, and fewest recent asks (``recent``: asks lately by member, when the
        index's profiles do not carry them).

        A helper's score is at most what the terms they share with the need are worth, plus
        the area and free-time bonuses; helpers are scored in tiers by that worth, best
        first, and the tiers that cannot reach the ``limit``-th best score so far are never
        scored: the answer is the same as scoring everyone."""
        wanted = self.vocabulary.terms(need.text)
        if not wanted or limit <= 0:
            return []
        helpers = self.helpers
        asked_lately = (recent.get if recent is not None
                        else lambda m, _default=0: helpers[m].recent_asks)
        skip = {need.member_id, *exclude}
        # How many of the need's words each helper shares (counted in C); categories are
        # many helpers each, so they are counted only for those who need it.
        shared_words: Counter[int] = Counter()
        category_sets: list[set[int]] = []
        for term in wanted:
            found = self.by_term.get(term)
            if found and term[0] == "#":
                category_sets.append(found)
            elif found:
                shared_words.update(found)
        days = frozenset(stem(w) for w in words(need.text) if stem(w) in _DAY_STEMS)
        area = _place(need.area)
        bonus = (2.0 if area else 0.0) + (1.0 if days else 0.0)
        best: list[tuple[float, int, int]] = []  # (score, -recent, -member_id): a min-heap
        places, free, focus = self.places, self.free, self.focus

        def cannot_pass(worth: float) -> bool:
            return len(best) == limit and worth + bonus < best[0][0] - 1e-9

        def score_tiers(tiers: dict[float, list[int]]) -> None:
            for worth in sorted(tiers, reverse=True):
                if cannot_pass(worth):
                    return  # nobody here or below can pass the last of the best
                for member_id in tiers[worth]:
                    score = worth
                    if area and places[member_id] == area:
                        score += 2.0
                    if days and days & free[member_id]:
                        score += 1.0
                    score *= focus[member_id]
                    asked = asked_lately(member_id, 0)
                    score -= 0.75 * asked
                    entry = (score, -asked, -member_id)
                    if len(best) < limit:
                        heapq.heappush(best, entry)
                    elif entry > best[0]:
                        heapq.heapreplace(best, entry)

        # Helpers who share a word come first (few: a word is rarer than a category); a
        # helper who shares only categories is worth 1.5 a category, and is looked at only
        # if that much could still pass the best so far.
        tiers: dict[float, list[int]] = defaultdict(list)
        for member_id, count in shared_words.items():
            if member_id not in skip:
                categories = sum(1 for found in category_sets if member_id in found)
                tiers[2.0 * count + 1.5 * categories].append(member_id)
        score_tiers(tiers)
        if category_sets and not cannot_pass(1.5 * len(category_sets)):
            shared_categories: Counter[int] = Counter()
            for found in category_sets:
                shared_categories.update(found)
            tiers = defaultdict(list)
            for member_id, count in shared_categories.items():
                if member_id not in shared_words and member_id not in skip:
                    tiers[1.5 * count].append(member_id)
            score_tiers(tiers)
        return [
            self._explain(-negative_id, score, wanted, days, area, -negative_asked)
            for score, negative_asked, negative_id in sorted(best, reverse=True)
        ]

    def _explain(self, member_id: int, score: float, wanted: set[str],
                 days: frozenset[str], area: str, recent: int) -> Candidate:
        """Why a helper was chosen, in words a broker can read."""
        helper = self.helpers[member_id]
        offers = helper.offers if len(helper.offers) <= 40 else helper.offers[:37] + "..."
        reasons = [f'offers "{offers}"']
        categories = sorted(t[1:] for t in wanted & self.terms[member_id] if t[0] == "#")
        if categories:
            reasons.append("fits " + ", ".join(categories))
        if area and self.places[member_id] == area:
            reasons.append(f"same area ({helper.area})")
        free = sorted(w for w in words(helper.availability) if stem(w) in days)
        if free:
            reasons.append("free " + ", ".join(free))
        spread = self.spread[member_id]
        if spread.focus < 1:
            reasons.append(f"long list: {spread.words} words in {spread.categories} categories "
                           f"(score x{spread.focus:.2f})")
        if recent:
            reasons.append(f"asked {recent} times lately")
        if helper.asked_enough_today:
            reasons.append("asked enough today")
        return Candidate(member_id, round(score, 2), tuple(reasons))


def _place(area: str | None) -> str:
    return " ".join(words(area)) if area else ""
