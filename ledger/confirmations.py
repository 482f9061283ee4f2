"""Confirm-by-reply: hours become a transfer only when the right member answers YES.

Serves ``DONE`` (a member reports help they gave; the member helped confirms), ``GIVE`` (the
giver confirms a preview) and, later, hours reported on a match. Each request has a
reference unique in its bank (``YES 17``) and a request key, so a retried webhook never opens
two requests; the transfer it makes carries the key ``confirmation:<id>``, so two YES at once
record one transfer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger import accounts
from ledger.errors import LedgerError, LimitReached
from ledger.models import Account, Bank, Confirmation, Member, Transfer, utcnow

# Built once: on the webhook's write path, building a statement costs more than running it.
_NEXT_REF = (
    update(Bank).where(Bank.id == bindparam("bank_id")).values(next_ref=Bank.next_ref + 1)
    .returning(Bank.next_ref).execution_options(synchronize_session=False)
)


def next_ref(session: Session, bank_id: int) -> int:
    """The bank's next reference number (row-locked, so never handed out twice)."""
    ref = session.scalar(_NEXT_REF, {"bank_id": bank_id})
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
class Settlement:
    """What became of an answer to a request: ``outcome`` is one of

    ``confirmed`` (transfer recorded now), ``already_confirmed`` (a repeat), ``disputed``,
    ``canceled`` (NO to a gift's preview), ``already_disputed``, ``limit`` (held for a broker:
    the payer would go below their limit, or the bank's rules changed since the request),
    ``closed`` (settled otherwise), ``unknown`` (no such reference for this member),
    ``waiting`` (a broker may not settle it yet: the member has not been reminded and asked
    in vain, nor disputed it).
    """

    outcome: str
    confirmation: Confirmation | None = None
    transfer: Transfer | None = None


