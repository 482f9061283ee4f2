"""Confirm-by-reply: hours become a transfer only when the right member answers YES.

Serves ``DONE`` (a member reports help they gave; the member helped confirms), ``GIVE`` (the
giver confirms a preview) and, later, hours reported on a match. Each request has a
reference unique in its bank (``YES 17``) and a request key, so a retried webhook never opens
two requests; the transfer it makes carries the key ``confirmation:<id>``, so two YES at once
record one transfer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger import accounts
from ledger.errors import LimitReached
from ledger.models import Account, Bank, Confirmation, Member, Transfer, utcnow


def next_ref(session: Session, bank_id: int) -> int:
    """The bank's next reference number (row-locked, so never handed out twice)."""
    ref = session.scalar(
        update(Bank).where(Bank.id == bank_id).values(next_ref=Bank.next_ref + 1)
        .returning(Bank.next_ref)
    )
    assert ref is not None
    return int(ref) - 1


def request(
    session: Session,
    *,
    bank_id: int,
    kind: str,
    payer: Account,
    payee: Account,
    minutes: int,
    description: str,
    requested_by: Member,
    confirmer: Member,
    request_key: str,
) -> tuple[Confirmation, bool]:
    """Open a request for ``confirmer`` to answer; the same ``request_key`` returns the first."""
    existing = _by_request_key(session, bank_id, request_key)
    if existing is not None:
        return existing, False
    try:
        with session.begin_nested():
            confirmation = Confirmation(
                bank_id=bank_id, ref=next_ref(session, bank_id), kind=kind,
                payer_account_id=payer.id, payee_account_id=payee.id, minutes=minutes,
                description=description[:200], requested_by_member_id=requested_by.id,
                confirmer_member_id=confirmer.id, request_key=request_key,
            )
            session.add(confirmation)
            session.flush()
    except IntegrityError:
        existing = _by_request_key(session, bank_id, request_key)
        if existing is None:
            raise
        return existing, False
    return confirmation, True


@dataclass(frozen=True)
class Answer:
    """What became of a ``YES``/``NO``: ``outcome`` is one of

    ``confirmed`` (transfer recorded now), ``already_confirmed`` (a repeat), ``disputed``,
    ``canceled`` (NO to a gift's preview),
    ``already_disputed``, ``limit`` (the payer would go below the bank's limit: held for a
    broker), ``closed`` (settled otherwise), ``unknown`` (no such reference for this member).
    """

    outcome: str
    confirmation: Confirmation | None = None
    transfer: Transfer | None = None


def answer(session: Session, *, bank_id: int, member_id: int, ref: int, yes: bool) -> Answer:
    confirmation = session.scalars(
        select(Confirmation)
        .where(Confirmation.bank_id == bank_id, Confirmation.ref == ref)
        .with_for_update()
    ).one_or_none()
    if confirmation is None or confirmation.confirmer_member_id != member_id:
        return Answer("unknown")
    if confirmation.status == "confirmed":
        transfer = session.get(Transfer, confirmation.transfer_id)
        return Answer("already_confirmed" if yes else "closed", confirmation, transfer)
    if confirmation.status == "disputed":
        return Answer("already_disputed" if not yes else "closed", confirmation)
    if confirmation.status != "pending":  # held for a broker, or canceled
        return Answer("closed", confirmation)
    if not yes:
        # NO to a gift's preview withdraws it; NO to reported help disputes it.
        confirmation.status = "canceled" if confirmation.kind == "gift" else "disputed"
        confirmation.settled_at = utcnow()
        return Answer(confirmation.status, confirmation)
    return _confirm(session, confirmation, entered_by="member", entered_by_member_id=member_id)


def _confirm(
    session: Session, confirmation: Confirmation, *, entered_by: str,
    entered_by_member_id: int | None, enforce_limit: bool = True,
) -> Answer:
    try:
        recorded = accounts.transfer(
            session, bank_id=confirmation.bank_id,
            from_account_id=confirmation.payer_account_id,
            to_account_id=confirmation.payee_account_id, minutes=confirmation.minutes,
            kind=confirmation.kind, description=confirmation.description,
            idempotency_key=f"confirmation:{confirmation.id}", entered_by=entered_by,
            entered_by_member_id=entered_by_member_id, enforce_limit=enforce_limit,
        )
    except LimitReached:
        confirmation.status = "held"
        confirmation.note = "limit"
        return Answer("limit", confirmation)
    confirmation.status = "confirmed"
    confirmation.transfer_id = recorded.transfer.id
    confirmation.settled_at = utcnow()
    return Answer("confirmed", confirmation, recorded.transfer)


