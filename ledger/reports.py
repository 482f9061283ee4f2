"""Reports for funders and the co-production index: read-only views of one bank's ledger over
a period ``[start, end)`` of dates, taken in UTC.

Every report is a few SQL aggregates over the transfers that count (``_moves``), so a bank
with a million transfers never brings them into Python; the same statements (a month is
``YYYY-MM`` in UTC on both) give the same numbers on SQLite and PostgreSQL. A transfer that
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
from typing import Any, cast

from sqlalchemy import (
    Integer,
    Subquery,
    and_,
    case,
    distinct,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from ledger.exports import SafeWriter
from ledger.matching import DAYS, Vocabulary, stem, words
from ledger.models import Account, Member, MemberMonth, MemberPair, Post, Transfer, UTCDateTime

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


# Reading ----------------------------------------------------------------------------------

def _utc(when: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored in UTC); PostgreSQL, the session's zone."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _month(session: Session, when: Any) -> Any:
    """``YYYY-MM`` of a moment, in UTC, as SQL (the same text ``_label`` gives)."""
    if _sqlite(session):  # stored as UTC text
        return func.strftime("%Y-%m", when)
    return func.to_char(func.timezone("UTC", when), "YYYY-MM")


def _least(session: Session, a: Any, b: Any) -> Any:
    return func.min(a, b) if _sqlite(session) else func.least(a, b)


def _greatest(session: Session, a: Any, b: Any) -> Any:
    return func.max(a, b) if _sqlite(session) else func.greatest(a, b)


def _activity_part(session: Session, key: Any) -> Any:
    """The activity id in a credit's key ``activity:<id>:<member>``, as SQL text."""
    if _sqlite(session):
        rest = func.substr(key, 10)
        return func.substr(rest, 1, func.instr(rest, ":") - 1)
    return func.split_part(key, ":", 2)


def _moves(session: Session, bank_id: int, period: Period, *, since_start: bool = True
           ) -> Subquery:
    """The transfers that count (neither reversed nor a reversal), created in the period (or,
    if not ``since_start``, up to its end), with both sides' accounts: a subquery the
    reports aggregate in SQL, so no report reads the transfers one by one."""
    where = [Transfer.created_at < period.end_at]
    if since_start:
        where.append(Transfer.created_at >= period.start_at)
    return counted_moves(session, bank_id, *where)


def _split(session: Session, bank_id: int, period: Period
           ) -> tuple[tuple[str, str] | None, list[tuple[datetime, datetime]]]:
    """The period as the whole months that ``member_months`` answers for (``[first,
    after)`` as ``YYYY-MM``, or None), and the stretches of part months at either end
    (``[start, end)`` in UTC) that only the transfers can answer for. The two never share a
    month. A part month counts as whole when the bank has no transfer at all in the rest
    of it (the dashboard's period ends tomorrow: the rest of this month is still empty):
    then the month's counted transfers are the period's, and so are its rows."""
    first = date(period.start.year, period.start.month, 1)
    whole_from = first
    if period.start != first and _any_between(session, bank_id, first, period.start):
        whole_from = _next_month(first)
    whole_to = date(period.end.year, period.end.month, 1)
    if period.end != whole_to and not _any_between(session, bank_id, period.end,
                                                   _next_month(whole_to)):
        whole_to = _next_month(whole_to)
    if whole_from >= whole_to:
        return None, [(period.start_at, period.end_at)]
    parts = []
    if period.start < whole_from:
        parts.append((period.start_at, Period(whole_from, whole_from).start_at))
    if whole_to < period.end:
        parts.append((Period(whole_to, whole_to).start_at, period.end_at))
    return (_label(whole_from), _label(whole_to)), parts


