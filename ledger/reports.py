"""Reports for funders and the co-production index: read-only views of one bank's ledger over
a period ``[start, end)`` of dates, taken in UTC.

Every report reads the transfers it needs in one statement and does the arithmetic in
Python, so the same code gives the same numbers on SQLite and PostgreSQL. A transfer that
was reversed and its reversal count as nothing anywhere. "Hours given" are the minutes of
``exchange``, ``record`` and ``activity`` transfers, credited to the member who gave the
help (the account the hours went to); gifts move hours but are not help, and count only
as a connection between two members.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import combinations

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ledger.exports import SafeWriter
from ledger.matching import DAYS, Vocabulary, stem, words
from ledger.models import Account, Member, Post, Transfer

HELP_KINDS = ("exchange", "record", "activity")
PAIR_KINDS = ("exchange", "gift")
UNKNOWN_AREA = "Area not given"

# Report category → the matching vocabulary's categories that fall under it, in priority
# order (the first that a transfer's description speaks of wins).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Transport and lifts", ("transport",)),
    ("Shopping and errands", ("shopping",)),
    ("Gardening", ("gardening",)),
    ("Company and befriending", ("befriending", "walking")),
    ("Household and DIY", ("diy", "cleaning")),
    ("Cooking", ("cooking",)),
    ("Computers and phones", ("it",)),
    ("Paperwork and forms", ("admin",)),
)
GROUP_ACTIVITIES = "Group activities"
OTHER = "Other"

# Words in profiles and offers that are not skills (day words come from matching.DAYS).
_NOT_SKILLS = frozenset(
    stem(w) for w in (*DAYS, "offer", "offering", "happy", "also", "very", "good", "anything",
                      "things", "hours", "hour", "time", "times", "people", "etc", "small",
                      "jobs", "job", "bit", "lot", "lots", "most", "all", "some", "general")
)


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    explanation: str
    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]
    chart: str  # "bar", "line" or "none": column 0 is the label, column 1 the value


@dataclass(frozen=True)
class Indicator:
    value: str  # "Assets", "Redefining work", "Reciprocity" or "Social networks"
    name: str
    amount: float | int
    unit: str
    explanation: str


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC, and the months it touches (the first of each)."""

    start: date
    end: date

    @property
    def start_at(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC)

    def months(self) -> list[date]:
        found: list[date] = []
        month = date(self.start.year, self.start.month, 1)
        while month < self.end:
            found.append(month)
            month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        return found

    def holds(self, when: datetime) -> bool:
        return self.start_at <= when < self.end_at


@dataclass(frozen=True)
class Move:
    """One transfer that counts (neither reversed nor a reversal), with both accounts."""

    id: int
    kind: str
    minutes: int
    at: datetime  # UTC
    description: str
    key: str
    payer_id: int
    payer_kind: str
    payer_name: str
    payer_member: int | None
    payee_member: int | None

    @property
    def month(self) -> date:
        return date(self.at.year, self.at.month, 1)

    @property
    def giver(self) -> int | None:
        """The member credited for help given (None if this is not help to a member)."""
        return self.payee_member if self.kind in HELP_KINDS else None

    @property
    def helped(self) -> int | None:
        """The member who received help from another member."""
        return self.payer_member if self.kind == "exchange" else None


# Reading ----------------------------------------------------------------------------------

