"""Balances and transfers: the bank's record of every hour.

A transfer is immutable and carries an idempotency key, unique within its bank, so a retried
webhook or job can never record it twice. The cached balance of both accounts changes in the
same transaction as the insert, with the two account rows locked in id order.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger import own_hours
from ledger.errors import InvalidHours, LimitReached, NotFound, SameAccount
from ledger.hours import MINUTES_PER_STEP, format_hours
from ledger.models import Account, Bank, Transfer


@dataclass(frozen=True)
class Recorded:
    transfer: Transfer
    created: bool


def transfer(
    session: Session,
    *,
    bank_id: int,
    from_account_id: int,
    to_account_id: int,
    minutes: int,
    kind: str,
    idempotency_key: str,
    entered_by: str,
    entered_by_member_id: int | None = None,
    description: str = "",
    reverses_id: int | None = None,
    enforce_limit: bool = True,
    enforce_maximum: bool = True,
) -> Recorded:
    """Move ``minutes`` between two accounts of one bank, exactly once per idempotency key.

    Call inside ``Database.writing()``. A repeat with the same key returns the first transfer
    and changes nothing.
    """
    existing = _by_key(session, bank_id, idempotency_key)
    if existing is not None:
        return Recorded(existing, created=False)
    if from_account_id == to_account_id:
        raise SameAccount("a transfer needs two different accounts")
    bank = session.get(Bank, bank_id)
    if bank is None:
        raise NotFound(f"bank {bank_id}")
    if minutes <= 0 or minutes % MINUTES_PER_STEP:
        raise InvalidHours("hours must be positive, in quarter-hour steps")
    if enforce_maximum and minutes > bank.max_exchange_minutes:
        raise InvalidHours(f"at most {format_hours(bank.max_exchange_minutes)} hours at once")
    # Lock both rows in id order, so two transfers between the same accounts cannot deadlock.
    rows = session.scalars(
        select(Account)
        .where(Account.id.in_([from_account_id, to_account_id]))
        .order_by(Account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    accounts = {a.id: a for a in rows}
    payer, payee = accounts.get(from_account_id), accounts.get(to_account_id)
    if payer is None or payee is None or payer.bank_id != bank_id or payee.bank_id != bank_id:
        raise NotFound("both accounts must exist in the same bank")
    # Another transaction may have recorded this key while we waited for the locks.
    existing = _by_key(session, bank_id, idempotency_key)
    if existing is not None:
        return Recorded(existing, created=False)
    if enforce_limit and payer.kind == "member":
        floor = payer.min_balance_minutes
        if floor is None:
            floor = bank.min_balance_minutes
        if payer.balance_minutes - minutes < floor:
            raise LimitReached(f"account {payer.id} would go below {format_hours(floor)} hours")
    record = Transfer(
        bank_id=bank_id, from_account_id=payer.id, to_account_id=payee.id, minutes=minutes,
        kind=kind, description=description[:200], entered_by=entered_by,
        entered_by_member_id=entered_by_member_id, idempotency_key=idempotency_key,
        reverses_id=reverses_id,
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        existing = _by_key(session, bank_id, idempotency_key)
        if existing is None:
            raise
        return Recorded(existing, created=False)
    payer.balance_minutes -= minutes
    payee.balance_minutes += minutes
    session.flush()
    return Recorded(record, created=True)


def _by_key(session: Session, bank_id: int, key: str) -> Transfer | None:
    return session.scalars(
        select(Transfer).where(Transfer.bank_id == bank_id, Transfer.idempotency_key == key)
    ).one_or_none()


def verify(session: Session, bank_id: int | None = None) -> list[str]:
    """Check the ledger's invariants; return one line per breach (empty when all hold)."""
    breaches: list[str] = []
    banks = session.scalars(
        select(Bank).where(Bank.id == bank_id) if bank_id else select(Bank)
    ).all()
    for bank in banks:
        total = session.scalar(
            select(func.coalesce(func.sum(Account.balance_minutes), 0)).where(
                Account.bank_id == bank.id
            )
        )
        if total:
            breaches.append(f"bank {bank.id}: balances sum to {format_hours(int(total))}, not 0")
        credits = dict(
            session.execute(
                select(Transfer.to_account_id, func.sum(Transfer.minutes))
                .where(Transfer.bank_id == bank.id)
                .group_by(Transfer.to_account_id)
            ).all()
        )
        debits = dict(
            session.execute(
                select(Transfer.from_account_id, func.sum(Transfer.minutes))
                .where(Transfer.bank_id == bank.id)
                .group_by(Transfer.from_account_id)
            ).all()
        )
        for account in session.scalars(select(Account).where(Account.bank_id == bank.id)):
            expected = int(credits.get(account.id, 0)) - int(debits.get(account.id, 0))
            if account.balance_minutes != expected:
                breaches.append(
                    f"account {account.id}: cached balance {format_hours(account.balance_minutes)}"
                    f" but transfers give {format_hours(expected)}"
                )
        for side in (Transfer.from_account_id, Transfer.to_account_id):
            cross = session.scalar(
                select(func.count(Transfer.id))
                .join(Account, Account.id == side)
                .where(Transfer.bank_id == bank.id, Account.bank_id != bank.id)
            )
            if cross:
                breaches.append(
                    f"bank {bank.id}: {cross} transfers with another bank's account"
                )
        breaches += own_hours.breaches(session, bank.id)
    return breaches


def reverse(
    session: Session, transfer_id: int, *, reason: str, entered_by: str = "broker",
    entered_by_member_id: int | None = None,
) -> Recorded:
    """Correct a mistake with a transfer the other way; the original stays as it was.

    A transfer is reversed at most once (the key is ``reverse:<id>``), and a reversal cannot
    itself be reversed: record a new transfer instead.
    """
    original = session.get(Transfer, transfer_id)
    if original is None:
        raise NotFound(f"there is no transfer {transfer_id}")
    if original.kind == "reversal":
        raise InvalidHours("a reversal cannot be reversed; record a new transfer instead")
    return transfer(
        session, bank_id=original.bank_id, from_account_id=original.to_account_id,
        to_account_id=original.from_account_id, minutes=original.minutes, kind="reversal",
        # The reason only: the words ("correction: …") are made when shown (app.ledger_words).
        description=reason[:200],
        idempotency_key=f"reverse:{original.id}", entered_by=entered_by,
        entered_by_member_id=entered_by_member_id, reverses_id=original.id,
        enforce_limit=False, enforce_maximum=False,
    )


def add_organisation(session: Session, bank_id: int, name: str) -> Account:
    """An organisation's account (a ward, a community centre) that gives and receives hours."""
    existing = session.scalars(
        select(Account).where(
            Account.bank_id == bank_id, Account.kind == "organisation", Account.name == name
        )
    ).first()
    if existing is not None:
        return existing
    account = Account(bank_id=bank_id, kind="organisation", name=name)
    session.add(account)
    session.flush()
    return account


def organisation(session: Session, bank_id: int, name: str) -> Account:
    account = session.scalars(
        select(Account).where(
            Account.bank_id == bank_id, Account.kind == "organisation",
            func.lower(Account.name) == name.lower(),
        )
    ).first()
    if account is None:
        raise NotFound(f"no organisation called {name!r}")
    return account