def _any_between(session: Session, bank_id: int, start: date, end: date) -> bool:
    """Whether the bank has any transfer (counted or not) created in ``[start, end)``."""
    span = Period(start, end)
    return session.scalar(select(Transfer.id).where(
        Transfer.bank_id == bank_id, Transfer.created_at >= literal(span.start_at, UTCDateTime),
        Transfer.created_at < literal(span.end_at, UTCDateTime)).limit(1)) is not None


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _in_months(bank_id: int, whole: tuple[str, str]) -> Any:
    """The rows of ``member_months`` for these whole months (one range of its key)."""
    return and_(MemberMonth.bank_id == bank_id, MemberMonth.month >= whole[0],
                MemberMonth.month < whole[1])


def _part_moves(session: Session, bank_id: int, parts: list[tuple[datetime, datetime]]
                ) -> Any:
    """The transfers that count in these stretches of part months (see ``_split``): on
    PostgreSQL a CTE, read once however many sides of each transfer the statement reads."""
    return counted_moves(session, bank_id, or_(*(
        and_(Transfer.created_at >= literal(start, UTCDateTime),
             Transfer.created_at < literal(end, UTCDateTime)) for start, end in parts)),
        cte=not _sqlite(session))  # SQLite cannot place it inside a compound select


MONTH_COLUMNS = ("gave_minutes", "gave_count", "received_minutes", "received_count",
                 "first_received_at", "first_received_id", "last_gave_at", "last_gave_id",
                 "gave_exchange_minutes", "gave_activity_minutes")


def month_sides(moves: Subquery) -> Any:
    """``_side_rows`` in one statement (a UNION ALL)."""
    return union_all(*_side_rows(moves))


def _side_rows(moves: Subquery) -> list[Any]:
    """Each transfer of ``moves`` (from ``counted_moves``) as the rows it adds to
    ``member_months``, unsummed: one for the member it credits with help given
    (``_given``), one for the member it shows helped (``_received``). Columns ``month``,
    ``member`` and ``MONTH_COLUMNS``."""
    at_none, id_none = type_coerce(null(), UTCDateTime), type_coerce(null(), moves.c.id.type)
    # Written into the statement, not bound: an integer on both backends, summed as one.
    zero, one = literal_column("0", Integer), literal_column("1", Integer)
    gave = select(
        moves.c.month.label("month"), moves.c.payee_member.label("member"),
        moves.c.minutes.label("gave_minutes"), one.label("gave_count"),
        zero.label("received_minutes"), zero.label("received_count"),
        at_none.label("first_received_at"), id_none.label("first_received_id"),
        moves.c.at.label("last_gave_at"), moves.c.id.label("last_gave_id"),
        case((moves.c.kind == "exchange", moves.c.minutes), else_=zero)
        .label("gave_exchange_minutes"),
        case((moves.c.kind == "activity", moves.c.minutes), else_=zero)
        .label("gave_activity_minutes"),
    ).where(_given(moves))
    received = select(
        moves.c.month, moves.c.payer_member, zero, zero, moves.c.minutes, one,
        moves.c.at, moves.c.id, at_none, id_none, zero, zero,
    ).where(_received(moves))
    return [gave, received]


def member_months(moves: Subquery) -> Any:
    """What each member gave and received each month among ``moves`` (from
    ``counted_moves``): a select of ``month``, ``member`` and ``MONTH_COLUMNS``, one row
    per month and member who gave or received. ``ledger.months`` keeps this in the table
    ``member_months``; this is how that table is built and checked, and how the reports
    count a period's part months, which the table cannot answer for."""
    rows = month_sides(moves).subquery("sides")
    key = (rows.c.month, rows.c.member)
    # Each month's first help received and last help given, by (time, id): numbered within
    # the member-month's rows of that side (the other side's rows number apart).
    first = func.row_number().over(
        partition_by=(*key, rows.c.received_count),
        order_by=(rows.c.first_received_at, rows.c.first_received_id))
    last = func.row_number().over(
        partition_by=(*key, rows.c.gave_count),
        order_by=(rows.c.last_gave_at.desc(), rows.c.last_gave_id.desc()))
    ranked = select(rows, first.label("first_n"), last.label("last_n")).subquery("ranked")
    c = ranked.c
    is_first = and_(c.received_count == 1, c.first_n == 1)
    is_last = and_(c.gave_count == 1, c.last_n == 1)
    return select(
        c.month, c.member,
        func.sum(c.gave_minutes).label("gave_minutes"),
        func.sum(c.gave_count).label("gave_count"),
        func.sum(c.received_minutes).label("received_minutes"),
        func.sum(c.received_count).label("received_count"),
        func.max(case((is_first, c.first_received_at))).label("first_received_at"),
        func.max(case((is_first, c.first_received_id))).label("first_received_id"),
        func.max(case((is_last, c.last_gave_at))).label("last_gave_at"),
        func.max(case((is_last, c.last_gave_id))).label("last_gave_id"),
        func.sum(c.gave_exchange_minutes).label("gave_exchange_minutes"),
        func.sum(c.gave_activity_minutes).label("gave_activity_minutes"),
    ).group_by(c.month, c.member)


