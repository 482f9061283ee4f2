"""Which languages a bank offers, and how a member names the one they choose (``LANG``).

Pure: read from the message catalogue (``conversations.catalogue``), no I/O of our own. A
bank's setting is a comma list of codes (``"en,bn,so"``), or nothing for every language with
a catalogue file. The choices are always numbered in one order (the order the issue and the
brief name them: English, Bengali, Somali, Turkish, Polish, Welsh, then any other language by
code), so "LANG 3" means the same language in every text of a bank.
"""

from __future__ import annotations

from collections.abc import Iterable

from conversations import catalogue

# The order choices are numbered in; a language added later comes after these, by code.
ORDER = ("en", "bn", "so", "tr", "pl", "cy")
# Each language's own name and its English name, for a file whose header does not give
# them (``X-Language-Name``, ``X-Language-Aliases``): "LANG Somali" works whatever the file.
NAMES: dict[str, tuple[str, str]] = {
    "en": ("English", "English"), "bn": ("বাংলা", "Bengali"), "so": ("Soomaali", "Somali"),
    "tr": ("Türkçe", "Turkish"), "pl": ("Polski", "Polish"), "cy": ("Cymraeg", "Welsh"),
}


class UnknownLanguage(ValueError):
    """A code with no catalogue file, or a default the bank does not offer."""


def _ordered(codes: Iterable[str]) -> tuple[str, ...]:
    found = set(codes)
    known = [code for code in ORDER if code in found]
    return tuple(known + sorted(found - set(ORDER)))


def every() -> tuple[str, ...]:
    """Every language with a catalogue file, in the choices' order."""
    return _ordered(catalogue.languages())


def offered(setting: str | None) -> tuple[str, ...]:
    """The languages a bank's setting offers (every one when not set), each with a file.
    English is the fallback of every text, so a setting that names none still offers it."""
    if not setting or not setting.strip():
        return every()
    known = catalogue.languages()
    codes = [code for code in (part.strip() for part in setting.split(",")) if code in known]
    return _ordered(codes) or (catalogue.SOURCE,)


def parse_setting(codes: str, default: str | None) -> tuple[tuple[str, ...], str]:
    """``"en, bn,so"`` and a default → (the codes, the default), checked against the
    catalogue: every code has a file, and the default is one of them."""
    known = catalogue.languages()
    wanted = [part.strip().lower() for part in codes.split(",") if part.strip()]
    if not wanted:
        raise UnknownLanguage("give at least one language code, e.g. en,bn,so")
    unknown = [code for code in wanted if code not in known]
    if unknown:
        raise UnknownLanguage(
            f"no catalogue file for {', '.join(unknown)}: the languages are "
            f"{', '.join(every())}")
    chosen = _ordered(wanted)
    if default is not None and default not in chosen:
        raise UnknownLanguage(
            f"the default language {default!r} must be one the bank offers "
            f"({', '.join(chosen)})")
    return chosen, default if default is not None else chosen[0]


def effective(code: str | None, offered_codes: tuple[str, ...], default: str) -> str:
    """The language a member reads: their own when the bank offers it, else the default."""
    return code if code and code in offered_codes else default


def own_name(code: str) -> str:
    """The language's name in itself ("বাংলা", "Soomaali"); the code if it has no file."""
    language = catalogue.languages().get(code)
    if language is not None and language.name != code:
        return language.name
    return NAMES.get(code, (code, code))[0]


def choices(offered_codes: tuple[str, ...]) -> str:
    """``"1 English, 2 বাংলা, 3 Soomaali"``: the numbered list, each by its own name."""
    return ", ".join(f"{number} {own_name(code)}"
                     for number, code in enumerate(offered_codes, start=1))


def chosen(words: str, offered_codes: tuple[str, ...]) -> str | None:
    """The offered language a member chose: by its number ("3"), its own name ("Soomaali"),
    another name ("Somali") or its code ("so"); None otherwise."""
    word = words.strip().strip(".!,;:").strip()
    if word.isdecimal():
        number = int(word)
        return offered_codes[number - 1] if 1 <= number <= len(offered_codes) else None
    return named(word, offered_codes)


def named(words: str, codes: Iterable[str] | None = None) -> str | None:
    """The language ``words`` names, among ``codes`` (every one with a file if None)."""
    known = catalogue.languages()
    among = {code: known[code] for code in (codes if codes is not None else known)
             if code in known}
    word = words.strip().strip(".!,;:").strip()
    if not word or not among:
        return None
    found = catalogue.by_name(word, among)
    if found is None:
        wanted = word.casefold()
        found = next((code for code in among
                      if wanted in {n.casefold() for n in NAMES.get(code, ())}), None)
    return found
