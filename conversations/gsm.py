"""SMS encoding: GSM-7 characters, UCS-2 fall-back, and segment counts.

One character outside GSM-7 (a curly quote, an emoji) makes the whole text UCS-2: 70
characters a segment instead of 160. ``to_gsm`` swaps the usual offenders for plain ones.
"""

from __future__ import annotations

import unicodedata

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "^{}\\[~]|€\f"
_BASIC = frozenset(GSM7_BASIC)
_EXTENDED = frozenset(GSM7_EXTENDED)

_REPLACEMENTS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2022": "-",
}


def to_gsm(text: str) -> str:
    """Replace typographic characters that would force UCS-2 with their GSM-7 look-alikes."""
    return "".join(_REPLACEMENTS.get(ch, ch) for ch in text)


def is_gsm7(text: str) -> bool:
    return all(ch in _BASIC or ch in _EXTENDED for ch in text)


def segments(text: str) -> int:
    """How many SMS segments ``text`` costs."""
    if is_gsm7(text):
        length = sum(2 if ch in _EXTENDED else 1 for ch in text)
        single, multi = 160, 153
    else:
        # UCS-2 counts UTF-16 code units: an emoji outside the BMP takes two.
        length = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if length <= single:
        return 1
    return -(-length // multi)


# Letters GSM-7 lacks whose nearest plain form Unicode decomposition does not give.
_NEAREST = {
    "ı": "i", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th",
    "Þ": "Th", "œ": "oe", "Œ": "OE", "ŧ": "t", "ħ": "h", "ĸ": "k", "ŋ": "ng",
}


def nearest_gsm(text: str) -> str:
    """Letters outside GSM-7 in their nearest GSM-7 form, as carriers' smart encoding does:
    ``"Zoë Ayşe Yılmaz, Siân, Łucja"`` → ``"Zoe Ayse Yilmaz, Sian, Lucja"``. Characters with no
    such form (Bengali, emoji) stay as they are."""
    out = []
    for ch in to_gsm(text):
        if ch in _BASIC or ch in _EXTENDED:
            out.append(ch)
            continue
        plain = _NEAREST.get(ch)
        if plain is None:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch)
                           if not unicodedata.combining(c))
            plain = base if base and is_gsm7(base) else ch
        out.append(plain)
    return "".join(out)


def cheapest(text: str) -> str:
    """The text as sent: exactly as written when that costs no more segments, else with
    letters outside GSM-7 in their nearest GSM-7 form (docs/TRANSLATING.md, "Spelling and
    cost"). A Bengali text stays Bengali: writing it plainly would not make it cheaper."""
    if text.isascii():  # most texts: nothing to write plainly (and this is on every reply)
        return text
    plain = nearest_gsm(text)
    return plain if segments(plain) < segments(text) else text
