"""Reading a text: the first word is the command, forgiving case, punctuation and typos.

``parse("Balence?")`` → ``Command("BALANCE", "")``. Carrier keywords (STOP, START, HELP and
the other opt-out words) count only as a single word, as Twilio and carriers read them, and
are never guessed from a typo: a member must never be opted out by accident. "STOP" (and
STOPALL, UNSUBSCRIBE, OPTOUT) followed by other words still opts out: "Stop please" is clear.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

from rapidfuzz.distance import OSA

from conversations import catalogue

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
# Of those, the ones a typo may still be read as once the member says so: "offr lifts" is
# answered "Did you mean OFFER lifts? Reply 1 for yes", never acted on at once. Never even
# asked: LEAVE, BACK, OK, YES, NO (a lone YES answers a carrier's question and confirms
# hours), SKIP and the profile setters (everyday words in answers), and the carrier words.
ASKED = frozenset(
    {"MENU", "DONE", "GIVE", "CLOSE", "OFFER", "NEED", "RENEW", "TALK", "RECORD", "BROADCAST",
     "APPROVE", "INTRO"}
)
# Real misspellings and short forms members send (from typing on small keys): read as the
# command when it only shows something (or is JOIN, as typos of it always were), asked
# about otherwise. 4-letter commands that change something (NEED, DONE, GIVE) are guessed
# only from this list: the words one letter away from them ("dont", "gone", "feed", "five")
# are everyday words.
MISSPELLINGS: dict[str, str] = {
    **dict.fromkeys(("BALLANCE", "BALANSE", "BLANCE", "BALNCE", "BALLENCE", "BALANC",
                     "BAKANCE", "BALAMCE", "BLANACE", "BALANS", "BALLANS", "BLNC", "BALS"),
                    "BALANCE"),
    **dict.fromkeys(("PROFIL", "PROFLIE", "PORFILE", "PRFILE", "PROFIEL", "MYPROFILE"),
                    "PROFILE"),
    **dict.fromkeys(("STATMENT", "STATEMNT", "STAMENT", "STATEMANT", "STATEMET", "STMNT",
                     "STATMNT"), "STATEMENT"),
    **dict.fromkeys(("JION", "JOINN", "JOIM", "JOIB", "JOING"), "JOIN"),
    # "hlep" is never HELP (a carrier word is never guessed, and Twilio does not answer
    # "hlep"): it is the menu, which also says how to reach a person.
    **dict.fromkeys(("HLEP", "HALP", "HEPL", "HELO", "MENUE", "MEUN", "MNEU", "MENI",
                     "COMANDS", "COMMANDSS", "OPTOINS"), "MENU"),
    **dict.fromkeys(("OFFR", "OFER", "OFFFER", "OFFRE", "OFR", "OFFET", "OFFE"), "OFFER"),
    **dict.fromkeys(("NED", "NEDD", "NEEED", "NEDE", "NEEF", "NEES", "NEEDD"), "NEED"),
    **dict.fromkeys(("DONR", "DNE", "DOEN", "DPNE", "DUN"), "DONE"),
    **dict.fromkeys(("GIV", "GVE", "GIEV", "GIVR", "GIBE"), "GIVE"),
    **dict.fromkeys(("CLSOE", "CLOS", "COLSE", "CLODE"), "CLOSE"),
    **dict.fromkeys(("RENW", "RENWE", "REENW", "RENEWW"), "RENEW"),
    **dict.fromkeys(("TLAK", "TALKK", "TAKL"), "TALK"),
}
# Commands that only show something, or JOIN: a typo of one is acted on at once.
_SURE_WHEN_GUESSED = frozenset({"BALANCE", "PROFILE", "STATEMENT", "MINE", "JOIN", "MENU"})
# The word that confirms LEAVE in English; "Leave me alone", "Leave it" are not leaving. A
# member's language has its own (the catalogue's ``word_now``: "LEAVE TERAZ", "KABAX HADDA").
LEAVE_CONFIRM = "NOW"
# ``parse(text, ANY_LANGUAGE)``: someone the bank does not know yet may write in any of
# the bank's languages.
ANY_LANGUAGE = "*"


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
    # A guess to ask the member about before acting on it ("offr" → "Did you mean OFFER?").
    uncertain: bool = False


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


def ascii_digits(text: str) -> str:
    """Every decimal digit as an ASCII one: ``"YES ১৭"`` → ``"YES 17"``, ``"١٫٥"`` stays
    readable as ``"1٫5"`` (only digits change)."""
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(ch)) if not ch.isascii() and unicodedata.decimal(ch, None)
        is not None else ch
        for ch in text
    )


# Letters without a decomposition that people write plainly on phones without them.
_PLAIN = str.maketrans({"ł": "l", "đ": "d", "ø": "o", "ı": "i", "ß": "ss"})


def fold(word: str) -> str:
    """A word as it is compared: Turkish İ and ı are i (``"BAKİYE"``, ``"bakıye"`` and
    ``"bakiye"`` are one word), case is folded, and accents on Latin letters are dropped
    (``"saldo"`` = ``"sáldo"``); marks that are part of a letter in other scripts (Bengali
    vowel signs) are kept. In capitals, as the commands are named."""
    word = word.replace("İ", "i").casefold().translate(_PLAIN)
    plain = "".join(ch for ch in unicodedata.normalize("NFD", word)
                    if not unicodedata.combining(ch))
    if plain.isascii():
        return plain.upper()
    return unicodedata.normalize("NFC", word).upper()


def _letters(token: str) -> str:
    """The letters, digits and marks of a word, without its punctuation."""
    return "".join(ch for ch in token if ch.isalnum() or unicodedata.category(ch)[0] == "M")


def _word(token: str) -> str:
    """The letters of a first word, folded: ``"Balance?"`` → ``"BALANCE"``."""
    return fold(_letters(token))


def _is_word(word: str) -> bool:
    return all(ch.isalpha() or unicodedata.category(ch)[0] == "M" for ch in word)


@dataclass(frozen=True)
class Table:
    """The command words of one language (and of English, which always works), built once."""

    exact: dict[str, str]
    # Words a typo may be read as: (word, command).
    targets: tuple[tuple[str, str], ...]
    # Words two commands claim (across the languages read together): read as neither.
    collisions: tuple[str, ...] = ()
    # Each command's own name, in English and (the first word listed) in each language.
    names: frozenset[str] = frozenset()


def catalogue_words(language: object, command: str) -> tuple[str, ...]:
    """The words a language file lists for ``command`` (entry ``command_<name>``)."""
    entries = getattr(language, "entries", {})
    entry = entries.get(f"command_{command.lower()}")
    if entry is None or not entry.forms or not entry.forms[0]:
        return ()
    return tuple(w for w in (fold(_letters(part)) for part in entry.forms[0].split(",")) if w)


def build_table(codes: tuple[str, ...], aliases: dict[str, tuple[str, ...]] | None = None,
                languages: dict[str, object] | None = None) -> Table:
    """The words of English and of the languages ``codes``. A word that would mean two
    commands, or a carrier word (STOP, HELP…) listed by a language, is left out and named
    in ``collisions`` (``tests/test_forgiving.py`` fails on any)."""
    if aliases is None:
        aliases = ALIASES
    if languages is None:
        languages = dict(catalogue.languages())
    exact: dict[str, str] = {}
    owners: dict[str, set[str]] = {}
    carriers: set[str] = set()
    names = {fold(command) for command in aliases}
    for command, words in aliases.items():
        for word in (command, *words):
            owners.setdefault(fold(word), set()).add(command)
    for code in codes:
        language = languages.get(code)
        if language is None or code == "en":
            continue
        for command in aliases:
            listed = catalogue_words(language, command)
            names.update(listed[:1])
            for word in listed:
                if word in CARRIER_WORDS:
                    carriers.add(f"{code}:{word}")
                    continue
                owners.setdefault(word, set()).add(command)
    collisions = sorted(carriers)
    for word, commands in owners.items():
        if len(commands) == 1:
            exact[word] = next(iter(commands))
        else:
            collisions.append(f"{word}: {', '.join(sorted(commands))}")
    targets = tuple(
        (word, command) for word, command in exact.items()
        if (command not in _NOT_GUESSED or (command in ASKED and len(word) >= 5))
        and len(word) >= 4 and _is_word(word)
    )
    return Table(exact, targets, tuple(collisions), frozenset(names))


@catalogue.derived
@cache
def table(language: str = "en") -> Table:
    """The table for a member writing ``language`` (or any language: ``ANY_LANGUAGE``)."""
    if language == ANY_LANGUAGE:
        return build_table(tuple(catalogue.languages()))
    return build_table((language,))


def read_word(word: str, language: str = "en") -> tuple[str | None, bool, bool]:
    """(command, guessed, uncertain) for a folded first word."""
    if not word:
        return None, False, False
    words = table(language)
    exact = words.exact.get(word)
    if exact is not None:
        return exact, False, False
    misspelt = MISSPELLINGS.get(word)
    if misspelt is not None:
        return misspelt, True, misspelt not in _SURE_WHEN_GUESSED
    if len(word) < 4 or not _is_word(word):
        return None, False, False
    allowed = 1 if len(word) < 7 else 2
    best: tuple[int, str] | None = None
    tied = False
    for target, command in words.targets:
        if abs(len(target) - len(word)) > allowed:
            continue
        asked = command in _NOT_GUESSED
        if asked and target[:2] != word[:2]:
            continue  # typos that need asking keep their first letters: "chose" is no CLOSE
        limit = 1 if asked else allowed
        distance = OSA.distance(word, target, score_cutoff=limit)
        if distance > limit:
            continue
        if best is None or distance < best[0]:
            best, tied = (distance, command), False
        elif distance == best[0] and command != best[1]:
            tied = True
    if best is None or tied:
        return None, False, False
    command = best[1]
    return command, True, command in _NOT_GUESSED


def command_for(word: str, language: str = "en") -> str | None:
    """The command a single word stands for, guessing typos of longer commands."""
    if word in CARRIER_WORDS:
        return word
    return read_word(word, language)[0]


def _confirms(word: str, language: str) -> bool:
    """Whether the words after LEAVE are, all of them, the word that confirms it: NOW, or the
    member's language's (another language's is not: "LEAVE TERAZ" from a Somali member)."""
    if word == LEAVE_CONFIRM:
        return True
    from conversations import words

    if language == ANY_LANGUAGE:
        return word in words.every_language(words.NOW)
    return word in words.words(words.NOW, language)


def written_in(raw: str | None, command: str, codes: tuple[str, ...]) -> str | None:
    """The one language of ``codes`` whose own word for ``command`` starts ``raw`` ("KUBIIR
    Sam" is Somali), or None: for an English word, a typo, or a word several languages share."""
    text = clean(raw)
    word = fold(_letters(text.partition(" ")[0]))
    if not word or word in {fold(w) for w in (command, *ALIASES.get(command, ()))}:
        return None
    found = [code for code in codes if code != "en" and code in catalogue.languages()
             and word in catalogue_words(catalogue.languages()[code], command)]
    return found[0] if len(found) == 1 else None


def _foreign_lang(word: str, rest: str) -> bool:
    """Whether another language's word for LANG (LUQAD, ভাষা, DIL) is meant as LANG: a member
    left in a language they do not read still knows their own word for it, so the way out
    is never only in a language they cannot read. Alone, or before a number or a language's
    name ("LUQAD 3", "DIL Türkçe"); "Dil needs a lift" is a person's words, for a broker."""
    if table(ANY_LANGUAGE).exact.get(word) != "LANG":
        return False
    after = ascii_digits(rest.strip())
    if not after or after.isdecimal():
        return True
    from conversations import languages

    return languages.named(after) is not None


def parse(raw: str | None, language: str = "en") -> Command:
    """Read a text from a member writing ``language``: English command words always work, and
    so do the language's own (from the catalogue), with the same typo tolerance."""
    text = clean(raw)
    if not text:
        return Command(None, "", "", single_word=False)
    first, _, rest = text.partition(" ")
    letters = _letters(first)
    single = not rest
    shouted = letters.upper()
    word = fold(letters)
    if letters.isascii() and shouted in CARRIER_WORDS:
        name: str | None = shouted
        guessed = uncertain = False
        word = shouted
    elif word in CARRIER_WORDS:
        # "İNFO", "STÓP": not the carrier's word, and never guessed as anything else.
        name, guessed, uncertain = None, False, False
    else:
        name, guessed, uncertain = read_word(word, language)
    foreign_lang = name is None and _foreign_lang(word, rest)
    if foreign_lang:
        name = "LANG"
    if name in CARRIER_WORDS and not single and name not in OPT_OUT_LEADING_WORDS:
        # "Help with shopping" is an answer, not a request for help.
        name = None
    if name == "MENU" and guessed and not single:
        # "hlep with the shopping" is words, as "Help with shopping" is.
        name = None
    if name in ("LEAVE", "BACK", "OK") and not single and not _confirms(_word(rest), language):
        # Only LEAVE (or LEAVE NOW), BACK and OK alone are commands: "Leave me alone",
        # "Back pain again", "Ok thanks" are words for a person, not a change of membership.
        name = None
    return Command(
        name, ascii_digits(rest.strip()), text, single_word=single,
        canonical=name is not None and not guessed and (
            name == word or word in table(language).names or foreign_lang),
        guessed=name is not None and guessed,
        uncertain=name is not None and uncertain,
    )
