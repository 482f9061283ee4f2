"""What each member gave and received each month: the table ``member_months``, kept in step
with the transfers.

The monthly reports (hours given, active members) and the co-production index's roles
(who gave, who received, who was helped and then helped) added up every counted transfer
of the period on each request: a second or more at a million transfers. They read this
table instead, one row per bank, month (``YYYY-MM`` in UTC) and member, written in the same
transaction (the same flush) as the transfer that changes it, whoever writes it through
the ORM, as ``ledger.pairs`` keeps ``member_pairs``:

- a new transfer (not a reversal): one upsert for the member it credits with help given
  (``reports._given``) and one for the member it shows helped (``reports._received``),
  adding its minutes and count and keeping the month's first help received and last help
  given, each by (time, id);
- a reversal, or a transfer whose time, accounts, minutes, kind or bank change (the tests
  date their rows by hand; a correction might), or one deleted: the member-months it
  touches, before and after, are worked out again from the transfers (deleted and
  computed afresh from ``reports.counted_moves``), so a month whose only transfer was
  reversed has no row, and one whose first or last was reversed takes the next.

Transfers written around the ORM (a bulk load with COPY) are followed by ``rebuild``;
``breaches`` (run by ``timebank ledger verify``) checks the table against the transfers.

Concurrency: every row for member M is written while M's account (a member has one) is
locked, because every transfer, a reversal too, locks both its accounts
(``ledger.accounts.transfer``) before it is flushed, and the rows a transfer touches are
those of its two accounts' members; ``refresh`` locks the accounts of the members it works
out again too (in id order, as ``accounts.transfer`` does), for a transfer changed in place
without that lock. So two writers to the same member-month are ordered by the lock, and
``refresh`` reads the transfers and deletes and inserts rows that no other writer can
change meanwhile (on PostgreSQL each statement sees what committed before it; SQLite lets
one writer at a time); the upsert itself only adds (and keeps the earlier or later time),
which PostgreSQL's ON CONFLICT makes safe anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    and_,
    case,
    delete,
    event,
    inspect,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger import derived, reports
from ledger.models import Account, Bank, MemberMonth, Transfer, UTCDateTime

_WATCHED = ("created_at", "from_account_id", "to_account_id", "kind", "minutes",
            "reverses_id", "bank_id")
COLUMNS = reports.MONTH_COLUMNS


def month_of(when: datetime) -> str:
    """``YYYY-MM`` of a moment in UTC (what ``reports._month`` gives in SQL)."""
    return f"{reports._utc(when):%Y-%m}"


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a month ``YYYY-MM``, in UTC."""
    year, number = int(month[:4]), int(month[5:7])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _insert(session: Session) -> Any:
    return (sqlite.insert if reports._sqlite(session) else postgresql.insert)(MemberMonth)


def _before(at: Any, id_: Any, other_at: Any, other_id: Any) -> Any:
    """(at, id) comes before (other_at, other_id), SQL."""
    return or_(at < other_at, and_(at == other_at, id_ < other_id))


def _upsert(session: Session, row: dict[str, Any]) -> None:
    """Add one transfer's part to a member-month: sums added, the earlier first help
    received and the later last help given kept."""
    stmt = _insert(session).values(row)
    old, new = MemberMonth.__table__.c, stmt.excluded
    takes_first = or_(old.first_received_at.is_(None), and_(
        new.first_received_at.is_not(None),
        _before(new.first_received_at, new.first_received_id,
                old.first_received_at, old.first_received_id)))
    takes_last = or_(old.last_gave_at.is_(None), and_(
        new.last_gave_at.is_not(None),
        _before(old.last_gave_at, old.last_gave_id, new.last_gave_at, new.last_gave_id)))
    stmt = stmt.on_conflict_do_update(
        index_elements=[old.bank_id, old.month, old.member_id],
        set_={
            "gave_minutes": old.gave_minutes + new.gave_minutes,
            "gave_count": old.gave_count + new.gave_count,
            "received_minutes": old.received_minutes + new.received_minutes,
            "received_count": old.received_count + new.received_count,
            "gave_exchange_minutes": old.gave_exchange_minutes + new.gave_exchange_minutes,
            "gave_activity_minutes": old.gave_activity_minutes + new.gave_activity_minutes,
            "first_received_at": case((takes_first, new.first_received_at),
                                      else_=old.first_received_at),
            "first_received_id": case((takes_first, new.first_received_id),
                                      else_=old.first_received_id),
            "last_gave_at": case((takes_last, new.last_gave_at), else_=old.last_gave_at),
            "last_gave_id": case((takes_last, new.last_gave_id), else_=old.last_gave_id),
        })
    session.execute(stmt)