def _locked(session: Session, *conditions: Any) -> Confirmation | None:
    """A request, locked, re-read from the database (never a stale copy from this session)."""
    return session.scalars(
        select(Confirmation).where(*conditions).with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def answer(
    session: Session, *, bank_id: int, member_id: int, ref: int, yes: bool,
    sid: str | None = None, by_broker: bool = False, broker_id: int | None = None,
) -> Settlement:
    """The member's YES or NO to request ``ref``; ``sid`` is the text that carried it.
    ``by_broker``: a broker answers for a member without a phone (``app.care.offline``), and
    the transfer says so (entered by ``broker_id``, which ``ledger verify`` checks)."""
    confirmation = _locked(session, Confirmation.bank_id == bank_id, Confirmation.ref == ref)
    if confirmation is None or confirmation.confirmer_member_id != member_id:
        return Settlement("unknown")
    if confirmation.status == "confirmed":
        transfer = session.get(Transfer, confirmation.transfer_id)
        return Settlement("already_confirmed" if yes else "closed", confirmation, transfer)
    if confirmation.status == "disputed":
        return Settlement("already_disputed" if not yes else "closed", confirmation)
    if confirmation.status != "pending":  # held for a broker, or canceled
        return Settlement("closed", confirmation)
    confirmation.answered_sid = sid
    if not yes:
        # NO to a gift's preview withdraws it; NO to reported help disputes it.
        confirmation.status = "canceled" if confirmation.kind == "gift" else "disputed"
        confirmation.settled_at = utcnow()
        return Settlement(confirmation.status, confirmation)
    if by_broker:
        return _confirm(session, confirmation, entered_by="broker",
                        entered_by_member_id=broker_id)
    return _confirm(session, confirmation, entered_by="member", entered_by_member_id=member_id)


def recent_repeat(
    session: Session, *, bank_id: int, requested_by: int, confirmer: int, minutes: int,
    description: str, within: timedelta = timedelta(hours=1),
) -> Confirmation | None:
    """A pending request with the same people, hours and words made within the last hour:
    a member who sends the same DONE twice (no answer seen, a resend) means one request."""
    return session.scalars(
        select(Confirmation).where(
            Confirmation.bank_id == bank_id, Confirmation.requested_by_member_id == requested_by,
            Confirmation.confirmer_member_id == confirmer, Confirmation.minutes == minutes,
            Confirmation.status == "pending", Confirmation.kind == "exchange",
            func.lower(Confirmation.description) == description.lower()[:200],
            Confirmation.created_at >= utcnow() - within,
        ).order_by(Confirmation.id.desc())
    ).first()


def answered_by(session: Session, bank_id: int, sid: str) -> Confirmation | None:
    """The request a text (by its MessageSid) already answered, if any: a retried bare YES
    must settle the same request again, not the next one waiting."""
    return session.scalars(
        select(Confirmation).where(
            Confirmation.bank_id == bank_id, Confirmation.answered_sid == sid
        )
    ).first()


def _confirm(
    session: Session, confirmation: Confirmation, *, entered_by: str,
    entered_by_member_id: int | None, enforce_limit: bool = True,
) -> Settlement:
    try:
        with session.begin_nested():
            recorded = accounts.transfer(
                session, bank_id=confirmation.bank_id,
                from_account_id=confirmation.payer_account_id,
                to_account_id=confirmation.payee_account_id, minutes=confirmation.minutes,
                kind=confirmation.kind, description=confirmation.description,
                idempotency_key=f"confirmation:{confirmation.id}", entered_by=entered_by,
                entered_by_member_id=entered_by_member_id, enforce_limit=enforce_limit,
                # The maximum was checked when the request was made; a bank lowering it
                # later must not strand requests already agreed.
                enforce_maximum=False,
            )
    except LedgerError as exc:
        confirmation.status = "held"
        confirmation.note = "limit" if isinstance(exc, LimitReached) else str(exc)[:200]
        return Settlement("limit", confirmation)
    confirmation.status = "confirmed"
    confirmation.transfer_id = recorded.transfer.id
    confirmation.settled_at = utcnow()
    return Settlement("confirmed", confirmation, recorded.transfer)


SETTLEABLE = ("disputed", "held", "pending")


def settle_by_broker(
    session: Session, confirmation_id: int, *, broker_id: int | None, confirm: bool,
    past_floor: bool = False,
) -> Settlement:
    """A broker settles a disputed, held or escalated request: record it, or close it.

    A request still waiting for the member's own reply (``waiting``) is left to them until the
    sweep has escalated it; recording it keeps to the payer's balance floor unless the broker
    chose ``past_floor`` (with a reason, which the caller audits).
    """
    confirmation = _locked(session, Confirmation.id == confirmation_id)
    if confirmation is None:
        return Settlement("unknown")
    if confirmation.status == "confirmed":
        return Settlement("already_confirmed", confirmation,
                          session.get(Transfer, confirmation.transfer_id))
    if confirmation.status not in SETTLEABLE or (
        confirmation.kind == "gift" and confirmation.status == "pending"
    ):
        # Canceled requests stay canceled; only the giver can agree to a gift.
        return Settlement("closed", confirmation)
    if confirmation.status == "pending" and confirmation.escalated_at is None:
        return Settlement("waiting", confirmation)
    if not confirm:
        confirmation.status = "canceled"
        confirmation.settled_at = utcnow()
        return Settlement("canceled", confirmation)
    return _confirm(session, confirmation, entered_by="broker",
                    entered_by_member_id=broker_id, enforce_limit=not past_floor)


@dataclass(frozen=True)
class SweepStep:
    """What the sweep did to one request: ``remind``, ``escalate``, ``expire`` (a gift's
    preview nobody confirmed) or ``auto`` (credited without an answer, as the bank chose)."""

    action: str
    confirmation: Confirmation
    settlement: Settlement | None = None


def due(session: Session, now: datetime | None = None) -> list[int]:
    """Ids of unanswered requests that may need a step (read without locks)."""
    del now  # every pending, unescalated request is looked at; sweep_one decides
    return list(session.scalars(
        select(Confirmation.id)
        .where(Confirmation.status == "pending", Confirmation.escalated_at.is_(None))
        .order_by(Confirmation.id)
    ))


def sweep_one(session: Session, confirmation_id: int, now: datetime | None = None, *,
              never_asked: Callable[[Confirmation], bool] | None = None,
              ) -> SweepStep | None:
    """Remind, escalate, expire or auto-confirm one request, in the caller's transaction.

    The row is locked and skipped if another sweeper (or a member's YES) holds it; each step
    is recorded on the row, so a request is reminded at most once and escalated at most once.
    A request whose confirmer was ``never_asked`` (a cap held the texts back) is escalated,
    never auto-confirmed.
    """
    now = now or utcnow()
    row = session.execute(
        select(Confirmation, Bank)
        .join(Bank, Bank.id == Confirmation.bank_id)
        .where(Confirmation.id == confirmation_id, Confirmation.status == "pending",
               Confirmation.escalated_at.is_(None))
        .with_for_update(skip_locked=True, of=Confirmation)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        return None
    confirmation, bank = row
    confirmer = session.get(Member, confirmation.confirmer_member_id)
    # A confirmer who is away (app.care.away) is not reminded until they are back, and their
    # hours are never credited without their answer; the brokers still get the request on
    # time, so the member who gave the hours is not kept waiting.
    paused = confirmer is not None and confirmer.away_since is not None
    age = now - confirmation.created_at
    if confirmation.kind == "gift":
        # Only the giver can agree to a gift; an old preview simply lapses.
        if age >= timedelta(hours=bank.confirm_remind_hours):
            confirmation.status = "canceled"
            confirmation.note = "expired"
            confirmation.settled_at = now
            return SweepStep("expire", confirmation)
        return None
    if age >= timedelta(hours=bank.confirm_escalate_hours):
        confirmation.escalated_at = now
        if bank.auto_confirm and not paused and not (
                never_asked and never_asked(confirmation)):
            return SweepStep("auto", confirmation, _confirm(
                session, confirmation, entered_by="system", entered_by_member_id=None
            ))
        return SweepStep("escalate", confirmation)
    if (confirmation.reminded_at is None and not paused
            and age >= timedelta(hours=bank.confirm_remind_hours)):
        confirmation.reminded_at = now
        return SweepStep("remind", confirmation)
    return None


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
