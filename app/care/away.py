"""Leaving, pausing, and being missed.

- ``LEAVE`` never leaves at once: it asks for ``LEAVE NOW`` (the dialog state, per number,
  cancelled by any other text) within ``LEAVE_CONFIRM`` (``Member.leave_asked_at``, in SQL),
  then leaves as before (needs closed, hours kept).
- ``AWAY`` pauses a member: no asks (``ledger.posts.helpers``), no broadcasts
  (``ledger.activities.audience``), no reminders (``ledger.confirmations.sweep_one`` holds a
  reminder to an away confirmer until they are back, and never credits their hours without an
  answer; the request still goes to the brokers on time, so the member who gave the hours is
  not kept waiting: no hour is lost). Their own needs stay open, and the answer says how to
  close them. ``BACK`` resumes; ``AWAY 3 weeks`` / ``AWAY until 24 Dec`` resume by themselves
  (``resume_and_warn``, from the sweep) and text the day before. Brokers set a member away
  from the dashboard or the command line (audited).
- Brokers hear, in one text a day (``daily``) and on the dashboard, who left, stopped texts,
  was set away or has gone quiet (``people_to_check_on``); an optional check-in text goes to
  members after a quiet spell, once a spell.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app import caps, delivery, outbound
from app.care import duty
from app.services import Services
from conversations import catalogue, words
from conversations.commands import ascii_digits, fold
from conversations.gsm import cheapest, segments
from conversations.machine import AskLeave, ComeBack, GoAway, Leave, ShowAway
from conversations.texts import DEFAULT_LANGUAGE, listed, render
from ledger import audit, banks, members, posts
from ledger.models import Account, Bank, Member, OptOut, Post, Transfer, utcnow

if TYPE_CHECKING:
    from app.effects import Context

log = logging.getLogger(__name__)

# LEAVE NOW counts only this soon after LEAVE.
LEAVE_CONFIRM = timedelta(minutes=30)
# The longest pause with an end; AWAY alone has none.
MOST_AWAY_DAYS = 366
# The brokers' summary and check-ins go at this hour of the bank's day (outside quiet hours).
SUMMARY_HOUR = 10
# "You're back tomorrow" goes at SUMMARY_HOUR the day before (away_until is a midnight).
WARN_BEFORE = timedelta(hours=24 - SUMMARY_HOUR)
# The dashboard lists those who left or stopped texts this recently.
RECENT = timedelta(days=30)
# Check-in texts a bank sends in a day at most (the rest wait for the next day).
CHECK_INS_A_DAY = 20
# A pause shorter than this gets no "back tomorrow" text: its own answer said when it ends.
SHORTEST_WARNED = timedelta(days=2)
# The daily summary is at most this many SMS segments.
SUMMARY_SEGMENTS = 2


def _zone(bank: Bank) -> ZoneInfo:
    try:
        return ZoneInfo(bank.timezone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def local_date(bank: Bank, moment: datetime) -> str:
    """A date as texts write it: "24 Dec"."""
    return moment.astimezone(_zone(bank)).strftime("%d %b").lstrip("0")


def return_date(bank: Bank, until: datetime) -> str:
    """The day a member is back: ``away_until`` is that day's first moment."""
    return local_date(bank, until)


# --- reading "3 weeks", "until 24 Dec" --------------------------------------------------------


class AwayWords(ValueError):
    """Words after AWAY that are not a length of time or a date within a year."""


_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
            "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
_UNITS = {"day": 1, "days": 1, "d": 1, "night": 1, "nights": 1, "week": 7, "weeks": 7,
          "wk": 7, "wks": 7, "w": 7, "fortnight": 14, "fortnights": 14, "month": 30,
          "months": 30, "mth": 30, "mths": 30}
_MONTHS = {name: n for n, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
     ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
     ("oct", "october"), ("nov", "november"), ("dec", "december")], start=1)
    for name in names}
_WEEKDAYS = {name: n for n, names in enumerate(
    [("mon", "monday"), ("tue", "tues", "tuesday"), ("wed", "wednesday"),
     ("thu", "thur", "thurs", "thursday"), ("fri", "friday"), ("sat", "saturday"),
     ("sun", "sunday")]) for name in names}