def _utc(when: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored in UTC); PostgreSQL, the session's zone."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _moves(session: Session, bank_id: int, period: Period, *, since_start: bool = True
           ) -> list[Move]:
    """The transfers that count, created in the period (or, if not ``since_start``, up to
    its end), oldest first."""
    payer, payee, undo = aliased(Account), aliased(Account), aliased(Transfer)
    reversed_ = select(undo.id).where(undo.reverses_id == Transfer.id).exists()
    stmt = (
        select(
            Transfer.id, Transfer.kind, Transfer.minutes, Transfer.created_at,
            Transfer.description, Transfer.idempotency_key, payer.id.label("payer_id"),
            payer.kind.label("payer_kind"), payer.name.label("payer_name"),
            payer.member_id.label("payer_member"), payee.member_id.label("payee_member"),
        )
        .join(payer, payer.id == Transfer.from_account_id)
        .join(payee, payee.id == Transfer.to_account_id)
        .where(
            Transfer.bank_id == bank_id, Transfer.kind != "reversal",
            Transfer.reverses_id.is_(None), ~reversed_, Transfer.created_at < period.end_at,
        )
        .order_by(Transfer.created_at, Transfer.id)
    )
    if since_start:
        stmt = stmt.where(Transfer.created_at >= period.start_at)
    return [
        Move(row.id, row.kind, row.minutes, _utc(row.created_at), row.description or "",
             row.idempotency_key, row.payer_id, row.payer_kind, row.payer_name,
             row.payer_member, row.payee_member)
        for row in session.execute(stmt)
    ]


def _areas(session: Session, bank_id: int) -> dict[int, str | None]:
    rows = session.execute(select(Member.id, Member.area).where(Member.bank_id == bank_id))
    return {row.id: row.area for row in rows}


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def _label(month: date) -> str:
    return f"{month:%Y-%m}"


def _area_key(area: str | None) -> str:
    return " ".join((area or "").split()).casefold()


# Who gave, who received ------------------------------------------------------------------

@dataclass(frozen=True)
class Roles:
    gave: set[int]
    received: set[int]

    @property
    def active(self) -> set[int]:
        return self.gave | self.received


def _roles(moves: Iterable[Move]) -> Roles:
    gave: set[int] = set()
    received: set[int] = set()
    for move in moves:
        if move.giver is not None:
            gave.add(move.giver)
        if move.helped is not None:
            received.add(move.helped)
    return Roles(gave, received)


def _received_then_gave(moves: Iterable[Move]) -> set[int]:
    """Members who were helped and, later in the period, helped someone themselves."""
    helped: set[int] = set()
    found: set[int] = set()
    for move in moves:  # oldest first
        if move.giver is not None and move.giver in helped:
            found.add(move.giver)
        if move.helped is not None:
            helped.add(move.helped)
    return found


# Connections between members --------------------------------------------------------------

Pair = tuple[int, int]


@dataclass(frozen=True)
class Meeting:
    at: datetime
    at_activity: bool


def _pair(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)


def _activity_id(key: str) -> str | None:
    parts = key.split(":")
    return parts[1] if len(parts) > 2 and parts[0] == "activity" else None


def _meetings(moves: Iterable[Move]) -> dict[Pair, Meeting]:
    """When each pair of members first met: an exchange or gift between them, or being
    credited for the same group activity (met once both were credited)."""
    first: dict[Pair, Meeting] = {}

    def met(pair: Pair, meeting: Meeting) -> None:
        if pair not in first or meeting.at < first[pair].at:
            first[pair] = meeting

    attendees: dict[str, dict[int, datetime]] = defaultdict(dict)
    for move in moves:
        a, b = move.payer_member, move.payee_member
        if move.kind in PAIR_KINDS and a is not None and b is not None and a != b:
            met(_pair(a, b), Meeting(move.at, at_activity=False))
        activity = _activity_id(move.key) if move.kind == "activity" else None
        if activity is not None and b is not None:
            attendees[activity].setdefault(b, move.at)  # oldest first: the first credit
    for credited in attendees.values():
        for (a, a_at), (b, b_at) in combinations(sorted(credited.items()), 2):
            met(_pair(a, b), Meeting(max(a_at, b_at), at_activity=True))
    return first


def _new_pairs(session: Session, bank_id: int, period: Period) -> dict[Pair, Meeting]:
    """Pairs whose first meeting ever falls in the period."""
    meetings = _meetings(_moves(session, bank_id, period, since_start=False))
    return {pair: m for pair, m in meetings.items() if period.holds(m.at)}


