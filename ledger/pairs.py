"""Who first met whom: the table ``member_pairs``, kept in step with the transfers.

The network-growth report and the co-production index's "new connections" count pairs of
members by when they first met: an exchange or gift between them, or being credited for the
same group activity (``ledger.reports.meetings`` says exactly how). Finding every pair from
every transfer on each request took seconds at a million transfers, so the pairs are kept in
a table of their own, written in the same transaction (the same flush) as the transfer that
makes them, whoever writes it through the ORM:

- a new exchange or gift between two members: one upsert, the earlier time kept;
- a new credit for a group activity (key ``activity:<id>:<member>``): one upsert per other
  member credited for that activity (read through ``ix_transfers_activity_key``), at the
  later of the two credits;
- a reversal, or a transfer whose time, accounts, kind or key change (the tests date their
  rows by hand; a correction might): the pairs it touches are worked out again from the
  transfers, so a pair that met only through a reversed transfer is no longer met, and one
  whose first meeting was reversed met at its next one, as the reports always counted.

Transfers written around the ORM (a bulk load with COPY) are followed by ``rebuild``;
``breaches`` (run by ``timebank ledger verify``) checks the table against the transfers.
Concurrent writers to the same pair are ordered by the account locks ``ledger.accounts``
takes (both members' accounts for an exchange; the paying account for an activity's credits).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, delete, event, func, inspect, literal, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger import derived, reports
from ledger.models import Account, Bank, MemberPair, Transfer, UTCDateTime

_WATCHED = ("created_at", "from_account_id", "to_account_id", "kind", "idempotency_key",
            "reverses_id", "bank_id")
ACTIVITY_PREFIX = "activity:"


def _insert(session: Session) -> Any:
    return (sqlite.insert if reports._sqlite(session) else postgresql.insert)(MemberPair)


def _earliest(old: Any, new: Any) -> Any:
    """The earlier of two moments, either possibly NULL (SQL, the same on both backends)."""
    return case((old.is_(None), new), (new.is_(None), old), (new < old, new), else_=old)


def _upsert(session: Session, rows: Any) -> None:
    """Insert pairs (``rows``: a list of dicts or a select of the table's columns), keeping
    the earlier of each time for a pair already met."""
    stmt = _insert(session)
    stmt = stmt.from_select(
        ["bank_id", "member_a_id", "member_b_id", "met_at", "exchange_at", "activity_at"],
        rows) if not isinstance(rows, list) else stmt.values(rows)
    table, new = MemberPair.__table__.c, stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.bank_id, table.member_a_id, table.member_b_id],
        set_={"met_at": _earliest(table.met_at, new.met_at),
              "exchange_at": _earliest(table.exchange_at, new.exchange_at),
              "activity_at": _earliest(table.activity_at, new.activity_at)})
    session.execute(stmt)


def _members(session: Session, account_ids: set[int]) -> dict[int, int | None]:
    """Whose each account is (the accounts a transfer just locked are in the session)."""
    found = {}
    for account_id in account_ids:
        account = session.get(Account, account_id)
        found[account_id] = account.member_id if account is not None else None
    return found


def _activity(key: str | None) -> str | None:
    """The activity id in a credit's key ``activity:<id>:<member>`` (as the reports read
    it), or None for any other key."""
    if not key or not key.startswith(ACTIVITY_PREFIX):
        return None
    rest = key[len(ACTIVITY_PREFIX):]
    return rest.split(":", 1)[0] if ":" in rest else None


def _credits(session: Session, bank_id: int, activity: str, *, counted: bool) -> Any:
    """The members credited for an activity, each with their first credit's time
    (``counted``: only credits that count, as the reports read them)."""
    pattern = ACTIVITY_PREFIX + activity.replace("\\", "\\\\").replace("%", "\\%") \
        .replace("_", "\\_") + ":%"
    where = [Transfer.bank_id == bank_id, Transfer.kind == "activity",
             Transfer.idempotency_key.like(pattern, escape="\\")]
    if counted:
        moves = reports.counted_moves(session, bank_id, *where)
        return (select(moves.c.payee_member.label("member"), func.min(moves.c.at).label("at"))
                .where(moves.c.payee_member.is_not(None))
                .group_by(moves.c.payee_member))
    return (select(Account.member_id.label("member"))
            .join(Transfer, Transfer.to_account_id == Account.id)
            .where(*where, Account.member_id.is_not(None)).distinct())


def _added(session: Session, transfer: Transfer) -> None:
    """A transfer just written (not reversed, not yet): the pairs it makes."""
    if transfer.kind in reports.PAIR_KINDS:
        members = _members(session, {transfer.from_account_id, transfer.to_account_id})
        a, b = members.get(transfer.from_account_id), members.get(transfer.to_account_id)
        if a is not None and b is not None and a != b:
            _upsert(session, [{"bank_id": transfer.bank_id, "member_a_id": min(a, b),
                               "member_b_id": max(a, b), "met_at": transfer.created_at,
                               "exchange_at": transfer.created_at, "activity_at": None}])
    elif transfer.kind == "activity" and (activity := _activity(transfer.idempotency_key)):
        member = _members(session, {transfer.to_account_id}).get(transfer.to_account_id)
        if member is None:
            return
        others = _credits(session, transfer.bank_id, activity, counted=True).subquery()
        at = reports._greatest(session, others.c.at,
                               literal(transfer.created_at, UTCDateTime))
        _upsert(session, select(
            literal(transfer.bank_id),
            reports._least(session, others.c.member, member),
            reports._greatest(session, others.c.member, member), at, null(), at,
        ).where(others.c.member != member))


def _touched(session: Session, transfer: Transfer, values: dict[str, Any]) -> set[tuple[int, int]]:
    """Every pair whose first meeting ``transfer`` (with these values of its columns) could
    be part of, whether or not it counts now."""
    pairs: set[tuple[int, int]] = set()
    members = _members(session, {values["from_account_id"], values["to_account_id"]})
    payer, payee = members.get(values["from_account_id"]), members.get(values["to_account_id"])
    if values["kind"] in reports.PAIR_KINDS and payer and payee and payer != payee:
        pairs.add((min(payer, payee), max(payer, payee)))
    activity = _activity(values["idempotency_key"])
    if values["kind"] == "activity" and activity and payee:
        for other in session.scalars(_credits(session, values["bank_id"], activity,
                                              counted=False)):
            if other != payee:
                pairs.add((min(other, payee), max(other, payee)))
    return pairs


def refresh(session: Session, bank_id: int, pairs: set[tuple[int, int]]) -> None:
    """Work these pairs out again from the transfers."""
    if not pairs:
        return
    people = {member for pair in pairs for member in pair}
    # The ids themselves, not a subquery: PostgreSQL then reads each side's index.
    accounts = list(session.scalars(select(Account.id).where(Account.member_id.in_(people))))
    moves = reports.counted_moves(session, bank_id, or_(Transfer.from_account_id.in_(accounts),
                                                        Transfer.to_account_id.in_(accounts)))
    found = reports.meetings(session, moves).subquery()
    rows = [
        {"bank_id": bank_id, "member_a_id": a, "member_b_id": b,
         "met_at": min(t for t in (exchange_at, activity_at) if t is not None),
         "exchange_at": exchange_at, "activity_at": activity_at}
        for a, b, exchange_at, activity_at in session.execute(
            select(found.c.a, found.c.b, found.c.exchange_at, found.c.activity_at)
            .where(found.c.a.in_(people), found.c.b.in_(people)))
        if (a, b) in pairs
    ]
    for a, b in pairs:
        session.execute(delete(MemberPair).where(
            MemberPair.bank_id == bank_id, MemberPair.member_a_id == a,
            MemberPair.member_b_id == b))
    if rows:
        # Read back from SQL, times come as the column type gives them: write them so too.
        session.execute(_insert(session).values(rows))


def rebuild(session: Session, bank_id: int | None = None) -> None:
    """Every pair of a bank (or of every bank) worked out again from all its transfers."""
    bank_ids = [bank_id] if bank_id is not None else list(session.scalars(select(Bank.id)))
    reports._tune(session)
    for bank in bank_ids:
        session.execute(delete(MemberPair).where(MemberPair.bank_id == bank))
        found = reports.meetings(session, reports.counted_moves(session, bank)).subquery()
        session.execute(_insert(session).from_select(
            ["bank_id", "member_a_id", "member_b_id", "met_at", "exchange_at", "activity_at"],
            select(literal(bank), found.c.a, found.c.b,
                   _earliest(found.c.exchange_at, found.c.activity_at),
                   found.c.exchange_at, found.c.activity_at)))


def breaches(session: Session, bank_id: int) -> list[str]:
    """Where ``member_pairs`` disagrees with the transfers (empty when it agrees)."""
    reports._tune(session)
    found = reports.meetings(session, reports.counted_moves(session, bank_id)).subquery()
    computed = select(found.c.a, found.c.b, _earliest(found.c.exchange_at, found.c.activity_at),
                      found.c.exchange_at, found.c.activity_at)
    kept = select(MemberPair.member_a_id, MemberPair.member_b_id, MemberPair.met_at,
                  MemberPair.exchange_at, MemberPair.activity_at).where(
        MemberPair.bank_id == bank_id)
    missing, extra = derived.differences(session, computed, kept)
    if not missing and not extra:
        return []
    return [f"bank {bank_id}: {missing} pairs of members met in the transfers are missing or "
            f"differ in member_pairs, and {extra} rows there are not in the transfers "
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
    again: dict[int, set[tuple[int, int]]] = {}
    for transfer in new:
        if transfer.reverses_id is not None:
            original = session.get(Transfer, transfer.reverses_id)
            if original is not None:
                again.setdefault(original.bank_id, set()).update(
                    _touched(session, original, _values(original, before=False)))
        else:
            _added(session, transfer)
    for transfer in changed:
        for before in (True, False):
            values = _values(transfer, before=before)
            again.setdefault(values["bank_id"], set()).update(
                _touched(session, transfer, values))
    for transfer in gone:
        values = _values(transfer, before=True)
        again.setdefault(values["bank_id"], set()).update(_touched(session, transfer, values))
    for bank_id, pairs in again.items():
        refresh(session, bank_id, pairs)


__all__ = ["breaches", "rebuild", "refresh"]