_UNTIL = ("until", "till", "til", "untill", "to", "up to", "through")
# The English number words a length of time may start with ("two weeks"); other languages'
# lengths are read from their digits ("3 tygodnie", "৩ সপ্তাহ").
_FOR = ("for",)


def _token(word: str) -> str:
    """A word as the tables hold it: folded (case, accents, Turkish i's), in lower case."""
    return fold(word).lower()


@catalogue.derived
@cache
def _tables() -> tuple[dict[str, int], dict[str, int], tuple[str, ...], tuple[str, ...]]:
    """(units → days, month names → 1-12, until words, for words), English's and every
    language's from the catalogue (``conversations.words``). A unit two languages give
    different lengths is left out."""
    units: dict[str, set[int]] = {w: {n} for w, n in _UNITS.items()}
    for key, days in ((words.DAYS, 1), (words.WEEKS, 7), (words.MONTHS, 30)):
        for word in words.every_language(key):
            units.setdefault(word.lower(), set()).add(days)
    months = {**{name: n for name, n in _MONTHS.items()},
              **{name.lower(): n for name, n in words.month_names().items()}}
    until = tuple(sorted({*_UNTIL, *(w.lower() for w in words.every_language(words.UNTIL))},
                         key=len, reverse=True))
    for_ = tuple(sorted({*_FOR, *(w.lower() for w in words.every_language(words.FOR))},
                        key=len, reverse=True))
    return ({w: next(iter(n)) for w, n in units.items() if len(n) == 1}, months, until, for_)


def _plain(words_: str) -> str:
    """The words after AWAY, one space between, each folded: a date's dots and slashes kept
    ("24.12", "24/12"), other punctuation a space, and a suffix after an apostrophe dropped
    ("24 Aralık'a kadar" is "24 aralik kadar"). Letters keep their marks (Bengali vowel signs
    are part of the word)."""
    text = ascii_digits(words_).replace("\u2019", "'")
    text = re.sub(r"(?<=\w)'\w+", "", text)
    text = re.sub(r"(?<=\d)\.(?=\d)", "/", text)
    kept = [ch if ch.isalnum() or ch in "/-" or unicodedata.category(ch)[0] == "M" else " "
            for ch in text]
    return " ".join(_token(w) for w in "".join(kept).split())


def _strip(text: str, words_: tuple[str, ...]) -> str:
    """``text`` without one of ``words_`` at its start or its end ("until 24 Dec",
    "24 Aralık kadar", "৩ সপ্তাহের জন্য")."""
    for word in words_:
        if text.startswith(word + " "):
            return text[len(word) + 1:]
        if text.endswith(" " + word):
            return text[: -len(word) - 1]
    return text


def read_until(words_: str, bank: Bank, now: datetime | None = None) -> datetime | None:
    """When a pause ends (the first moment of the day the member is back, in UTC), from the
    words after AWAY: none (no end), "3 weeks", "10 days", "a month", "until 24 Dec",
    "till 24/12", "until 24.12", "until Monday", and the same in each language the bank has
    ("3 tygodnie", "do 24 grudnia", "24 Aralık'a kadar", "২৪/১২ পর্যন্ত"). Raises
    ``AwayWords`` for anything else, or past a year."""
    text = _plain(words_)
    if not text:
        return None
    units, _, until, for_ = _tables()
    now = now or utcnow()
    today = now.astimezone(_zone(bank)).date()
    text = _strip(text, for_)
    back: date | None = None
    match = re.fullmatch(r"(\d{1,3}|[a-z]+) ?(\S+)", text)
    if match and match.group(2) in units:
        count = match.group(1)
        number = int(count) if count.isdigit() else _NUMBERS.get(count)
        if number is not None and number > 0:
            back = today + timedelta(days=number * units[match.group(2)])
    if back is None:
        back = _read_date(_strip(text, until), today)
    if back is None or back <= today or back > today + timedelta(days=MOST_AWAY_DAYS):
        raise AwayWords(words_)
    return datetime.combine(back, time(0), tzinfo=_zone(bank)).astimezone(UTC)


