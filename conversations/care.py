"""Reading a text for care: distress, a wish to talk to a person, words for a broker, thanks.

The words are data, not code: ``conversations/phrases/<language>.toml`` (reviewed lists; see
the notes at the top of ``en.toml``). Phrases match whole words, with case, punctuation and
apostrophes ignored, so "I can't go on!!" reads as "i cant go on". Pure and cheap: the
lists are loaded once per language, and every text costs a few substring searches.
"""

from __future__ import annotations

import tomllib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from conversations.texts import DEFAULT_LANGUAGE

# How the bank read a text (kept with it in ``inbound_texts.route``).
COMMAND = "command"
NOT_UNDERSTOOD = "not_understood"
TALK = "talk"
DISTRESS = "distress"
SMALL_TALK = "small_talk"
ROUTES = (COMMAND, NOT_UNDERSTOOD, TALK, DISTRESS, SMALL_TALK)

# What a whole text of small talk is: thanks get a short answer, acknowledgements none.
THANKS = "thanks"
ACKNOWLEDGEMENT = "acknowledgement"

_KISSES = frozenset({"x", "xx", "xxx", "xxxx", "xo", "xox", "xoxo"})


@dataclass(frozen=True)
class Phrases:
    """One language's lists, normalised."""

    distress: tuple[str, ...]
    unless_followed_by: dict[str, frozenset[str]]
    talk: tuple[str, ...]
    # "ফোন করবেন" (will you call?) but not "ফোন করবেন না" (don't call): where a language puts
    # its "not" after the verb.
    talk_unless_followed_by: dict[str, frozenset[str]]
    negations: tuple[str, ...]
    inbox: tuple[str, ...]
    thanks: frozenset[str]
    acknowledgements: frozenset[str]
    fillers: frozenset[str]
    emoji: frozenset[str]
    longest: int  # the most words in one small-talk phrase


# Turkish has two i's: "İ"/"i" and "I"/"ı". A member may type either, or the plain one on a
# phone without Turkish letters ("ISTEMIYORUM", "yalnizim"), and Python's lower() turns "İ"
# into "i" and a combining dot, which would split the word. All four read as "i".
_TURKISH_I = str.maketrans({"İ": "i", "I": "i", "ı": "i"})


# Dropped inside words like apostrophes: zero-width joiners shape Bengali letters ("র‍্যা")
# but are not part of the word, and a member's phone may or may not type them.
_DROPPED = frozenset("'’‘`´\u200c\u200d")


def words_of(text: str) -> str:
    """``"I can’t go on!!"`` → ``"i cant go on"``: lower case, apostrophes dropped, every
    other character that is not a letter or a digit a space.

    Vowel signs and viramas (Unicode marks, "া", "ি", "্") stay with the letter before them,
    so "আমি বাঁচতে চাই না" keeps its words whole; Bengali digits are read as 0-9."""
    # The Turkish i's first: "İ".lower() is "i" and a combining dot, which, with marks kept,
    # would make "İYİYİM" differ from "iyiyim".
    text = unicodedata.normalize("NFKC", text).translate(_TURKISH_I).lower()
    kept: list[str] = []
    for ch in text:
        if ch in _DROPPED:
            continue
        if ch.isalnum():
            kept.append(str(unicodedata.digit(ch)) if ch.isdigit() else ch)  # "১৭" is "17"
        elif unicodedata.category(ch).startswith("M") and kept and kept[-1] != " ":
            kept.append(ch)  # a vowel sign, virama or nukta, with its letter
        else:
            kept.append(" ")
    return " ".join("".join(kept).split())


# Skin tones, variation selectors and joiners: "🙏🏽" is "🙏".
_MODIFIERS = frozenset({*map(chr, range(0x1F3FB, 0x1F400)), "\ufe0f", "\ufe0e", "\u200d"})


def _symbols(text: str) -> set[str]:
    """The emoji and other symbols in a text, without their modifiers."""
    return {ch for ch in text if not ch.isalnum() and not ch.isspace()
            and ch not in _MODIFIERS and unicodedata.category(ch).startswith("S")}


def _data(language: str) -> dict[str, Any]:
    source = resources.files("conversations") / "phrases" / f"{language}.toml"
    return tomllib.loads(source.read_text(encoding="utf-8")) if source.is_file() else {}


def _merged(own: dict[str, Any], english: dict[str, Any]) -> dict[str, Any]:
    """Both files' lists together, section by section (the language's first)."""
    out = dict(english)
    for key, value in own.items():
        other = english.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            out[key] = _merged(value, other)
        elif isinstance(value, list) and isinstance(other, list):
            out[key] = [*value, *other]
        else:
            out[key] = value
    return out


