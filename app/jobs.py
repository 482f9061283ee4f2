"""RQ jobs, by dotted path. They take ids, never phone numbers or objects.

The worker (``worker.py``) builds the app and runs each job inside its context. Exceptions
that should be retried reach RQ, which records them and retries on the job's schedule.
"""

from __future__ import annotations

import logging
from datetime import UTC, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import outbound
from app import services as current_services
from app.transports import (
    AmbiguousSendError,
    OutboundText,
    PermanentSendError,
    TransientSendError,
)
from conversations.texts import Hours
from ledger import banks, confirmations, members
from ledger.models import Account, Bank, Confirmation, Member, Message, utcnow

log = logging.getLogger(__name__)

OPTED_OUT_CODE = "21610"
# Error code kept on a message whose last attempt may have reached Twilio.
AMBIGUOUS = "ambiguous"
# With RQ's retries and the sweep's re-enqueueing, a message is tried at most this often.
MAX_ATTEMPTS = 10


def send_message(message_id: int) -> str:
    """Send one recorded message, at most once. Returns the message's status."""
    services = current_services()
    config = services.config
    with services.db.writing() as session:
        message = session.scalars(
            select(Message).where(Message.id == message_id).with_for_update()
        ).one_or_none()
        if message is None:
            log.warning("message %s does not exist", message_id)
            return "missing"
        if message.status != "queued":
            # Sent, or being sent by a job that died mid-call: never risk a second text.
            return message.status
        phone = message.to_address.removeprefix("whatsapp:")
        if members.is_opted_out(session, message.bank_id, phone):
            message.status = "canceled"
            message.error_code = "opted-out"
            return message.status
        bank = session.get(Bank, message.bank_id)
        assert bank is not None
        if message.attempts >= MAX_ATTEMPTS:
            message.status = "failed"
            message.error_code = "attempts"
            log.warning("message %s failed after %s attempts", message_id, message.attempts)
            return message.status
        configured = (
            config.twilio_whatsapp_from if message.channel == "whatsapp"
            else config.twilio_sms_from
        )
        # A bank texts from its own number; the default bank may use a Messaging Service.
        sender = banks.sender_for(bank, message.channel, configured if bank.is_default else None)
        if sender is None and bank.is_default:
            sender = configured or None
        service = (
            config.twilio_messaging_service_sid
            if message.channel == "sms" and config.twilio_messaging_service_sid
            and (bank.is_default or sender is None)
            else None
        )
        text = OutboundText(
            message_id=message.id, to=message.to_address, body=message.body,
            sender=sender, channel=message.channel, messaging_service_sid=service,
        )
        check_first = message.error_code == AMBIGUOUS
        last_attempt = message.updated_at
        message.status = "sending"
        message.attempts += 1

    try:
        provider_sid = None
        if check_first:
            # The last attempt may have reached Twilio: never text twice.
            if last_attempt.tzinfo is None:
                last_attempt = last_attempt.replace(tzinfo=UTC)
            provider_sid = services.transport.find_sent(text, last_attempt)
        if provider_sid is None:
            provider_sid = services.transport.send(text)
    except AmbiguousSendError:
        _set_status(message_id, "queued", AMBIGUOUS)
        raise
    except TransientSendError:
        _set_status(message_id, "queued", AMBIGUOUS if check_first else None)
        raise
    except PermanentSendError as exc:
        with services.db.writing() as session:
            failed = session.get(Message, message_id)
            assert failed is not None
            failed.status = "failed"
            failed.error_code = exc.code[:16]
            if exc.code == OPTED_OUT_CODE:
                members.opt_out(session, failed.bank_id, phone, reason="carrier-21610")
        log.warning("message %s failed for good: %s", message_id, exc.code)
        return "failed"

    with services.db.writing() as session:
        sent = session.get(Message, message_id)
        assert sent is not None
        sent.provider_sid = provider_sid
        sent.error_code = None
        if sent.status in ("sending", "queued"):
            sent.status = "sent"
        return sent.status


def _set_status(message_id: int, status: str, error_code: str | None = None) -> None:
    with current_services().db.writing() as session:
        message = session.get(Message, message_id)
        if message is not None:
            message.status = status
            message.error_code = error_code


# Messages still "queued" this long after their last change lost their job (a crash between
# the commit and the enqueue, or a Redis that lost its queue): the sweep hands them over again.
STUCK_AFTER = timedelta(minutes=10)


def sweep() -> dict[str, int]:
    """Periodic upkeep, safe to run from many workers at once: remind and escalate unanswered
    confirmations, and re-enqueue texts whose job was lost. Driven by SQL, not by Redis."""
    services = current_services()
    queued: list[int] = []
    with services.db.writing() as session:
        due = confirmations.sweep(session)
        for request in due.remind:
            queued += _remind(session, request)
        for request in due.escalate:
            queued += _escalate(session, request)
        for answer in due.auto_confirmed:
            if answer.outcome == "confirmed" and answer.confirmation is not None:
                queued += _auto_receipts(session, answer.confirmation)
        stuck = list(session.scalars(
            select(Message.id).where(
                Message.status == "queued", Message.updated_at < utcnow() - STUCK_AFTER
            ).limit(1000)
        ))
    outbound.enqueue(services, queued + stuck)
    return {
        "reminded": len(due.remind), "escalated": len(due.escalate),
        "auto_confirmed": len(due.auto_confirmed), "requeued": len(stuck),
    }


def _names(session: Session, request: Confirmation) -> tuple[Member | None, Member | None]:
    payer = session.get(Account, request.payer_account_id)
    payee = session.get(Account, request.payee_account_id)
    return (
        session.get(Member, payer.member_id) if payer and payer.member_id else None,
        session.get(Member, payee.member_id) if payee and payee.member_id else None,
    )


def _remind(session: Session, request: Confirmation) -> list[int]:
    confirmer = session.get(Member, request.confirmer_member_id)
    requester = session.get(Member, request.requested_by_member_id)
    if confirmer is None or requester is None or request.kind != "exchange":
        return []
    message_id = outbound.queue_text(
        session, confirmer, kind="confirm_reminder", key="confirm_reminder",
        idempotency_key=f"confirm-reminder:{request.id}",
        values={"other": requester.name, "hours": Hours(request.minutes),
                "what": request.description, "ref": request.ref},
    )
    return [message_id] if message_id else []


def _escalate(session: Session, request: Confirmation) -> list[int]:
    bank = session.get(Bank, request.bank_id)
    assert bank is not None
    payer, payee = _names(session, request)
    return outbound.tell_brokers(
        session, bank, "broker_unanswered", f"broker-unanswered:{request.id}",
        {"ref": request.ref, "payer": payer.name if payer else "the fund",
         "payee": payee.name if payee else "the fund", "hours": Hours(request.minutes),
         "what": request.description},
    )


def _auto_receipts(session: Session, request: Confirmation) -> list[int]:
    ids: list[int] = []
    payer, payee = _names(session, request)
    for member, other in ((payer, payee), (payee, payer)):
        if member is None or other is None:
            continue
        account = members.member_account(session, member)
        key = "receipt_payer" if member is payer else "receipt_payee"
        message_id = outbound.queue_text(
            session, member, kind=key, key=key,
            idempotency_key=f"auto-receipt:{request.id}:{member.id}",
            values={"other": other.name, "hours": Hours(request.minutes),
                    "what": request.description, "balance": Hours(account.balance_minutes)},
        )
        if message_id:
            ids.append(message_id)
    return ids