def _members(session: Session, account_ids: set[int]) -> dict[int, int | None]:
    """Whose each account is (the accounts a transfer just locked are in the session)."""
    found = {}
    for account_id in account_ids:
        account = session.get(Account, account_id)
        found[account_id] = account.member_id if account is not None else None
    return found


def _added(session: Session, transfer: Transfer) -> None:
    """A transfer just written (not reversed, not yet): what it adds to its member-months."""
    members = _members(session, {transfer.from_account_id, transfer.to_account_id})
    payer, payee = members.get(transfer.from_account_id), members.get(transfer.to_account_id)
    month = month_of(transfer.created_at)
    base = {"bank_id": transfer.bank_id, "month": month, "gave_minutes": 0, "gave_count": 0,
            "received_minutes": 0, "received_count": 0, "first_received_at": None,
            "first_received_id": None, "last_gave_at": None, "last_gave_id": None,
            "gave_exchange_minutes": 0, "gave_activity_minutes": 0}
    # As reports._given and reports._received read it.
    if transfer.kind in reports.HELP_KINDS and payee is not None:
        _upsert(session, {**base, "member_id": payee, "gave_minutes": transfer.minutes,
                          "gave_count": 1, "last_gave_at": transfer.created_at,
                          "last_gave_id": transfer.id,
                          "gave_exchange_minutes":
                              transfer.minutes if transfer.kind == "exchange" else 0,
                          "gave_activity_minutes":
                              transfer.minutes if transfer.kind == "activity" else 0})
    if transfer.kind == "exchange" and payer is not None:
        _upsert(session, {**base, "member_id": payer, "received_minutes": transfer.minutes,
                          "received_count": 1, "first_received_at": transfer.created_at,
                          "first_received_id": transfer.id})


def _touched(session: Session, values: dict[str, Any]) -> set[tuple[str, int]]:
    """Every member-month a transfer with these values of its columns could count in."""
    if values["created_at"] is None:
        return set()
    month = month_of(values["created_at"])
    members = _members(session, {values["from_account_id"], values["to_account_id"]})
    return {(month, member) for member in members.values() if member is not None}


def refresh(session: Session, bank_id: int, keys: set[tuple[str, int]]) -> None:
    """Work these member-months (``(month, member_id)``) out again from the transfers."""
    if not keys:
        return
    people = {member for _, member in keys}
    # Their accounts (one each), locked in id order before the rows are read and written
    # again: a reversal holds them already (``accounts.transfer``), but a transfer changed
    # in place (a correction) took no lock. The ids themselves, not a subquery, below:
    # PostgreSQL then reads each side's index.
    accounts = list(session.scalars(
        select(Account.id).where(Account.member_id.in_(people)).order_by(Account.id)
        .with_for_update()))
    spans = [month_bounds(month) for month in {month for month, _ in keys}]
    moves = reports.counted_moves(
        session, bank_id,
        or_(Transfer.from_account_id.in_(accounts), Transfer.to_account_id.in_(accounts)),
        or_(*(and_(Transfer.created_at >= literal(start, UTCDateTime),
                   Transfer.created_at < literal(end, UTCDateTime)) for start, end in spans)))
    found = reports.member_months(moves).subquery()
    for month, member in keys:
        session.execute(delete(MemberMonth).where(
            MemberMonth.bank_id == bank_id, MemberMonth.month == month,
            MemberMonth.member_id == member))
    session.execute(_insert(session).from_select(
        ["bank_id", "month", "member_id", *COLUMNS],
        select(literal(bank_id), found.c.month, found.c.member,
               *(found.c[name] for name in COLUMNS))
        .where(tuple_(found.c.month, found.c.member).in_(sorted(keys)))))