def _months_of(session: Session, bank_id: int, period: Period) -> Subquery:
    """What each member gave and received in each month of the period, as ``member_months``
    holds it (columns ``month``, ``member`` and ``MONTH_COLUMNS``): the table's rows for the
    whole months, and for part months at either end the same worked out from their
    transfers (a month or two of them, not the period's). Those are one row per transfer
    and side (``month_sides``), enough for sums and counts of distinct members (a member
    may have several rows in one month)."""
    whole, parts = _split(session, bank_id, period)
    table = MemberMonth.__table__.c
    branches: list[Any] = []
    if whole:
        branches.append(select(table.month, table.member_id.label("member"),
                               *(table[name] for name in MONTH_COLUMNS))
                        .where(_in_months(bank_id, whole)))
    if parts:
        moves = _part_moves(session, bank_id, parts)
        # Side by side in one UNION ALL (SQLite takes no compound nested in another).
        branches += _side_rows(moves)
    both: Any = branches[0] if len(branches) == 1 else union_all(*branches)
    return cast(Subquery, both.subquery("member_months"))


def counted_moves(session: Session, bank_id: int, *where: Any, cte: bool = False) -> Subquery:
    """The transfers of a bank that count (neither reversed nor a reversal) and meet
    ``where`` (conditions on ``Transfer``), with both sides' accounts (as a CTE if ``cte``,
    computed once however often the statement reads it; typed as a subquery, whose columns
    it has)."""
    payer, payee, undo = aliased(Account), aliased(Account), aliased(Transfer)
    # Only reversals can reverse: the anti-join then looks through those alone.
    reversed_ = select(undo.id).where(undo.reverses_id.is_not(None),
                                      undo.reverses_id == Transfer.id).exists()
    stmt = (
        select(
            Transfer.id, Transfer.kind, Transfer.minutes, Transfer.created_at.label("at"),
            Transfer.description, Transfer.idempotency_key.label("key"),
            payer.id.label("payer_id"), payer.member_id.label("payer_member"),
            payee.member_id.label("payee_member"),
            # Grouped by, so computed here (PostgreSQL groups by a column, not by an
            # expression with parameters of its own).
            _month(session, Transfer.created_at).label("month"),
            _activity_part(session, Transfer.idempotency_key).label("activity"),
        )
        # Outer joins on the accounts' primary key (a transfer always has both): PostgreSQL
        # drops the join a report reads nothing from.
        .outerjoin(payer, payer.id == Transfer.from_account_id)
        .outerjoin(payee, payee.id == Transfer.to_account_id)
        .where(
            Transfer.bank_id == bank_id, Transfer.kind != "reversal",
            Transfer.reverses_id.is_(None), ~reversed_, *where,
        )
    )
    if cte:
        return cast(Subquery, stmt.cte("moves"))
    return stmt.subquery("moves")


def _given(moves: Subquery) -> Any:
    """Help given to a member (the member credited is ``payee_member``)."""
    return and_(moves.c.kind.in_(HELP_KINDS), moves.c.payee_member.is_not(None))


