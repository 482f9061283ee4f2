"""Reading a text: the first word is the command, forgiving case, punctuation and typos.

``parse("Balence?")`` → ``Command("BALANCE", "")``. Carrier keywords (STOP, START, HELP and
the other opt-out words) count only as a single word, as Twilio and carriers read them, and
are never guessed from a typo: a member must never be opted out by accident. "STOP" (and
STOPALL, UNSUBSCRIBE, OPTOUT) followed by other words still opts out: "Stop please" is clear.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from rapidfuzz.distance import OSA

MAX_TEXT = 1600

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
# "Stop please" is as clear as "STOP"; "End of the road" is not.
OPT_OUT_LEADING_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "OPTOUT"})
CARRIER_WORDS = OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS

# Canonical command → other spellings and short forms members use.
ALIASES: dict[str, tuple[str, ...]] = {
    "JOIN": ("REGISTER", "SIGNUP", "ENROL", "ENROLL"),
    "BALANCE": ("BAL", "BALANCES", "CREDITS"),
    "PROFILE": ("ME", "DETAILS", "MYDETAILS"),
    "LEAVE": ("LEAVING",),
    "MENU": ("COMMANDS", "OPTIONS", "HI", "HELLO", "HEY"),
    "SKIP": ("NEXT", "PASS"),
    "YES": ("Y", "YEP", "YEAH", "CONFIRM"),
    "NO": ("N", "NOPE"),
    "DONE": ("HELPED", "GAVE"),
    "GIVE": ("DONATE",),
    "STATEMENT": ("HISTORY", "STATEMENTS", "STMT"),
    "MORE": (),
    "RECORD": (),
    "OFFER": ("OFFERING", "CANOFFER"),
    "NEED": ("NEEDS", "REQUEST"),
    "MINE": ("POSTS", "MYPOSTS"),
    "CLOSE": ("WITHDRAW",),
    "RENEW": ("KEEP",),
    "NAME": (),
    "AREA": (),
    "SKILLS": ("SKILL",),
    "FREE": ("AVAILABILITY",),
    # Brokers. CREDIT alone (or with words) still answers a member's balance.
    "BROADCAST": ("ANNOUNCE",),
    "WHO": (),
    "CREDIT": (),
    "APPROVE": (),
    "HOLD": (),
    "INTRO": ("INTRODUCE",),
    # Care (app.care.away): LEAVE is confirmed with LEAVE NOW; AWAY/BACK pause and resume.
    "AWAY": ("PAUSE",),
    "BACK": ("RESUME",),
    "OK": ("OKAY",),
    # A shared phone: the other person is texting now (app/care/offline.py).
    "SWITCH": ("SWAP",),
    # Care: a member asks for a person (app.care.inbox).
    "TALK": (),
    # Languages (conversations.languages): LANG lists them, LANG 3 or LANG Somali chooses.
    "LANG": ("LANGUAGE", "LANGUAGES"),
}
# Words that are not commands in their own right: an area or a skill might be "Next door".
# Nor is anything that changes the record: "Weaving" or "Reading" must never mean LEAVE.
_NOT_GUESSED = frozenset(
    {"SKIP", "NAME", "AREA", "SKILLS", "FREE", "MENU", "YES", "NO", "MORE", "DONE", "GIVE",
     "LEAVE", "RECORD", "CLOSE", "OFFER", "NEED", "RENEW", "BROADCAST", "WHO", "CREDIT",
     "APPROVE", "HOLD", "INTRO", "AWAY", "BACK", "OK", "SWITCH", "TALK", "LANG"}
)
# The words that confirm LEAVE; "Leave me alone", "Leave it" are not leaving.
LEAVE_CONFIRM = "NOW"

_LOOKUP: dict[str, str] = {}
for _command, _aliases in ALIASES.items():
    _LOOKUP[_command] = _command
    for _alias in _aliases:
        _LOOKUP[_alias] = _command
_FUZZY_TARGETS = tuple(
    (word, command) for word, command in _LOOKUP.items()
    if command not in _NOT_GUESSED and len(word) >= 4
)


@dataclass(frozen=True)
class Command:
    """A parsed text. ``name`` is ``None`` when the first word is not a command."""

    name: str | None
    args: str
    text: str
    single_word: bool
    # The first word is the command's own name, not a short form or a guessed typo.
    canonical: bool = False
    # The command was guessed from a typo ("balence").
    guessed: bool = False


def clean(text: str | None) -> str:
    """Normalise a text for reading and storing.

    Unicode NFKC (full-width letters become plain ones), control and invisible formatting
    characters (bidi overrides, zero-width joiners) removed, whitespace collapsed, and cut to
    the 1,600 characters an SMS can hold.
    """
    if not text:
        return ""
    kept = []
    for ch in text[: MAX_TEXT * 2]:
        if ch in "\t\n\r":
            kept.append(" ")
        elif unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"):
            kept.append(ch)
    # Invisible characters go first, so what is left normalises cleanly (and cleaning twice
    # changes nothing).
    text = unicodedata.normalize("NFKC", "".join(kept))
    return " ".join(text.split())[:MAX_TEXT]


def _word(token: str) -> str:
    """The letters of a first word: ``"Balance?"`` → ``"BALANCE"``."""
    return "".join(ch for ch in token if ch.isalnum()).upper()


def command_for(word: str) -> str | None:
    """The command a single word stands for, guessing typos of longer commands."""
    if not word:
        return None
    if word in CARRIER_WORDS:
        return word
    exact = _LOOKUP.get(word)
    if exact is not None:
        return exact
    if len(word) < 4 or not word.isalpha():
        return None
    allowed = 1 if len(word) < 7 else 2
    best: tuple[int, str] | None = None
    for target, command in _FUZZY_TARGETS:
        if abs(len(target) - len(word)) > allowed:
            continue
        distance = OSA.distance(word, target, score_cutoff=allowed)
        if distance <= allowed and (best is None or distance < best[0]):
            best = (distance, command)
    return best[1] if best else None


def parse(raw: str | None) -> Command:
    text = clean(raw)
    if not text:
        return Command(None, "", "", single_word=False)
    first, _, rest = text.partition(" ")
    word = _word(first)
    single = not rest
    name = command_for(word)
    if name in CARRIER_WORDS and not single and name not in OPT_OUT_LEADING_WORDS:
        # "Help with shopping" is an answer, not a request for help.
        name = None
    if name in ("LEAVE", "BACK", "OK") and not single and _word(rest) != LEAVE_CONFIRM:
        # Only LEAVE (or LEAVE NOW), BACK and OK alone are commands: "Leave me alone",
        # "Back pain again", "Ok thanks" are words for a person, not a change of membership.
        name = None
    return Command(
        name, rest.strip(), text, single_word=single, canonical=name == word,
        guessed=name is not None and word not in _LOOKUP and word not in CARRIER_WORDS,
    )