def _read_date(text: str, today: date) -> date | None:
    months = _tables()[1]
    text = re.sub(r"^(next|this|the) ", "", text)
    if text in _WEEKDAYS:
        ahead = (_WEEKDAYS[text] - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead)
    day = month = year = None
    iso = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    numeric = re.fullmatch(r"(\d{1,2})[/\-](\d{1,2})(?:[/\-](\d{2}|\d{4}))?/?", text)
    named = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?(?: of)? ([^\d\s]+)(?: (\d{4}))?", text)
    american = re.fullmatch(r"([^\d\s]+) (\d{1,2})(?:st|nd|rd|th)?(?: (\d{4}))?", text)
    if iso:
        year, month, day = (int(g) for g in iso.groups())
    elif numeric:
        day, month = int(numeric.group(1)), int(numeric.group(2))
        if numeric.group(3):
            year = int(numeric.group(3)) + (2000 if len(numeric.group(3)) == 2 else 0)
    elif named and named.group(2) in months:
        day, month = int(named.group(1)), months[named.group(2)]
        year = int(named.group(3)) if named.group(3) else None
    elif american and american.group(1) in months:
        day, month = int(american.group(2)), months[american.group(1)]
        year = int(american.group(3)) if american.group(3) else None
    else:
        return None
    try:
        found = date(year or today.year, month, day)
        if year is None and found < today:  # passed this year: next year's (today: no)
            found = date(today.year + 1, month, day)
    except ValueError:
        return None
    return found


# --- pausing and resuming ---------------------------------------------------------------------


def is_away(member: Member) -> bool:
    return member.away_since is not None


def set_away(session: Session, bank: Bank, member: Member, until: datetime | None, *,
             broker: Member | None = None, via: str = "sms") -> list[int]:
    """Pause ``member`` (until ``until``, or until BACK); a pause already running takes the
    new end. By a broker (``via`` web or cli): audited, and the member is told. Ids of texts
    to enqueue."""
    if member.bank_id != bank.id:
        raise ValueError("the member belongs to another bank")
    now = utcnow()
    if member.away_since is None:
        member.away_since = now
    member.away_until = until
    member.away_warned_at = None
    member.away_by_member_id = broker.id if broker is not None else None
    if broker is None and via == "sms":
        return []
    when = return_date(bank, until) if until is not None else "they say BACK"
    audit.record(session, bank.id, "member.away", broker_id=broker.id if broker else None,
                 subject=f"member {member.id}", detail=f"{member.name}, until {when}", via=via)
    key = "away_set_by_broker_until" if until is not None else "away_set_by_broker"
    values: dict[str, object] = {"name": member.name, "bank": bank.name}
    if until is not None:
        values["date"] = return_date(bank, until)
    message_id = outbound.queue_text(
        session, member, kind=key, key=key,
        idempotency_key=f"away-set:{member.id}:{now.isoformat()}", values=values)
    return [message_id] if message_id else []


def come_back(session: Session, bank: Bank, member: Member, *, broker: Member | None = None,
              via: str = "sms") -> list[int] | None:
    """End a pause; None if ``member`` was not away. By a broker: audited, the member told."""
    if member.away_since is None:
        return None
    _clear(member, utcnow())
    if broker is None and via == "sms":
        return []
    audit.record(session, bank.id, "member.back", broker_id=broker.id if broker else None,
                 subject=f"member {member.id}", detail=member.name, via=via)
    message_id = outbound.queue_text(
        session, member, kind="back", key="back",
        idempotency_key=f"away-back:{member.id}:{utcnow().isoformat()}",
        values={"name": member.name, "bank": bank.name})
    return [message_id] if message_id else []


def _clear(member: Member, now: datetime) -> None:
    member.away_since = member.away_until = member.away_warned_at = None
    member.away_by_member_id = None
    member.back_at = now


# --- the texts' effects -----------------------------------------------------------------------


def on_ask_leave(ctx: Context, _effect: AskLeave) -> None:
    if ctx.member is not None:
        ctx.member.leave_asked_at = utcnow()


def on_leave(ctx: Context, _effect: Leave) -> None:
    """LEAVE NOW: leaves if LEAVE was sent from this number lately; else asks again."""
    member = ctx.member
    if member is None:
        return
    now = utcnow()
    asked = _aware(member.leave_asked_at)
    if asked is None or not (now - LEAVE_CONFIRM <= asked <= now):
        member.leave_asked_at = now
        ctx.reply("leave_ask", bank=ctx.bank.name, name=member.name)
        return
    members.leave(ctx.session, member.id)
    posts.close_all(ctx.session, ctx.bank.id, member.id)
    member.leave_asked_at = None
    if member.away_since is not None:
        _clear(member, now)
    ctx.reply("left", bank=ctx.bank.name, name=member.name)
    log.info("inbound %s: member %s left bank %s", ctx.sid, member.id, ctx.bank.id)


