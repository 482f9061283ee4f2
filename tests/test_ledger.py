"""The ledger's invariants: every hour recorded exactly once, under retries and concurrency."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ledger import accounts, banks, confirmations, members
from ledger.db import Database
from ledger.errors import InvalidHours, LimitReached, NotFound, SameAccount
from ledger.hours import format_hours, parse_hours
from ledger.models import Account, Confirmation, Transfer
from ledger.phones import Address


def make_members(services, count: int, prefix: str = "+4477009010") -> list[int]:  # type: ignore[no-untyped-def]
    """Members of the default bank; returns their account ids."""
    ids = []
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        for i in range(count):
            member, _ = members.join(session, bank, Address(f"{prefix}{i:02d}", "sms"), f"M{i}")
            ids.append(members.member_account(session, member).id)
    return ids


def bank_id(services) -> int:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        bank = banks.bank_for_address(session, None)
        return bank.id


def move(services, source: int, target: int, minutes: int, key: str):  # type: ignore[no-untyped-def]
    with services.db.writing() as session:
        return accounts.transfer(
            session, bank_id=bank_id(services), from_account_id=source, to_account_id=target,
            minutes=minutes, kind="exchange", idempotency_key=key, entered_by="system",
        ).created


def balances(services) -> dict[int, int]:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return dict(session.execute(select(Account.id, Account.balance_minutes)).all())  # type: ignore[arg-type]


def transfer_count(services) -> int:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return int(session.scalar(select(func.count(Transfer.id))) or 0)


def assert_invariants(services) -> None:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        assert accounts.verify(session) == []


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("1", 60), ("1.5", 90), ("1,5", 90), ("0.25", 15), ("2h", 120), ("1h30", 90),
     ("90m", 90), ("45mins", 45), ("½", 30), ("2hrs", 120)],
)
def test_hours_are_read_as_members_write_them(text, minutes):
    assert parse_hours(text) == minutes


@pytest.mark.parametrize("text", ["0", "-1", "abc", "1.1", "nan", "inf", "", "10m"])
def test_hours_that_are_not_quarter_hours_are_refused(text):
    with pytest.raises(InvalidHours):
        parse_hours(text)


def test_hours_are_shown_plainly():
    assert [format_hours(m) for m in (0, 60, -90, 15, 45, 1440, -1275)] == [
        "0", "1", "-1.5", "0.25", "0.75", "24", "-21.25"
    ]


def test_a_transfer_moves_hours_once_per_key(services):
    a, b = make_members(services, 2)
    assert move(services, a, b, 120, "k1") is True
    assert move(services, a, b, 120, "k1") is False
    assert balances(services)[a] == -120 and balances(services)[b] == 120
    assert transfer_count(services) == 1
    assert_invariants(services)


def test_refusals_change_nothing(services):
    a, b = make_members(services, 2)
    with pytest.raises(SameAccount):
        move(services, a, a, 60, "same")
    with pytest.raises(InvalidHours):
        move(services, a, b, 10, "not-quarter")
    with pytest.raises(InvalidHours):
        move(services, a, b, 25 * 60, "over-maximum")
    with pytest.raises(LimitReached):
        move(services, a, b, 21 * 60, "below-limit")  # would leave -21 hours: below -20
    assert transfer_count(services) == 0
    assert set(balances(services).values()) == {0}


def test_the_limit_can_be_set_per_member(services):
    a, b = make_members(services, 2)
    with services.db.writing() as session:
        session.get(Account, a).min_balance_minutes = -60  # type: ignore[union-attr]
    assert move(services, a, b, 60, "ok")
    with pytest.raises(LimitReached):
        move(services, a, b, 15, "too-far")


def test_a_reversal_corrects_without_editing(services):
    a, b = make_members(services, 2)
    move(services, a, b, 90, "oops")
    with services.db.writing() as session:
        original = session.scalars(select(Transfer)).one()
        first = accounts.reverse(session, original.id, reason="wrong member")
        again = accounts.reverse(session, original.id, reason="wrong member")
        assert first.created and not again.created
        assert first.transfer.reverses_id == original.id
    assert balances(services)[a] == 0 and balances(services)[b] == 0
    assert transfer_count(services) == 2
    assert_invariants(services)


def test_verify_names_a_cached_balance_that_drifted(services):
    a, b = make_members(services, 2)
    move(services, a, b, 60, "k")
    with services.db.writing() as session:
        session.get(Account, b).balance_minutes = 75  # type: ignore[union-attr]
    with services.db.reading() as session:
        breaches = accounts.verify(session)
    assert any(f"account {b}" in line for line in breaches)
    assert any("sum to" in line for line in breaches)


def test_two_banks_keep_separate_balances(services):
    with services.db.writing() as session:
        other = banks.add_bank(session, "Brixton", addresses=["+447700900777"])
        default = banks.bank_for_address(session, None)
        here, _ = members.join(session, default, Address("+447700900123", "sms"), "Ana")
        there, _ = members.join(session, other, Address("+447700900123", "sms"), "Ana")
        assert here.id != there.id
        fund = banks.ensure_fund(session, other)
        accounts.transfer(
            session, bank_id=other.id, from_account_id=fund.id,
            to_account_id=members.member_account(session, there).id, minutes=60,
            kind="record", idempotency_key="x", entered_by="broker",
        )
        assert members.member_account(session, here).balance_minutes == 0
        assert members.member_account(session, there).balance_minutes == 60
        # Hours never cross banks.
        with pytest.raises(NotFound):
            accounts.transfer(
                session, bank_id=other.id, from_account_id=fund.id,
                to_account_id=members.member_account(session, here).id, minutes=60,
                kind="record", idempotency_key="y", entered_by="broker",
            )


def _confirmation(services, payer: int, payee: int, minutes: int = 120) -> int:  # type: ignore[no-untyped-def]
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        payer_account = session.get(Account, payer)
        payee_account = session.get(Account, payee)
        confirmer = members.get_member(session, payer_account.member_id)  # type: ignore[union-attr,arg-type]
        requester = members.get_member(session, payee_account.member_id)  # type: ignore[union-attr,arg-type]
        request, _ = confirmations.request(
            session, bank_id=bank.id, kind="exchange", payer=payer_account,  # type: ignore[arg-type]
            payee=payee_account, minutes=minutes, description="gardening",  # type: ignore[arg-type]
            requested_by=requester, confirmer=confirmer, request_key=f"req:{payer}:{payee}",
        )
        return request.ref


def _answer_yes(services, member_account: int, ref: int) -> str:  # type: ignore[no-untyped-def]
    with services.db.writing() as session:
        account = session.get(Account, member_account)
        return confirmations.answer(
            session, bank_id=account.bank_id, member_id=account.member_id,  # type: ignore[union-attr,arg-type]
            ref=ref, yes=True,
        ).outcome


def test_fifty_concurrent_yes_record_exactly_one_transfer(services):
    helped, helper = make_members(services, 2)
    ref = _confirmation(services, helped, helper)
    barrier = threading.Barrier(50)

    def yes() -> str:
        barrier.wait()
        return _answer_yes(services, helped, ref)

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(lambda _: yes(), range(50)))
    assert outcomes.count("confirmed") == 1
    assert outcomes.count("already_confirmed") == 49
    assert transfer_count(services) == 1
    assert balances(services)[helper] == 120
    assert_invariants(services)


def test_two_hundred_concurrent_transfers_among_ten_accounts(services):
    ids = make_members(services, 10)
    plan = [(ids[i % 10], ids[(i * 7 + 3) % 10], 15 * (1 + i % 4)) for i in range(200)]
    plan = [(a, b, m) for a, b, m in plan if a != b]

    def run(index: int) -> None:
        a, b, minutes = plan[index]
        move(services, a, b, minutes, f"t{index}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(run, range(len(plan))))
    assert transfer_count(services) == len(plan)
    assert sum(balances(services).values()) == 0
    assert_invariants(services)


def _process_worker(url: str, plan: list[tuple[int, int, int, str]], bank: int) -> None:
    db = Database(url)
    for source, target, minutes, key in plan:
        with db.writing() as session:
            accounts.transfer(
                session, bank_id=bank, from_account_id=source, to_account_id=target,
                minutes=minutes, kind="exchange", idempotency_key=key, entered_by="system",
            )
    db.dispose()


def test_several_processes_writing_at_once_keep_every_invariant(services):
    ids = make_members(services, 10)
    bank = bank_id(services)
    # Each process sends the same keys as one other process: duplicates must not double.
    plans = [
        [(ids[(p + i) % 10], ids[(p + i + 1) % 10], 15, f"p{p % 2}-{i}") for i in range(40)]
        for p in range(4)
    ]
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_process_worker, args=(services.db.url, plan, bank))
        for plan in plans
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    keys = {key for plan in plans for *_, key in plan}
    assert transfer_count(services) == len(keys)
    assert sum(balances(services).values()) == 0
    assert_invariants(services)


operations = st.lists(
    st.tuples(
        st.sampled_from(["transfer", "transfer", "repeat", "request", "yes", "no", "reverse"]),
        st.integers(0, 4), st.integers(0, 4), st.integers(-2, 40),
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_any_sequence_of_operations_keeps_every_invariant(services, ops):
    from app.cli import prepare
    from tests.conftest import wipe

    wipe(services)
    prepare(services)
    ids = make_members(services, 5)
    bank = bank_id(services)
    refs: list[tuple[int, int]] = []
    for n, (op, i, j, quarters) in enumerate(ops):
        minutes = quarters * 15
        try:
            with services.db.writing() as session:
                if op == "transfer":
                    accounts.transfer(session, bank_id=bank, from_account_id=ids[i],
                                      to_account_id=ids[j], minutes=minutes, kind="exchange",
                                      idempotency_key=f"op{n}", entered_by="system")
                elif op == "repeat":
                    accounts.transfer(session, bank_id=bank, from_account_id=ids[i],
                                      to_account_id=ids[j], minutes=minutes, kind="exchange",
                                      idempotency_key="op0", entered_by="system")
                elif op == "request" and i != j and minutes > 0:
                    payer, payee = session.get(Account, ids[i]), session.get(Account, ids[j])
                    confirmer = members.get_member(session, payer.member_id)  # type: ignore[union-attr,arg-type]
                    request, _ = confirmations.request(
                        session, bank_id=bank, kind="exchange", payer=payer,  # type: ignore[arg-type]
                        payee=payee, minutes=minutes, description="x",  # type: ignore[arg-type]
                        requested_by=members.get_member(session, payee.member_id),  # type: ignore[union-attr,arg-type]
                        confirmer=confirmer, request_key=f"r{n}",
                    )
                    refs.append((request.ref, confirmer.id))
                elif op in ("yes", "no") and refs:
                    ref, member_id = refs[i % len(refs)]
                    confirmations.answer(session, bank_id=bank, member_id=member_id, ref=ref,
                                         yes=op == "yes")
                elif op == "reverse":
                    first = session.scalars(select(Transfer).order_by(Transfer.id)).first()
                    if first is not None:
                        accounts.reverse(session, first.id, reason="test")
        except (InvalidHours, LimitReached, SameAccount):
            pass
        with services.db.reading() as session:
            assert accounts.verify(session) == []
            confirmed = session.scalar(
                select(func.count(Confirmation.id)).where(Confirmation.status == "confirmed")
            )
            recorded = session.scalar(
                select(func.count(Transfer.id)).where(Transfer.idempotency_key.like("confirmation:%"))
            )
            assert confirmed == recorded


@pytest.mark.backend("servers")  # SQLite runs write transactions one at a time
def test_a_row_loaded_before_its_lock_is_read_again(services):
    """On PostgreSQL a session may hold a stale copy of an account; the transfer must
    re-read it under the lock, or another transfer's change to the balance is lost."""
    a, b = make_members(services, 2)
    with services.db.writing() as session:
        stale = session.get(Account, a)
        assert stale is not None and stale.balance_minutes == 0
        move(services, a, b, 60, "meanwhile")  # another transaction commits
        accounts.transfer(
            session, bank_id=bank_id(services), from_account_id=a, to_account_id=b,
            minutes=30, kind="exchange", idempotency_key="mine", entered_by="system",
        )
    assert balances(services)[a] == -90
    assert_invariants(services)
