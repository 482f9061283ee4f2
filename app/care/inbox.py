"""Members' words reach a person.

- **Every inbound text is kept** (``inbound_texts``): the bank, the member (or a stranger's
  masked number), the words, the bank's answer, how the text was read (``route``), for the
  bank's ``retention_days``; the sweep deletes older ones (``forget_old``). One INSERT a
  text, in the transaction of its effects when it has any, else on its own.
- **The inbox**: texts the bank did not understand, wishes to talk to a person and distress
  are ``open`` until a broker marks them handled or replies from the dashboard.
- **Alerts**: ``TALK`` and distress text the brokers on duty (``app.care.duty``) at once.
  A member's alerts carry ``caused_by_member_id`` and obey ``app.caps``; the same member's
  alerts of one kind go at most once an hour, a stranger's (distress only) once an hour for
  the whole bank. Distress alerts are urgent: they go in quiet hours too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.orm import Session

from app import caps, outbound
from app.care import duty
from conversations import care
from conversations.machine import Reply, for_others
from ledger import audit
from ledger.models import Bank, InboundText, Member, Message, utcnow
from ledger.phones import mask

# Routes that put a text in the inbox (a stranger's not-understood words do not: they were
# told how to join, and the bank keeps no number to answer them on).
INBOX_ROUTES = (care.TALK, care.DISTRESS, care.NOT_UNDERSTOOD)
ALERT_EVERY = timedelta(hours=1)
TALK_ALERT = "care_talk_alert"
DISTRESS_ALERT = "care_distress_alert"
STRANGER_ALERT = "care_stranger_alert"
REPLY_KIND = "care_broker_reply"
# The most a broker's reply may say (two SMS segments with the bank's name around it).
REPLY_MOST = 250


def inbox_state(route: str, member_id: int | None) -> str | None:
    if route in (care.TALK, care.DISTRESS):
        return "open"
    if route == care.NOT_UNDERSTOOD and member_id is not None:
        return "open"
    return None


def _values(bank_id: int, member_id: int | None, phone: str, body: str, answer: list[str],
            route: str) -> dict[str, object]:
    return {
        "bank_id": bank_id, "member_id": member_id,
        "masked_from": None if member_id is not None else mask(phone),
        "body": body, "answer": "\n".join(answer) or None, "route": route,
        "inbox": inbox_state(route, member_id), "received_at": utcnow(),
    }


def kept(bank_id: int, member_id: int | None, phone: str, body: str, answer: list[str],
         route: str) -> InboundText:
    """The row keeping a text, to add to the transaction of its effects."""
    return InboundText(**_values(bank_id, member_id, phone, body, answer, route))


_INSERT = insert(InboundText)


def keep(connection: Connection, bank_id: int, member_id: int | None, phone: str, body: str,
         answer: list[str], route: str) -> None:
    """Keep a text that had no effects: one INSERT, no transaction around it."""
    connection.execute(_INSERT, _values(bank_id, member_id, phone, body, answer, route))


# --- alerts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reached:
    """What to answer the sender (None: nothing) and the alerts to enqueue."""

    reply: Reply | None
    queued: list[int]


def reach_person(session: Session, bank: Bank, member: Member | None, phone: str, words: str,
                 *, distress: bool, sid: str, answer: bool = True,
                 now: datetime | None = None) -> Reached:
    """``TALK`` or distress from ``member`` (None: a stranger at ``phone``): the answer and
    the alerts to the brokers on duty."""
    now = now or utcnow()
    reply = _answer(bank, member, distress) if answer else None
    if member is None and not distress:
        return Reached(reply, [])  # kept in the inbox; nobody to call back yet
    kind = DISTRESS_ALERT if distress else TALK_ALERT
    if member is None:
        kind = STRANGER_ALERT
    recent = select(Message.id).where(
        Message.bank_id == bank.id, Message.kind == kind, Message.created_at >= now - ALERT_EVERY,
        Message.caused_by_member_id == member.id if member is not None
        else Message.caused_by_member_id.is_(None),
    ).limit(1)
    if session.scalar(recent) is not None:
        return Reached(reply, [])  # told within the hour; the inbox keeps this one too
    values: dict[str, object] = {"bank": bank.name, "what": for_others(words, most=60)}
    if member is not None:
        values |= {"name": member.name, "member_id": member.id,
                   "phone": member.phone or member.whatsapp or "-"}
    else:
        values["masked"] = mask(phone)
    queued: list[int] = []
    for broker in duty.brokers_on_duty(session, bank, now):
        key = f"care:{sid}:to:{broker.id}"
        if member is None:
            message_id = outbound.queue_text(session, broker, kind=kind, key=kind,
                                             idempotency_key=key, urgent=True, values=values)
        elif broker.id == member.id:
            continue
        else:
            message_id, _ = caps.queue_caused(session, bank, broker, member, key=kind,
                                              idempotency_key=key, values=values,
                                              urgent=distress)
        if message_id is not None:
            queued.append(message_id)
    return Reached(reply, queued)


def _answer(bank: Bank, member: Member | None, distress: bool) -> Reply:
    values: dict[str, object] = {"bank": bank.name, "crisis": bank.crisis_text,
                                 "support": bank.support_line or ""}
    if member is not None:
        values["name"] = member.name
    if distress:
        key = "care_distress" if member is not None else "care_distress_stranger"
        return Reply(key if bank.support_line else f"{key}_no_line", values)
    if bank.contact_hours:
        return Reply("care_talk", {**values, "contact_hours": bank.contact_hours})
    return Reply("care_talk_soon", values)


# --- the inbox -------------------------------------------------------------------------------


def open_count(session: Session, bank_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(InboundText).where(
        InboundText.bank_id == bank_id, InboundText.inbox == "open")) or 0)


_ORDER = {care.DISTRESS: 0, care.TALK: 1, care.NOT_UNDERSTOOD: 2}


def open_texts(session: Session, bank_id: int, limit: int = 200) -> list[InboundText]:
    """Open texts, distress first, then wishes to talk, then the rest; oldest first within
    each (the longest waiting first)."""
    rows = list(session.scalars(select(InboundText).where(
        InboundText.bank_id == bank_id, InboundText.inbox == "open")
        .order_by(InboundText.received_at, InboundText.id).limit(limit)))
    return sorted(rows, key=lambda t: _ORDER.get(t.route, 3))


def handled_texts(session: Session, bank_id: int, limit: int = 20) -> list[InboundText]:
    return list(session.scalars(select(InboundText).where(
        InboundText.bank_id == bank_id, InboundText.inbox == "handled")
        .order_by(InboundText.handled_at.desc(), InboundText.id.desc()).limit(limit)))


def mark_handled(session: Session, bank: Bank, text: InboundText, broker: Member,
                 *, via: str = "web") -> bool:
    """Mark an open text handled (audited); False if it was not open."""
    if text.bank_id != bank.id or text.inbox != "open":
        return False
    text.inbox = "handled"
    text.handled_by_member_id = broker.id
    text.handled_at = utcnow()
    audit.record(session, bank.id, "inbox.handled", broker_id=broker.id,
                 subject=f"text {text.id}", detail=text.route, via=via)
    return True


class CannotReply(Exception):
    """Why a broker's reply cannot go (said to the broker as is)."""


