"""Forgiving reading: a need written as a sentence, and the "did you mean" question.

"can someone help me with my shopping on friday" is a request: the bank offers to post it as
a need, and posts it only when the member replies 1. Ordinary sentences ("I helped Ana with
her shopping", "can someone tell me my balance") are not: a need is an asking phrase (can
someone / could anyone…) followed by a verb of helping, or "I need" followed by something to
be given. Pure and cheap, as ``conversations.care`` is.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

from conversations.care import words_of
from conversations.commands import ascii_digits, clean, fold

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


def _plain(words: str) -> str:
    """Words compared without accents or Turkish i's ("pomóc" is "pomoc", as phones without
    the letters type it); other scripts keep their marks."""
    return " ".join(fold(w).lower() for w in words.split())


@cache
def _need_phrases(language: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(askers, helping, needs) from ``conversations/phrases/<language>.toml``'s ``[need]``."""
    source = resources.files("conversations") / "phrases" / f"{language}.toml"
    if not source.is_file():
        return (), (), ()
    need = tomllib.loads(source.read_text(encoding="utf-8")).get("need", {})

    def listed(key: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for p in (_plain(words_of(v)) for v in need.get(key, []))
                                   if p))

    return listed("askers"), listed("helping"), listed("needs")


def _in_language(words: str, language: str) -> bool:
    """A need in the words of a language's ``[need]`` lists: an asking phrase ("czy ktoś",
    "কেউ কি") with a helping word after it anywhere (word orders differ), or a phrase that is
    a need on its own ("potrzebuję pomocy", "সাহায্য দরকার")."""
    askers, helping, needs = _need_phrases(language)
    padded = f" {_plain(words)} "
    if any(f" {phrase} " in padded for phrase in needs):
        return True
    for asker in askers:
        at = padded.find(f" {asker} ")
        if at != -1 and any(f" {verb} " in padded[at + len(asker) + 1:] for verb in helping):
            return True
    return False


def looks_like_need(text: str, language: str = "en") -> bool:
    """Whether a whole text (not a command) reads as asking neighbours for help, in English
    or in the member's language."""
    words = words_of(text).split()
    if len(words) < _FEWEST_WORDS:
        return False
    if language != "en" and _in_language(" ".join(words), language):
        return True
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
