"""RQ jobs, by dotted path. They take ids, never phone numbers or objects.

The worker (``worker.py``) builds the app and runs each job inside its context. Exceptions
that should be retried reach RQ, which records them and retries on the job's schedule.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from app import services as current_services
from app.transports import OutboundText, PermanentSendError, TransientSendError
from ledger import banks, members
from ledger.models import Bank, Message

log = logging.getLogger(__name__)

OPTED_OUT_CODE = "21610"


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
        sender = banks.sender_for(bank, message.channel) or (
            config.twilio_whatsapp_from if message.channel == "whatsapp"
            else config.twilio_sms_from
        )
        text = OutboundText(
            message_id=message.id, to=message.to_address, body=message.body,
            sender=sender or None, channel=message.channel,
        )
        message.status = "sending"
        message.attempts += 1

    try:
        provider_sid = services.transport.send(text)
    except TransientSendError:
        _set_status(message_id, "queued")
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
        if sent.status in ("sending", "queued"):
            sent.status = "sent"
        return sent.status


def _set_status(message_id: int, status: str) -> None:
    with current_services().db.writing() as session:
        message = session.get(Message, message_id)
        if message is not None:
            message.status = status
