"""The message catalogue: every text the bank sends, in gettext ``.po`` files.

``conversations/locale/messages.pot`` holds the English texts (the source); each other
language is one file beside it, ``<code>.po`` (``bn.po``, ``cy.po``, …), made from the
template and opened in any translator's tool (Poedit, Weblate, Lokalize). Adding a language is
adding its file: nothing else (``docs/TRANSLATING.md``).

Each entry is keyed by its context (``msgctxt``), the name the code uses (``"balance"``); its
``msgid`` is the English it was translated from, so an entry whose English has changed since
is *stale*. Placeholders are named (``{name}``, ``{hours}``) and may be moved anywhere in a
sentence. Plural entries carry every form of the language (Welsh six, Polish three), chosen by
the file's ``Plural-Forms`` rule from the number in ``{n}`` or ``{count}``. A translator's
comment ``status: reviewed`` marks an entry a speaker has checked; ``status: machine-drafted``
one that still needs that.

At run time a translation is used only when it is there, not stale, and has the same
placeholders as the English; otherwise the English text is sent (and ``timebank texts check``
lists it).
"""

from __future__ import annotations

import ast
import gettext
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from string import Formatter
from typing import TypeVar

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

SOURCE = "en"
TEMPLATE = "messages.pot"
REVIEWED = "status: reviewed"
MACHINE_DRAFTED = "status: machine-drafted"
# The header fields a language file adds: its own name (shown by LANG), other names members
# may use for it (comma-separated), and whether texts in it are written in the alphabet SMS
# carries cheaply (GSM-7, once a few letters are written plainly) or in another script.
NAME_FIELD = "X-Language-Name"
ALIASES_FIELD = "X-Language-Aliases"


@dataclass(frozen=True)
class Entry:
    """One text: its forms (one, or one per plural form of the language) and what it says."""

    key: str
    forms: tuple[str, ...]
    source: str  # the English msgid it was written from
    reviewed: bool = True
    comments: tuple[str, ...] = ()

    @property
    def plural(self) -> bool:
        return len(self.forms) > 1


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # in the language itself: "বাংলা", "Soomaali", "Cymraeg"
    aliases: tuple[str, ...]
    plural_forms: str
    nplurals: int
    plural: Callable[[int], int]
    entries: dict[str, Entry] = field(default_factory=dict)


def _locale_files() -> Iterator[tuple[str, str]]:
    folder = resources.files("conversations") / "locale"
    for item in sorted(folder.iterdir(), key=lambda f: f.name):
        if item.name == TEMPLATE or item.name.endswith(".po"):
            yield item.name, item.read_text(encoding="utf-8")


def _plural_rule(header: str) -> tuple[int, Callable[[int], int]]:
    """``nplurals=3; plural=(n==1 ? 0 : …);`` → (3, the rule as a function)."""
    parts = dict(
        part.strip().split("=", 1) for part in header.split(";") if "=" in part
    )
    nplurals = int(parts["nplurals"])
    rule = gettext.c2py(parts["plural"].strip())
    return nplurals, rule


def _read(name: str, text: str) -> tuple[Language, Catalog]:
    import io

    catalog = read_po(io.StringIO(text), abort_invalid=True)
    # Babel keeps only the standard header fields: the X- ones are read from the file.
    meta = {**dict(catalog.mime_headers), **_header_fields(text)}
    code = SOURCE if name == TEMPLATE else name.removesuffix(".po")
    plural_forms = meta.get("Plural-Forms", "nplurals=2; plural=(n != 1);")
    nplurals, rule = _plural_rule(plural_forms)
    aliases = tuple(a.strip() for a in meta.get(ALIASES_FIELD, "").split(",") if a.strip())
    language = Language(code=code, name=meta.get(NAME_FIELD, code), aliases=aliases,
                        plural_forms=plural_forms, nplurals=nplurals, plural=rule)
    for message in catalog:
        if not message.id or not message.context:
            continue
        if name == TEMPLATE:
            forms = tuple(message.id) if isinstance(message.id, tuple | list) else (message.id,)
            reviewed = True
        else:
            strings = message.string if isinstance(message.string, tuple | list) else (
                message.string,)
            if not all(strings):
                continue  # not translated yet
            forms = tuple(s for s in strings if s)
            reviewed = any(c.strip() == REVIEWED for c in message.user_comments)
        language.entries[message.context] = Entry(
            key=message.context, forms=forms, source=_source_of(message.id),
            reviewed=reviewed, comments=tuple(message.auto_comments),
        )
    return language, catalog


