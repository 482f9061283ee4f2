"""The words members text for the kinds of help a time bank trades, one file per language.

Each ``<code>.toml`` beside this module maps the SAME category names (``transport``,
``gardening``, ``shopping``, ...) to everyday words of that language, with the stop words
that say nothing about the help ("I", "need", "please"), and how to find a word's stem:

- ``stemmer = "snowball:<name>"``: the Snowball stemmer of that name (``snowballstemmer``:
  English, Turkish and Polish have one);
- ``stemmer = "suffixes"``: the ``[stemming]`` table's endings (longest first), cut off
  ``rounds`` times while at least ``min_stem`` characters are left (Bengali, Somali, Welsh);
- Welsh also has ``[mutations]``: the changed first letters ("fy ngardd", "ei ardd") and the
  letters a word is looked up with instead ("gardd").

Words are compared folded: NFC, lower case, and without the accents of Latin letters
("alışveriş" = "alisveris", "zakupów" = "zakupow"), as members write them on phones without
special letters. Bengali keeps its vowel signs and virama: they are part of the letters.
Members' own words are never translated: this only says which category a word speaks of.
"""

from __future__ import annotations

import re
import threading
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import snowballstemmer

# Every language the bank knows: the six it was built with, in this order, then any other
# ``<code>.toml`` beside this module (a new language needs its file and nothing else). A word
# two of them know takes its key (the stem it is compared by) from the first: the order only
# has to be the same for everyone.
_FIRST = ("en", "cy", "pl", "tr", "so", "bn")
LANGUAGES = (*_FIRST, *sorted(
    name.removesuffix(".toml") for name in (p.name for p in resources.files(__package__).iterdir())
    if name.endswith(".toml") and name.removesuffix(".toml") not in _FIRST))

# Latin letters that are not a base letter plus an accent, folded by hand.
_LATIN_LETTERS = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "đ": "d", "ß": "ss",
                                "æ": "ae", "œ": "oe", "ŀ": "l"})
# Joiners inside Bengali words (ZWNJ, ZWJ) and the soft hyphen: not letters, not a break.
_INVISIBLE = dict.fromkeys(map(ord, "\u200c\u200d\u00ad"))


@cache
def _word_pattern() -> re.Pattern[str]:
    """A word: letters with the combining marks written on them (Bengali 'া', 'ি', '্' are
    marks, which ``\\w`` does not count), no digits or underscores. Built on first use."""
    marks = "".join(chr(c) for c in range(0x300, 0x10000)
                    if unicodedata.category(chr(c)) in ("Mn", "Mc", "Me"))
    return re.compile(r"(?:[^\W\d_]|[" + re.escape(marks) + r"])+")


def tokens(text: str | None) -> list[str]:
    """The words of ``text``, NFC, in lower case, every word whole (no stop words taken
    out)."""
    if not text:
        return []
    if not text.isascii():
        text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
        text = text.replace("İ", "i")  # Turkish capital dotted I: "İngilizce" → "ingilizce"
    return _word_pattern().findall(text.lower())


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """``word`` without the accents of Latin letters ("alışveriş" → "alisveris"); other
    scripts' marks (Bengali vowel signs) are kept."""
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFD", word.translate(_LATIN_LETTERS))
    kept: list[str] = []
    latin = False
    for char in decomposed:
        if unicodedata.combining(char) and latin:
            continue  # an accent on a Latin letter
        kept.append(char)
        if not unicodedata.combining(char):
            latin = char < "\u0250" or "\u1e00" <= char <= "\u1eff"
    return unicodedata.normalize("NFC", "".join(kept))


def _snowball(name: str) -> Callable[[str], str]:
    stemmer = snowballstemmer.stemmer(name)
    lock = threading.Lock()  # a Snowball stemmer keeps the word it works on: one at a time

    def stem(word: str) -> str:
        with lock:
            return str(stemmer.stemWord(word))

    return stem


def _suffixes(endings: list[str], min_stem: int, rounds: int) -> Callable[[str], str]:
    ordered = sorted({fold(e) for e in endings} | set(endings), key=len, reverse=True)

    def stem(word: str) -> str:
        for _ in range(rounds):
            for ending in ordered:
                if word.endswith(ending) and len(word) - len(ending) >= min_stem:
                    word = word[: -len(ending)]
                    break
            else:
                break
        return word

    return stem


@dataclass(frozen=True)
class Language:
    """One language's categories, stop words and stemming, as its data file says."""

    code: str
    name: str
    categories: dict[str, tuple[str, ...]]
    stop_words: frozenset[str]
    _stem: Callable[[str], str]
    mutations: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def key(self, word: str) -> str:
        """What ``word`` is compared by in this language: its stem, folded; the word itself
        if its stem would be under three letters (Turkish "okul" is not "ok")."""
        stem = self._stem(word)
        return fold(stem if len(stem) >= min(3, len(word)) else word)

    def keys(self, word: str) -> set[str]:
        """A vocabulary word's keys: stemmed as written and as written without accents."""
        return {self.key(word), self.key(fold(word))}

    def variants(self, word: str) -> list[str]:
        """``word``, then the words it may be a mutation of (Welsh "ngardd" → "gardd")."""
        found = [word]
        for written, radicals in self.mutations:
            if word.startswith(written) and len(word) > len(written):
                found.extend(radical + word[len(written):] for radical in radicals)
        return found


def _words_of(entries: list[str], where: str) -> tuple[str, ...]:
    found: list[str] = []
    for entry in entries:
        split = tokens(entry)
        if len(split) != 1:
            raise ValueError(f"{where}: {entry!r} is not one word")
        found.append(split[0])
    return tuple(found)


@cache
def load(code: str) -> Language:
    """The language ``code`` from its data file (``ledger/vocabulary/<code>.toml``)."""
    text = resources.files(__package__).joinpath(f"{code}.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    method = str(data.get("stemmer", "none"))
    stem: Callable[[str], str]
    if method.startswith("snowball:"):
        stem = _snowball(method.split(":", 1)[1])
    elif method == "suffixes":
        rules = data.get("stemming", {})
        stem = _suffixes(list(rules.get("suffixes", [])), int(rules.get("min_stem", 3)),
                         int(rules.get("rounds", 1)))
    else:
        def stem(word: str) -> str:
            return word
    categories = {name: _words_of(list(entries), f"{code}.toml [{name}]")
                  for name, entries in data.get("categories", {}).items()}
    stop = frozenset(fold(w) for w in _words_of(list(data.get("stop_words", [])),
                                                f"{code}.toml stop_words"))
    mutations = tuple(
        (written, tuple(radicals))
        for written, radicals in sorted(data.get("mutations", {}).items(),
                                        key=lambda item: len(item[0]), reverse=True)
    )
    return Language(code, str(data.get("name", code)), categories, stop, stem, mutations)


def languages() -> tuple[Language, ...]:
    return tuple(load(code) for code in LANGUAGES)
