"""What counts as a link in a member's words, and what is left when links are taken out."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.machine import for_others
from ledger.links import without_links


@pytest.mark.parametrize(("written", "left"), [
    ("a lift, see www.example.com", "a lift, see"),
    ("a lift to the clinic bit.ly/abc", "a lift to the clinic"),
    ("garden help (details: tinyurl.com/x2) please", "garden help (details) please"),
    ("HTTP://EXAMPLE.COM/garden please", "please"),
    ("https://example.com?x=1, thanks!", "thanks!"),
    ("hxxps://evil.com/login a lift", "a lift"),        # defanged, still a scheme
    ("WWW.EXAMPLE.ORG/x shopping", "shopping"),
    ("shopping example.com/path", "shopping"),          # a domain with a path
    ("shopping evil.it/x", "shopping"),                  # any top-level domain, with a path
    ("shopping at tesco.com!", "shopping at!"),          # a bare domain people click
    ("lift Example.CO.UK", "lift"),
    ("email me bob@example.com for details", "email me for details"),
    ("see www\u3002example\u3002com", "see"),            # ideographic full stops
    ("t.co/xyz", ""),
    ("(bit.ly/abc)", ""),
])
def test_links_are_taken_out_and_what_is_left_reads_cleanly(written, left):
    assert without_links(written) == left


@pytest.mark.parametrize("written", [
    "a lift to the clinic.Thanks",      # a missing space is not a link
    "Tuesday.It would help",
    "e.g. shopping, 5.30pm on Mon",
    "St.Mark's church hall",
    "example dot com",                  # no phone opens these with a tap
    "example[.]com",
    "call me on 07700 900123",
    "",
])
def test_ordinary_words_are_left_alone(written):
    assert without_links(written) == written


def test_a_text_that_was_only_a_link_still_reads():
    assert str(for_others("bit.ly/abc", "en")) == "help"
    assert str(for_others("www.example.com!!", "en")) == "help"
    assert for_others("a lift to the clinic on Tuesday, see www.example.com/long/path/x",
                      "en") == "a lift to the clinic on Tuesday, see"
    # Cut after the link is gone, so half a link never shows.
    assert for_others("a lift " + "x" * 10 + " https://example.com/" + "y" * 40, "en") == (
        "a lift xxxxxxxxxx")


_LINKS = st.one_of(
    st.builds("{}://{}.{}/{}".format, st.sampled_from(["http", "https", "HTTP", "hxxp", "Ftp"]),
              st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.sampled_from(["com", "it", "x"]),
              st.from_regex(r"[a-z0-9]{0,6}", fullmatch=True)),
    st.builds("www.{}.{}".format, st.from_regex(r"[a-zA-Z]{1,8}", fullmatch=True),
              st.sampled_from(["com", "org", "io"])),
    st.builds("{}.{}/{}".format, st.from_regex(r"[a-z]{1,8}", fullmatch=True),
              st.sampled_from(["ly", "LY", "com", "gd", "it", "at"]),
              st.from_regex(r"[a-zA-Z0-9]{1,6}", fullmatch=True)),
)
_WORDS = st.lists(st.sampled_from(["a", "lift", "to", "the", "clinic", "garden", "on",
                                   "Tuesday", "please", "see", "(", ")", ",", "and", "thanks"]),
                  max_size=8)


@settings(max_examples=300, deadline=None)
@given(_WORDS, st.lists(_LINKS, min_size=1, max_size=3), st.randoms())
def test_no_link_survives_among_words(words, links, random):
    parts = words + links
    random.shuffle(parts)
    left = without_links(" ".join(parts))
    for link in links:
        assert link.lower() not in left.lower()
    assert not re.search(r"://|www\.", left, re.IGNORECASE)
    assert without_links(left) == left  # taking links out twice changes nothing