def _received(moves: Subquery) -> Any:
    """Help a member received from another member (the member helped is ``payer_member``)."""
    return and_(moves.c.kind == "exchange", moves.c.payer_member.is_not(None))


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
    """How many members only gave, only received, or did both."""

    both: int
    only_gave: int
    only_received: int

    @property
    def gave(self) -> int:
        return self.both + self.only_gave

    @property
    def active(self) -> int:
        return self.both + self.only_gave + self.only_received


def _roles(session: Session, bank_id: int, period: Period) -> Roles:
    rows = _months_of(session, bank_id, period)
    # Members who gave, who received, who did either: each a count of distinct members
    # (sorted, not hashed per member: the quickest way through a year's member-months).
    gave, got, active = session.execute(select(
        func.count(distinct(case((rows.c.gave_count > 0, rows.c.member)))),
        func.count(distinct(case((rows.c.received_count > 0, rows.c.member)))),
        func.count(distinct(case((or_(rows.c.gave_count > 0, rows.c.received_count > 0),
                                  rows.c.member)))),
    )).one()
    both = int(gave) + int(got) - int(active)
    return Roles(both, int(gave) - both, int(got) - both)


def _received_then_gave(session: Session, bank_id: int, period: Period) -> int:
    """Members who were helped and, later in the period, helped someone themselves: their
    first time helped (by time, then id) comes before their last time giving."""
    return _roles_and_received_then_gave(session, bank_id, period)[1]


def _roles_and_received_then_gave(session: Session, bank_id: int, period: Period
                                  ) -> tuple[Roles, int]:
    """``_roles`` and ``_received_then_gave`` from one pass over the member-months (the
    co-production page wants both; each alone is a pass of its own).

    Over a member's rows (``_months_of``): the first time helped is the earliest
    ``first_received_at``, the last time giving the latest ``last_gave_at``. When those
    are one moment, the ids break the tie. Two months never share a moment, so in a whole
    month the moment is in one row of the table, which has both ids; in a part month (a
    row per transfer there) no row has both, and the few members so tied are settled from
    their transfers at that moment (``_tied``)."""
    rows = _months_of(session, bank_id, period)
    both = rows.c.first_received_at == rows.c.last_gave_at
    per_member = select(
        rows.c.member,
        func.min(rows.c.first_received_at).label("helped"),
        func.max(rows.c.last_gave_at).label("gave"),
        func.max(case((both, 1), else_=0)).label("in_row"),
        func.max(case((and_(both, rows.c.first_received_id < rows.c.last_gave_id), 1),
                      else_=0)).label("tie"),
    ).group_by(rows.c.member).subquery()
    c = per_member.c
    same = c.helped == c.gave
    # -1 for a member who counts; for one tied in a part month, their id; else -2.
    verdict = case((c.helped < c.gave, -1), (and_(same, c.tie == 1), -1),
                   (and_(same, c.in_row == 0), c.member), else_=-2).label("verdict")
    judged = select(verdict, c.helped, c.gave).subquery()
    count, tied = 0, []
    gave = got = active = 0
    for who, helped, n, givers, helped_ones in session.execute(
            select(judged.c.verdict, func.min(judged.c.helped), func.count(),
                   func.count(judged.c.gave), func.count(judged.c.helped))
            .group_by(judged.c.verdict)):
        # Every member who gave or received has a row (a giver a last time giving, one
        # helped a first time helped): the roles are counts of those.
        active, gave, got = active + int(n), gave + int(givers), got + int(helped_ones)
        if who == -1:
            count = int(n)
        elif who != -2:
            tied.append((int(who), helped))
    both_ways = gave + got - active
    roles = Roles(both_ways, gave - both_ways, got - both_ways)
    return roles, count + sum(_tied(session, bank_id, member, at) for member, at in tied)


def _tied(session: Session, bank_id: int, member: int, at: datetime) -> bool:
    """Whether a member helped and helping at one moment was helped first there (by id)."""
    accounts = list(session.scalars(select(Account.id).where(Account.member_id == member)))
    moves = counted_moves(session, bank_id, Transfer.created_at == literal(at, UTCDateTime),
                          or_(Transfer.from_account_id.in_(accounts),
                              Transfer.to_account_id.in_(accounts)))
    helped = session.scalar(select(func.min(moves.c.id)).where(
        _received(moves), moves.c.payer_member == member))
    gave = session.scalar(select(func.max(moves.c.id)).where(
        _given(moves), moves.c.payee_member == member))
    return helped is not None and gave is not None and helped < gave


