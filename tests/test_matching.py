"""Matching needs to helpers: words, stems, synonyms, typos, area, availability, fairness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.matching import Helper, MatchIndex, Need, Vocabulary

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
