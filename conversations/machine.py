"""The conversation state machine.

``step(state, facts, text)`` decides what the bank answers and what should happen, with no
I/O: the caller loads the dialog state (Redis) and the member's facts (SQL), carries out the
effects, sends the replies and saves the new state.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass, field, replace

from conversations import care, forgiving, languages
from conversations import words as after
from conversations.commands import (
    ANY_LANGUAGE,
    HELP_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    Command,
    clean,
    parse,
    written_in,
)
from conversations.texts import Hours, Term, render
from ledger.errors import InvalidHours
from ledger.hours import parse_hours
from ledger.links import without_links
from ledger.phones import InvalidNumber, member_number, normalise

# The questions asked after JOIN, in order, with the profile field each answer fills.
QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("skills", "skills", "joined"),
    ("area", "area", "ask_area"),
    ("availability", "availability", "ask_availability"),
)
FIELD_LIMITS = {"name": 40, "area": 80, "skills": 300, "availability": 160, "broadcast": 480}
SETTERS = {"NAME": "name", "AREA": "area", "SKILLS": "skills", "FREE": "availability"}


@dataclass(frozen=True)
class State:
    """What the dialog is waiting for; kept in Redis with an expiry."""

    question: str | None = None
    # The statement page last shown, so that MORE shows the next one.
    statement_page: int | None = None
    # A shared phone: the member chosen as texting (kept for the rest of the dialog), and
    # the text that came before the choice, carried on with once it is made.
    speaker: int | None = None
    waiting_text: str | None = None
    # A guess to confirm ("Did you mean OFFER lifts? Reply 1 for yes") or a need written as
    # a sentence ("Reply 1 to post it"): the text to act on if the member replies 1, and the
    # member it belongs to. Kept for the next text only (and a few minutes: app.inbound).
    confirm: str | None = None
    confirm_for: int | None = None

    @property
    def empty(self) -> bool:
        return (self.question is None and self.statement_page is None
                and self.speaker is None and self.waiting_text is None
                and self.confirm is None)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> State:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        question, page = data.get("question"), data.get("statement_page")
        speaker, waiting = data.get("speaker"), data.get("waiting_text")
        confirm, confirm_for = data.get("confirm"), data.get("confirm_for")
        if not (isinstance(confirm, str) and type(confirm_for) is int and 0 < confirm_for < 2**31):
            confirm = confirm_for = None
        return cls(
            question=question if isinstance(question, str) and (
                question in _STATE_QUESTIONS or question == SPEAKER) else None,
            statement_page=page if type(page) is int and 0 <= page < 10_000 else None,
            speaker=speaker if type(speaker) is int and 0 < speaker < 2**31 else None,
            waiting_text=waiting[:2000] if isinstance(waiting, str) else None,
            confirm=confirm[:2000] if confirm is not None else None,
            confirm_for=confirm_for,
        )


@dataclass(frozen=True)
class MemberFacts:
    id: int
    name: str
    status: str
    role: str = "member"
    balance_minutes: int = 0
    area: str | None = None
    skills: str | None = None
    availability: str | None = None
    language: str = "en"
    # Care (app.care.away): paused by AWAY; a check-in text sent and not yet answered.
    away: bool = False
    check_in_pending: bool = False


@dataclass(frozen=True)
class Facts:
    """What the step needs to know about the sender and their bank, read before the step."""

    bank_name: str
    member: MemberFacts | None = None
    opted_out: bool = False
    has_media: bool = False
    require_approval: bool = False
    # Region for numbers members write without a country code.
    region: str = "GB"
    # Twilio (on SMS long codes, with its opt-out management on) answers STOP, START and HELP
    # itself: the bank then acts on them silently, so the member never gets two answers.
    carrier_answers_keywords: bool = False
    # A phone two current members share: both (``member`` is the one chosen, or None until
    # the sender says who they are). Empty for an ordinary number.
    sharing: tuple[MemberFacts, ...] = ()
    # The languages the bank offers (``conversations.languages``, in the choices' order) and
    # the one strangers read: a new member is asked which they want when there are several.
    languages: tuple[str, ...] = ("en",)
    default_language: str = "en"


@dataclass(frozen=True)
class Reply:
    key: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Join:
    name: str


@dataclass(frozen=True)
class SetProfile:
    field: str
    value: str | None


@dataclass(frozen=True)
class SetLanguage:
    """``LANG 3`` / ``LANG Somali``, or the answer to the language question after JOIN: the
    member reads the bank's texts in ``code`` from now on (one the bank offers)."""

    code: str


@dataclass(frozen=True)
class AskLeave:
    """``LEAVE``: nobody leaves yet; the member is asked to reply ``LEAVE NOW``."""


@dataclass(frozen=True)
class Leave:
    """``LEAVE NOW`` after ``LEAVE``: leaves, if the question is still fresh (checked in SQL)."""


@dataclass(frozen=True)
class GoAway:
    """``AWAY`` / ``AWAY 3 weeks`` / ``AWAY until 24 Dec``: ``words`` read with the bank's
    calendar by ``app.care.away``."""

    words: str


@dataclass(frozen=True)
class ComeBack:
    pass


@dataclass(frozen=True)
class ShowAway:
    """Added to PROFILE for a member who is away: until when, with the bank's calendar."""


@dataclass(frozen=True)
class OptOut:
    pass


@dataclass(frozen=True)
class OptIn:
    pass