def _header_fields(text: str) -> dict[str, str]:
    """The fields of a file's header entry (``msgid ""``) as written: ``{"X-Language-Name":
    "Türkçe", …}``."""
    found = re.search(r'^msgid ""\nmsgstr ""\n((?:".*"\n)+)', text, re.MULTILINE)
    if found is None:
        return {}
    header = "".join(ast.literal_eval(line) for line in found.group(1).splitlines())
    return {name.strip(): value.strip() for name, sep, value in
            (line.partition(":") for line in header.splitlines()) if sep}


F = TypeVar("F", bound=Callable[..., object])
_DERIVED: list[Callable[[], None]] = []


def derived(function: F) -> F:
    """Mark a cached function (``functools.cache``) as computed from the catalogue, so that
    ``reload`` clears it too: a table of command words must never outlive the files it was
    read from."""
    _DERIVED.append(function.cache_clear)  # type: ignore[attr-defined]
    return function


def reload() -> None:
    """Read the files again at next use, and forget everything computed from them."""
    for clear in _DERIVED:
        clear()


def _source_of(msgid: str | tuple[str, ...] | list[str]) -> str:
    return msgid if isinstance(msgid, str) else "\x00".join(msgid)


@derived
@cache
def languages() -> dict[str, Language]:
    """Every language with a file, English first, by code."""
    found: dict[str, Language] = {}
    for name, text in _locale_files():
        language, _ = _read(name, text)
        found[language.code] = language
    english = found.pop(SOURCE)
    return {SOURCE: english, **dict(sorted(found.items()))}


def english() -> Language:
    return languages()[SOURCE]


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name}


@derived
@cache
def usable(code: str, key: str) -> Entry | None:
    """The entry to send for ``key`` in language ``code``: its translation when that is there,
    written from today's English and with the same placeholders; else None (send English)."""
    language = languages().get(code)
    source = english().entries.get(key)
    if language is None or source is None:
        return None
    entry = language.entries.get(key)
    if entry is None or problem(entry, source, language) is not None:
        return None
    return entry


def problem(entry: Entry, source: Entry, language: Language) -> str | None:
    """What is wrong with a translation, or None."""
    if entry.source != source.source:
        return "stale: the English has changed since it was translated"
    if source.plural and len(entry.forms) != language.nplurals:
        return f"needs {language.nplurals} plural forms, has {len(entry.forms)}"
    if not source.plural and len(entry.forms) != 1:
        return "is plural but the English is not"
    wanted = fields(source.forms[-1])
    for form in entry.forms:
        try:
            got = fields(form)
        except ValueError as exc:
            return f"a brace is not closed: {exc}"
        if got != wanted and not (source.plural and got <= wanted):
            return f"placeholders {sorted(got)} instead of {sorted(wanted)}"
    return None


@dataclass(frozen=True)
class Finding:
    language: str
    key: str
    problem: str


def check() -> Iterator[Finding]:
    """Every entry that is missing, stale or broken in a language, and every one not yet
    reviewed by a speaker (``timebank texts check``)."""
    source = english()
    for code, language in languages().items():
        if code == SOURCE:
            continue
        for key, wanted in source.entries.items():
            entry = language.entries.get(key)
            if entry is None:
                yield Finding(code, key, "untranslated")
                continue
            wrong = problem(entry, wanted, language)
            if wrong is not None:
                yield Finding(code, key, wrong)
            elif not entry.reviewed:
                yield Finding(code, key, "machine-drafted, not yet reviewed")
        for key in sorted(set(language.entries) - set(source.entries)):
            yield Finding(code, key, "no longer used: the English text is gone")


def by_name(word: str, offered: Mapping[str, Language] | None = None) -> str | None:
    """The language a member named (``"Somali"``, ``"soomaali"``, ``"so"``), or None."""
    wanted = word.strip().casefold()
    for code, language in (offered or languages()).items():
        names = {code, language.name, *language.aliases}
        if wanted in {n.casefold() for n in names}:
            return code
    return None