def _across_areas(pairs: Iterable[Pair], areas: dict[int, str | None]) -> int:
    count = 0
    for a, b in pairs:
        here, there = _area_key(areas.get(a)), _area_key(areas.get(b))
        if here and there and here != there:
            count += 1
    return count


# Categories and skills --------------------------------------------------------------------

def _categoriser() -> Callable[[Move], str]:
    vocabulary = Vocabulary()

    def category(move: Move) -> str:
        if move.kind == "activity":
            return GROUP_ACTIVITIES
        terms = vocabulary.terms(move.description)
        for name, tags in CATEGORIES:
            if any(f"#{tag}" in terms for tag in tags):
                return name
        return OTHER

    return category


def _skill_words(texts: Iterable[str | None]) -> set[str]:
    found: set[str] = set()
    for text in texts:
        for word in words(text):
            root = stem(word)
            if len(word) >= 3 and root not in _NOT_SKILLS:
                found.add(root)
    return found


def _skills_offered(session: Session, bank_id: int, period: Period) -> set[str]:
    profiles = session.scalars(
        select(Member.skills).where(
            Member.bank_id == bank_id, Member.status == "active",
            Member.joined_at < period.end_at,
        )
    )
    offers = session.scalars(
        select(Post.text).where(
            Post.bank_id == bank_id, Post.kind == "offer", Post.created_at < period.end_at,
        )
    )
    return _skill_words(profiles) | _skill_words(offers)


# The reports ------------------------------------------------------------------------------

def _hours_by_month(session: Session, bank_id: int, period: Period) -> Report:
    minutes: dict[date, int] = defaultdict(int)
    for move in _moves(session, bank_id, period):
        if move.giver is not None:
            minutes[move.month] += move.minutes
    return Report(
        "hours-by-month", "Hours given each month",
        "Hours of help members gave each month: to each other, at group activities, or "
        "recorded by a broker.",
        ("Month", "Hours given"),
        [(_label(m), _hours(minutes[m])) for m in period.months()], "bar",
    )


def _active_by_month(session: Session, bank_id: int, period: Period) -> Report:
    active: dict[date, set[int]] = defaultdict(set)
    for move in _moves(session, bank_id, period):
        for member in (move.giver, move.helped):
            if member is not None:
                active[move.month].add(member)
    return Report(
        "active-members", "Active members each month",
        "Members who gave or received help at least once in the month.",
        ("Month", "Active members"),
        [(_label(m), len(active[m])) for m in period.months()], "line",
    )


def _reciprocity(session: Session, bank_id: int, period: Period) -> Report:
    roles = _roles(_moves(session, bank_id, period))
    groups = (
        ("Gave and received", roles.gave & roles.received),
        ("Only gave", roles.gave - roles.received),
        ("Only received", roles.received - roles.gave),
    )
    whole = len(roles.active)
    return Report(
        "reciprocity", "Giving and receiving",
        "Of the members active in the period, how many both gave and received help, and "
        "how many only gave or only received.",
        ("Members", "Number", "Share of active members (%)"),
        [(label, len(group), _percent(len(group), whole)) for label, group in groups], "bar",
    )


def _new_members(session: Session, bank_id: int, period: Period) -> Report:
    joined = session.scalars(
        select(Member.joined_at).where(
            Member.bank_id == bank_id, Member.joined_at >= period.start_at,
            Member.joined_at < period.end_at,
        )
    )
    counts: dict[date, int] = defaultdict(int)
    for when in joined:
        at = _utc(when)
        counts[date(at.year, at.month, 1)] += 1
    return Report(
        "new-members", "New members each month",
        "People who joined the time bank each month, including any who have since left.",
        ("Month", "New members"),
        [(_label(m), counts[m]) for m in period.months()], "bar",
    )