def settle_by_broker(
    session: Session, confirmation_id: int, *, broker_id: int | None, confirm: bool
) -> Answer:
    """A broker settles a held or disputed request: record it, or close it."""
    confirmation = session.scalars(
        select(Confirmation).where(Confirmation.id == confirmation_id).with_for_update()
    ).one()
    if confirmation.status == "confirmed":
        return Answer("already_confirmed", confirmation,
                      session.get(Transfer, confirmation.transfer_id))
    if not confirm:
        confirmation.status = "canceled"
        confirmation.settled_at = utcnow()
        return Answer("closed", confirmation)
    # A broker's decision stands even where the member's own YES met the balance limit.
    return _confirm(session, confirmation, entered_by="broker",
                    entered_by_member_id=broker_id, enforce_limit=False)


@dataclass(frozen=True)
class Due:
    """Requests the sweep should act on: remind, pass to brokers, or credit (auto-confirm)."""

    remind: list[Confirmation]
    escalate: list[Confirmation]
    auto_confirmed: list[Answer]


def sweep(session: Session, now: datetime | None = None) -> Due:
    """Mark unanswered requests as reminded or escalated; safe to run from many workers.

    Rows are locked and skipped if another sweeper holds them, and each step is recorded on
    the row, so a request is reminded at most once and escalated at most once.
    """
    now = now or utcnow()
    remind: list[Confirmation] = []
    escalate: list[Confirmation] = []
    auto: list[Answer] = []
    rows = session.execute(
        select(Confirmation, Bank)
        .join(Bank, Bank.id == Confirmation.bank_id)
        .where(Confirmation.status == "pending", Confirmation.escalated_at.is_(None))
        .order_by(Confirmation.id)
        .with_for_update(skip_locked=True, of=Confirmation)
    ).all()
    for confirmation, bank in rows:
        created = _aware(confirmation.created_at, now)
        if now - created >= timedelta(hours=bank.confirm_escalate_hours):
            confirmation.escalated_at = now
            if bank.auto_confirm and confirmation.kind == "exchange":
                auto.append(_confirm(session, confirmation, entered_by="system",
                                     entered_by_member_id=None))
            else:
                escalate.append(confirmation)
        elif (
            confirmation.reminded_at is None
            and now - created >= timedelta(hours=bank.confirm_remind_hours)
        ):
            confirmation.reminded_at = now
            remind.append(confirmation)
    return Due(remind, escalate, auto)


def broker_queue(session: Session, bank_id: int) -> list[Confirmation]:
    """Disputed, held and escalated requests, oldest first."""
    return list(session.scalars(
        select(Confirmation)
        .where(
            Confirmation.bank_id == bank_id,
            (Confirmation.status.in_(("disputed", "held")))
            | ((Confirmation.status == "pending") & Confirmation.escalated_at.is_not(None)),
        )
        .order_by(Confirmation.id)
    ))


def waiting_for(session: Session, bank_id: int, member_id: int) -> list[Confirmation]:
    """Requests this member has yet to answer, newest first."""
    return list(session.scalars(
        select(Confirmation)
        .where(
            Confirmation.bank_id == bank_id,
            Confirmation.confirmer_member_id == member_id,
            Confirmation.status == "pending",
        )
        .order_by(Confirmation.id.desc())
    ))


def _by_request_key(session: Session, bank_id: int, key: str) -> Confirmation | None:
    return session.scalars(
        select(Confirmation).where(
            Confirmation.bank_id == bank_id, Confirmation.request_key == key
        )
    ).one_or_none()


def _aware(value: datetime, like: datetime) -> datetime:
    return value.replace(tzinfo=like.tzinfo) if value.tzinfo is None else value
