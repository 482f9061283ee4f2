"""Sending a broadcast: every text recorded in SQL at once, then sent by chained batch jobs.

``confirm`` turns a planned activity into one message row per member (idempotency key
``broadcast:<activity>:<member>``) in the same transaction that marks it sending, so a
broadcast is recorded exactly once. ``app.jobs.send_broadcast`` then sends the queued rows in
id order, a batch per job, each batch enqueuing the next; every send goes through
``send_message``'s at-most-once claim and the per-sender throttle. A worker killed mid-batch
leaves rows queued (or ``sending``, looked up at Twilio before any resend), and the sweep
starts the chain again from SQL.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app import outbound
from app.care import offline
from app.services import Services
from conversations.gsm import cheapest, segments
from conversations.machine import shorten
from conversations.texts import render
from ledger import activities, audit
from ledger.models import Account, Activity, Bank, Member, Message, utcnow

BATCH = 100


def body_for(bank: Bank, activity: Activity, language: str = "en") -> str:
    """The invitation as members get it: in its nearest GSM-7 spelling where that is cheaper
    (``conversations.gsm.cheapest``); the activity keeps the broker's exact words."""
    return cheapest(render("broadcast", language, bank=bank.name, text=activity.text,
                           ref=activity.ref))


def cost(bank: Bank, activity: Activity) -> int:
    """SMS segments each member's text takes."""
    return segments(body_for(bank, activity))


def plan(session: Session, bank: Bank, *, broker: Member | None, text: str,
         area: str | None, skill: str | None, request_key: str, via: str,
         host: Account | None = None) -> tuple[Activity, bool]:
    """Plan a broadcast once per request key, with its cost, and log it."""
    activity, created = activities.plan(session, bank, broker=broker, text=text, area=area,
                                        skill=skill, request_key=request_key, host=host)
    if created:
        activity.segments = cost(bank, activity)
        audit.record(session, bank.id, "broadcast.planned",
                     broker_id=broker.id if broker else None, subject=f"ref {activity.ref}",
                     detail=f"{activity.recipients} members: {activity.text}", via=via)
    return activity, created


def confirm(session: Session, bank: Bank, activity_id: int, *, broker: Member | None,
            via: str) -> tuple[Activity, bool]:
    """Record the broadcast's texts, once: (the activity, whether this call started it).
    The caller enqueues its first batch after the commit."""
    activity = activities.locked(session, activity_id)
    if activity.status != "planned":
        return activity, False
    exclude = [activity.broker_member_id] if activity.broker_member_id else []
    recorded = 0
    bodies: dict[str, str] = {}
    shared = offline.shared_phones(session, bank.id)
    # A batch of members at a time: memory stays the same whether 100 or 100,000 are texted.
    for people in activities.audience_batches(session, bank.id, area=activity.audience_area,
                                              skill=activity.audience_skill, exclude=exclude):
        rows = [row for row in (_row(bank, activity, member, bodies, shared)
                                for member in people) if row is not None]
        if rows:
            session.execute(insert(Message), rows)
        recorded += len(rows)
    activity.status = "sending"
    activity.sent_at = utcnow()
    activity.recipients = recorded
    activity.segments = cost(bank, activity)
    audit.record(session, bank.id, "broadcast.sent", broker_id=broker.id if broker else None,
                 subject=f"ref {activity.ref}", detail=f"{activity.recipients} members",
                 via=via)
    return activity, True


def _row(bank: Bank, activity: Activity, member: Any, bodies: dict[str, str],
         shared: set[str]) -> dict[str, object] | None:
    """A member's message row; ``member`` is a row of ``activities.audience_batches``,
    ``bodies`` the text in each language, rendered once, and ``shared`` the bank's shared
    phones (whose texts say whom they are for)."""
    target = outbound.address_for(member)
    if target is None:
        return None
    to_address, channel = target
    body = bodies.get(member.language)
    if body is None:
        body = bodies[member.language] = body_for(bank, activity, member.language)
    if member.phone in shared:  # a shared phone: "For Sam: ..."
        first = (member.name.split() or [member.name])[0]
        body = render("for_member", member.language,
                      name=shorten(first, offline.FOR_NAME_MOST), text=body)
    now = utcnow()
    return {
        "bank_id": bank.id, "member_id": member.id, "to_address": to_address,
        "channel": channel, "kind": "broadcast", "body": body, "urgent": False,
        "idempotency_key": f"broadcast:{activity.id}:{member.id}", "status": "queued",
        "attempts": 0, "segments": segments(body), "activity_id": activity.id,
        "values_json": json.dumps({"bank": bank.name, "text": activity.text,
                                   "ref": activity.ref}),
        "created_at": now, "updated_at": now,
    }


def cancel(session: Session, activity_id: int, *, broker: Member | None, via: str
           ) -> tuple[Activity, bool]:
    activity = activities.locked(session, activity_id)
    if activity.status != "planned":
        return activity, False
    activity.status = "canceled"
    audit.record(session, activity.bank_id, "broadcast.canceled",
                 broker_id=broker.id if broker else None, subject=f"ref {activity.ref}",
                 via=via)
    return activity, True


def enqueue(services: Services, activity_id: int, after_id: int = 0, *,
            at: datetime | None = None, job_id: str | None = None) -> None:
    """Hand the next batch (messages after ``after_id``) to the worker."""
    options = {"job_id": job_id or f"broadcast-{activity_id}-{after_id}",
               "description": f"broadcast {activity_id} after message {after_id}"}
    if at is None:
        services.queue.enqueue("app.jobs.send_broadcast", activity_id, after_id, **options)
    else:
        services.queue.enqueue_at(at, "app.jobs.send_broadcast", activity_id, after_id,
                                  **options)


def next_batch(session: Session, activity_id: int, after_id: int, limit: int = BATCH
               ) -> list[int]:
    return list(session.scalars(
        select(Message.id).where(Message.activity_id == activity_id, Message.id > after_id,
                                 Message.status == "queued")
        .order_by(Message.id).limit(limit)))