@dataclass(frozen=True)
class ReportHours:
    """``DONE 2 Ana gardening``: the sender gave ``minutes`` of help to someone named in
    ``who`` (a name or a number, followed by what the help was)."""

    minutes: int
    who: str


@dataclass(frozen=True)
class ReportOnRef:
    """``DONE 42 2``: hours given on a match or request with reference ``ref``."""

    ref: int
    minutes: int


@dataclass(frozen=True)
class Answer:
    """``YES 17`` / ``NO 17``; ``ref`` is None when the member sent the word alone."""

    ref: int | None
    yes: bool


@dataclass(frozen=True)
class Give:
    """``GIVE 2 Ana`` or ``GIVE 1 FUND``: preview a gift of hours."""

    minutes: int
    who: str


@dataclass(frozen=True)
class ShowStatement:
    page: int


@dataclass(frozen=True)
class RecordHours:
    """A broker's ``RECORD 07700900123 2 gardening``: ``who`` holds the number and the what."""

    minutes: int
    who: str


@dataclass(frozen=True)
class PostItem:
    """``OFFER lifts to the shops`` / ``NEED a lift to the clinic on Tuesday``."""

    kind: str
    text: str


@dataclass(frozen=True)
class ShowMine:
    pass


@dataclass(frozen=True)
class ClosePost:
    ref: int


@dataclass(frozen=True)
class RenewPost:
    ref: int


@dataclass(frozen=True)
class Broadcast:
    """A broker's ``BROADCAST @Brixton #gardening Seed swap Sat 2pm``."""

    text: str
    area: str | None = None
    skill: str | None = None


@dataclass(frozen=True)
class ShowWho:
    """``WHO 7``: who is coming to a broadcast activity, and how far its texts have gone."""

    ref: int


@dataclass(frozen=True)
class CreditActivity:
    """``CREDIT 7 2``: credit everyone coming; ``numbers`` names the ones to credit instead
    (phone numbers, or member numbers ``#12``)."""

    ref: int
    minutes: int
    numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetMemberStatus:
    """A broker's ``APPROVE 07700900123`` (``approve``) or ``HOLD #12``: ``phone`` holds a
    number or a member number."""

    phone: str
    approve: bool


@dataclass(frozen=True)
class Introduce:
    """A broker's ``INTRO 42``: introduce the two members of need 42 (app.care.introductions)."""

    ref: int


@dataclass(frozen=True)
class ReachPerson:
    """``TALK`` (or "can someone call me?"), or distress: the brokers on duty are told at
    once and the sender is answered with the bank's own words (its hours, its support and
    crisis lines). ``answer``: False for a number that said STOP (the brokers still hear)."""

    distress: bool
    answer: bool = True


Effect = (
    Join | SetProfile | SetLanguage | AskLeave | Leave | GoAway | ComeBack | ShowAway | OptOut
    | OptIn
    | ReportHours | ReportOnRef | Answer | Give
    | ShowStatement | RecordHours | PostItem | ShowMine | ClosePost | RenewPost | Broadcast
    | ShowWho | CreditActivity | SetMemberStatus | Introduce | ReachPerson
)


@dataclass(frozen=True)
class Outcome:
    state: State
    replies: list[Reply]
    effects: list[Effect] = field(default_factory=list)
    # How the text was read (``conversations.care.ROUTES``), kept with it for the inbox.
    route: str = care.COMMAND


_QUESTION_NAMES = {name for name, _, _ in QUESTIONS}
# LEAVE waits for LEAVE NOW: any other text cancels it.
LEAVE_QUESTION = "leave"
# After JOIN, in a bank that offers several languages: which one the member reads.
LANGUAGE_QUESTION = "language"
_STATE_QUESTIONS = _QUESTION_NAMES | {LEAVE_QUESTION, LANGUAGE_QUESTION}
# What a member may answer a check-in with, besides OK.
_ALL_WELL = frozenset({"OK", "OKAY", "OK THANKS", "OK THANK YOU", "ALL GOOD", "ALL WELL",
                       "ALL IS WELL", "IM OK", "IM FINE", "FINE", "IM OKAY", "ALL FINE"})


# The dialog question that asks who is texting from a shared phone.
SPEAKER = "speaker"


def step(state: State, facts: Facts, text: str | None) -> Outcome:
    """The answer to ``text``. From a shared phone, the bank first asks who is texting
    (``Reply 1 for Sam, 2 for Ann``), remembers the choice in the dialog state and carries
    on with the text that came before it. Choosing is a convenience, not a security
    boundary: whoever holds the phone may choose either member."""
    if len(facts.sharing) < 2:
        return _step(state, facts, text)
    cmd = parse(text, facts.member.language if facts.member else ANY_LANGUAGE)
    first, second = facts.sharing[0], facts.sharing[1]
    names: dict[str, object] = {"bank": facts.bank_name, "name": first.name,
                                "other": second.name}
    if facts.member is not None:  # chosen earlier in this dialog
        if cmd.name == "SWITCH" and not cmd.guessed:  # the other person has the phone now
            return Outcome(State(question=SPEAKER), [Reply("who_is_texting", names)])
        return _speaking(_step(state, facts, text), facts.member.id)
    if cmd.name in OPT_OUT_WORDS or cmd.name in OPT_IN_WORDS or facts.opted_out:
        return _step(State(), facts, text)  # STOP and START are the number's, whoever sent them
    if care.is_distress(cmd.text, first.language):
        # Distress is answered and reaches the brokers at once, before anyone chooses.
        return _step(State(), facts, text)
    if cmd.name == "SWITCH":
        return Outcome(State(question=SPEAKER), [Reply("who_is_texting", names)])
    if state.question == SPEAKER:
        chosen = _chosen(cmd.text, facts.sharing)
        if chosen is not None:
            as_them = replace(facts, member=chosen)
            if state.waiting_text:
                outcome = _step(State(), as_them, state.waiting_text)
            else:
                outcome = Outcome(State(), [_help(as_them, chosen)])
            return _speaking(outcome, chosen.id)
        # Not a choice: a new command is the one to carry on with once they choose (a
        # command word always wins over a pending question); other words leave the first.
        waiting = state.waiting_text
        if cmd.name is not None and not cmd.guessed:
            waiting = cmd.text[:FIELD_LIMITS["broadcast"]]
        return Outcome(State(question=SPEAKER, waiting_text=waiting),
                       [Reply("who_is_texting_again", names)])
    return Outcome(State(question=SPEAKER, waiting_text=cmd.text[:FIELD_LIMITS["broadcast"]]
                         or None), [Reply("who_is_texting", names)])