def reply(session: Session, bank: Bank, broker: Member, member: Member, words: str, *,
          request_key: str, via: str = "web", handled: InboundText | None = None
          ) -> int | None:
    """A broker's reply to ``member``, sent as a text from the bank (recorded, audited, sent
    by the worker). Marks ``handled`` handled too. The message id to enqueue (None: this
    request was already sent)."""
    words = " ".join(words.split())[:REPLY_MOST]
    if not words:
        raise CannotReply("Write a reply first.")
    if member.bank_id != bank.id:
        raise CannotReply("That member is not in this bank.")
    if member.status == "left" or not (member.phone or member.whatsapp):
        raise CannotReply(f"{member.name} can't be texted.")
    key = f"care-reply:{bank.id}:{request_key}"
    existing = session.scalar(select(Message.id).where(Message.idempotency_key == key))
    if existing is not None:
        return None
    message_id = outbound.queue_text(
        session, member, kind=REPLY_KIND, key=REPLY_KIND, idempotency_key=key,
        values={"bank": bank.name, "text": words, "broker": broker.name})
    if message_id is None:
        raise CannotReply(f"{member.name} has stopped texts from the bank, so nothing was sent.")
    audit.record(session, bank.id, "inbox.replied", broker_id=broker.id,
                 subject=f"member {member.id}", detail=words, via=via)
    if handled is not None and handled.member_id == member.id:
        mark_handled(session, bank, handled, broker, via=via)
    return message_id


@dataclass(frozen=True)
class Line:
    """One line of a conversation: what the member wrote, or a text the bank sent."""

    at: datetime
    incoming: bool
    body: str
    route: str | None = None
    answer: str | None = None
    kind: str | None = None
    status: str | None = None
    text_id: int | None = None


def conversation(session: Session, member: Member, limit: int = 60) -> list[Line]:
    """What the member wrote (with the bank's answers) and the texts the bank sent them,
    oldest first, the latest ``limit`` of each."""
    written = session.scalars(select(InboundText).where(InboundText.member_id == member.id)
                              .order_by(InboundText.received_at.desc(), InboundText.id.desc())
                              .limit(limit))
    sent = session.scalars(select(Message).where(Message.member_id == member.id)
                           .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit))
    lines = [Line(t.received_at, True, t.body, route=t.route, answer=t.answer, text_id=t.id)
             for t in written]
    lines += [Line(m.created_at, False, m.body, kind=m.kind, status=m.status) for m in sent]
    return sorted(lines, key=lambda line: line.at)


# --- retention -------------------------------------------------------------------------------


def forget_old(session: Session, now: datetime | None = None) -> int:
    """Delete texts older than their bank's retention period; how many went."""
    now = now or utcnow()
    deleted = 0
    for bank_id, days in session.execute(select(Bank.id, Bank.retention_days)):
        result = session.execute(delete(InboundText).where(
            InboundText.bank_id == bank_id,
            InboundText.received_at < now - timedelta(days=max(1, days))))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted
