"""Words that come after a command, in every language: ``LEAVE NOW``, ``GIVE 1 FUND``,
``DONE 2 hours Ana``, ``AWAY 3 weeks``, ``AWAY until 24 Dec``.

They live in the catalogue beside the texts (``word_<name>`` entries, commas between the
words, as the ``command_<name>`` ones), so translators review them with the texts that ask
for them. English always works too: members mix languages, and brokers' examples are English.
Words are compared folded (``conversations.commands.fold``): case, accents and Turkish i's
do not matter, and a multi-word entry ("UP TO") is its folded words joined by a space.
"""

from __future__ import annotations

from functools import cache

from conversations import catalogue
from conversations.commands import _letters, fold

NOW = "word_now"
FUND = "word_fund"
UNTIL = "word_until"
FOR = "word_for"
HOURS = "word_hours"
DAYS = "word_days"
WEEKS = "word_weeks"
MONTHS = "word_months"
MONTH_NAMES = "word_month_names"


def folded(phrase: str) -> str:
    """``"Up to"`` → ``"UP TO"``; ``"Teraz!"`` → ``"TERAZ"``; ``"ŞİMDİ"`` → ``"SIMDI"``."""
    return " ".join(w for w in (fold(_letters(part)) for part in phrase.split()) if w)


def _listed(code: str, key: str) -> tuple[str, ...]:
    language = catalogue.languages().get(code)
    entry = language.entries.get(key) if language is not None else None
    if code != catalogue.SOURCE and entry is not None and (
            entry.source != catalogue.english().entries[key].source):
        return ()  # stale: written for other English
    if entry is None or not entry.forms or not entry.forms[0]:
        return ()
    return tuple(w for w in (folded(part) for part in entry.forms[0].split(",")) if w)


@catalogue.derived
@cache
def words(key: str, language: str = catalogue.SOURCE) -> frozenset[str]:
    """The folded words of entry ``key`` in ``language`` and in English."""
    return frozenset({*_listed(catalogue.SOURCE, key), *_listed(language, key)})


@catalogue.derived
@cache
def every_language(key: str) -> frozenset[str]:
    """The folded words of entry ``key`` in every language the bank has."""
    return frozenset(w for code in catalogue.languages() for w in _listed(code, key))


def own(key: str, language: str) -> frozenset[str]:
    """The words of ``key`` in ``language`` only (not English)."""
    return frozenset(_listed(language, key))


@catalogue.derived
@cache
def month_names() -> dict[str, int]:
    """Every language's names of the months, folded, → 1-12. A name two languages give to
    different months is left out (read as no month at all)."""
    found: dict[str, set[int]] = {}
    for code in catalogue.languages():
        language = catalogue.languages()[code]
        entry = language.entries.get(MONTH_NAMES)
        if entry is None or not entry.forms[0] or (
                entry.source != catalogue.english().entries[MONTH_NAMES].source):
            continue
        months = entry.forms[0].split(",")
        if len(months) != 12:
            continue
        for number, spellings in enumerate(months, start=1):
            for spelling in spellings.split("/"):
                name = folded(spelling)
                if name:
                    found.setdefault(name, set()).add(number)
    return {name: next(iter(n)) for name, n in found.items() if len(n) == 1}