def _speaking(outcome: Outcome, member_id: int) -> Outcome:
    """The outcome with the chosen member kept in the dialog state."""
    return replace(outcome, state=replace(outcome.state, speaker=member_id))


def _chosen(text: str, sharing: tuple[MemberFacts, ...]) -> MemberFacts | None:
    """Which member a reply to "Reply 1 for Sam, 2 for Ann" chose: "1", "2", or a name."""
    word = text.strip().strip(".!,").lower()
    if word.isdecimal() and 1 <= int(word) <= len(sharing):
        return sharing[int(word) - 1]
    named = [m for m in sharing
             if word and word in (m.name.lower(), (m.name.split() or [""])[0].lower())]
    return named[0] if len(named) == 1 else None


def _step(state: State, facts: Facts, text: str | None) -> Outcome:
    # A member's own language and English; someone not (or no longer) a member, any of them.
    known = facts.member if facts.member and facts.member.status != "left" else None
    cmd = parse(text, known.language if known else ANY_LANGUAGE)
    bank = facts.bank_name
    quiet = facts.carrier_answers_keywords
    language = facts.member.language if facts.member else "en"

    if cmd.name in OPT_OUT_WORDS:
        # Said once; a number that already said STOP gets nothing more, not even this.
        silent = quiet or facts.opted_out
        replies = [] if silent else [Reply("stopped", {"bank": bank})]
        if care.is_distress(cmd.text, language):
            # "Stop, I can't go on": STOP is obeyed, and the brokers still hear.
            return Outcome(State(), replies, [OptOut(), ReachPerson(distress=True, answer=False)],
                           route=care.DISTRESS)
        return Outcome(State(), replies, [OptOut()])
    if cmd.name in OPT_IN_WORDS:
        if facts.opted_out:
            return Outcome(State(), [] if quiet else [Reply("started", {"bank": bank})], [OptIn()])
        return Outcome(State(), [] if quiet else [Reply("already_started", {"bank": bank})])
    if facts.opted_out:
        if quiet and cmd.single_word and cmd.text.strip(" .!").upper() == "YES":
            # Twilio takes a lone YES as an opt-in word too: follow it, or the two disagree.
            return Outcome(State(), [], [OptIn()])
        if care.is_distress(cmd.text, language):
            # Nothing goes to a number that said STOP, but the brokers hear of distress.
            return Outcome(state, [], [ReachPerson(distress=True, answer=False)],
                           route=care.DISTRESS)
        # Nothing goes to a number that said STOP until it says START.
        return Outcome(state, [])

    if care.is_distress(cmd.text, language):
        # Before any command or pending question: "help me I want to end it all" is read by
        # a person, never answered with a menu or "I didn't understand".
        return Outcome(State(), [], [ReachPerson(distress=True)], route=care.DISTRESS)
    member = facts.member if facts.member and facts.member.status != "left" else None
    if cmd.name in HELP_WORDS:
        if quiet:
            return Outcome(state, [])
        return Outcome(state, [_about(facts, member)])
    if not cmd.text:
        key = "picture" if facts.has_media else "empty"
        return Outcome(state, [Reply(key if member else f"{key}_stranger", {"bank": bank})])
    if member is None:
        return _stranger(facts, cmd)
    return _member(state, facts, member, cmd)


def _about(facts: Facts, member: MemberFacts | None) -> Reply:
    """HELP and INFO: what the bank is and how to reach a person (MENU lists what to send)."""
    if member is None or member.status == "pending":
        return _help(facts, member)
    return Reply("about_member", {"bank": facts.bank_name})


def _menu(facts: Facts, member: MemberFacts) -> Reply:
    """MENU: what a member can send, a line each."""
    if member.status == "pending" or member.role == "broker":
        return _help(facts, member)
    return Reply("menu_member", {"bank": facts.bank_name})


def _help(facts: Facts, member: MemberFacts | None) -> Reply:
    values: dict[str, object] = {"bank": facts.bank_name}
    if member is None:
        return Reply("help_stranger", values)
    if member.status == "pending":
        return Reply("help_pending", {**values, "name": member.name})
    return Reply("help_broker" if member.role == "broker" else "help_member", values)


# What a member still waiting for a broker's welcome may not do yet.
_NEEDS_WELCOME = frozenset(
    {"DONE", "GIVE", "YES", "NO", "RECORD", "STATEMENT", "MORE", "OFFER", "NEED", "MINE",
     "CLOSE", "RENEW", "BROADCAST", "WHO", "APPROVE", "HOLD", "INTRO"}
)
# Commands only a bank's brokers may use.
BROKER_COMMANDS = frozenset({"RECORD", "BROADCAST", "WHO", "CREDIT", "APPROVE", "HOLD",
                             "INTRO"})


