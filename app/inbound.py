"""From an incoming text to the TwiML the member reads.

1. Claim the ``MessageSid`` in Redis (``SET NX``): a repeat gets the first answer back and
   changes nothing. The answer is kept for ``inbound_memory_seconds`` (72 h by default).
2. Read the facts: which bank (by ``To``), the member, their balance, their opt-out.
3. Step the conversation (pure), with the dialog state from Redis.
4. Carry out the effects in one SQL transaction. Each is idempotent (unique keys, get-or-
   create), so a crash and a retry can never apply one twice.
5. Hand anything slow (texts to other people) to RQ, save the dialog state, answer TwiML.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from app import effects, outbound
from app.services import Services, address_key
from conversations import Facts, MemberFacts, State, step
from conversations.texts import render
from ledger import banks, members
from ledger.models import Account, Bank, Member
from ledger.phones import Address, InvalidNumber, parse_address

log = logging.getLogger(__name__)

_SID = re.compile(r"^[A-Za-z0-9]{10,64}$")
_CLAIM_SECONDS = 30
_DUPLICATE_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Inbound:
    sid: str
    sender: Address
    to: str | None
    body: str
    has_media: bool


def twiml(texts: list[str]) -> str:
    response = MessagingResponse()
    for text in texts:
        response.message(text)
    return str(response)


def handle(services: Services, form: Mapping[str, str]) -> str:
    """Answer one webhook call from Twilio with TwiML."""
    config = services.config
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if not _SID.match(sid):
        log.warning("inbound message without a valid MessageSid; answered, nothing changed")
        return twiml([render("invalid_request")])
    try:
        sender = parse_address(form.get("From", ""), config.default_region, strict=True)
    except InvalidNumber:
        log.info("inbound %s from a sender that is not a phone number", sid)
        return twiml([render("unsupported_sender")])
    to = _to_address(form.get("To", ""), config.default_region)
    try:
        media = int(form.get("NumMedia") or 0)
    except ValueError:
        media = 0
    message = Inbound(sid, sender, to, form.get("Body") or "", media > 0)

    key = f"tb:inbound:{sid}"
    redis = services.redis
    if not redis.set(key, b"", nx=True, ex=_CLAIM_SECONDS):
        return _repeat_answer(services, key, sid)
    try:
        answer = _process(services, message)
    except BaseException:
        redis.delete(key)  # let Twilio's retry try again; every effect is idempotent
        raise
    redis.set(key, answer.encode(), ex=config.inbound_memory_seconds)
    return answer


def _repeat_answer(services: Services, key: str, sid: str) -> str:
    """The first answer to a repeated MessageSid, waiting briefly if it is still being made."""
    deadline = time.monotonic() + _DUPLICATE_WAIT_SECONDS
    while True:
        stored = services.redis.get(key)
        if stored:
            log.info("inbound %s repeated; first answer sent again", sid)
            return stored.decode() if isinstance(stored, bytes) else str(stored)
        if stored is None or time.monotonic() > deadline:
            # The first attempt failed or is stuck; this one must not act twice, so answer
            # nothing now. Twilio's next retry (or the member) will be served.
            log.info("inbound %s repeated while in flight; empty answer", sid)
            return twiml([])
        time.sleep(0.05)


def _to_address(value: str, region: str) -> str | None:
    try:
        return parse_address(value, region).twilio
    except InvalidNumber:
        return None


@dataclass(frozen=True)
class _Loaded:
    bank_id: int
    member_id: int | None
    facts: Facts
    language: str
    contact_stale: bool


def _process(services: Services, message: Inbound) -> str:
    config = services.config
    with services.db.reading() as session:
        loaded = _load(session, services, message)
    session_key = f"tb:session:{loaded.bank_id}:{address_key(message.sender.phone)}"
    state = State.from_json(services.redis.get(session_key))

    outcome = step(state, loaded.facts, message.body)

    replies = list(outcome.replies)
    language = loaded.language
    if outcome.effects or loaded.contact_stale:
        with services.db.writing() as session:
            bank = session.get(Bank, loaded.bank_id)
            assert bank is not None
            ctx = effects.Context(
                session=session, bank=bank, sender=message.sender, sid=message.sid,
                region=config.default_region,
                member=members.find_member(session, bank.id, message.sender.phone),
            )
            effects.carry_out(ctx, outcome.effects)
            replies += ctx.replies
            if ctx.member is not None:
                language = ctx.member.language
        outbound.enqueue(services, ctx.queued)

    if not outcome.state.empty:
        services.redis.set(session_key, outcome.state.to_json(), ex=config.session_ttl_seconds)
    elif not state.empty:
        services.redis.delete(session_key)
    return twiml([render(reply.key, language, **reply.params) for reply in replies])


def _load(session: Session, services: Services, message: Inbound) -> _Loaded:
    config = services.config
    bank = banks.bank_for_address(session, message.to)
    row = session.execute(
        select(Member, Account.balance_minutes)
        .outerjoin(Account, Account.member_id == Member.id)
        .where(Member.bank_id == bank.id, Member.phone == message.sender.phone)
    ).one_or_none()
    member: Member | None = row[0] if row else None
    facts_member = None
    contact_stale = False
    if member is not None:
        facts_member = MemberFacts(
            id=member.id, name=member.name, status=member.status, role=member.role,
            balance_minutes=int(row[1] or 0) if row else 0, area=member.area,
            skills=member.skills, availability=member.availability, language=member.language,
        )
        # Compare on a detached copy: the read transaction must not write.
        probe = Member(
            last_channel=member.last_channel, whatsapp=member.whatsapp,
            last_inbound_at=member.last_inbound_at,
        )
        contact_stale = members.record_contact(probe, message.sender)
    facts = Facts(
        bank_name=bank.name,
        member=facts_member,
        opted_out=members.is_opted_out(session, bank.id, message.sender.phone),
        has_media=message.has_media,
        require_approval=bank.require_approval,
        region=config.default_region,
        carrier_answers_keywords=config.twilio_answers_keywords
        and message.sender.channel == "sms",
    )
    return _Loaded(
        bank_id=bank.id,
        member_id=member.id if member else None,
        facts=facts,
        language=member.language if member else "en",
        contact_stale=contact_stale,
    )