def on_go_away(ctx: Context, effect: GoAway) -> None:
    member = ctx.member
    if member is None:
        return
    try:
        until = read_until(effect.words, ctx.bank)
    except AwayWords:
        ctx.reply("away_usage")
        return
    set_away(ctx.session, ctx.bank, member, until)
    if until is None:
        ctx.reply("away_set", name=member.name, bank=ctx.bank.name)
    else:
        ctx.reply("away_set_until", name=member.name, date=return_date(ctx.bank, until))
    needs = open_needs(ctx.session, ctx.bank.id, member.id)
    if len(needs) == 1:
        ctx.reply("away_need_open", ref=needs[0].ref)
    elif needs:
        ctx.reply("away_needs_open", count=len(needs), ref=needs[0].ref)


def on_come_back(ctx: Context, _effect: ComeBack) -> None:
    member = ctx.member
    if member is None:
        return
    if come_back(ctx.session, ctx.bank, member) is None:
        ctx.reply("back_not_away", name=member.name)
    else:
        ctx.reply("back", name=member.name, bank=ctx.bank.name)


def on_show_away(ctx: Context, _effect: ShowAway) -> None:
    member = ctx.member
    if member is None or member.away_since is None:
        return
    until = _aware(member.away_until)
    if until is None:
        ctx.reply("profile_away")
    else:
        ctx.reply("profile_away_until", date=return_date(ctx.bank, until))


HANDLERS: dict[type, Callable[[Context, Any], None]] = {
    AskLeave: on_ask_leave, Leave: on_leave, GoAway: on_go_away,
            ComeBack: on_come_back, ShowAway: on_show_away}


# --- people to check on -----------------------------------------------------------------------


@dataclass(frozen=True)
class Concern:
    """Someone the brokers may want to check on, and why: ``left``, ``stopped`` (texts),
    ``away`` or ``quiet`` (no exchange or text for the bank's quiet period)."""

    member_id: int
    name: str
    kind: str
    since: datetime
    until: datetime | None = None
    by: str | None = None
    weeks: int = 0
    check_in_sent_at: datetime | None = None


def last_contact(session: Session, bank: Bank) -> dict[int, datetime]:
    """Each active member's last sign of life: a text, an exchange, joining, a pause ended."""
    exchanged = dict(session.execute(
        select(Account.member_id, func.max(Transfer.created_at))
        .join(Transfer, or_(Transfer.from_account_id == Account.id,
                            Transfer.to_account_id == Account.id))
        .where(Account.bank_id == bank.id, Account.member_id.is_not(None))
        .group_by(Account.member_id)).all())
    found: dict[int, datetime] = {}
    for member_id, *moments in session.execute(
        select(Member.id, Member.joined_at, Member.last_inbound_at, Member.back_at)
        .where(Member.bank_id == bank.id, Member.status == "active")
    ):
        times = [_aware(m) for m in (*moments, exchanged.get(member_id))]
        found[member_id] = max(t for t in times if t is not None)
    return found


def _quiet_after(bank: Bank) -> timedelta:
    return timedelta(weeks=max(1, bank.quiet_after_weeks))


def _quiet(session: Session, bank: Bank, now: datetime) -> list[tuple[Member, datetime]]:
    """Active members (not brokers, not away) quiet for the bank's period: (member, since)."""
    contact = last_contact(session, bank)
    threshold = now - _quiet_after(bank)
    quiet_ids = [i for i, last in contact.items() if last <= threshold]
    if not quiet_ids:
        return []
    found = session.scalars(select(Member).where(
        Member.id.in_(quiet_ids), Member.role == "member", Member.away_since.is_(None)))
    return sorted(((m, contact[m.id]) for m in found), key=lambda pair: pair[1])