def _stranger(facts: Facts, cmd: Command) -> Outcome:
    bank = facts.bank_name
    former = facts.member  # a member who left, or None
    if cmd.name == "TALK" or (cmd.name != "JOIN" and care.wants_a_person(cmd.text)):
        # Kept in the inbox; a broker can be in touch once they have joined.
        return Outcome(State(), [Reply("care_talk_stranger", {"bank": bank})],
                       route=care.TALK)
    if cmd.name != "JOIN":
        if former is not None:
            return Outcome(State(), [Reply("welcome_back", {"bank": bank, "name": former.name})])
        return Outcome(State(), [Reply("welcome", {"bank": bank})])
    name = valid_name(cmd.args)
    if name is None:
        return Outcome(State(), [Reply("bad_name" if cmd.args else "join_needs_name",
                                       {"bank": bank})])
    if former is not None:
        return Outcome(State(), [Reply("rejoined", {"bank": bank, "name": name})], [Join(name)])
    first_question = QUESTIONS[0][0]
    key = "joined_pending" if facts.require_approval else "joined"
    own = written_in(cmd.text, "JOIN", facts.languages) if len(facts.languages) > 1 else None
    if own is not None:
        # "KUBIIR Sam": joined in Somali, so Somali it is (LANG changes it), and the
        # welcome and the questions come in it, not a question in the bank's default first.
        return Outcome(State(question=first_question),
                       [Reply(key, {"bank": bank, "name": name})],
                       [Join(name), SetLanguage(own)])
    if len(facts.languages) > 1:
        # Which language first; then the profile questions, in it.
        return Outcome(State(question=LANGUAGE_QUESTION),
                       [Reply("join_language", {"name": name,
                                                "choices": languages.choices(facts.languages)})],
                       [Join(name)])
    return Outcome(
        State(question=first_question), [Reply(key, {"bank": bank, "name": name})], [Join(name)]
    )


# Commands that only show something: safe to run even when a word was meant as an answer.
_READ_ONLY = frozenset({"BALANCE", "PROFILE", "STATEMENT", "MENU"})
# Commands whose words carry a number first: "YES 17", "DONE 2 Ana", "RECORD 07700…".
_NUMBERED = frozenset({"YES", "NO", "DONE", "GIVE", "RECORD", "CLOSE", "RENEW", "WHO", "CREDIT",
                       "APPROVE", "HOLD", "INTRO"})


def interrupts_question(cmd: Command) -> bool:
    """Whether a text is a command rather than the answer to a pending profile question.

    A command word interrupts, but an answer may start with one ("Free lifts to the
    hospital", "Leave it to me", "No car, but I can cook"). So, while a question waits:

    - a command's own name sent alone interrupts; so do SKIP and short forms of commands
      that only show something ("bal"), but not other short forms ("History" as a skill);
    - commands that only show something interrupt, and so do those followed by a number
      ("YES 17", "DONE 2 Ana");
    - any other command followed by words interrupts when written in capitals, as every
      text of the bank writes them ("AREA Brixton", "JOIN Kemi"), but not "Free lifts…";
    - typos guessed as commands never interrupt.
    """
    if cmd.name is None or cmd.guessed:
        return False
    if not cmd.canonical:
        return cmd.single_word and (cmd.name in _READ_ONLY or cmd.name == "SKIP")
    if cmd.single_word or cmd.name in _READ_ONLY:
        return True
    first = cmd.args[:1]
    if cmd.name in _NUMBERED and (first.isdecimal() or first == "+"):
        return True
    word = cmd.text.split()[0]
    return word.isupper() and not cmd.text.isupper()


# Commands that carry the member's own words: "NEED someone to call me" is a need, not TALK.
_CARRIES_WORDS = frozenset({"OFFER", "NEED", "BROADCAST", "NAME", "AREA", "SKILLS", "FREE",
                            "DONE", "GIVE", "RECORD"})


def _not_understood(facts: Facts, member: MemberFacts, cmd: Command) -> Outcome:
    """Words the bank cannot act on: thanks and small talk get a short answer or none;
    anything else goes to the brokers' inbox, and the member is told so."""
    values: dict[str, object] = {"bank": facts.bank_name, "name": member.name}
    chat = _small_talk(member, cmd)
    if chat is not None:
        return chat
    if cmd.text.split()[0].strip("?!.,").upper() in ("HELP", "INFO"):  # "Help me"
        return Outcome(State(), [Reply("care_help", values)], route=care.NOT_UNDERSTOOD)
    return Outcome(State(), [Reply("unknown_member", values)], route=care.NOT_UNDERSTOOD)


def _small_talk(member: MemberFacts, cmd: Command) -> Outcome | None:
    """Thanks get a short answer; "ok" and "👍" none."""
    kind = care.small_talk(cmd.text, member.language)
    if kind == care.THANKS:
        return Outcome(State(), [Reply("care_thanks", {"name": member.name})],
                       route=care.SMALL_TALK)
    if kind == care.ACKNOWLEDGEMENT:
        return Outcome(State(), [], route=care.SMALL_TALK)
    return None