# Connections between members --------------------------------------------------------------

def meetings(session: Session, moves: Subquery) -> Any:
    """When each pair of members first met among ``moves`` (from ``counted_moves``): an
    exchange or gift between them, or being credited for the same group activity (met once
    both were credited). Columns ``a < b``, ``exchange_at`` and ``activity_at`` (either may
    be NULL), a select grouped by pair. ``ledger.pairs`` keeps this in the table
    ``member_pairs``; this is how that table is built and checked."""
    a, b = moves.c.payer_member, moves.c.payee_member
    between = (
        select(_least(session, a, b).label("a"), _greatest(session, a, b).label("b"),
               moves.c.at.label("at"), literal(0).label("activity"))
        .where(moves.c.kind.in_(PAIR_KINDS), a.is_not(None), b.is_not(None), a != b)
    )
    credits = (
        select(moves.c.activity, moves.c.payee_member.label("member"),
               func.min(moves.c.at).label("at"))
        .where(moves.c.kind == "activity", moves.c.key.like("activity:%:%"),
               moves.c.payee_member.is_not(None))
        .group_by(moves.c.activity, moves.c.payee_member)
        .cte("credits")  # read twice below: a CTE, computed once
    )
    one, other = aliased(credits), aliased(credits)
    together = (
        select(one.c.member.label("a"), other.c.member.label("b"),
               _greatest(session, one.c.at, other.c.at).label("at"),
               literal(1).label("activity"))
        .join(other, and_(other.c.activity == one.c.activity, one.c.member < other.c.member))
    )
    both = union_all(between, together).subquery("meetings")
    return (
        select(both.c.a, both.c.b,
               func.min(case((both.c.activity == 0, both.c.at))).label("exchange_at"),
               func.min(case((both.c.activity == 1, both.c.at))).label("activity_at"))
        .group_by(both.c.a, both.c.b)
    )


def _met_before(period: Period) -> Any:
    """The pairs (``member_pairs``) that had met by the period's end. A pair first met at
    an activity if it met there before any exchange or gift between them (one at the same
    moment counts first): a fact about all time that holds for any period the first
    meeting falls in."""
    return and_(MemberPair.met_at < literal(period.end_at, UTCDateTime))


def _new_pairs(session: Session, bank_id: int, period: Period
               ) -> tuple[int, int, list[tuple[str | None, str | None, int]]]:
    """Pairs whose first meeting ever falls in the period: how many, how many of them met at
    an activity, and how many per pair of areas (as the members wrote them)."""
    first, second = aliased(Member), aliased(Member)
    at_activity = case(
        (MemberPair.exchange_at.is_(None), 1),
        (MemberPair.activity_at < MemberPair.exchange_at, 1), else_=0)
    rows = session.execute(
        select(first.area, second.area, func.count(), func.sum(at_activity))
        .select_from(MemberPair)
        .join(first, first.id == MemberPair.member_a_id)
        .join(second, second.id == MemberPair.member_b_id)
        .where(MemberPair.bank_id == bank_id, _met_before(period),
               MemberPair.met_at >= literal(period.start_at, UTCDateTime))
        .group_by(first.area, second.area)).all()
    count = sum(int(row[2]) for row in rows)
    at_activity_count = sum(int(row[3] or 0) for row in rows)
    return count, at_activity_count, [(row[0], row[1], int(row[2])) for row in rows]


def _across_areas(by_areas: Iterable[tuple[str | None, str | None, int]]) -> int:
    count = 0
    for here, there, pairs in by_areas:
        here_key, there_key = _area_key(here), _area_key(there)
        if here_key and there_key and here_key != there_key:
            count += pairs
    return count


# Categories and skills --------------------------------------------------------------------

