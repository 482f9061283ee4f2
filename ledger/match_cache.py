"""A bank's match index, kept between asking waves and never stale.

Building the index reads every helper's offers (stems, synonyms, typos mended): at 100,000
members that is seconds, too slow to do on every wave. So each process keeps the index it
built, with the bank's ``match_version`` it was built at. That number lives on the bank's row
and is replaced by a new random one **in the same transaction** as any change matching reads
(random, so that a database restored from a backup, or wiped and filled again, cannot bring
back a number a worker has seen with other contents):

- a member joining with skills, leaving, going on hold or back, going away (``AWAY``) or
  coming back, changing name, skills, area or availability, or being forgotten (their row
  changed or deleted);
- an offer posted, closed or changed; an opt-out made or withdrawn.

The session hooks below see those changes (ORM objects flushed, and ``INSERT``/``UPDATE``/
``DELETE`` statements run through a session) and replace the number just before the commit. A reader
reads the number *first*, then the helpers: what it loads is at least as new as the number it
files the index under, so a worker never keeps an index older than its version, and every
process compares its copy with the database before each use. Asks (who was asked lately,
who enough today) change with every wave and are read fresh each time, not cached.

A change made with raw SQL text, not through a session, would not be seen: there is none.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter
from sqlalchemy.sql.visitors import iterate

from ledger.matching import MatchIndex
from ledger.models import Bank, Member, OptOut, Post

# Fields of a member that matching reads (status: only active members are asked; away_since:
# a paused member is not asked, app.care.away).
MEMBER_FIELDS = ("bank_id", "phone", "name", "area", "skills", "availability", "status",
                 "away_since")
OFFER_FIELDS = ("bank_id", "member_id", "kind", "text", "status")
_CHANGED = "tb_match_changed"  # session.info: bank ids whose version must move on
ALL_BANKS = 0  # in that set: a change whose bank could not be told; every bank moves on
_TABLES = {Member.__tablename__, Post.__tablename__, OptOut.__tablename__}

KEEP_BANKS = 8  # indexes a process keeps, the most recently used


def _mark(session: Session, bank_id: int | None) -> None:
    session.info.setdefault(_CHANGED, set()).add(ALL_BANKS if bank_id is None else bank_id)


def _changed(obj: Any, fields: tuple[str, ...]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in fields)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    for obj in session.new:
        if isinstance(obj, Member):
            if obj.skills:  # without skills (or offers, marked below) nobody asks them
                _mark(session, obj.bank_id)
        elif isinstance(obj, Post):
            if obj.kind == "offer":
                _mark(session, obj.bank_id)
        elif isinstance(obj, OptOut):
            _mark(session, obj.bank_id)
    for obj in session.dirty:
        if isinstance(obj, Member) and _changed(obj, MEMBER_FIELDS):
            _mark(session, obj.bank_id)
            if inspect(obj).attrs.bank_id.history.deleted:
                _mark(session, None)
        elif isinstance(obj, Post) and obj.kind != "need" and _changed(obj, OFFER_FIELDS):
            _mark(session, obj.bank_id)
        elif isinstance(obj, OptOut) and _changed(obj, ("bank_id", "phone")):
            _mark(session, None)
    for obj in session.deleted:
        if isinstance(obj, Member | OptOut) or (isinstance(obj, Post) and obj.kind == "offer"):
            _mark(session, obj.bank_id)


# Execution option for an INSERT into those tables run as a statement: NOTHING (a need:
# nothing matching reads), FROM_PARAMETERS (the bank is the ``bank_id`` parameter). Without
# it, every bank's version moves on.
OPTION = "match_change"
NOTHING = "nothing"
FROM_PARAMETERS = "bank_id"


@event.listens_for(Session, "do_orm_execute")
def _bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    if name not in _TABLES:
        return
    if state.is_insert:
        said = state.execution_options.get(OPTION)
        if said == NOTHING:
            return
        parameters = state.parameters if isinstance(state.parameters, dict) else {}
        bank_id = parameters.get("bank_id") if said == FROM_PARAMETERS else None
        _mark(state.session, bank_id if isinstance(bank_id, int) else None)
        return
    where = getattr(state.statement, "whereclause", None)
    if name == Post.__tablename__ and _equals(where, "kind") == "need":
        return  # needs are not what helpers offer
    bank_id = _equals(where, "bank_id")
    _mark(state.session, bank_id if isinstance(bank_id, int) else None)


def _equals(where: Any, column: str) -> object:
    """The value ``column`` is compared equal to in a WHERE clause, if it says so plainly."""
    if where is None:
        return None
    for node in iterate(where):
        if (isinstance(node, BinaryExpression) and node.operator is operators.eq
                and getattr(node.left, "name", None) == column
                and isinstance(node.right, BindParameter)):
            return node.right.value
    return None


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if not session.info.get(_CHANGED) and not (session.new or session.dirty or session.deleted):
        return
    session.flush()  # so that before_flush has seen everything this commit writes
    changed = session.info.pop(_CHANGED, None)
    if not changed:
        return
    statement = update(Bank).values(match_version=secrets.randbits(62) + 1)
    if ALL_BANKS not in changed:
        statement = statement.where(Bank.id.in_(sorted(changed)))
    session.execute(statement.execution_options(synchronize_session=False))


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)


def version(session: Session, bank_id: int) -> int:
    return int(session.scalar(select(Bank.match_version).where(Bank.id == bank_id)) or 0)


_lock = threading.Lock()
_indexes: OrderedDict[int, tuple[int, MatchIndex]] = OrderedDict()


def index_for(session: Session, bank_id: int) -> MatchIndex:
    """The bank's match index as of now: this process's copy if the bank's version has not
    moved since it was made, else one refreshed from the database (reusing what is unchanged).
    """
    from ledger import posts

    current = version(session, bank_id)  # first: the helpers read below are at least this new
    with _lock:
        kept = _indexes.get(bank_id)
        if kept is not None:
            _indexes.move_to_end(bank_id)
    if kept is not None and kept[0] == current:
        return kept[1]
    profiles = posts.helper_profiles(session, bank_id)
    index = kept[1].refreshed(profiles) if kept is not None else MatchIndex.build(profiles)
    with _lock:
        held = _indexes.get(bank_id)
        if held is None or held[0] <= current:
            _indexes[bank_id] = (current, index)
            _indexes.move_to_end(bank_id)
        while len(_indexes) > KEEP_BANKS:
            _indexes.popitem(last=False)
    return index


def forget() -> None:
    """Drop every kept index (tests, and a process that wants its memory back)."""
    with _lock:
        _indexes.clear()