def _member(state: State, facts: Facts, member: MemberFacts, cmd: Command) -> Outcome:
    bank = facts.bank_name
    if state.question == LEAVE_QUESTION:
        if cmd.name == "LEAVE" and cmd.args:  # LEAVE NOW (the only LEAVE with words)
            return Outcome(State(question=LEAVE_QUESTION), [], [Leave()])
        if cmd.name == "NO" and cmd.single_word:
            return Outcome(State(), [Reply("leave_stay", {"bank": bank, "name": member.name})])
        state = State()  # anything else: the member stays, and the text is read as usual
    if state.confirm is not None:
        pending, state = state, replace(state, confirm=None, confirm_for=None)
        answer = forgiving.reply_word(cmd.text)
        # 1 or 2, or a lone yes or no in English or the member's language ("EVET", "হ্যাঁ"):
        # never YES alone, which would confirm whatever else waits for this member.
        confirmed = answer in forgiving.CONFIRM_WORDS or (cmd.name == "YES" and not cmd.args)
        declined = answer in forgiving.DECLINE_WORDS or (cmd.name == "NO" and not cmd.args)
        if pending.confirm_for == member.id and confirmed:
            # The member's own reply to their own question: now act on the corrected text.
            return _member(state, facts, member, parse(pending.confirm, member.language))
        if pending.confirm_for == member.id and declined:
            return Outcome(state, [Reply("did_you_mean_declined", {"name": member.name})])
        # Anything else: the question lapses, and the text is read as usual.
    if member.check_in_pending and _all_well(cmd.text):
        return Outcome(State(), [Reply("check_in_thanks", {"name": member.name})])
    if state.question == LANGUAGE_QUESTION:
        answered = _language_answer(facts, member, cmd)
        if answered is not None:
            return answered
        state = State()  # a command: the question is dropped, the default language kept
    if state.question in _QUESTION_NAMES and near_miss(cmd):
        # "balence" right after JOIN: the balance, then the question again.
        shown = _member(State(), facts, member, cmd)
        return Outcome(replace(shown.state, question=state.question),
                       [*shown.replies, _ask_again(state.question or "", member)],
                       shown.effects, shown.route)
    if state.question and not interrupts_question(cmd):
        return _answer(state, member, cmd)
    language = member.language
    if cmd.name is None or cmd.guessed or (cmd.name == "TALK" and not cmd.single_word):
        # "Fine" is not MINE, and "Talk to you soon" is not TALK.
        chat = _small_talk(member, cmd)
        if chat is not None:
            return chat
    if cmd.uncertain and not care.wants_a_person(cmd.text, language) and not (
            care.for_a_broker(cmd.text, language)):
        return _did_you_mean(facts, member, cmd)
    if cmd.name == "TALK" or (
        cmd.name not in _CARRIES_WORDS and care.wants_a_person(cmd.text, language)
    ):
        return Outcome(State(), [], [ReachPerson(distress=False)], route=care.TALK)
    if cmd.name not in _CARRIES_WORDS and care.for_a_broker(cmd.text, language):
        # "Leave me alone" is not LEAVE: a broker reads it, and nobody leaves by accident.
        return Outcome(State(), [Reply("care_passed_on", {"bank": bank, "name": member.name})],
                       route=care.NOT_UNDERSTOOD)
    greeting = cmd.name == "MENU" and not cmd.canonical and not cmd.single_word
    if (cmd.name is None or greeting) and member.status != "pending" and (
            forgiving.looks_like_need(cmd.text, language)):
        # "Hi, can somebody help me move a wardrobe on Saturday": asked, then posted.
        return _need_in_words(member, cmd.text)
    if cmd.name is None:
        return _not_understood(facts, member, cmd)
    if member.status == "pending" and cmd.name in _NEEDS_WELCOME:
        return Outcome(State(), [_help(facts, member)])
    if cmd.name == "SKIP":
        if state.question:
            return _next_question(state.question, member, [])
        return Outcome(State(), [Reply("unknown_skip", {"bank": bank})])
    if cmd.name == "BALANCE":
        return Outcome(State(), [balance_reply(member.balance_minutes)])
    if cmd.name == "LANG":
        return _lang(facts, member, cmd.args)
    if cmd.name in ("YES", "NO"):
        ref = _ref(cmd.args)
        if ref is None and cmd.args:
            if not cmd.canonical:  # "Ok thanks" is not an answer to anything
                return _not_understood(facts, member, cmd)
            return Outcome(State(), [Reply("yes_which" if cmd.name == "YES" else "no_which")])
        return Outcome(State(), [], [Answer(ref, cmd.name == "YES")])
    if cmd.name == "DONE":
        return _done(cmd.args, language)
    if cmd.name == "GIVE":
        return _give(cmd.args, language)
    if cmd.name == "STATEMENT":
        return Outcome(State(statement_page=0), [], [ShowStatement(0)])
    if cmd.name == "MORE":
        if state.statement_page is None:
            return Outcome(State(), [Reply("more_nothing")])
        page = state.statement_page + 1
        return Outcome(State(statement_page=page), [], [ShowStatement(page)])
    if cmd.name in ("OFFER", "NEED"):
        what = profile_value(cmd.args, "skills")
        if not what:
            return Outcome(State(), [Reply(f"{cmd.name.lower()}_usage")])
        return Outcome(State(), [], [PostItem(cmd.name.lower(), what)])
    if cmd.name == "MINE":
        return Outcome(State(), [], [ShowMine()])
    if cmd.name in ("CLOSE", "RENEW"):
        ref = _ref(cmd.args)
        if ref is None:
            return Outcome(State(), [Reply(f"{cmd.name.lower()}_usage")])
        effect = ClosePost(ref) if cmd.name == "CLOSE" else RenewPost(ref)
        return Outcome(State(), [], [effect])
    if cmd.name == "CREDIT" and not cmd.args[:1].isdecimal():
        # "Credit?" from anyone is a question about their balance.
        return Outcome(State(), [balance_reply(member.balance_minutes)])
    if cmd.name in BROKER_COMMANDS:
        if member.role != "broker":
            if cmd.name in ("WHO", "HOLD", "APPROVE", "INTRO") and not _looks_numbered(
                    cmd.args):
                # "Who is this?", "Hold on": words, not a broker's command.
                return _not_understood(facts, member, cmd)
            return Outcome(State(), [Reply("brokers_only", {"bank": bank})])
        return _broker(cmd, facts.region)
    if cmd.name == "PROFILE":
        return Outcome(State(), [_profile(facts, member)], [ShowAway()] if member.away else [])
    if cmd.name == "JOIN":
        # Sent twice while the join questions run: the question still waits for its answer.
        kept = State(question=state.question) if state.question else State()
        return Outcome(kept, [Reply("already_member", {"bank": bank, "name": member.name})])
    if cmd.name == "LEAVE":
        # Never at once: carriers act on a lone YES, and "leave" may be said in passing.
        return Outcome(State(question=LEAVE_QUESTION),
                       [Reply("leave_ask", {"bank": bank, "name": member.name})], [AskLeave()])
    if cmd.name == "AWAY":
        return Outcome(State(), [], [GoAway(cmd.args)])
    if cmd.name == "BACK":
        return Outcome(State(), [], [ComeBack()])
    if cmd.name == "OK":
        return Outcome(State(), [], route=care.SMALL_TALK)  # a nod: nothing to answer
    if cmd.name == "MENU":
        return Outcome(State(), [_menu(facts, member)])
    if cmd.name in SETTERS:
        return _set(facts, member, SETTERS[cmd.name], cmd.args)
    return _not_understood(facts, member, cmd)