def people_to_check_on(session: Session, bank: Bank, now: datetime | None = None, *,
                       since: datetime | None = None) -> list[Concern]:
    """Who to check on: with ``since``, what happened after it (the daily summary: left,
    stopped texts, set away, crossed into quiet); without, as things stand (the dashboard:
    left or stopped in the last 30 days, away now, quiet now)."""
    now = now or utcnow()
    start = since if since is not None else now - RECENT
    found: list[Concern] = []
    for member in session.scalars(select(Member).where(
            Member.bank_id == bank.id, Member.status == "left", Member.left_at > start,
            Member.left_at <= now).order_by(Member.left_at)):
        found.append(Concern(member.id, member.name, "left", _when(member.left_at)))
    for member, stopped in session.execute(
        select(Member, OptOut.created_at).join(OptOut, (OptOut.phone == Member.phone)
                                               & (OptOut.bank_id == Member.bank_id))
        .where(Member.bank_id == bank.id, OptOut.created_at > start,
               OptOut.created_at <= now).order_by(OptOut.created_at)
    ):
        found.append(Concern(member.id, member.name, "stopped", _when(stopped)))
    away = select(Member).where(Member.bank_id == bank.id, Member.status != "left",
                                Member.away_since.is_not(None))
    if since is not None:
        away = away.where(Member.away_since > since, Member.away_since <= now)
    brokers = {m.id: m.name for m in members.brokers(session, bank.id)}
    for member in session.scalars(away.order_by(Member.away_since)):
        found.append(Concern(
            member.id, member.name, "away", _when(member.away_since), _aware(member.away_until),
            by=brokers.get(member.away_by_member_id or 0)))
    quiet_after = _quiet_after(bank)
    for member, last in _quiet(session, bank, now):
        crossed = last + quiet_after
        if since is not None and not since < crossed <= now:
            continue
        found.append(Concern(member.id, member.name, "quiet", last,
                             weeks=(now - last).days // 7,
                             check_in_sent_at=_aware(member.check_in_sent_at)))
    return found


def _when(moment: datetime | None) -> datetime:
    aware = _aware(moment)
    assert aware is not None
    return aware


def summary(bank: Bank, concerns: list[Concern], language: str = DEFAULT_LANGUAGE
            ) -> tuple[str, dict[str, object]]:
    """The daily summary's catalogue key and values: as many people as fit in two segments,
    "and 4 more: see the dashboard" for the rest."""
    entries = [_entry(bank, c, language) for c in concerns]
    for shown in range(len(entries), 0, -1):
        more = len(entries) - shown
        key = "care_summary_more" if more else "care_summary"
        values: dict[str, object] = {"bank": bank.name, "names": listed(entries[:shown], language),
                                     "more": more}
        if segments(cheapest(render(key, language, **values))) <= SUMMARY_SEGMENTS:
            return key, values
    return "care_summary_more", {"bank": bank.name[:40], "names": entries[0][:40],
                                 "more": len(entries) - 1}


def _entry(bank: Bank, concern: Concern, language: str) -> str:
    values: dict[str, object] = {"name": concern.name[:20], "member_id": concern.member_id}
    if concern.kind == "away" and concern.until is not None:
        return render("care_entry_away_until", language, date=return_date(bank, concern.until),
                      **values)
    if concern.kind == "quiet":
        return render("care_entry_quiet", language, count=concern.weeks, **values)
    key = {"left": "care_entry_left", "stopped": "care_entry_stop",
           "away": "care_entry_away"}[concern.kind]
    return render(key, language, **values)


def summary_brokers(session: Session, bank: Bank) -> list[Member]:
    """Who gets the daily summary: the brokers on duty (``app.care.duty``; every active
    broker who is not away, unless the bank names who is on duty then)."""
    return duty.brokers_on_duty(session, bank)


def summary_due(bank: Bank, now: datetime, quiet_hours: str) -> bool:
    """Whether the bank's summary for today is still to go: past SUMMARY_HOUR of its day,
    not yet gone today, and not in quiet hours."""
    zone = _zone(bank)
    local = now.astimezone(zone)
    at = datetime.combine(local.date(), time(SUMMARY_HOUR), tzinfo=zone).astimezone(UTC)
    through = _aware(bank.care_summary_through)
    if now < at or (through is not None and through >= at):
        return False
    return delivery.quiet_until(now, bank.timezone, quiet_hours) is None


