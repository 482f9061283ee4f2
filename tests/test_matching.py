"""Matching needs to helpers: words, stems, synonyms, typos, area, availability, fairness."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.matching import (
    DAYS,
    VOCABULARY,
    Helper,
    MatchIndex,
    Need,
    Vocabulary,
    stem,
    words,
)

HELPERS = [
    Helper(1, "Ana", "driving, gardening", "Lambeth", "Tuesday afternoons"),
    Helper(2, "Sam", "IT help", "Brixton"),
    Helper(3, "Kemi", "lifts to the hospital", "Lambeth", recent_asks=3),
    Helper(4, "Jo", "gardning and cooking", "Brixton"),
    Helper(5, "Bea", "walking dogs", "Lambeth"),
]


def best(text: str, area: str | None = "Lambeth", **kwargs: object) -> list[int]:
    index = MatchIndex.build(HELPERS)
    return [c.member_id for c in index.rank(Need(99, text, area), **kwargs)]  # type: ignore[arg-type]


@pytest.mark.parametrize(("need", "helper"), [
    ("a lift to the clinic", 1),          # lift finds driving
    ("help with my garden", 1),           # garden finds gardening
    ("my computer is broken", 2),         # computer finds IT help
    ("someone to walk my dog", 5),
    ("a lfit on Tuesday", 1),             # a typo
    ("help with the computr", 2),
    ("home cooked meals", 4),             # meals finds cooking
])
def test_words_stems_synonyms_and_typos_find_helpers(need, helper):
    assert helper in best(need)


def test_same_area_first_then_availability_then_fewest_recent_asks():
    assert best("help in the garden", area="Brixton")[0] == 4  # Jo lives there
    assert best("help in the garden", area="Lambeth")[0] == 1
    # Ana is free on Tuesday afternoons: she comes before an equally good driver who is not.
    twins = [Helper(1, "Ana", "driving", "Lambeth", "Tuesday afternoons"),
             Helper(2, "Sam", "driving", "Lambeth", "Saturdays")]
    assert [c.member_id for c in MatchIndex.build(twins).rank(
        Need(9, "a lift on Tuesday afternoon", "Lambeth"))] == [1, 2]
    # Of two equally good helpers, the one asked less lately is asked first.
    fair = [Helper(1, "Ana", "driving", recent_asks=2), Helper(2, "Sam", "driving")]
    assert [c.member_id for c in MatchIndex.build(fair).rank(Need(9, "a lift"))] == [2, 1]


def test_the_requester_and_people_already_asked_are_not_candidates():
    index = MatchIndex.build(HELPERS)
    assert 1 not in [c.member_id for c in index.rank(Need(1, "a lift", "Lambeth"))]
    assert 1 not in best("a lift", exclude=[1])


def test_nothing_fits_nothing_is_offered():
    assert best("help with my violin") == []
    assert best("") == []


def test_reasons_say_why_each_helper_was_chosen():
    index = MatchIndex.build(HELPERS)
    [top, *_] = index.rank(Need(99, "a lift on Tuesday afternoon", "Lambeth"))
    assert top.reasons == (
        'offers "driving, gardening"', "fits transport", "same area (Lambeth)",
        "free afternoons, tuesday",
    )


def test_a_bank_can_add_its_own_words():
    vocabulary = Vocabulary({"transport": ["minibus"]})
    index = MatchIndex.build(HELPERS, vocabulary)
    assert 1 in [c.member_id for c in index.rank(Need(99, "the minibus to the market"))]


def test_at_most_the_limit_is_returned():
    many = [Helper(i, f"M{i}", "gardening") for i in range(20)]
    assert len(MatchIndex.build(many).rank(Need(99, "garden"), limit=3)) == 3


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.one_of(st.none(), st.text(max_size=30)))
def test_ranking_never_fails_and_never_picks_the_requester(text, area):
    index = MatchIndex.build(HELPERS)
    ranked = index.rank(Need(3, text, area), limit=5)
    assert all(c.member_id != 3 for c in ranked)
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)


# --- skills lists stuffed with every word -----------------------------------------------------

# Four words of every category: a member who wants to be asked about every need.
STUFFED = " ".join(word for words in VOCABULARY.values() for word in words[:4])


@pytest.mark.parametrize("need", [
    "help with my garden", "weeding and mowing the lawn in my garden", "a lift to the clinic",
    "someone to walk my dog", "fix my shelves",
])
def test_a_genuine_helper_outranks_a_list_of_every_word(need):
    assert len(STUFFED.split()) >= 60
    helpers = [
        # The stuffed list lives in the requester's area and is free every day; it still
        # comes after the helper who offers only what fits.
        Helper(1, "Stu", STUFFED, "Lambeth", "every day, mornings, afternoons, evenings"),
        Helper(2, "Gina", "gardening, weeding, mowing", "Brixton"),
        Helper(3, "Dee", "driving", "Brixton"),
        Helper(4, "Wes", "dog walking", "Brixton"),
        Helper(5, "Fix", "DIY and repairs", "Brixton"),
    ]
    ranked = MatchIndex.build(helpers).rank(Need(99, need, "Lambeth"), limit=5)
    assert ranked[0].member_id != 1
    assert ranked[-1].member_id == 1


def test_a_long_list_is_discounted_and_the_reasons_say_so():
    helpers = [Helper(1, "Stu", STUFFED), Helper(2, "Gina", "gardening, weeding, mowing")]
    gina, stu = MatchIndex.build(helpers).rank(Need(99, "help with my garden"))
    assert gina.score == 3.5 and stu.score < gina.score / 2
    assert "long list: 44 words in 16 categories (score x0.23)" in stu.reasons
    assert not any(reason.startswith("long list") for reason in gina.reasons)


def test_a_few_different_skills_or_many_words_for_one_are_not_discounted_much():
    broad = "gardening, cooking, some DIY, lifts to hospital, dog walking, english lessons"
    gardener = ("gardening weeding mowing lawn hedge allotment digging plants garden "
                "borders pruning compost")
    index = MatchIndex.build([Helper(1, "Bo", broad), Helper(2, "Al", gardener)])
    assert index.spread[1].focus == 1.0
    assert index.spread[2].focus == 1.0


def test_the_words_of_a_link_fit_nothing():
    helpers = [Helper(1, "Lee", "see www.gardening-cooking-driving.com or bit.ly/lifts"),
               Helper(2, "Dee", "driving")]
    index = MatchIndex.build(helpers)
    assert [c.member_id for c in index.rank(Need(99, "a lift"))] == [2]
    # A need that is only a link is about nothing a helper could read.
    assert index.rank(Need(99, "http://lift.example.com/driving")) == []


def test_a_helper_asked_enough_today_says_so_in_the_reasons():
    helpers = [Helper(1, "Dee", "driving", asked_enough_today=True)]
    [dee] = MatchIndex.build(helpers).rank(Need(99, "a lift"))
    assert dee.reasons[-1] == "asked enough today"


def _every_helper_scored(index: MatchIndex, need: Need, limit: int, recent: dict[int, int]
                         ) -> list[tuple[int, float]]:
    """The ranking by scoring every helper who shares a term with the need (no tiers)."""
    wanted = index.vocabulary.terms(need.text)
    days = {stem(w) for w in words(need.text) if stem(w) in DAYS_STEMS}
    area = " ".join(words(need.area)) if need.area else ""
    scored = []
    for member_id, terms in index.terms.items():
        shared = wanted & terms
        if not shared or member_id == need.member_id:
            continue
        categories = sum(1 for t in shared if t[0] == "#")
        score = 2.0 * (len(shared) - categories) + 1.5 * categories
        score += 2.0 if area and index.places[member_id] == area else 0.0
        score += 1.0 if days & index.free[member_id] else 0.0
        score = score * index.spread[member_id].focus - 0.75 * recent.get(member_id, 0)
        scored.append((-score, recent.get(member_id, 0), member_id))
    return [(m, round(-s, 2)) for s, _, m in sorted(scored)[:limit]]


DAYS_STEMS = {stem(d) for d in DAYS}


def test_ranking_in_tiers_finds_exactly_who_scoring_everyone_finds():
    rng = random.Random(3)
    vocabulary = [w for ws in VOCABULARY.values() for w in ws][:60]
    areas = ["Lambeth", "Brixton", "Oval", None]
    times = ["weekends", "Tuesday evenings", "mornings", None]
    helpers = [Helper(i, f"M{i}", ", ".join(rng.sample(vocabulary, rng.randint(1, 12))),
                      rng.choice(areas), rng.choice(times)) for i in range(1, 400)]
    index = MatchIndex.build(helpers)
    for _ in range(60):
        recent = {rng.randrange(1, 400): rng.randrange(1, 4) for _ in range(80)}
        need = Need(rng.randrange(1, 400),
                    f"{rng.choice(vocabulary)} {rng.choice(vocabulary)} on weekends",
                    rng.choice(areas))
        limit = rng.choice((1, 3, 10))
        ranked = [(c.member_id, c.score) for c in index.rank(need, limit=limit, recent=recent)]
        assert ranked == _every_helper_scored(index, need, limit, recent)


def test_a_refreshed_index_reuses_unchanged_helpers_and_reads_changed_ones():
    index = MatchIndex.build(HELPERS)
    changed = [h if h.member_id != 1 else Helper(1, h.name, "knitting", h.area)
               for h in HELPERS]
    fresh = index.refreshed(changed)
    assert 1 not in {c.member_id for c in fresh.rank(Need(99, "a lift"), limit=10)}
    assert [c.member_id for c in fresh.rank(Need(99, "knitting"))] == [1]
    unchanged = next(h.member_id for h in HELPERS if h.member_id != 1)
    assert fresh.terms[unchanged] is index.terms[unchanged]