def _hours_by_category(session: Session, bank_id: int, period: Period) -> Report:
    category = _categoriser()
    minutes: dict[str, int] = defaultdict(int)
    for move in _moves(session, bank_id, period):
        if move.giver is not None:
            minutes[category(move)] += move.minutes
    names = [name for name, _ in CATEGORIES] + [GROUP_ACTIVITIES, OTHER]
    return Report(
        "hours-by-category", "Hours given by kind of help",
        "Hours of help given, sorted into kinds of help by the words used to describe it.",
        ("Kind of help", "Hours given"),
        [(name, _hours(minutes[name])) for name in names], "bar",
    )


def _hours_by_area(session: Session, bank_id: int, period: Period) -> Report:
    areas = _areas(session, bank_id)
    minutes: dict[str, int] = defaultdict(int)
    spelling: dict[str, str] = {}
    for move in _moves(session, bank_id, period):
        if move.giver is None:
            continue
        area = " ".join((areas.get(move.giver) or "").split())
        key = area.casefold()
        minutes[key] += move.minutes
        spelling[key] = min(spelling.get(key, area), area)
    rows: list[tuple[object, ...]] = [
        (spelling[key] or UNKNOWN_AREA, _hours(total))
        for key, total in sorted(minutes.items(), key=lambda item: (-item[1], item[0]))
    ]
    return Report(
        "hours-by-area", "Hours given by area",
        "Hours of help given, by the area the member who gave them lives in.",
        ("Area", "Hours given"), rows, "bar",
    )


def _hours_by_organisation(session: Session, bank_id: int, period: Period) -> Report:
    payers = session.execute(
        select(Account.id, Account.kind, Account.name)
        .where(Account.bank_id == bank_id, Account.kind.in_(("fund", "organisation")))
        .order_by(Account.kind, Account.name, Account.id)
    ).all()
    minutes: dict[int, int] = defaultdict(int)
    credited: dict[int, set[int]] = defaultdict(set)
    for move in _moves(session, bank_id, period):
        if move.kind in ("record", "activity") and move.giver is not None:
            minutes[move.payer_id] += move.minutes
            credited[move.payer_id].add(move.giver)
    return Report(
        "hours-by-organisation", "Hours paid by the fund and each organisation",
        "Hours credited to members by the community fund and by each partner organisation, "
        "for help recorded by brokers and for group activities.",
        ("Paid by", "Hours", "Members credited"),
        [(p.name, _hours(minutes[p.id]), len(credited[p.id])) for p in payers], "bar",
    )


def _network_growth(session: Session, bank_id: int, period: Period) -> Report:
    meetings = _meetings(_moves(session, bank_id, period, since_start=False))
    new: dict[date, int] = defaultdict(int)
    before = 0
    for meeting in meetings.values():
        if meeting.at < period.start_at:
            before += 1
        else:
            new[date(meeting.at.year, meeting.at.month, 1)] += 1
    rows: list[tuple[object, ...]] = []
    total = before
    for month in period.months():
        total += new[month]
        rows.append((_label(month), new[month], total))
    return Report(
        "network-growth", "New connections between members",
        "Pairs of members who helped each other, gave each other hours or came to the same "
        "group activity for the first time, each month.",
        ("Month", "New pairs", "All pairs so far"), rows, "bar",
    )


Builder = Callable[[Session, int, Period], Report]
_BUILDERS: dict[str, Builder] = {
    "hours-by-month": _hours_by_month,
    "active-members": _active_by_month,
    "reciprocity": _reciprocity,
    "new-members": _new_members,
    "hours-by-category": _hours_by_category,
    "hours-by-area": _hours_by_area,
    "hours-by-organisation": _hours_by_organisation,
    "network-growth": _network_growth,
}
REPORTS: tuple[str, ...] = tuple(_BUILDERS)