def _lang(facts: Facts, member: MemberFacts, args: str) -> Outcome:
    """``LANG`` lists the bank's languages, numbered, each by its own name; ``LANG 3``,
    ``LANG Somali`` or ``LANG Soomaali`` chooses one."""
    offered = facts.languages
    values: dict[str, object] = {"choices": languages.choices(offered)}
    if not args.strip():
        return Outcome(State(), [Reply("language_choices", values)])
    code = languages.chosen(args, offered)
    if code is not None:
        return Outcome(State(), [Reply("language_set", {"name": member.name,
                                                         "lang": languages.own_name(code)})],
                       [SetLanguage(code)] if code != member.language else [])
    named = languages.named(args)
    if named is not None:  # a language the bank does not offer
        return Outcome(State(), [Reply("language_not_offered", {
            **values, "lang": languages.own_name(named)})])
    return Outcome(State(), [Reply("language_unknown", values)])


def _language_answer(facts: Facts, member: MemberFacts, cmd: Command) -> Outcome | None:
    """The answer to "which language?" after JOIN: a number, a name, or SKIP (the bank's
    default stays); then the first profile question, in the language chosen. None for a
    command, which is carried out instead."""
    words = cmd.args if cmd.name == "LANG" and cmd.args else cmd.text
    code = languages.chosen(words, facts.languages)
    if code is None and cmd.name != "SKIP":
        if cmd.name not in (None, "LANG") and interrupts_question(cmd):
            return None
        return Outcome(State(question=LANGUAGE_QUESTION), [Reply(
            "join_language_again", {"choices": languages.choices(facts.languages)})])
    effects: list[Effect] = [SetLanguage(code)] if code and code != member.language else []
    key = "joined_pending" if member.status == "pending" else "joined"
    return Outcome(State(question=QUESTIONS[0][0]),
                   [Reply(key, {"bank": facts.bank_name, "name": member.name})], effects)
# Typos read at once even while a profile question waits, which is then asked again.
_NEAR_MISSES = frozenset({"BALANCE", "PROFILE", "STATEMENT", "MENU"})


def near_miss(cmd: Command) -> bool:
    """A one-word answer that is a typo of a command that only shows something ("balence",
    "profle", "hlep"): read as the command. Longer answers stay answers."""
    return (cmd.single_word and cmd.guessed and not cmd.uncertain
            and cmd.name in _NEAR_MISSES)


def _ask_again(question: str, member: MemberFacts) -> Reply:
    key = {"skills": "ask_skills_again"}.get(question) or next(
        k for name, _, k in QUESTIONS if name == question)
    return Reply(key, {"name": member.name})


def _did_you_mean(facts: Facts, member: MemberFacts, cmd: Command) -> Outcome:
    """A guess that would change something, or is not sure: asked about, never acted on."""
    name = cmd.name or ""
    if member.status == "pending" and name in _NEEDS_WELCOME:
        return Outcome(State(), [_help(facts, member)])
    if name in BROKER_COMMANDS and member.role != "broker":
        return _not_understood(facts, member, replace(cmd, name=None))
    corrected = f"{name} {cmd.args}".strip()
    return Outcome(State(confirm=corrected, confirm_for=member.id),
                   [Reply("did_you_mean", {"command": shorten(corrected, 40)})])


def _need_in_words(member: MemberFacts, text: str) -> Outcome:
    """A request written as a sentence: posted as a need only once the member says so."""
    what = profile_value(text, "skills") or ""
    return Outcome(State(confirm=f"NEED {what}", confirm_for=member.id),
                   [Reply("need_in_words", {"what": shorten(what, 40)})])


