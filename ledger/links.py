"""Links in members' words: what counts as one, and taking them out.

A member's need reaches other members in the bank's texts (asks, introductions, reminders,
receipts). A link written there would let anyone use the bank to send a stranger somewhere
else, so texts to *other* people carry a member's words without links; what was stored, and
what the dashboard shows, is unchanged. Brokers' own words (broadcasts, recorded hours) are
theirs to write.

A link, in any mix of capitals, is:

- anything with a scheme: ``http://…``, ``HTTPS://…``, ``hxxp://…``, ``ftp://…``;
- ``www.`` and what follows it: ``www.example.com``, ``WWW.example.org/x``;
- a domain with a path: ``bit.ly/abc``, ``tinyurl.com/x``, ``example.com/path``, ``evil.it/x``;
- a bare domain ending in a top-level domain of ``LINK_DOMAINS`` (those short links and
  spam use, none of them an everyday word): ``example.com``, ``evil.co.uk``, ``bit.ly``;
- an e-mail address, which phones make a link too.

Not links: words run together at a full stop, as texts often have ("clinic.Thanks",
"Tuesday.It", "e.g.", "5.30pm"), and dots spelled out or bracketed ("example dot com",
"example[.]com"), which no phone opens with a tap.
"""

from __future__ import annotations

import re

LINK_DOMAINS = (
    "com", "net", "org", "info", "biz", "io", "co", "uk", "ly", "gl", "gd", "me", "cc", "tk",
    "xyz", "app", "link", "site", "online", "top", "ru", "cn", "de", "fr", "eu", "us", "ie",
    "nl", "au", "ca", "tv", "gg", "ws", "su", "pw", "cf", "ml", "ga", "gq", "ai", "vu", "sh",
)
# Dots phones accept in a domain: the full stop and its ideographic and full-width forms.
_DOT = "[.\u3002\uff0e\uff61]"
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_DOMAIN = rf"(?:{_LABEL}{_DOT})+"
# The rest of a link, up to a space or a comma, leaving punctuation that ends a sentence or
# a bracket.
_REST = r"""[^\s,]*?(?=[)\]}>.;:!?'"]*(?:[\s,]|$))"""
_LINK = re.compile(
    rf"""(?<![\w@.-])(?:
        [^\W\d_][\w+.-]*:/+{_REST}                              # a scheme: http://
      | www\d*{_DOT}{_REST}                                     # www.
      | [\w.+-]+@{_DOMAIN}[^\W\d_]{{2,}}(?![\w-])               # an e-mail address
      | {_DOMAIN}[^\W\d_]{{2,24}}/{_REST}                       # a domain with a path
      | {_DOMAIN}(?:{"|".join(LINK_DOMAINS)})(?![\w-])(?:[:/?#]{_REST})?  # example.com
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]|\{\s*\}|<\s*>")
_SPACE_BEFORE_MARK = re.compile(r"\s+([,.;:!?)\]}>])")
# Marks left doubled, or before a closing bracket, where a link was.
_LEFT_MARKS = re.compile(r"([,;:])[,;:]+|[,;:]+(?=[)\]}>])")
_CLOSING = {")": "(", "]": "[", "}": "{", ">": "<"}


def without_links(text: str | None) -> str:
    """``text`` with every link taken out and what is left tidied ("a lift, see." from "a
    lift, see www.example.com."); empty if nothing but links and punctuation was there."""
    if not text or _LINK.search(text) is None:
        return text or ""
    kept = _EMPTY_BRACKETS.sub(" ", _LINK.sub(" ", text))
    kept = _SPACE_BEFORE_MARK.sub(r"\1", " ".join(_balanced(kept).split()))
    kept = _LEFT_MARKS.sub(lambda mark: mark.group(1) or "", kept).strip(" ,;:-/|")
    return kept if any(ch.isalnum() for ch in kept) else ""


def _balanced(text: str) -> str:
    """Without closing brackets whose opening one went with a link."""
    kept: list[str] = []
    opened: list[str] = []
    for ch in text:
        if ch in _CLOSING:
            if _CLOSING[ch] not in opened:
                continue
            opened.remove(_CLOSING[ch])
        elif ch in _CLOSING.values():
            opened.append(ch)
        kept.append(ch)
    return "".join(kept)