def _period(start: date, end: date) -> Period:
    if end <= start:
        raise ValueError("a period must end after it starts")
    return Period(start, end)


def build(session: Session, bank_id: int, name: str, start: date, end: date) -> Report:
    """One report by name (``KeyError`` for a name not in ``REPORTS``)."""
    builder = _BUILDERS[name]
    return builder(session, bank_id, _period(start, end))


def all_reports(session: Session, bank_id: int, start: date, end: date) -> list[Report]:
    return [build(session, bank_id, name, start, end) for name in REPORTS]


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = SafeWriter(csv.writer(out))
    writer.writerow(report.columns)
    writer.writerows(report.rows)
    return out.getvalue()


# The co-production index ------------------------------------------------------------------

def coproduction(session: Session, bank_id: int, start: date, end: date) -> list[Indicator]:
    """The four values of co-production (assets, redefining work, reciprocity, social
    networks), measured over the period."""
    period = _period(start, end)
    moves = _moves(session, bank_id, period)
    return [
        *_assets(session, bank_id, period, moves),
        *_work(moves),
        *_reciprocity_indicators(moves),
        *_networks(session, bank_id, period),
    ]


def _assets(session: Session, bank_id: int, period: Period, moves: list[Move]
            ) -> Iterator[Indicator]:
    yield Indicator(
        "Assets", "Skills offered", len(_skills_offered(session, bank_id, period)), "skills",
        "Different skills that members list in their profiles or have offered by text.",
    )
    yield Indicator(
        "Assets", "Members who gave help", len(_roles(moves).gave), "members",
        "Members whose time and skills helped someone in the period.",
    )


def _work(moves: list[Move]) -> Iterator[Indicator]:
    minutes: dict[str, int] = defaultdict(int)
    for move in moves:
        if move.giver is not None:
            minutes[move.kind] += move.minutes
    yield Indicator(
        "Redefining work", "Hours given", _hours(sum(minutes.values())), "hours",
        "Hours of help that members gave, valued the same whoever gave them.",
    )
    yield Indicator(
        "Redefining work", "Hours between members", _hours(minutes["exchange"]), "hours",
        "Hours one member spent helping another, confirmed by the member helped.",
    )
    yield Indicator(
        "Redefining work", "Hours recorded by brokers", _hours(minutes["record"]), "hours",
        "Hours brokers recorded for members, such as volunteering for a partner organisation.",
    )
    yield Indicator(
        "Redefining work", "Hours at group activities", _hours(minutes["activity"]), "hours",
        "Hours members were credited for taking part in group activities.",
    )


def _reciprocity_indicators(moves: list[Move]) -> Iterator[Indicator]:
    roles = _roles(moves)
    both = roles.gave & roles.received
    yield Indicator(
        "Reciprocity", "Members who gave and received",
        _percent(len(both), len(roles.active)), "%",
        "The share of active members who both gave help and were helped in the period.",
    )
    yield Indicator(
        "Reciprocity", "Helped, then helped others", len(_received_then_gave(moves)),
        "members",
        "Members who were helped and later in the period helped someone else.",
    )


def _networks(session: Session, bank_id: int, period: Period) -> Iterator[Indicator]:
    new = _new_pairs(session, bank_id, period)
    areas = _areas(session, bank_id)
    yield Indicator(
        "Social networks", "New connections", len(new), "pairs",
        "Pairs of members who helped each other or met at a group activity for the first "
        "time.",
    )
    yield Indicator(
        "Social networks", "Connections across areas", _across_areas(new, areas), "pairs",
        "New connections between members who live in different areas.",
    )
    yield Indicator(
        "Social networks", "Connections made at group activities",
        sum(1 for m in new.values() if m.at_activity), "pairs",
        "New connections between members who first met at a group activity.",
    )


__all__ = [
    "REPORTS",
    "Indicator",
    "Report",
    "all_reports",
    "build",
    "coproduction",
    "to_csv",
]