def _all_well(text: str) -> bool:
    words = "".join(ch for ch in text.upper() if ch.isalpha() or ch == " ")
    return " ".join(words.split()) in _ALL_WELL


def _looks_numbered(args: str) -> bool:
    first = args[:1]
    return first.isdecimal() or first in "+#("


def _broker(cmd: Command, region: str) -> Outcome:
    if cmd.name == "RECORD":
        return _record(cmd.args, region)
    if cmd.name == "BROADCAST":
        return _broadcast(cmd.args)
    if cmd.name == "WHO":
        ref = _ref(cmd.args)
        if ref is None:
            return Outcome(State(), [Reply("who_usage")])
        return Outcome(State(), [], [ShowWho(ref)])
    if cmd.name == "CREDIT":
        return _credit(cmd.args, region)
    if cmd.name == "INTRO":
        ref = _ref(cmd.args)
        if ref is None:
            return Outcome(State(), [Reply("intro_usage")])
        return Outcome(State(), [], [Introduce(ref)])
    # APPROVE / HOLD <number>
    number = "".join(cmd.args.split()[:4])
    usage = Reply("approve_usage" if cmd.name == "APPROVE" else "hold_usage")
    if not number:
        return Outcome(State(), [usage])
    first = cmd.args.split()[0]
    if member_number(first) is not None:  # APPROVE #12
        return Outcome(State(), [], [SetMemberStatus(first, cmd.name == "APPROVE")])
    try:
        phone = normalise(_number_part(cmd.args), region)
    except InvalidNumber:
        return Outcome(State(), [usage])
    return Outcome(State(), [], [SetMemberStatus(phone, cmd.name == "APPROVE")])


def _number_part(args: str) -> str:
    """The number at the start of ``args``, however it is spaced: "07700 900 123"."""
    return "".join(word for word in args.split()[:4] if any(ch.isdigit() for ch in word))


def _broadcast(args: str) -> Outcome:
    """``BROADCAST [@area] [#skill] <text>``: the audience words come first."""
    words = args.split()
    area = skill = None
    while words and words[0][:1] in "@#" and len(words[0]) > 1:
        word = words.pop(0)
        value = word[1:].replace("_", " ").replace("-", " ").strip(" ,.:;")[:80]
        if word[0] == "@" and area is None:
            area = value or None
        elif word[0] == "#" and skill is None:
            skill = value or None
    text = profile_value(" ".join(words), "broadcast") if words else None
    if not text:
        return Outcome(State(), [Reply("broadcast_usage")])
    return Outcome(State(), [], [Broadcast(text, area, skill)])


def _credit(args: str, region: str) -> Outcome:
    """``CREDIT <ref> <hours> [number …]``."""
    words = args.split()
    ref = _ref(args)
    if ref is None or len(words) < 2:
        return Outcome(State(), [Reply("credit_usage")])
    minutes, rest, ok = _hours_then_rest(" ".join(words[1:]))
    if not ok or minutes is None:
        return Outcome(State(), [Reply("hours_invalid", {"example": "CREDIT 7 2"})])
    chunks = [c for c in rest.replace(",", " ").replace(";", " ").split()
              if any(ch.isdigit() for ch in c)]
    phones: list[str] = []
    start = 0
    while start < len(chunks):
        if member_number(chunks[start]) is not None:  # CREDIT 7 2 #12 #14
            phones.append(chunks[start])
            start += 1
            continue
        # The longest run of words that makes one number: "07700 900 123" is one.
        for end in range(min(len(chunks), start + 4), start, -1):
            try:
                phones.append(normalise("".join(chunks[start:end]), region))
            except InvalidNumber:
                continue
            start = end
            break
        else:
            return Outcome(State(), [Reply("credit_bad_number", {"phone": chunks[start][:20]})])
    return Outcome(State(), [], [CreditActivity(ref, minutes, tuple(dict.fromkeys(phones)))])


def _ref(text: str) -> int | None:
    token = text.split()[0].lstrip("#") if text.split() else ""
    return int(token) if token.isdecimal() and len(token) <= 9 else None


def _hours_then_rest(args: str, language: str = "en") -> tuple[int | None, str, bool]:
    """``"1.5 hours Ana gardening"`` → (90, "Ana gardening", ok), and the unit in the member's
    language too ("2 godziny Ana", "2 awr Ana", "২ ঘণ্টা Ana"): the unit is never read as part
    of a name. ``ok`` is False when the first word is meant as hours but is not a usable
    number."""
    words = args.split()
    if not words:
        return None, "", True
    try:
        minutes = parse_hours(words[0])
    except InvalidHours:
        looks_numeric = any(ch.isdecimal() for ch in words[0]) or words[0] in "½¼¾"
        return None, args, not looks_numeric
    rest = words[1:]
    if rest and (rest[0].lower().strip(".,") in _HOUR_WORDS
                 or after.folded(rest[0]) in after.words(after.HOURS, language)):
        rest = rest[1:]
    return minutes, " ".join(rest), True


_HOUR_WORDS = {"h", "hr", "hrs", "hour", "hours", "mins", "minutes"}


def _hours_invalid(command: str) -> Outcome:
    examples = {"DONE": "DONE 1.5 Ana", "GIVE": "GIVE 1.5 Ana",
                "RECORD": "RECORD 07700900123 1.5 gardening"}
    return Outcome(State(), [Reply("hours_invalid", {"example": examples[command]})])


