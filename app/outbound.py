"""Texts the bank sends on its own (not as a reply): recorded in SQL, then sent by RQ jobs.

A message row is created with an idempotency key in the caller's transaction; after the
commit its id (never a phone number) is handed to a job, which sends it at most once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rq import Retry
from sqlalchemy.orm import Session

from app.care import offline
from app.services import Services
from conversations.gsm import cheapest, segments
from conversations.machine import for_others
from conversations.texts import in_language, render
from ledger import members, messages
from ledger.links import without_links
from ledger.models import Bank, Member, Post
from ledger.phones import SMS, WHATSAPP

# Backoff between tries on 5xx, 429 and timeouts: about 40 minutes in all.
SEND_RETRY = Retry(max=6, interval=[5, 15, 60, 180, 600, 1800])


def address_for(member: Member) -> tuple[str, str] | None:
    """Where to text a member: the channel they last used, else the one they have."""
    if member.whatsapp and (member.last_channel == WHATSAPP or not member.phone):
        return member.whatsapp, WHATSAPP
    if member.phone:
        return member.phone, SMS
    return None


def queue_text(
    session: Session,
    member: Member,
    *,
    kind: str,
    key: str,
    idempotency_key: str,
    urgent: bool = False,
    values: dict[str, object] | None = None,
    caused_by: int | None = None,
) -> int | None:
    """Record a text to ``member`` once per idempotency key; its id if it should be sent now.
    ``caused_by``: the member whose action made the bank text them unasked (``app.caps``)."""
    if not members.can_be_texted(session, member):
        return None
    target = address_for(member)
    if target is None:
        return None
    to_address, channel = target
    # On a shared phone, the text names the member it is for ("For Sam: ..."). Written as
    # sent: exactly, unless a few letters outside GSM-7 (Zoë, Ayşe) would cost more segments
    # (conversations.gsm.cheapest); the member's own data keeps its exact spelling.
    body = cheapest(offline.for_whom(session, member,
                                     render(key, member.language, **(values or {}))))
    message, created = messages.create(
        session, bank_id=member.bank_id, member_id=member.id, to_address=to_address,
        channel=channel, kind=kind, body=body, idempotency_key=idempotency_key, urgent=urgent,
        segments=segments(body), caused_by_member_id=caused_by,
        values_json=json.dumps({k: _plain(v, member.language) for k, v in (values or {}).items()}),
    )
    return message.id if created else None


def _plain(value: object, language: str) -> object:
    """A value as the text showed it (hours with their unit), for template variables."""
    value = in_language(value, language)
    return value if isinstance(value, int | float) else str(value)


def ask_text(need: Post, requester: Member, helper: Member) -> tuple[str, dict[str, object]]:
    """The catalogue key and values of the text asking ``helper`` about ``need``. The
    requester's words and area go without links: a stranger cannot use the bank to send one."""
    area = without_links(requester.area)
    key = "ask_helper" if area else "ask_helper_no_area"
    return key, {"name": requester.name, "ref": need.ref, "area": area,
                 "what": for_others(need.text)}


def queue_ask(session: Session, need: Post, requester: Member, helper: Member, ask_id: int
              ) -> int | None:
    """Record the text asking ``helper`` about ``need`` (a broker's ask), once per ask."""
    key, values = ask_text(need, requester, helper)
    return queue_text(session, helper, kind=key, key=key, idempotency_key=f"ask:{ask_id}",
                      values=values)


def tell_brokers(
    session: Session, bank: Bank, key: str, idempotency_key: str, values: dict[str, object]
) -> list[int]:
    """Text every broker of ``bank`` once per ``idempotency_key``."""
    ids = []
    for broker in members.brokers(session, bank.id):
        message_id = queue_text(
            session, broker, kind=key, key=key, idempotency_key=f"{idempotency_key}:to:{broker.id}",
            values=values,
        )
        if message_id is not None:
            ids.append(message_id)
    return ids


def enqueue(services: Services, message_ids: Iterable[int], at: datetime | None = None,
            job_id: str | None = None, pipeline: Any = None) -> None:
    """Hand committed messages to the worker (at a time, if given). Arguments are ids only.
    With a Redis ``pipeline``, they go when the caller executes it."""
    for message_id in message_ids:
        options = {"job_id": job_id or f"message-{message_id}", "retry": SEND_RETRY,
                   "description": f"send message {message_id}"}
        if at is None:
            services.queue.enqueue("app.jobs.send_message", message_id, **options,
                                   pipeline=pipeline)
        else:
            services.queue.enqueue_at(at, "app.jobs.send_message", message_id, **options)
