"""The bank's outbound texts, one row each, so that every send happens at most once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.models import Message

# Twilio's statuses in the order a message moves through them. A callback never moves a
# message backwards: "delivered" arriving before "sent" stays "delivered".
STATUS_RANK = {
    "queued": 0,
    "accepted": 1,
    "scheduled": 1,
    "sending": 2,
    "sent": 3,
    "failed": 4,
    "undelivered": 4,
    "delivered": 5,
    "read": 6,
    "canceled": 4,
    "partially_delivered": 5,
}


def create(
    session: Session,
    *,
    bank_id: int,
    to_address: str,
    channel: str,
    kind: str,
    body: str,
    idempotency_key: str,
    member_id: int | None = None,
    urgent: bool = False,
    segments: int = 1,
    values_json: str | None = None,
    caused_by_member_id: int | None = None,
) -> tuple[Message, bool]:
    """The message with this key, created if new. Returns it and whether it was created."""
    existing = by_key(session, idempotency_key)
    if existing is not None:
        return existing, False
    try:
        with session.begin_nested():
            message = Message(
                bank_id=bank_id, member_id=member_id, to_address=to_address, channel=channel,
                kind=kind, body=body, urgent=urgent, idempotency_key=idempotency_key,
                segments=segments, values_json=values_json,
                caused_by_member_id=caused_by_member_id,
            )
            session.add(message)
            session.flush()
    except IntegrityError:
        existing = by_key(session, idempotency_key)
        if existing is None:
            raise
        return existing, False
    return message, True


def by_key(session: Session, key: str) -> Message | None:
    return session.scalars(select(Message).where(Message.idempotency_key == key)).one_or_none()


def update_status(
    session: Session, provider_sid: str, status: str, error_code: str | None = None
) -> Message | None:
    """Apply a delivery status callback; an older status never overwrites a newer one."""
    message = session.scalars(
        select(Message).where(Message.provider_sid == provider_sid).with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if message is None:
        return None
    status = status.lower()
    if STATUS_RANK.get(status, -1) > STATUS_RANK.get(message.status, -1):
        message.status = status
        if error_code:
            message.error_code = error_code[:16]
    return message