def daily(services: Services, now: datetime | None = None) -> dict[str, int]:
    """Once a day a bank (sweep-driven, any worker): the brokers' summary of people to check
    on, if there is anyone, and the check-ins, if the bank sends them. The bank's row is
    locked and the summary's texts carry a key per bank and day, so two workers or a retried
    sweep never send two."""
    now = now or utcnow()
    counts = {"care_summaries": 0, "check_ins": 0}
    with services.db.reading() as session:
        # Looked at without locks first: most sweeps of the day have nothing to do.
        bank_ids = [bank.id for bank in session.scalars(select(Bank).order_by(Bank.id))
                    if summary_due(bank, now, services.config.quiet_hours)]
    for bank_id in bank_ids:
        queued: list[int] = []
        with services.db.writing() as session:
            bank = session.scalars(
                select(Bank).where(Bank.id == bank_id).with_for_update()
                .execution_options(populate_existing=True)).one()
            if not summary_due(bank, now, services.config.quiet_hours):
                continue
            since = _aware(bank.care_summary_through) or now - timedelta(days=1)
            concerns = people_to_check_on(session, bank, now, since=since)
            bank.care_summary_through = now
            if concerns:
                _, _, day = banks.day_bounds(bank, now)
                for broker in summary_brokers(session, bank):
                    key, values = summary(bank, concerns, broker.language)
                    message_id = outbound.queue_text(
                        session, broker, kind="care_summary", key=key,
                        idempotency_key=f"care-summary:{bank.id}:{day}:to:{broker.id}",
                        values=values)
                    if message_id is not None:
                        queued.append(message_id)
                counts["care_summaries"] += 1
            if bank.check_in:
                sent = check_ins(session, bank, now)
                counts["check_ins"] += len(sent)
                queued += sent
        outbound.enqueue(services, queued)
    return counts


def check_ins(session: Session, bank: Bank, now: datetime) -> list[int]:
    """A check-in text to members quiet for the bank's period, once a quiet spell (a spell
    starts at their last contact), within the bank's daily cap and CHECK_INS_A_DAY."""
    queued: list[int] = []
    for member, last in _quiet(session, bank, now):
        if len(queued) >= CHECK_INS_A_DAY or caps.bank_full(session, bank, now):
            break
        sent = _aware(member.check_in_sent_at)
        if sent is not None and sent >= last:
            continue  # this spell's check-in went already
        if outbound.address_for(member) is None or not members.can_be_texted(session, member):
            continue
        message_id = outbound.queue_text(
            session, member, kind="check_in", key="check_in",
            idempotency_key=f"check-in:{member.id}:{last.isoformat()}",
            values={"name": member.name})
        member.check_in_sent_at = now
        if message_id is not None:
            queued.append(message_id)
    return queued


def resume_and_warn(services: Services, now: datetime | None = None) -> dict[str, int]:
    """Every sweep: members whose pause has run out are back; those back tomorrow are told
    (at SUMMARY_HOUR the day before; not after a pause of under two days)."""
    now = now or utcnow()
    queued: list[int] = []
    resumed = warned = 0
    with services.db.writing() as session:
        for member in session.scalars(
            select(Member).where(Member.away_until.is_not(None),
                                 Member.away_until <= now + WARN_BEFORE)
            .with_for_update(skip_locked=True)
        ):
            until = _when(member.away_until)
            if until <= now:
                _clear(member, now)
                resumed += 1
                continue
            if member.away_warned_at is not None:
                continue
            member.away_warned_at = now
            since = _when(member.away_since)
            if until - since < SHORTEST_WARNED or member.status == "left":
                continue  # a short pause: its own answer said when it ends
            bank = session.get(Bank, member.bank_id)
            assert bank is not None
            message_id = outbound.queue_text(
                session, member, kind="away_back_tomorrow", key="away_back_tomorrow",
                idempotency_key=f"away-tomorrow:{member.id}:{until.isoformat()}",
                values={"name": member.name, "bank": bank.name})
            if message_id is not None:
                queued.append(message_id)
                warned += 1
    outbound.enqueue(services, queued)
    return {"away_resumed": resumed, "away_warned": warned}


def sweep(services: Services, now: datetime | None = None) -> dict[str, int]:
    """The care part of ``app.jobs.sweep``."""
    now = now or utcnow()
    return {**resume_and_warn(services, now), **daily(services, now)}


def open_needs(session: Session, bank_id: int, member_id: int) -> list[Post]:
    return [p for p in posts.mine(session, bank_id, member_id)
            if p.kind == "need" and p.status == "open"]
