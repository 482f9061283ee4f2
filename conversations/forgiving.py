"""Forgiving reading: a need written as a sentence, and the "did you mean" question.

"can someone help me with my shopping on friday" is a request: the bank offers to post it as
a need, and posts it only when the member replies 1. Ordinary sentences ("I helped Ana with
her shopping", "can someone tell me my balance") are not: a need is an asking phrase (can
someone / could anyone…) followed by a verb of helping, or "I need" followed by something to
be given. Pure and cheap, as ``conversations.care`` is.
"""

from __future__ import annotations

from conversations.care import words_of
from conversations.commands import ascii_digits, clean

# A pending "did you mean" or "post this need?" is answered by 1 (or yes), declined by 2 (or no).
CONFIRM_WORDS = frozenset({"1", "YES", "Y", "YEP", "YEAH", "YES PLEASE", "1 YES", "OK 1"})
DECLINE_WORDS = frozenset({"2", "NO", "N", "NOPE", "NO THANKS", "2 NO"})

_ASKERS = ("can someone", "could someone", "can anyone", "could anyone", "can somebody",
           "could somebody", "would someone", "would anyone", "would somebody",
           "is anyone able to", "is anybody able to", "anyone able to", "anyone free to",
           "is there anyone who can", "is there anyone who could", "does anyone have time to")
_HELPING = frozenset({
    "help", "give", "take", "drive", "fix", "come", "pick", "walk", "lend", "teach", "carry",
    "collect", "sit", "do", "bring", "mow", "cut", "paint", "move", "cook", "show", "read",
    "visit", "go", "shop", "get", "assist", "support", "repair", "clean", "tidy", "babysit",
    "feed", "put", "hang", "build", "look", "change", "sort", "accompany", "water",
})
_I_NEED = ("i need", "i really need", "i urgently need", "need", "im looking for",
           "i am looking for", "looking for", "i could do with", "i could use", "i would like",
           "id like", "wanted")
_GIVEN = frozenset({"a", "an", "some", "someone", "somebody", "help", "anyone", "lift",
                    "lifts", "hand", "volunteer", "helper"})
_FEWEST_WORDS = 5


def looks_like_need(text: str) -> bool:
    """Whether a whole text (not a command) reads as asking neighbours for help."""
    words = words_of(text).split()
    if len(words) < _FEWEST_WORDS:
        return False
    joined = " ".join(words)
    padded = f" {joined} "
    for asker in _ASKERS:
        at = padded.find(f" {asker} ")
        while at != -1:
            after = padded[at + len(asker) + 2:].split()
            if after and after[0] in _HELPING:
                return True
            at = padded.find(f" {asker} ", at + 1)
    # "I need a lift to the clinic", "Looking for someone to walk my dog": at the start.
    for opener in _I_NEED:
        if joined.startswith(opener + " "):
            after = joined[len(opener) + 1:].split()
            return bool(after) and after[0] in _GIVEN
    return False


def reply_word(text: str) -> str:
    """A short reply as it is compared with 1, 2, yes, no: ``"১"`` → ``"1"``, ``"Yes!"`` →
    ``"YES"``."""
    return " ".join(ascii_digits(words_of(clean(text))).upper().split())