def _categoriser() -> Callable[[str, str], str]:
    vocabulary = Vocabulary()

    def category(kind: str, description: str) -> str:
        if kind == "activity":
            return GROUP_ACTIVITIES
        terms = vocabulary.terms(description)
        for name, tags in CATEGORIES:
            if any(f"#{tag}" in terms for tag in tags):
                return name
        return OTHER

    return category


def _skill_words(texts: Iterable[str | None]) -> set[str]:
    found: set[str] = set()
    for written in texts:
        for word in words(written):
            root = stem(word)
            if len(word) >= 3 and root not in _NOT_SKILLS:
                found.add(root)
    return found


def _skills_offered(session: Session, bank_id: int, period: Period) -> set[str]:
    # Each different text once: many members write the same few skills, and the words are
    # a set, so a text read twice adds nothing (at 100,000 members, most of the time).
    profiles = session.scalars(
        select(Member.skills).where(
            Member.bank_id == bank_id, Member.status == "active",
            Member.joined_at < period.end_at,
        ).distinct()
    )
    offers = session.scalars(
        select(Post.text).where(
            Post.bank_id == bank_id, Post.kind == "offer", Post.created_at < period.end_at,
        ).distinct()
    )
    return _skill_words(profiles) | _skill_words(offers)


# The reports ------------------------------------------------------------------------------

def _by_month(session: Session, rows: Any) -> dict[str, int]:
    return {str(month): int(value or 0) for month, value in session.execute(rows)}


def _count_by(session: Session, key: Any, *where: Any) -> dict[str, int]:
    """How many rows have each value of ``key``, an expression grouped by through a
    subquery (so the same on PostgreSQL, whose GROUP BY cannot repeat its parameters)."""
    keyed = select(key.label("key")).where(*where).subquery()
    return _by_month(session, select(keyed.c.key, func.count()).group_by(keyed.c.key))


def _hours_by_month(session: Session, bank_id: int, period: Period) -> Report:
    rows = _months_of(session, bank_id, period)
    minutes = _by_month(session, select(rows.c.month, func.sum(rows.c.gave_minutes))
                        .group_by(rows.c.month))
    return Report(
        "hours-by-month", TITLES["hours-by-month"],
        "Hours of help members gave each month: to each other, at group activities, or "
        "recorded by a broker.",
        ("Month", "Hours given"),
        [(_label(m), _hours(minutes.get(_label(m), 0))) for m in period.months()], "bar",
    )


def _active_by_month(session: Session, bank_id: int, period: Period) -> Report:
    rows = _months_of(session, bank_id, period)
    counts = _by_month(session, select(rows.c.month, func.count(distinct(rows.c.member)))
                       .where(or_(rows.c.gave_count > 0, rows.c.received_count > 0))
                       .group_by(rows.c.month))
    return Report(
        "active-members", TITLES["active-members"],
        "Members who gave or received help at least once in the month.",
        ("Month", "Active members"),
        [(_label(m), counts.get(_label(m), 0)) for m in period.months()], "line",
    )


def _reciprocity(session: Session, bank_id: int, period: Period) -> Report:
    roles = _roles(session, bank_id, period)
    groups = (
        ("Gave and received", roles.both),
        ("Only gave", roles.only_gave),
        ("Only received", roles.only_received),
    )
    return Report(
        "reciprocity", TITLES["reciprocity"],
        "Of the members active in the period, how many both gave and received help, and "
        "how many only gave or only received.",
        ("Members", "Number", "Share of active members (%)"),
        [(label, count, _percent(count, roles.active)) for label, count in groups], "bar",
    )


def _new_members(session: Session, bank_id: int, period: Period) -> Report:
    counts = _count_by(session, _month(session, Member.joined_at),
                       Member.bank_id == bank_id, Member.joined_at >= period.start_at,
                       Member.joined_at < period.end_at)
    return Report(
        "new-members", TITLES["new-members"],
        "People who joined the time bank each month, including any who have since left.",
        ("Month", "New members"),
        [(_label(m), counts.get(_label(m), 0)) for m in period.months()], "bar",
    )