def _done(args: str, language: str = "en") -> Outcome:
    words = args.split()
    if 2 <= len(words) <= 3 and words[0].isdecimal() and len(words[0]) <= 6 and len(
        words[1]
    ) <= 6:
        # DONE <ref> <hours>: hours on a match or request.
        minutes, rest, ok = _hours_then_rest(" ".join(words[1:]), language)
        if minutes is not None and not rest:
            return Outcome(State(), [], [ReportOnRef(int(words[0]), minutes)])
    minutes, rest, ok = _hours_then_rest(args, language)
    if not ok:
        return _hours_invalid("DONE")
    if minutes is None or not rest:
        return Outcome(State(), [Reply("done_usage")])
    return Outcome(State(), [], [ReportHours(minutes, rest)])


def _give(args: str, language: str = "en") -> Outcome:
    minutes, rest, ok = _hours_then_rest(args, language)
    if not ok:
        return _hours_invalid("GIVE")
    if minutes is None or not rest:
        return Outcome(State(), [Reply("give_usage")])
    if after.folded(rest.split()[0]) in after.own(after.FUND, language):
        # "GIVE 1 FUNDUSZ", "GIVE 1 CRONFA": the fund, as GIVE 1 FUND is (app.effects).
        rest = "FUND"
    return Outcome(State(), [], [Give(minutes, rest)])


def _record(args: str, region: str) -> Outcome:
    """``RECORD <phone> <hours> <what>``: the number may be written with spaces."""
    words = args.split()
    if words and member_number(words[0]) is not None:  # RECORD #12 2 gardening
        minutes, rest, ok = _hours_then_rest(" ".join(words[1:]))
        if not ok:
            return _hours_invalid("RECORD")
        if minutes is not None:
            return Outcome(State(), [], [RecordHours(minutes, f"{words[0]} {rest}".strip())])
        return Outcome(State(), [Reply("record_usage")])
    for split in range(min(len(words) - 1, 4), 0, -1):
        number = "".join(words[:split])
        try:
            normalise(number, region)
        except InvalidNumber:
            continue
        minutes, rest, ok = _hours_then_rest(" ".join(words[split:]))
        if not ok:
            return _hours_invalid("RECORD")
        if minutes is not None:
            return Outcome(State(), [], [RecordHours(minutes, f"{number} {rest}".strip())])
    return Outcome(State(), [Reply("record_usage")])


def _answer(state: State, member: MemberFacts, cmd: Command) -> Outcome:
    question = state.question or ""
    field_name = next(f for name, f, _ in QUESTIONS if name == question)
    value = profile_value(cmd.text, field_name)
    effects: list[Effect] = [SetProfile(field_name, value)] if value else []
    return _next_question(question, member, effects)


def _next_question(question: str, member: MemberFacts, effects: list[Effect]) -> Outcome:
    names = [name for name, _, _ in QUESTIONS]
    index = names.index(question) + 1
    if index >= len(QUESTIONS):
        return Outcome(State(), [Reply("profile_done", {"name": member.name})], effects)
    name, _, key = QUESTIONS[index]
    return Outcome(State(question=name), [Reply(key, {"name": member.name})], effects)


def _set(facts: Facts, member: MemberFacts, field_name: str, args: str) -> Outcome:
    if field_name == "name":
        value = valid_name(args)
        if value is None:
            return Outcome(State(), [Reply("bad_name_member" if args else "profile_field_empty")])
    else:
        value = profile_value(args, field_name)
        if not value:
            return Outcome(State(), [Reply("profile_field_empty")])
    name = value if field_name == "name" else member.name
    return Outcome(
        State(), [Reply("profile_updated", {"name": name})], [SetProfile(field_name, value)]
    )


def shorten(text: str, most: int = 40) -> str:
    """A member's own words, cut to fit a text: "help with the weekly shop and …"."""
    # "..." not "…": one character outside GSM-7 would double the text's cost.
    return text if len(text) <= most else text[: most - 3].rstrip() + "..."


def for_others(text: str, language: str | None = None, most: int = 40) -> str | Term:
    """A member's words in a text to someone else: without links (``ledger.links``), cut to
    fit, as they wrote them; "help" if a link was all there was, in the language of the text
    it goes into (``language`` is not needed for that, and kept for older callers)."""
    words = without_links(text)
    return shorten(words, most) if words else Term("help_given")


def _profile(facts: Facts, member: MemberFacts) -> Reply:
    not_given = render("not_given", member.language)
    values: dict[str, object] = {
        "bank": facts.bank_name,
        "name": member.name,
        "area": shorten(member.area or not_given),
        "skills": shorten(member.skills or not_given),
        "availability": shorten(member.availability or not_given),
    }
    return Reply("profile_pending" if member.status == "pending" else "profile", values)




def balance_reply(minutes: int) -> Reply:
    return Reply("balance", {"hours": Hours(minutes)})


def valid_name(text: str) -> str | None:
    """A first name from free text: letters (any script), spaces, hyphens and apostrophes."""
    kept = "".join(
        ch for ch in clean(text)
        if unicodedata.category(ch)[0] in ("L", "M") or ch in " -'."
    )
    words = kept.split()[:3]
    name = " ".join(words)[: FIELD_LIMITS["name"]].strip(" -'.")
    if not any(unicodedata.category(ch)[0] == "L" for ch in name):
        return None
    return name[0].upper() + name[1:]


def profile_value(text: str, field_name: str) -> str | None:
    value = clean(text)[: FIELD_LIMITS[field_name]].strip()
    return value or None