@lru_cache(maxsize=8)
def phrases(language: str = DEFAULT_LANGUAGE) -> Phrases:
    """The lists for ``language`` and English's too: members mix languages ("ok", "thank
    you", "I want to die" from a member who reads texts in Bengali), and English words of
    distress must never be missed because a member chose another language."""
    english = _data(DEFAULT_LANGUAGE)
    data = english if language == DEFAULT_LANGUAGE else _merged(_data(language), english)

    def listed(section: str, key: str = "phrases") -> tuple[str, ...]:
        values = data.get(section, {}).get(key, [])
        return tuple(dict.fromkeys(w for w in (words_of(v) for v in values) if w))

    def unless(section: str) -> dict[str, frozenset[str]]:
        after = data.get(section, {}).get("unless_followed_by", {})
        return {words_of(phrase): frozenset(words_of(w) for w in words)
                for phrase, words in after.items()}

    small = (*listed("small_talk", "thanks"), *listed("small_talk", "acknowledgements"),
             *listed("small_talk", "fillers"))
    return Phrases(
        distress=listed("distress"),
        unless_followed_by=unless("distress"),
        talk=listed("talk"),
        talk_unless_followed_by=unless("talk"),
        negations=listed("talk", "negations"),
        inbox=listed("inbox"),
        thanks=frozenset(listed("small_talk", "thanks")),
        acknowledgements=frozenset(listed("small_talk", "acknowledgements")),
        fillers=frozenset(listed("small_talk", "fillers")),
        emoji=frozenset(_symbols("".join(data.get("small_talk", {}).get("emoji", [])))),
        longest=max((len(p.split()) for p in small), default=1),
    )


def _found(words: str, phrase: str) -> list[int]:
    """Where ``phrase`` starts in ``words`` as whole words (character offsets)."""
    padded, target = f" {words} ", f" {phrase} "
    found, start = [], padded.find(target)
    while start != -1:
        found.append(start)
        start = padded.find(target, start + 1)
    return found


def is_distress(text: str, language: str = DEFAULT_LANGUAGE) -> bool:
    """Whether the text says something of distress or crisis on the reviewed list: the
    member's language's, and the English one too (members often write in both, and a miss
    costs more than a false alarm)."""
    words = words_of(text)
    if not words:
        return False
    lists = phrases(language)
    for phrase in lists.distress:
        for start in _found(words, phrase):
            if _next_word(words, start, phrase) not in lists.unless_followed_by.get(
                    phrase, frozenset()):
                return True
    return False


def _next_word(words: str, start: int, phrase: str) -> str:
    """The word after ``phrase`` found at ``start`` ("" at the end)."""
    return f" {words} "[start + len(phrase) + 2:].split(" ", 1)[0]


def wants_a_person(text: str, language: str = DEFAULT_LANGUAGE) -> bool:
    """Whether the text asks for a person ("can someone call me?"), not the other way
    ("please don't call me")."""
    words = words_of(text)
    if not words:
        return False
    lists = phrases(language)
    for phrase in lists.talk:
        for start in _found(words, phrase):
            before = f" {words} "[:start + 1].strip()
            if any(before == n or before.endswith(f" {n}") for n in lists.negations):
                continue
            if _next_word(words, start, phrase) not in lists.talk_unless_followed_by.get(
                    phrase, frozenset()):
                return True
    return False


def for_a_broker(text: str, language: str = DEFAULT_LANGUAGE) -> bool:
    """Words a broker should read though they ask nothing ("leave me alone")."""
    words = words_of(text)
    return bool(words) and any(_found(words, p) for p in phrases(language).inbox)


def small_talk(text: str, language: str = DEFAULT_LANGUAGE) -> str | None:
    """``THANKS`` or ``ACKNOWLEDGEMENT`` when the whole text is small talk ("thanks!", "ok",
    "cheers x", "👍"), else None."""
    words = words_of(text)
    lists = phrases(language)
    symbols = _symbols(text)
    if symbols - lists.emoji:
        return None  # a tear or a broken heart is not a nod: a person reads it
    if not words:
        return ACKNOWLEDGEMENT if symbols else None  # "👍", "🙏🏽"
    tokens = [t for t in words.split() if t not in _KISSES]
    if not tokens:
        return ACKNOWLEDGEMENT  # "xx"
    # Cover the words with phrases from the lists, longest first; fillers never alone.
    kinds: set[str] = set()
    i = 0
    while i < len(tokens):
        for size in range(min(lists.longest, len(tokens) - i), 0, -1):
            piece = " ".join(tokens[i:i + size])
            if piece in lists.thanks:
                kinds.add(THANKS)
            elif piece in lists.acknowledgements:
                kinds.add(ACKNOWLEDGEMENT)
            elif piece not in lists.fillers:
                continue
            i += size
            break
        else:
            return None
    if THANKS in kinds:
        return THANKS
    return ACKNOWLEDGEMENT if kinds else None
