"""Caps on what texts cost the bank: no stranger or member can run up the bill.

Each is a bank setting (``timebank bank set``), counted over the bank's own day (its time
zone):

- **per member**: texts sent unasked to *other* people because of one member (the ask for a
  DONE, a gift's notice, the asks for their need), ``member_daily_texts``. Brokers are not
  capped here: their actions are audited.
- **per recipient**: texts one member receives unasked because of others,
  ``recipient_daily_texts``. Replies to a member's own texts, answers to their own requests
  and brokers' broadcasts are not counted.
- **per bank**: every outbound text, ``bank_daily_texts``; past it texts wait for the next
  day (replies, TwiML, always go).
- **answers per number an hour** (``answers_per_hour``, fewer for strangers), and a few
  answers at most to the same words again and again (an auto-responder in a loop), then
  silence until it stops for a while.

A text held back by a cap is recorded (status ``canceled``, a ``cap-`` error code) so that
the counts stay exact and a retried webhook decides the same; what it was about (a DONE, a
gift) is recorded in the ledger all the same. The member is told once a day and the brokers
get one summary a day per member. SQL counts (durable, exact across workers) for outbound
texts; Redis, under keyed hashes of numbers, for inbound answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app import outbound
from ledger import banks, members, messages
from ledger.models import Bank, Confirmation, Member, Message

# Error codes of texts a cap held back for good.
MEMBER_CAP = "cap-member"
RECIPIENT_CAP = "cap-recipient"
HELD_BACK = (MEMBER_CAP, RECIPIENT_CAP)

# The text telling brokers the bank's daily cap is reached: it goes all the same.
BANK_FULL_NOTICE = "broker_caps_bank"

# The same words from one number: answered this often, then silence until the number has
# been quiet this long.
REPEATS = 5
REPEAT_QUIET_SECONDS = 10 * 60
HOUR = 3600

_WITHHELD = "caps-withheld"  # session.info: members whose texts were held back just now


# --- texts caused by a member ---------------------------------------------------------------


def queue_caused(
    session: Session, bank: Bank, recipient: Member, causer: Member, *, key: str,
    idempotency_key: str, values: dict[str, object], urgent: bool = False,
) -> tuple[int | None, bool]:
    """Record a text to ``recipient`` that ``causer``'s action made the bank send unasked.
    Returns its id if it should be sent now (None if it exists already or cannot go), and
    whether a cap held it back (then ``notices`` tells the causer and the brokers).
    ``urgent``: goes in quiet hours too (a distress alert, ``app.care.inbox``)."""
    if recipient.id == causer.id:
        return outbound.queue_text(session, recipient, kind=key, key=key,
                                   idempotency_key=idempotency_key, values=values), False
    if messages.by_key(session, idempotency_key) is not None:
        return None, False  # decided before (a retried webhook or job): decided once
    reason = _over_cap(session, bank, recipient, causer)
    message_id = outbound.queue_text(session, recipient, kind=key, key=key,
                                     idempotency_key=idempotency_key, values=values,
                                     caused_by=causer.id, urgent=urgent)
    if reason is None or message_id is None:
        return message_id, False
    message = session.get(Message, message_id)
    assert message is not None
    message.status = "canceled"
    message.error_code = reason
    session.info.setdefault(_WITHHELD, set()).add(causer.id)
    return None, True


def _over_cap(session: Session, bank: Bank, recipient: Member, causer: Member) -> str | None:
    start, _, _ = banks.day_bounds(bank)
    counted = (Message.created_at >= start) & or_(
        Message.error_code.is_(None), Message.error_code.not_in(HELD_BACK)
    )
    if causer.role != "broker":
        caused = session.scalar(select(func.count()).select_from(Message).where(
            Message.caused_by_member_id == causer.id, counted))
        if (caused or 0) >= bank.member_daily_texts:
            return MEMBER_CAP
    received = session.scalar(select(func.count()).select_from(Message).where(
        Message.member_id == recipient.id, Message.caused_by_member_id.is_not(None),
        Message.caused_by_member_id != recipient.id, counted))
    if (received or 0) >= bank.recipient_daily_texts:
        return RECIPIENT_CAP
    return None


def never_asked(session: Session, confirmation: Confirmation) -> bool:
    """Whether a cap held back every text asking for this request's confirmation: it may
    not be credited without an answer, and the brokers already had their summary."""
    asks = [messages.by_key(session, f"{kind}:{confirmation.id}")
            for kind in ("confirm-ask", "confirm-reminder")]
    held = [m for m in asks if m is not None and m.error_code in HELD_BACK]
    return bool(held) and len(held) == len([m for m in asks if m is not None])


def notices(session: Session, bank: Bank) -> list[int]:
    """Tell each member whose texts a cap held back in this transaction, once a day, that a
    broker will look; and the brokers, once a day per member. Ids to enqueue."""
    queued: list[int] = []
    _, _, day = banks.day_bounds(bank)
    for member_id in sorted(session.info.pop(_WITHHELD, set())):
        member = members.get_member(session, member_id)
        told = outbound.queue_text(
            session, member, kind="caps_member_over", key="caps_member_over",
            idempotency_key=f"caps-member:{member.id}:{day}", values={"name": member.name},
        )
        queued += [told] if told else []
        queued += outbound.tell_brokers(
            session, bank, "broker_caps_member", f"broker-caps-member:{member.id}:{day}",
            {"bank": bank.name, "name": member.name, "member_id": member.id},
        )
    return queued


# --- the bank's daily cap -------------------------------------------------------------------


def bank_full(session: Session, bank: Bank, now: datetime | None = None) -> bool:
    """Whether the bank has sent its texts for today."""
    start, _, _ = banks.day_bounds(bank, now)
    sent = session.scalar(select(func.count()).select_from(Message).where(
        Message.bank_id == bank.id, Message.sent_at >= start))
    return (sent or 0) >= bank.bank_daily_texts


def exempt(message: Message) -> bool:
    """Texts that go whatever the bank's daily count: sign-in codes (urgent) and the notice
    that the cap was reached."""
    return message.urgent or message.kind == BANK_FULL_NOTICE


def hold_for_tomorrow(session: Session, bank: Bank, message: Message,
                      now: datetime) -> tuple[datetime, list[int]]:
    """Keep ``message`` queued until the bank's next day; tell the brokers once that day.
    Returns when it may go and the notices to enqueue."""
    _, tomorrow, day = banks.day_bounds(bank, now)
    message.not_before = tomorrow
    told = outbound.tell_brokers(
        session, bank, BANK_FULL_NOTICE, f"broker-caps-bank:{bank.id}:{day}",
        {"bank": bank.name, "limit": bank.bank_daily_texts},
    )
    return tomorrow, told


# --- answers to incoming texts --------------------------------------------------------------


@dataclass(frozen=True)
class InboundCount:
    """How often this number has texted this hour, and these words lately."""

    this_hour: int
    repeats: int


def _inbound_keys(bank_id: int, number: str, said: str) -> tuple[str, str]:
    """The keys counting a number's texts this hour and these words from it, named by keyed
    hashes (``number`` of the number, ``said`` of the number and the words), never the number."""
    return f"tb:answers:{bank_id}:{number}", f"tb:repeats:{bank_id}:{said}"


def count_inbound(pipe: Any, bank_id: int, number: str, said: str) -> None:
    """Add the counting of one incoming text to a Redis pipeline (read by ``read_count``)."""
    hour_key, repeat_key = _inbound_keys(bank_id, number, said)
    pipe.set(hour_key, 0, nx=True, ex=HOUR)  # the hour starts with the first text
    pipe.incr(hour_key)
    pipe.incr(repeat_key)
    pipe.expire(repeat_key, REPEAT_QUIET_SECONDS)  # silence lasts until it stops a while


def uncount_inbound(pipe: Any, bank_id: int, number: str, said: str) -> None:
    """Take back the counting of a text the bank could not take (an outage): the member was
    asked to send it again, and must not be silenced for doing so."""
    for key in _inbound_keys(bank_id, number, said):
        pipe.decr(key)


def read_count(results: list[Any]) -> InboundCount:
    """The counts from the four results ``count_inbound`` added."""
    _, this_hour, repeats, _ = results
    return InboundCount(int(this_hour), int(repeats))


def may_answer(count: InboundCount, *, member: bool, answers_per_hour: int,
               stranger_answers_per_hour: int) -> bool:
    """Whether a text is answered, or met with silence (a loop, a flood)."""
    limit = answers_per_hour if member else stranger_answers_per_hour
    return count.repeats <= REPEATS and count.this_hour <= limit