def _hours_by_category(session: Session, bank_id: int, period: Period) -> Report:
    category = _categoriser()
    moves = _moves(session, bank_id, period)
    is_activity = moves.c.kind == "activity"
    # Activities are one category whatever they are called: their descriptions are not read.
    given = select(case((is_activity, 1), else_=0).label("activity"),
                   case((is_activity, ""), else_=moves.c.description).label("what"),
                   moves.c.minutes).where(_given(moves)).subquery()
    minutes: dict[str, int] = defaultdict(int)
    for activity, what, total in session.execute(
            select(given.c.activity, given.c.what, func.sum(given.c.minutes))
            .group_by(given.c.activity, given.c.what)):
        minutes[category("activity" if activity else "help", what or "")] += int(total)
    names = [name for name, _ in CATEGORIES] + [GROUP_ACTIVITIES, OTHER]
    return Report(
        "hours-by-category", TITLES["hours-by-category"],
        "Hours of help given, sorted into kinds of help by the words used to describe it.",
        ("Kind of help", "Hours given"),
        [(name, _hours(minutes[name])) for name in names], "bar",
    )


def _hours_by_area(session: Session, bank_id: int, period: Period) -> Report:
    months = _months_of(session, bank_id, period)
    totals = session.execute(
        select(Member.area, func.sum(months.c.gave_minutes))
        .join(Member, Member.id == months.c.member)
        .where(months.c.gave_count > 0).group_by(Member.area)).all()
    minutes: dict[str, int] = defaultdict(int)
    spelling: dict[str, str] = {}
    for raw, total in totals:
        area = " ".join((raw or "").split())
        key = area.casefold()
        minutes[key] += int(total)
        spelling[key] = min(spelling.get(key, area), area)
    rows: list[tuple[object, ...]] = [
        (spelling[key] or UNKNOWN_AREA, _hours(total))
        for key, total in sorted(minutes.items(), key=lambda item: (-item[1], item[0]))
    ]
    return Report(
        "hours-by-area", TITLES["hours-by-area"],
        "Hours of help given, by the area the member who gave them lives in.",
        ("Area", "Hours given"), rows, "bar",
    )


def _hours_by_organisation(session: Session, bank_id: int, period: Period) -> Report:
    payers = session.execute(
        select(Account.id, Account.kind, Account.name)
        .where(Account.bank_id == bank_id, Account.kind.in_(("fund", "organisation")))
        .order_by(Account.kind, Account.name, Account.id)
    ).all()
    moves = _moves(session, bank_id, period)
    paid = {payer: (int(total), int(people)) for payer, total, people in session.execute(
        select(moves.c.payer_id, func.sum(moves.c.minutes),
               func.count(distinct(moves.c.payee_member)))
        .where(moves.c.kind.in_(("record", "activity")), moves.c.payee_member.is_not(None))
        .group_by(moves.c.payer_id))}
    return Report(
        "hours-by-organisation", TITLES["hours-by-organisation"],
        "Hours credited to members by the community fund and by each partner organisation, "
        "for help recorded by brokers and for group activities.",
        ("Paid by", "Hours", "Members credited"),
        [(p.name, _hours(paid.get(p.id, (0, 0))[0]), paid.get(p.id, (0, 0))[1])
         for p in payers], "bar",
    )


def _network_growth(session: Session, bank_id: int, period: Period) -> Report:
    start = literal(period.start_at, UTCDateTime)
    before = int(session.scalar(
        select(func.count()).select_from(MemberPair)
        .where(MemberPair.bank_id == bank_id, MemberPair.met_at < start)) or 0)
    new = _count_by(session, _month(session, MemberPair.met_at),
                    MemberPair.bank_id == bank_id, MemberPair.met_at >= start,
                    _met_before(period))
    new["before"] = before
    rows: list[tuple[object, ...]] = []
    total = new.get("before", 0)
    for m in period.months():
        total += new.get(_label(m), 0)
        rows.append((_label(m), new.get(_label(m), 0), total))
    return Report(
        "network-growth", TITLES["network-growth"],
        "Pairs of members who helped each other, gave each other hours or came to the same "
        "group activity for the first time, each month.",
        ("Month", "New pairs", "All pairs so far"), rows, "bar",
    )


