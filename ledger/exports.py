"""CSV exports of a bank's ledger, for funders and audits (CLI and dashboard alike)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ledger.hours import format_hours
from ledger.models import Account, Bank, Transfer

TRANSFER_COLUMNS = [
    "transfer_id", "created_at", "bank", "from_account_id", "from_name", "to_account_id",
    "to_name", "hours", "kind", "description", "entered_by", "entered_by_member_id",
    "reverses_id",
]


class SafeWriter:
    """A csv writer whose cells can't run as spreadsheet formulas: members' own words
    (``DONE 1 =HYPERLINK(…)``) reach funders' spreadsheets, so a text cell starting with
    = + - @ or a control character is written with a leading apostrophe."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def writerow(self, row: Iterable[object]) -> Any:
        return self.writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)  # a negative number ("-1.5") is only a number
        except ValueError:
            return "'" + value
    return value


def write_transfers(session: Session, bank: Bank, writer: Any, since: datetime | None = None,
                    until: datetime | None = None) -> None:
    """Every transfer of ``bank`` in ``[since, until)`` (UTC), oldest first."""
    payer, payee = aliased(Account), aliased(Account)
    query = (
        select(Transfer, payer.name, payee.name)
        .join(payer, payer.id == Transfer.from_account_id)
        .join(payee, payee.id == Transfer.to_account_id)
        .where(Transfer.bank_id == bank.id)
        .order_by(Transfer.id)
    )
    if since:
        query = query.where(Transfer.created_at >= _utc(since))
    if until:
        query = query.where(Transfer.created_at < _utc(until))
    writer = SafeWriter(writer)
    writer.writerow(TRANSFER_COLUMNS)
    for transfer, from_name, to_name in session.execute(query):
        writer.writerow([
            transfer.id, _utc(transfer.created_at).isoformat(timespec="seconds"), bank.name,
            transfer.from_account_id, from_name, transfer.to_account_id, to_name,
            format_hours(transfer.minutes), transfer.kind, transfer.description,
            transfer.entered_by, transfer.entered_by_member_id, transfer.reverses_id,
        ])


def write_balances(session: Session, bank: Bank, writer: Any) -> None:
    writer = SafeWriter(writer)
    writer.writerow(["account_id", "kind", "name", "member_id", "balance_hours"])
    for account in session.scalars(
        select(Account).where(Account.bank_id == bank.id).order_by(Account.id)
    ):
        writer.writerow([account.id, account.kind, account.name, account.member_id,
                         format_hours(account.balance_minutes)])


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
