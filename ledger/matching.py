"""Finding members who can help with a need: by what they offer, where they live, when they
are free, and fairly (the same helpers are not asked again and again).

Pure ranking over facts the caller loads; no I/O. Words are compared by simple stems, by a
small vocabulary of the categories time banks use ("lift" finds "driving", "computer" finds
"IT help"), extendable per bank, and with tolerance for typos. Links count as no words.

A helper whose offers are a long list of unrelated words (every skill there is, to be asked
about every need) fits any one need less: their score is scaled down by how many unrelated
things they list, so a gardener who lists three gardening words comes before them.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from ledger.links import without_links

# Category → the words members use for it. A word may belong to several categories.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "transport": ("lift", "lifts", "drive", "driving", "driver", "car", "transport", "ride",
                  "rides", "taxi", "clinic", "hospital", "appointment"),
    "gardening": ("garden", "gardening", "weeding", "mowing", "lawn", "plants", "hedge",
                  "allotment", "digging"),
    "it": ("it", "computer", "computers", "laptop", "tech", "internet", "email", "online",
           "smartphone", "phone", "tablet", "printer", "wifi", "zoom"),
    "shopping": ("shop", "shopping", "groceries", "errands", "pharmacy", "prescription"),
    "cooking": ("cook", "cooking", "meal", "meals", "baking", "bake", "food", "dinner"),
    "befriending": ("chat", "company", "befriending", "visit", "visiting", "talk", "talking",
                    "companionship", "lonely", "tea", "coffee", "friend"),
    "diy": ("diy", "repair", "repairs", "fix", "fixing", "handyman", "shelves", "shelf",
            "painting", "decorating", "furniture", "flatpack", "plumbing", "bikes", "bike"),
    "cleaning": ("clean", "cleaning", "tidy", "tidying", "hoover", "ironing", "laundry"),
    "childcare": ("babysitting", "babysit", "children", "kids", "childcare", "school"),
    "pets": ("dog", "dogs", "pet", "pets", "cat", "cats", "walking"),
    "language": ("english", "translation", "translate", "interpreting", "bengali", "somali",
                 "turkish", "polish", "welsh", "conversation"),
    "admin": ("paperwork", "forms", "form", "letters", "letter", "bills", "benefits",
              "reading", "writing", "admin"),
    "sewing": ("sewing", "sew", "knitting", "knit", "mending", "alterations"),
    "teaching": ("tutor", "tutoring", "homework", "maths", "lessons", "teach", "teaching"),
    "music": ("music", "guitar", "piano", "singing", "choir"),
    "walking": ("walk", "walks", "walking", "exercise", "stroll"),
}
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
        "weekday", "weekdays", "weekend", "weekends", "morning", "mornings", "afternoon",
        "afternoons", "evening", "evenings")
_STOP = frozenset({"a", "an", "the", "to", "for", "with", "and", "or", "of", "on", "in", "at",
                   "my", "me", "i", "need", "needs", "can", "help", "someone", "some", "please",
                   "would", "like", "from", "by", "is", "be", "any", "get", "go"})
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SUFFIXES = ("ings", "ing", "ers", "er", "ies", "es", "s", "ed")
TYPO_SCORE = 85  # rapidfuzz ratio at which a word counts as a misspelling of another
# A helper may list this many unrelated things (a category of the vocabulary; a word in none
# counts half, as it fits only needs with that very word), in this many different words, at
# full weight; past either, their score is scaled down in proportion.
FOCUSED_TOPICS = 8
FOCUSED_WORDS = 24


def stem(word: str) -> str:
    """A crude English stem: "gardening" → "garden", "lifts" → "lift", "driver" → "driv"."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def words(text: str | None) -> list[str]:
    return [w for w in _WORD.findall((text or "").lower()) if w not in _STOP]


def _typo_of(word: str, known: list[str]) -> str | None:
    if len(word) <= 6:  # short words: one letter wrong, missing, extra or swapped
        close = process.extractOne(word, known, scorer=OSA.distance, score_cutoff=1)
        return close[0] if close is not None else None
    similar = process.extractOne(word, known, scorer=fuzz.ratio, score_cutoff=TYPO_SCORE)
    return similar[0] if similar is not None else None


class Vocabulary:
    """Words to categories, with stems; a bank may add its own words."""

    def __init__(self, extra: Mapping[str, Iterable[str]] | None = None) -> None:
        self.categories: dict[str, set[str]] = defaultdict(set)
        entries: dict[str, list[str]] = {k: list(v) for k, v in VOCABULARY.items()}
        for category, more in (extra or {}).items():
            entries.setdefault(category, []).extend(more)
        for category, vocabulary in entries.items():
            for word in vocabulary:
                self.categories[stem(word.lower())].add(category)
        self.known = list(self.categories)

    def _mend(self, root: str) -> str:
        return _typo_of(root, self.known) or root

    def terms(self, text: str | None) -> set[str]:
        """The stems and categories a text speaks of (typos mended against the vocabulary);
        the words of a link are not among them."""
        found: set[str] = set()
        for word in words(without_links(text)):
            root = stem(word)
            if root not in self.categories and len(word) >= 4:
                root = self._mend(root)
            found.add(root)
            found.update(f"#{category}" for category in self.categories.get(root, ()))
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
