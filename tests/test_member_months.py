"""What each member gave and received each month, kept in ``member_months`` (``ledger.months``).

The flush that writes a transfer keeps the table in step; here it is held, after exchanges,
gifts, recorded hours, activity credits, reversals, corrections and a forgotten member, to a
recomputation in Python from every transfer, and the reports that read it to the way they
were counted from the transfers before it existed (below, ``old_*``), over whole and part
months. ``timebank ledger verify`` names a table that disagrees; ``ledger rebuild-pairs``
puts it right. Runs on SQLite, and on PostgreSQL too when ``TEST_DATABASE_URL`` is set.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import (
    and_,
    func,
    inspect,
    literal,
    or_,
    select,
    union,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from ledger import accounts, banks, months, reports
from ledger.db import Database
from ledger.migrate import downgrade, upgrade
from ledger.models import Account, Member, MemberMonth, Transfer
from tests.test_migrations import empty, first_migration_with_data, revision  # noqa: F401
from tests.test_reports import (
    APR,
    BACKENDS,
    FEB,
    JAN,
    MAR,
    PERIODS,
    World,
    at,
    fresh_database,
    index,
    random_ledger,
)

# Whole months, and periods that start or end (or both) mid-month.
ALL_PERIODS = [*PERIODS, (date(2024, 1, 20), date(2024, 3, 15)),
               (date(2023, 12, 5), date(2024, 1, 20)), (date(2024, 1, 2), date(2024, 1, 21)),
               (date(2023, 11, 1), date(2024, 2, 15)),
               # Nothing after the 10th of February (the rest of the month is still empty,
               # as on the dashboard, whose period ends tomorrow): February is read whole.
               (date(2024, 2, 1), date(2024, 2, 10)), (date(2024, 1, 25), date(2024, 2, 10))]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    yield from fresh_database(request.param, tmp_path, "months")


# From scratch, in Python ------------------------------------------------------------------

Row = tuple[int, int, int, int, Any, Any, Any, Any, int, int]


def recomputed(session: Session, bank_id: int) -> dict[tuple[str, int], Row]:
    """member_months as every transfer of the bank gives it, worked out in Python."""
    transfers = session.scalars(select(Transfer).where(Transfer.bank_id == bank_id)).all()
    undone = {t.reverses_id for t in transfers if t.reverses_id is not None}
    owner = {a.id: a.member_id for a in session.scalars(select(Account))}
    sums: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    first: dict[tuple[str, int], tuple[datetime, int]] = {}
    last: dict[tuple[str, int], tuple[datetime, int]] = {}
    for t in transfers:
        if t.kind == "reversal" or t.reverses_id is not None or t.id in undone:
            continue
        month = f"{t.created_at.astimezone(UTC):%Y-%m}"
        payer, payee = owner[t.from_account_id], owner[t.to_account_id]
        moment = (t.created_at, t.id)
        if t.kind in ("exchange", "record", "activity") and payee is not None:
            sums[month, payee][0] += t.minutes
            sums[month, payee][1] += 1
            sums[month, payee][4] += t.minutes if t.kind == "exchange" else 0
            sums[month, payee][5] += t.minutes if t.kind == "activity" else 0
            last[month, payee] = max(last.get((month, payee), moment), moment)
        if t.kind == "exchange" and payer is not None:
            sums[month, payer][2] += t.minutes
            sums[month, payer][3] += 1
            first[month, payer] = min(first.get((month, payer), moment), moment)
    return {key: (s[0], s[1], s[2], s[3], *first.get(key, (None, None)),
                  *last.get(key, (None, None)), s[4], s[5]) for key, s in sums.items()}


def kept(session: Session, bank_id: int) -> dict[tuple[str, int], Row]:
    return {(r.month, r.member_id): (r.gave_minutes, r.gave_count, r.received_minutes,
                                     r.received_count, r.first_received_at,
                                     r.first_received_id, r.last_gave_at, r.last_gave_id,
                                     r.gave_exchange_minutes, r.gave_activity_minutes)
            for r in session.scalars(select(MemberMonth).where(MemberMonth.bank_id == bank_id))}


# The reports as they were counted from the transfers ---------------------------------------

def old_minutes_by_kind(session: Session, bank_id: int, period: reports.Period
                        ) -> dict[str, int]:
    moves = reports._moves(session, bank_id, period)
    return {kind: int(total) for kind, total in session.execute(
        select(moves.c.kind, func.sum(moves.c.minutes)).where(reports._given(moves))
        .group_by(moves.c.kind))}


def old_hours_by_month(session: Session, bank_id: int, period: reports.Period) -> list[Any]:
    moves = reports._moves(session, bank_id, period)
    minutes = reports._by_month(session, select(moves.c.month, func.sum(moves.c.minutes))
                                .where(reports._given(moves)).group_by(moves.c.month))
    return [(reports._label(m), reports._hours(minutes.get(reports._label(m), 0)))
            for m in period.months()]


def old_active_by_month(session: Session, bank_id: int, period: reports.Period) -> list[Any]:
    moves = reports._moves(session, bank_id, period)
    active = union(
        select(moves.c.month, moves.c.payee_member.label("member"))
        .where(reports._given(moves)),
        select(moves.c.month, moves.c.payer_member.label("member"))
        .where(reports._received(moves)),
    ).subquery()
    counts = reports._by_month(session, select(active.c.month, func.count())
                               .group_by(active.c.month))
    return [(reports._label(m), counts.get(reports._label(m), 0)) for m in period.months()]


def old_roles(session: Session, bank_id: int, period: reports.Period) -> reports.Roles:
    moves = reports._moves(session, bank_id, period)
    sides = union_all(
        select(moves.c.payee_member.label("member"), literal(1).label("gave"),
               literal(0).label("got")).where(reports._given(moves)),
        select(moves.c.payer_member.label("member"), literal(0).label("gave"),
               literal(1).label("got")).where(reports._received(moves)),
    ).subquery()
    per_member = select(sides.c.member, func.max(sides.c.gave).label("gave"),
                        func.max(sides.c.got).label("got")).group_by(sides.c.member).subquery()
    counts = {(int(gave), int(got)): int(n) for gave, got, n in session.execute(
        select(per_member.c.gave, per_member.c.got, func.count())
        .group_by(per_member.c.gave, per_member.c.got))}
    return reports.Roles(counts.get((1, 1), 0), counts.get((1, 0), 0), counts.get((0, 1), 0))


def old_received_then_gave(session: Session, bank_id: int, period: reports.Period) -> int:
    moves = reports._moves(session, bank_id, period)

    def end(condition: Any, member: Any, first: bool) -> Any:
        order = (moves.c.at, moves.c.id) if first else (moves.c.at.desc(), moves.c.id.desc())
        ranked = select(member.label("member"), moves.c.at, moves.c.id,
                        func.row_number().over(partition_by=member, order_by=order)
                        .label("n")).where(condition).subquery()
        return select(ranked.c.member, ranked.c.at, ranked.c.id).where(ranked.c.n == 1) \
            .subquery()

    helped = end(reports._received(moves), moves.c.payer_member, first=True)
    gave = end(reports._given(moves), moves.c.payee_member, first=False)
    return int(session.scalar(
        select(func.count()).select_from(helped)
        .join(gave, gave.c.member == helped.c.member)
        .where(or_(helped.c.at < gave.c.at,
                   and_(helped.c.at == gave.c.at, helped.c.id < gave.c.id)))) or 0)


def old_minutes_by_area(session: Session, bank_id: int, period: reports.Period
                        ) -> dict[str | None, int]:
    moves = reports._moves(session, bank_id, period)
    return {area: int(total) for area, total in session.execute(
        select(Member.area, func.sum(moves.c.minutes))
        .join(Member, Member.id == moves.c.payee_member)
        .where(reports._given(moves)).group_by(Member.area))}


def assert_months_as_before(db: Database, periods: list[tuple[date, date]] = ALL_PERIODS
                            ) -> None:
    with db.reading() as session:
        bank_id = banks.bank_by_name(session, None).id
        assert kept(session, bank_id) == recomputed(session, bank_id)
        assert months.breaches(session, bank_id) == []
        for start, end in periods:
            period = reports.Period(start, end)
            built = {r.name: r for r in reports.all_reports(session, bank_id, start, end)}
            assert built["hours-by-month"].rows == old_hours_by_month(
                session, bank_id, period), (start, end)
            assert built["active-members"].rows == old_active_by_month(
                session, bank_id, period), (start, end)
            assert reports._roles(session, bank_id, period) == old_roles(
                session, bank_id, period), (start, end)
            assert reports._received_then_gave(session, bank_id, period) == \
                old_received_then_gave(session, bank_id, period), (start, end)
            # The co-production page's one pass gives the reciprocity report's roles too.
            assert reports._roles_and_received_then_gave(session, bank_id, period)[0] == \
                old_roles(session, bank_id, period), (start, end)
            by_area: dict[str, int] = defaultdict(int)
            for area, minutes in old_minutes_by_area(session, bank_id, period).items():
                by_area[" ".join((area or "").split()).casefold()] += minutes
            assert sorted(hours for _, hours in built["hours-by-area"].rows) == sorted(
                reports._hours(m) for m in by_area.values()), (start, end)
            index = {i.name: i.amount for i in reports.coproduction(session, bank_id,
                                                                     start, end)}
            roles = old_roles(session, bank_id, period)
            assert index["Members who gave help"] == roles.gave
            assert index["Members who gave and received"] == reports._percent(
                roles.both, roles.active)
            assert index["Helped, then helped others"] == old_received_then_gave(
                session, bank_id, period)
            kinds = old_minutes_by_kind(session, bank_id, period)
            for name, kind in (("Hours between members", "exchange"),
                               ("Hours recorded by brokers", "record"),
                               ("Hours at group activities", "activity")):
                assert index[name] == reports._hours(kinds.get(kind, 0)), (name, start, end)
            assert index["Hours given"] == reports._hours(sum(kinds.values()))


# The table against the transfers -----------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_member_months_are_what_the_transfers_give_after_every_kind_of_change(db, seed):
    """Exchanges, gifts, recorded hours and activity credits, each redated by hand (so each
    member-month it touches is worked out again), reversals, then later corrections."""
    rng = random.Random(seed)
    transfers: list[Transfer] = []
    with db.writing() as session:
        random_ledger(session, rng, transfers)
    assert_months_as_before(db)
    with db.writing() as session:
        for transfer in rng.sample(transfers, min(4, len(transfers))):
            session.get(Transfer, transfer.id).created_at = at(  # type: ignore[union-attr]
                rng.choice((JAN, FEB, date(2024, 3, 20))), rng.choice((9, 12)))
        reversed_ids = {t.reverses_id for t in session.query(Transfer) if t.reverses_id}
        open_ = [t.id for t in session.query(Transfer)
                 if t.kind != "reversal" and t.id not in reversed_ids]
        for transfer_id in rng.sample(open_, min(3, len(open_))):
            accounts.reverse(session, transfer_id, reason="late correction")
    assert_months_as_before(db)


@pytest.mark.parametrize("seed", range(3))
def test_member_months_written_as_they_happen_are_what_the_transfers_give(db, seed):
    """Not redated, each transfer takes the quick way in (an upsert that adds); in two
    transactions, so the second adds to rows the first made."""
    from datetime import timedelta

    from ledger.models import utcnow

    rng = random.Random(200 + seed)
    today = utcnow().date()
    periods = [(today.replace(day=1), today + timedelta(days=1)),
               (today - timedelta(days=40), today + timedelta(days=1))]
    transfers: list[Transfer] = []
    with db.writing() as session:
        random_ledger(session, rng, transfers, live=True)
    assert_months_as_before(db, periods)
    with db.writing() as session:
        w = World.__new__(World)
        w.session, w.keys = session, 5000
        w.bank = banks.bank_by_name(session, None)
        w.fund = banks.ensure_fund(session, w.bank)
        owners = {a.member_id: a.id for a in session.scalars(select(Account))
                  if a.member_id is not None}
        ids = sorted(owners)
        for n in range(10):
            one, other = rng.sample(ids, 2)
            accounts.transfer(session, bank_id=w.bank.id, from_account_id=owners[one],
                              to_account_id=owners[other], minutes=60, kind="exchange",
                              idempotency_key=f"more:{n}", entered_by="system",
                              enforce_limit=False)
    assert_months_as_before(db, periods)


def test_reversing_a_months_only_transfer_leaves_no_row(db):
    with db.writing() as session:
        w = World(session)
        w.join("Ana")
        w.join("Ben")
        only = w.helped("Ana", "Ben", 2, FEB)
        w.helped("Ana", "Ben", 1, JAN)
        w.reverse(only, MAR)
    with db.reading() as session:
        bank_id = banks.bank_by_name(session, None).id
        assert {month for month, _ in kept(session, bank_id)} == {"2024-01"}
    with db.reading() as session:
        bank_id = banks.bank_by_name(session, None).id
        assert reports.build(session, bank_id, "hours-by-month", JAN, APR).rows == [
            ("2024-01", 1.0), ("2024-02", 0.0), ("2024-03", 0.0)]
        assert reports.build(session, bank_id, "active-members", JAN, APR).rows == [
            ("2024-01", 2), ("2024-02", 0), ("2024-03", 0)]
    assert_months_as_before(db)


def test_deleting_a_reversal_counts_the_transfer_it_reversed_again(db):
    # No part of the bank deletes transfers; a repair by hand through the ORM might.
    with db.writing() as session:
        w = World(session)
        w.join("Ana")
        w.join("Ben")
        january = w.helped("Ana", "Ben", 2, JAN)
        w.reverse(january, FEB)
    with db.writing() as session:
        bank_id = banks.bank_by_name(session, None).id
        assert kept(session, bank_id) == {}
        undo = session.scalars(select(Transfer).where(Transfer.reverses_id == january.id)).one()
        session.delete(undo)
    with db.reading() as session:
        assert {month for month, _ in kept(session, bank_id)} == {"2024-01"}
        assert kept(session, bank_id) == recomputed(session, bank_id)
        assert months.breaches(session, bank_id) == []


def test_reversing_the_first_or_last_of_a_month_takes_the_next(db):
    with db.writing() as session:
        w = World(session)
        w.join("Ana")
        w.join("Ben")
        ana, ben = w.members["Ana"].id, w.members["Ben"].id
        helped = [w.helped("Ana", "Ben", 1, date(2024, 1, day)) for day in (5, 10, 20, 25)]
        session.flush()
    with db.reading() as session:
        bank_id = banks.bank_by_name(session, None).id
        rows = kept(session, bank_id)
        assert rows["2024-01", ben][5] == helped[0].id  # Ben's first help received
        assert rows["2024-01", ana][7] == helped[3].id  # Ana's last help given
    with db.writing() as session:
        accounts.reverse(session, helped[0].id, reason="mistake")
        accounts.reverse(session, helped[3].id, reason="mistake")
    with db.reading() as session:
        rows = kept(session, bank_id)
        assert rows["2024-01", ben][:6] == (0, 0, 120, 2, at(date(2024, 1, 10)), helped[1].id)
        assert rows["2024-01", ana][:2] == (120, 2)
        assert rows["2024-01", ana][6:8] == (at(date(2024, 1, 20)), helped[2].id)
    assert_months_as_before(db)


def test_the_quick_way_keeps_the_first_and_last_at_the_same_moment_by_id(db):
    """Transfers at one moment (not redated) are ordered by id, as the reports order them;
    reversing the first and last of them works the month out again."""
    with db.writing() as session:
        w = World(session)
        w.join("Ana")
        w.join("Ben")
        w.session.flush()
        made = []
        for n in range(3):  # written dated, so each is new to the flush, not redated
            made.append(Transfer(
                bank_id=w.bank.id, from_account_id=w.accounts["Ben"],
                to_account_id=w.accounts["Ana"], minutes=30, kind="exchange",
                idempotency_key=f"same:{n}", entered_by="system", created_at=at(FEB)))
            session.add(made[-1])
            session.flush()
    assert_months_as_before(db)
    with db.writing() as session:
        accounts.reverse(session, made[0].id, reason="mistake")
        accounts.reverse(session, made[2].id, reason="mistake")
    assert_months_as_before(db)


def test_a_forgotten_member_keeps_their_months(db):
    from app.privacy import forget

    with db.writing() as session:
        w = World(session)
        w.join("Ana", area="Brixton")
        w.join("Ben", area="Stockwell")
        w.helped("Ana", "Ben", 2, JAN)
        w.helped("Ben", "Ana", 1, FEB)
        w.activity(1, ["Ana", "Ben"], 1, FEB)
        w.gift("Ana", "Ben", 1, MAR)
    with db.reading() as session:
        bank_id = banks.bank_by_name(session, None).id
        before = kept(session, bank_id)
    with db.writing() as session:
        ana = session.get(Member, w.members["Ana"].id)
        assert ana is not None
        forget(session, ana, reason="asked", broker_id=None, via="cli")
    with db.reading() as session:
        assert kept(session, bank_id) == before
    assert_months_as_before(db)


# verify and rebuild ------------------------------------------------------------------------

def test_ledger_verify_names_member_months_that_disagree_and_rebuild_puts_them_right(
        cli, services):
    with services.db.writing() as session:
        w = World(session)
        w.join("Ana")
        w.join("Ben")
        w.helped("Ana", "Ben", 1, JAN)
        w.helped("Ana", "Ben", 2, FEB)
    assert "Ledger OK" in cli("ledger", "verify").output
    # Someone adds hours by hand to a month (to make a funder's report look better).
    with services.db.writing() as session:
        session.execute(update(MemberMonth).where(MemberMonth.month == "2024-01",
                                                  MemberMonth.gave_count > 0)
                        .values(gave_minutes=MemberMonth.gave_minutes + 600))
    broken = cli("ledger", "verify")
    assert broken.exit_code == 1
    assert "1 member-months in the transfers are missing or differ in member_months" \
        in broken.output
    fixed = cli("ledger", "rebuild-pairs")
    assert fixed.exit_code == 0, fixed.output
    assert "each month" in fixed.output
    assert "Ledger OK" in cli("ledger", "verify").output
    with services.db.reading() as session:
        bank_id = banks.bank_by_name(session, None).id
        assert reports.build(session, bank_id, "hours-by-month", JAN, MAR).rows == [
            ("2024-01", 1.0), ("2024-02", 2.0)]


def test_a_transfer_edited_behind_the_ledgers_back_is_caught_by_verify(cli, services):
    """Raw SQL moves a transfer to another month, round the ORM and its flush hooks: the
    balances still agree, but member_months no longer does, and verify says so."""
    with services.db.writing() as session:
        w = World(session)
        w.join("Ana")
        w.join("Ben")
        w.join("Cy")
        w.helped("Ana", "Ben", 1, JAN)
        w.helped("Ana", "Cy", 1, JAN)  # Ana and Cy met in January
        moved = w.helped("Ana", "Cy", 1, JAN)
        session.flush()
        moved_id = moved.id
    assert "Ledger OK" in cli("ledger", "verify").output
    with services.db.engine.begin() as connection:
        connection.execute(update(Transfer).where(Transfer.id == moved_id)
                           .values(created_at=at(MAR)))
    broken = cli("ledger", "verify")
    assert broken.exit_code == 1
    assert "member-months in the transfers are missing or differ in member_months" \
        in broken.output
    assert cli("ledger", "rebuild-pairs").exit_code == 0
    assert "Ledger OK" in cli("ledger", "verify").output


def test_the_help_of_rebuild_pairs_says_it_rebuilds_member_months_too(cli):
    shown = cli("ledger", "rebuild-pairs", "--help")
    assert "member_months" in shown.output


# The migration -----------------------------------------------------------------------------

def test_migration_0019_fills_member_months_and_steps_back(empty):  # noqa: F811
    first_migration_with_data(empty)
    upgrade(empty, "0018")
    with empty.engine.connect() as connection:
        assert "member_months" not in inspect(connection).get_table_names()
    upgrade(empty, "0019")
    assert revision(empty) == "0019"
    with empty.reading() as session:
        # Sam (1) was helped by Ana (2) for 1.5 hours; the fund's grant is not help.
        rows = kept(session, 1)
        assert rows == recomputed(session, 1)
        assert {key: row[:4] for key, row in rows.items()} == {
            ("2026-11", 2): (90, 1, 0, 0), ("2026-11", 1): (0, 0, 90, 1)}
        assert rows["2026-11", 1][5] == 1 and rows["2026-11", 2][7] == 1
        assert months.breaches(session, 1) == []
    downgrade(empty, "0018")
    assert revision(empty) == "0018"
    with empty.engine.connect() as connection:
        assert "member_months" not in inspect(connection).get_table_names()
    upgrade(empty)
    with empty.reading() as session:
        assert months.breaches(session, 1) == []
        assert kept(session, 1) == recomputed(session, 1)


# Part months -------------------------------------------------------------------------------

@pytest.mark.parametrize("helped_first", [True, False])
def test_helped_and_helping_at_one_moment_in_a_part_month_is_settled_by_id(db, helped_first):
    with db.writing() as session:
        w = World(session)
        for name in ("Ana", "Ben", "Cy"):
            w.join(name)
        day = date(2024, 1, 20)
        if helped_first:
            w.helped("Ana", "Ben", 1, day)  # Ben helped…
            w.helped("Ben", "Cy", 1, day)   # …then, at the same moment, helps Cy
        else:
            w.helped("Ben", "Cy", 1, day)
            w.helped("Ana", "Ben", 1, day)
        w.helped("Cy", "Ana", 1, date(2024, 1, 28))  # after the period, in its month
    period = (date(2024, 1, 15), date(2024, 1, 25))
    with db.reading() as session:
        bank_id = banks.bank_by_name(session, None).id
        assert reports._split(session, bank_id, reports.Period(*period))[0] is None
    assert index(db, *period)["Helped, then helped others"].amount == (1 if helped_first else 0)
    assert_months_as_before(db, [period, (JAN, date(2024, 1, 25)), (JAN, FEB)])


def test_a_part_month_is_read_whole_when_the_rest_of_it_is_empty(db):
    with db.writing() as session:
        w = World(session)
        w.join("Ana")
        w.join("Ben")
        w.helped("Ana", "Ben", 1, date(2024, 1, 10))
        w.helped("Ana", "Ben", 1, date(2024, 2, 5))
    with db.reading() as session:
        bank_id = banks.bank_by_name(session, None).id

        def split(start: date, end: date) -> Any:
            return reports._split(session, bank_id, reports.Period(start, end))

        assert split(JAN, date(2024, 1, 20)) == (("2024-01", "2024-02"), [])
        assert split(date(2024, 1, 5), date(2024, 2, 10)) == (("2024-01", "2024-03"), [])
        assert split(date(2024, 1, 15), date(2024, 2, 3)) == (
            None, [(at(date(2024, 1, 15), 0), at(date(2024, 2, 3), 0))])
        assert split(date(2024, 1, 12), MAR) == (
            ("2024-02", "2024-03"), [(at(date(2024, 1, 12), 0), at(FEB, 0))])
    assert_months_as_before(db, [(JAN, date(2024, 1, 20)), (date(2024, 1, 5), date(2024, 2, 10)),
                                 (date(2024, 1, 15), date(2024, 2, 3)), (date(2024, 1, 12), MAR)])