def rebuild(session: Session, bank_id: int | None = None) -> None:
    """Every member-month of a bank (or of every bank) worked out again from all its
    transfers."""
    bank_ids = [bank_id] if bank_id is not None else list(session.scalars(select(Bank.id)))
    reports._tune(session)
    for bank in bank_ids:
        session.execute(delete(MemberMonth).where(MemberMonth.bank_id == bank))
        found = reports.member_months(reports.counted_moves(session, bank)).subquery()
        session.execute(_insert(session).from_select(
            ["bank_id", "month", "member_id", *COLUMNS],
            select(literal(bank), found.c.month, found.c.member,
                   *(found.c[name] for name in COLUMNS))))


def breaches(session: Session, bank_id: int) -> list[str]:
    """Where ``member_months`` disagrees with the transfers (empty when it agrees)."""
    reports._tune(session)
    found = reports.member_months(reports.counted_moves(session, bank_id)).subquery()
    table = MemberMonth.__table__.c
    # Sums as one type on both sides (SQLite and PostgreSQL may type a sum otherwise).
    wanted = select(found.c.month, found.c.member,
                    *(found.c[name] for name in COLUMNS))
    kept = select(table.month, table.member_id, *(table[name] for name in COLUMNS)).where(
        table.bank_id == bank_id)
    missing, extra = derived.differences(session, wanted, kept)
    if not missing and not extra:
        return []
    return [f"bank {bank_id}: {missing} member-months in the transfers are missing or differ "
            f"in member_months, and {extra} rows there are not in the transfers "
            "(timebank ledger rebuild-pairs puts it right)"]


# The hooks --------------------------------------------------------------------------------

def _values(transfer: Transfer, *, before: bool) -> dict[str, Any]:
    return derived.values(transfer, _WATCHED, before=before)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    new = [obj for obj in session.new if isinstance(obj, Transfer)]
    changed = [obj for obj in session.dirty if isinstance(obj, Transfer)
               and any(inspect(obj).attrs[name].history.has_changes() for name in _WATCHED)]
    gone = [obj for obj in session.deleted if isinstance(obj, Transfer)]
    if not new and not changed and not gone:
        return
    again: dict[int, set[tuple[str, int]]] = {}

    def work_out(values: dict[str, Any]) -> None:
        again.setdefault(values["bank_id"], set()).update(_touched(session, values))

    def reversed_by(values: dict[str, Any]) -> None:
        """The transfer a reversal reverses counts, or no longer does: its months again."""
        original = (session.get(Transfer, values["reverses_id"])
                    if values["reverses_id"] is not None else None)
        if original is not None:
            work_out(_values(original, before=False))

    for transfer in new:
        if transfer.reverses_id is not None:
            reversed_by(_values(transfer, before=False))
        elif transfer.kind != "reversal":
            _added(session, transfer)
    for transfer in changed:
        for before in (True, False):
            values = _values(transfer, before=before)
            work_out(values)
            reversed_by(values)  # a reversal pointed at another transfer
    for transfer in gone:
        values = _values(transfer, before=True)
        work_out(values)
        reversed_by(values)  # a reversal deleted: the transfer it reversed counts again
    for bank_id, keys in again.items():
        refresh(session, bank_id, keys)


__all__ = ["breaches", "rebuild", "refresh"]