Builder = Callable[[Session, int, Period], Report]
# Each report's title, as the dashboard lists them (one report is built at a time).
TITLES: dict[str, str] = {
    "hours-by-month": "Hours given each month",
    "active-members": "Active members each month",
    "reciprocity": "Giving and receiving",
    "new-members": "New members each month",
    "hours-by-category": "Hours given by kind of help",
    "hours-by-area": "Hours given by area",
    "hours-by-organisation": "Hours paid by the fund and each organisation",
    "network-growth": "New connections between members",
}


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


def _tune(session: Session) -> None:
    """On PostgreSQL, for this transaction: no JIT compiling (it costs a report more time
    than it saves), and memory enough to group months and pairs in a hash, not on disk."""
    if not _sqlite(session):
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL work_mem = '64MB'"))


def build(session: Session, bank_id: int, name: str, start: date, end: date) -> Report:
    """One report by name (``KeyError`` for a name not in ``REPORTS``)."""
    builder = _BUILDERS[name]
    _tune(session)
    return builder(session, bank_id, _period(start, end))


def all_reports(session: Session, bank_id: int, start: date, end: date) -> list[Report]:
    period = _period(start, end)
    _tune(session)
    return [_BUILDERS[name](session, bank_id, period) for name in REPORTS]


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
    _tune(session)
    roles, helped_then_helped = _roles_and_received_then_gave(session, bank_id, period)
    return [
        *_assets(session, bank_id, period, roles),
        *_work(session, bank_id, period),
        *_reciprocity_indicators(roles, helped_then_helped),
        *_networks(session, bank_id, period),
    ]


def _assets(session: Session, bank_id: int, period: Period, roles: Roles
            ) -> Iterator[Indicator]:
    yield Indicator(
        "Assets", "Skills offered", len(_skills_offered(session, bank_id, period)), "skills",
        "Different skills that members list in their profiles or have offered by text.",
    )
    yield Indicator(
        "Assets", "Members who gave help", roles.gave, "members",
        "Members whose time and skills helped someone in the period.",
    )


def _work(session: Session, bank_id: int, period: Period) -> Iterator[Indicator]:
    rows = _months_of(session, bank_id, period)
    given, exchange, activity = (int(total or 0) for total in session.execute(select(
        func.sum(rows.c.gave_minutes), func.sum(rows.c.gave_exchange_minutes),
        func.sum(rows.c.gave_activity_minutes))).one())
    # Help given is an exchange, a group activity, or hours a broker recorded (HELP_KINDS).
    minutes = {"exchange": exchange, "activity": activity,
               "record": given - exchange - activity}
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


def _reciprocity_indicators(roles: Roles, helped_then_helped: int) -> Iterator[Indicator]:
    yield Indicator(
        "Reciprocity", "Members who gave and received",
        _percent(roles.both, roles.active), "%",
        "The share of active members who both gave help and were helped in the period.",
    )
    yield Indicator(
        "Reciprocity", "Helped, then helped others", helped_then_helped,
        "members",
        "Members who were helped and later in the period helped someone else.",
    )


def _networks(session: Session, bank_id: int, period: Period) -> Iterator[Indicator]:
    count, at_activity, by_areas = _new_pairs(session, bank_id, period)
    yield Indicator(
        "Social networks", "New connections", count, "pairs",
        "Pairs of members who helped each other or met at a group activity for the first "
        "time.",
    )
    yield Indicator(
        "Social networks", "Connections across areas", _across_areas(by_areas), "pairs",
        "New connections between members who live in different areas.",
    )
    yield Indicator(
        "Social networks", "Connections made at group activities", at_activity, "pairs",
        "New connections between members who first met at a group activity.",
    )


__all__ = [
    "REPORTS",
    "TITLES",
    "Indicator",
    "Report",
    "all_reports",
    "build",
    "coproduction",
    "to_csv",
]
