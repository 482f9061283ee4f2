"""Plain language in every English text: no jargon, and a text that confirms a cost says so.

The rules (issue 11): short sentences, common words, the action first, the exact reply words
last. Each English template is read as written in ``messages.pot``, with its placeholders taken
out, so a value (a member's own words) never trips the test and a template never hides a word
behind a capital letter or a plural.
"""

from __future__ import annotations

import re

import pytest

from conversations import catalogue

ENGLISH = {key: entry for key, entry in catalogue.english().entries.items()
           if not key.startswith("command_")}

# Words a member should not have to read, with the plainer words that replace them.
JARGON = {
    r"service[ -]?users?": "member, neighbour",
    r"patients?": "member, neighbour",
    r"beneficiar(y|ies)": "member, neighbour",
    r"transactions?": "hours, help",
    r"invalid": "say what to write instead",
    r"errors?": "say what went wrong in plain words",
    r"posts?|posted|posting": "need, offer",
    r"withdraw(n|s|ing)?": "close, take down",
    r"refs?": "number, no.",
}
_JARGON = re.compile(r"\b(" + "|".join(JARGON) + r")\b", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")

# Texts that ask a member to agree to hours leaving their balance.
COSTS = {"confirm_ask", "confirm_reminder", "give_preview", "give_preview_fund"}
# Texts asking YES to hours that do not cost the member anything (they are the helper).
GAINS = {"confirm_ask_helper"}


def jargon_in(template: str) -> list[str]:
    return [m.group(0) for m in _JARGON.finditer(_PLACEHOLDER.sub(" ", template))]


@pytest.mark.parametrize("key", sorted(ENGLISH))
def test_no_english_text_uses_jargon(key):
    for form in ENGLISH[key].forms:
        found = jargon_in(form)
        assert not found, (key, found, form)


@pytest.mark.parametrize(
    "template",
    ["Ref {ref} is closed", "REF {ref}", "(ref. {ref})", "Your Posts: {entries}",
     "an ERROR", "invalid hours", "a Transaction", "service-users", "Patients",
     "it was withdrawn", "{name} withdraws it", "refs {refs}"],
)
def test_jargon_is_found_in_capitals_plurals_and_next_to_placeholders(template):
    assert jargon_in(template)


@pytest.mark.parametrize(
    "template",
    ["Number {ref} is closed", "(no. {ref})", "Requests {refs} wait", "{ref} need: {what}",
     "Your need {posts}", "referral", "preferred", "postcode", "{patients}"],
)
def test_placeholders_and_longer_words_are_not_jargon(template):
    assert not jargon_in(template)


@pytest.mark.parametrize("key", sorted(COSTS))
def test_a_text_that_confirms_a_cost_says_what_leaves_the_balance(key):
    template = ENGLISH[key].forms[-1]
    assert re.search(r"\{hours\} from your balance", template), template
    # The action first, the exact reply words last.
    assert re.search(r"reply YES \{ref\}\. (If not|To cancel), (reply )?NO \{ref\}$",
                     template), template


def test_every_text_asking_yes_to_hours_is_known_to_cost_or_not():
    asking = {key for key, entry in ENGLISH.items()
              if "{hours}" in entry.forms[-1] and "YES {ref}" in entry.forms[-1]}
    assert asking == COSTS | GAINS
