"""Rendering the texts the bank sends, from the message catalogue, in a member's language.

The texts themselves are in ``conversations/locale/`` (gettext: ``messages.pot`` in English,
``<code>.po`` for each other language; ``conversations/catalogue.py`` reads them). Texts are
never assembled from fragments, so each can be translated whole. Keep English texts within one
SMS segment (160 GSM-7 characters) with realistic names filled in; ``tests/test_texts.py``
checks every one in every language. Never ask a member to send STOP, START, HELP or YES alone
for anything else: carriers and Twilio act on those words themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Formatter

from babel.lists import format_list
from babel.numbers import format_decimal

from conversations import catalogue
from conversations.gsm import to_gsm

DEFAULT_LANGUAGE = catalogue.SOURCE

# Every language's usable texts by key (the "other" form of a plural entry), English first:
# for code that lists or searches the texts rather than sends one.
CATALOGUE: dict[str, dict[str, str]] = {
    code: {key: entry.forms[-1] for key in language.entries
           if (entry := (language.entries[key] if code == DEFAULT_LANGUAGE
                         else catalogue.usable(code, key))) is not None}
    for code, language in catalogue.languages().items()
}


@dataclass(frozen=True)
class Hours:
    """A number of hours with its unit, rendered in the text's language ("1 hour", "2 hours")."""

    minutes: int


@dataclass(frozen=True)
class Term:
    """A catalogue text used as a value in another ("the community fund", "help"), written in
    the language of the text it goes into: one value, told to two members in two languages,
    reads in each one's own."""

    key: str
    values: Mapping[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return render(self.key, DEFAULT_LANGUAGE, **self.values)


class MissingText(KeyError):
    """A catalogue key or placeholder that does not exist."""


def render(key: str, language: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text for ``key`` in ``language`` (English when not translated), values filled in.

    A plural entry takes its form from the number in ``n`` or ``count`` by the language's
    own rule; ``Hours`` values are written with their unit in the language.
    """
    entry = catalogue.usable(language, key)
    if entry is None:
        entry = catalogue.english().entries.get(key)
        language = DEFAULT_LANGUAGE
        if entry is None:
            raise MissingText(key)
    template = _form(entry, language, params) if entry.plural else entry.forms[0]
    values = {name: in_language(value, language) for name, value in params.items()}
    try:
        return to_gsm(template.format_map(_Strict(values)))
    except KeyError as exc:
        raise MissingText(f"{key}: missing value {exc}") from None


def _form(entry: catalogue.Entry, language: str, params: Mapping[str, object]) -> str:
    number = params.get("n", params.get("count"))
    if isinstance(number, Number):
        number = number.value
    try:
        value = float(str(number))
    except ValueError:
        raise MissingText(f"{entry.key}: needs a number in n or count") from None
    if not value.is_integer():
        return entry.forms[-1]
    return entry.forms[catalogue.languages()[language].plural(abs(int(value)))]


@dataclass(frozen=True)
class Number:
    """A number as a text shows it (``"1,5"`` in Polish) with the value that picks a plural."""

    value: float
    shown: str

    def __format__(self, spec: str) -> str:
        return self.shown

    def __str__(self) -> str:
        return self.shown


def hours_number(minutes: int, language: str = DEFAULT_LANGUAGE) -> Number:
    """``-90`` → ``-1.5`` (``-1,5`` in Polish and Turkish): the way the language writes it."""
    value = minutes / 60
    if minutes % 60 == 0:
        return Number(value, str(minutes // 60))
    shown = format_decimal(value, format="0.##", locale=_babel_locale(language))
    return Number(value, shown.replace("\u2212", "-"))


def _babel_locale(language: str) -> str:
    return language if language in catalogue.languages() else DEFAULT_LANGUAGE


def in_language(value: object, language: str) -> object:
    """A value as a text in ``language`` shows it: hours with their unit, a ``Term`` in the
    language's words; anything else as it is (a member's own words stay as they wrote them)."""
    if isinstance(value, Hours):
        return _hours(value, language)
    if isinstance(value, Term):
        return render(value.key, language, **value.values)
    return value


def _hours(value: Hours, language: str) -> str:
    number = hours_number(value.minutes, language)
    key = "hours" if value.minutes % 60 == 0 else "hours_part"
    return render(key, language, n=number)


def hours_text(minutes: int, language: str = DEFAULT_LANGUAGE) -> str:
    """``90`` → ``"1.5 hours"`` in the language."""
    return _hours(Hours(minutes), language)


def listed(items: Sequence[str], language: str = DEFAULT_LANGUAGE) -> str:
    """Items as the language lists them: ``"Ana, Ben and Kemi"``, ``"Ana, Ben i Kemi"``
    (Polish). Never joined by hand with ", " or " and ", which a translator cannot change."""
    if not items:
        return ""
    locale = "en_GB" if _babel_locale(language) == DEFAULT_LANGUAGE else _babel_locale(language)
    return format_list(list(items), locale=locale)


def placeholders(key: str, language: str = DEFAULT_LANGUAGE) -> set[str]:
    entry = catalogue.usable(language, key) or catalogue.english().entries[key]
    found: set[str] = set()
    for form in entry.forms:
        found |= {field for _, field, _, _ in Formatter().parse(form) if field}
    return found


class _Strict(dict[str, object]):
    def __init__(self, params: Mapping[str, object]) -> None:
        super().__init__(params)

    def __missing__(self, key: str) -> object:
        raise KeyError(key)
