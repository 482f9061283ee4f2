"""From an incoming text to the TwiML the member reads.

1. Claim the ``MessageSid`` in Redis (``SET NX``): a repeat gets the first answer back and
   changes nothing. The answer is kept for ``inbound_memory_seconds`` (72 h by default).
2. Read the facts: which bank (by ``To``), the member, their balance, their opt-out.
3. Step the conversation (pure), with the dialog state from Redis.
4. Carry out the effects in one SQL transaction. Each is idempotent (unique keys, get-or-
   create), so a crash and a retry can never apply one twice.
5. Hand anything slow (texts to other people) to RQ, save the dialog state, answer TwiML.

A fault on our side (the database or Redis restarting) leaves nothing half-done: the member
is asked to send the text again, its claim is released, and the same words from that number
within the hour are handled as that first text, so a commit that went through unheard is not
done twice.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import Connection

from app import caps, effects, metrics, outbound
from app.care import inbox
from app.services import Services
from conversations import Facts, MemberFacts, State, languages, step
from conversations.commands import OPT_IN_WORDS, OPT_OUT_WORDS, clean, parse
from conversations.gsm import cheapest
from conversations.texts import render
from ledger import banks, members
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


_XML_ILLEGAL = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))


def twiml(texts: list[str]) -> str:
    """``<Response><Message>…</Message></Response>``, as Twilio's MessagingResponse writes it
    (built as a string: this is on every request's path)."""
    messages = "".join(_message(text) for text in texts)
    body = f"<Response>{messages}</Response>" if messages else "<Response />"
    return f'<?xml version="1.0" encoding="UTF-8"?>{body}'


def _message(text: str) -> str:
    if not text:
        return "<Message />"
    # As sent: exactly, unless writing a few letters plainly costs fewer segments (the inbox
    # keeps the exact words the reply was rendered with).
    return f"<Message>{escape(cheapest(text).translate(_XML_ILLEGAL))}</Message>"


@lru_cache(maxsize=4096)
def _address(value: str, region: str) -> Address | None:
    """A ``From`` or ``To`` read as a number (cached: the same numbers text again and again)."""
    try:
        return parse_address(value, region, strict=True)
    except InvalidNumber:
        return None


def handle(services: Services, form: Mapping[str, str]) -> str:
    """Answer one webhook call from Twilio with TwiML."""
    config = services.config
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if not _SID.match(sid):
        log.warning("inbound message without a valid MessageSid; answered, nothing changed")
        metrics.inbound("invalid")
        return twiml([render("invalid_request")])
    sender = _address(form.get("From", "")[:64], config.default_region)
    if sender is None:
        log.info("inbound %s from a sender that is not a phone number", sid)
        metrics.inbound("unsupported")
        return twiml([render("unsupported_sender")])
    to_value = form.get("To", "")[:64]
    to_address = _address(to_value, config.default_region) if to_value else None
    to = to_address.twilio if to_address else None
    try:
        media = int(form.get("NumMedia") or 0)
    except ValueError:
        media = 0
    message = Inbound(sid, sender, to, form.get("Body") or "", media > 0)

    with services.db.peek() as connection:
        bank = _bank(services, connection, to)
        key = f"tb:inbound:{sid}"
        # Keyed hashes, computed once: of the number, and of the number with these words.
        number = services.address_key(sender.phone)
        said = services.address_key(sender.phone + chr(0) + " ".join(message.body.lower().split()))
        session_key = f"tb:session:{bank.id}:{number}"
        doubt_key = f"tb:in-doubt:{bank.id}:{said}"
        # One round trip: claim the MessageSid, read the dialog state, see whether these
        # words from this number are a text the bank could not take a moment ago, and count
        # the number's texts (app.caps).
        pipe = services.redis.pipeline(transaction=False)
        pipe.set(key, b"", nx=True, ex=_CLAIM_SECONDS)
        pipe.get(session_key)
        pipe.get(doubt_key)
        caps.count_inbound(pipe, bank.id, number, said)
        claimed, raw_state, doubted, *counted = pipe.execute()
        if not claimed:
            metrics.inbound("repeat")
            return _repeat_answer(services, key, sid)
        if doubted:
            # Sent again after "please send it again": handled as the first, so that what
            # the first may have recorded (a commit cut off by an outage) is not done twice.
            message = dataclasses.replace(message, sid=doubted.decode())
            log.info("inbound %s sent again after a fault; handled as %s", sid, message.sid)
        state = _unsealed(services, State.from_json(raw_state))
        try:
            loaded = _load(connection, services, bank, message, state)
        except BaseException:
            _release(services, key, doubt_key, message.sid, (bank.id, number, said))
            raise
    answered = caps.may_answer(
        caps.read_count(counted), member=loaded.member_id is not None or bool(loaded.sharing),
        answers_per_hour=bank.answers_per_hour,
        stranger_answers_per_hour=bank.stranger_answers_per_hour,
    )
    if not answered and not _opting(message.body):
        # A loop or a flood: silence, and nothing done (STOP and START still work).
        log.info("inbound %s not answered: too many texts from that number", sid)
        services.redis.set(key, twiml([]).encode(), ex=config.inbound_memory_seconds)
        metrics.inbound("silenced")
        return twiml([])
    try:
        answer, new_state, work = _process(services, message, loaded, state)
        if not answered:
            answer = twiml([])
    except BaseException:
        _release(services, key, doubt_key, message.sid, (bank.id, number, said))
        raise
    # Everything below happens after the commit: a failure here must not tell the member to
    # text again (a resend would be a new message), so it is logged and the answer stands.
    # One round trip: the texts and jobs for the worker, the answer and the dialog state.
    try:
        pipe = services.redis.pipeline(transaction=False)
        try:
            _enqueue(services, message.sid, work, pipe)
        except Exception:  # committed: the sweep hands these to the worker later
            log.exception("inbound %s: texts or jobs recorded but not enqueued", message.sid)
        # Sealed: an answer may carry another member's number (an introduction).
        pipe.set(key, services.seal(answer.encode()), ex=config.inbound_memory_seconds)
        if not new_state.empty:
            # A "did you mean" lasts minutes, not the days a dialog may wait.
            ttl = config.session_ttl_seconds
            if new_state.confirm is not None:
                ttl = min(ttl, CONFIRM_SECONDS)
            pipe.set(session_key, _sealed(services, new_state).to_json(), ex=ttl)
        elif raw_state:
            pipe.delete(session_key)
        if doubted:
            pipe.delete(doubt_key)
        pipe.execute()
    except Exception:
        log.exception("inbound %s handled, but its answer and dialog could not be saved (nor "
                      "its texts and jobs enqueued: the sweep will)", sid)
    metrics.inbound("answered" if answered else "silenced")
    return answer


# How long "Did you mean OFFER? Reply 1 for yes" (or "post this need?") waits for its 1.
CONFIRM_SECONDS = 15 * 60


def _sealed(services: Services, state: State) -> State:
    """A text waiting for a shared phone's choice, or for a member's 1, is kept sealed: it
    may hold a number or a member's own words."""
    if state.waiting_text:
        state = dataclasses.replace(
            state, waiting_text=services.seal(state.waiting_text.encode()).decode())
    if state.confirm:
        state = dataclasses.replace(
            state, confirm=services.seal(state.confirm.encode()).decode())
    return state


def _unsealed(services: Services, state: State) -> State:
    if state.waiting_text:
        opened = services.unseal(state.waiting_text.encode())
        state = dataclasses.replace(state, waiting_text=opened.decode() if opened else None)
    if state.confirm:
        opened = services.unseal(state.confirm.encode())
        state = dataclasses.replace(state, confirm=opened.decode() if opened else None,
                                    confirm_for=state.confirm_for if opened else None)
    return state


@dataclass(frozen=True)
class _Work:
    """What a committed step hands to the worker: texts (message ids) and jobs."""

    queued: list[int]
    jobs: list[tuple[str, int]]


def _enqueue(services: Services, sid: str, work: _Work, pipe: Any) -> None:
    """Add ``work`` to ``pipe``, to reach Redis with the answer in one round trip."""
    outbound.enqueue(services, work.queued, pipeline=pipe)
    for path, item_id in work.jobs:
        name = path.rsplit(".", 1)[-1]
        services.queue.enqueue(path, item_id, job_id=f"{name}-{item_id}-{sid}", pipeline=pipe)


def _opting(body: str) -> bool:
    """STOP or START: always carried out, even for a number that gets no more answers."""
    return parse(body).name in OPT_OUT_WORDS | OPT_IN_WORDS


# How long the same words from the same number count as a text sent again after a fault.
_DOUBT_SECONDS = 3600


def _release(services: Services, key: str, doubt_key: str, sid: str,
             counted: tuple[int, str, str]) -> None:
    """A text that failed on our side (the member is asked to send it again): its claim is
    released, so that Twilio's retry is handled in full, and the same words sent again as a
    new message are handled as this one (every effect is idempotent by MessageSid). It is
    not counted against the number's answers: sending it again is what we asked for."""
    pipe = services.redis.pipeline(transaction=False)
    pipe.delete(key)
    pipe.set(doubt_key, sid.encode(), ex=_DOUBT_SECONDS)
    caps.uncount_inbound(pipe, *counted)
    pipe.execute()


_BANK_CACHE_SECONDS = 10.0


def _bank(services: Services, connection: Connection, to: str | None) -> banks.BankInfo:
    """The bank a text was sent to, cached per process for a few seconds (settings changed
    with ``timebank bank set`` apply within that time)."""
    now = time.monotonic()
    cached = services.bank_cache.get(to)
    if cached is not None and cached[0] > now:
        return cached[1]
    bank = banks.lookup(connection, to)
    if len(services.bank_cache) > 1000:
        services.bank_cache.clear()
    services.bank_cache[to] = (now + _BANK_CACHE_SECONDS, bank)
    return bank


def _repeat_answer(services: Services, key: str, sid: str) -> str:
    """The first answer to a repeated MessageSid, waiting briefly if it is still being made."""
    deadline = time.monotonic() + _DUPLICATE_WAIT_SECONDS
    stored = services.redis.get(key)
    while stored == b"" and time.monotonic() < deadline:  # claimed, answer still being made
        time.sleep(0.05)
        stored = services.redis.get(key)
    answer = services.unseal(stored) if isinstance(stored, bytes) and stored else None
    if answer is not None:
        log.info("inbound %s repeated; first answer sent again", sid)
        return answer.decode()
    # The first attempt failed or is stuck (or its answer was sealed with another key);
    # this one must not act twice, so answer nothing now. Twilio's next retry (or the
    # member) will be served.
    log.info("inbound %s repeated while in flight; empty answer", sid)
    return twiml([])


@dataclass(frozen=True)
class _Loaded:
    bank_id: int
    member_id: int | None
    facts: Facts
    language: str
    contact_stale: bool
    # Members of a shared phone (whom the step may choose among).
    sharing: frozenset[int] = frozenset()


def _process(
    services: Services, message: Inbound, loaded: _Loaded, state: State
) -> tuple[str, State, _Work]:
    """Step the conversation and carry out its effects; return the TwiML, the new state and
    the committed work to hand to the worker."""
    config = services.config
    outcome = step(state, loaded.facts, message.body)
    replies = list(outcome.replies)
    language = loaded.language
    body = clean(message.body)
    member_id = loaded.member_id
    if outcome.state.speaker in loaded.sharing:  # chosen from a shared phone
        member_id = outcome.state.speaker
    work = _Work([], [])
    if outcome.effects or loaded.contact_stale:
        with services.db.writing() as session:
            # The bank and the member in one statement.
            bank, member = members.bank_and_member(session, loaded.bank_id, member_id)
            ctx = effects.Context(
                session=session, bank=bank, sender=message.sender, sid=message.sid,
                region=config.default_region, member=member, words=body,
            )
            effects.carry_out(ctx, outcome.effects)
            replies += ctx.replies
            if ctx.member is not None:
                language = languages.effective(ctx.member.language, loaded.facts.languages,
                                               loaded.facts.default_language)
            texts = [render(reply.key, language, **reply.params) for reply in replies]
            # Kept in the same transaction as its effects (app.care.inbox).
            session.add(inbox.kept(bank.id, ctx.member.id if ctx.member else None,
                                   message.sender.phone, body, texts, outcome.route))
        work = _Work(ctx.queued, ctx.jobs)
    else:
        texts = [render(reply.key, language, **reply.params) for reply in replies]
        # Kept with one INSERT and no transaction: the hot path stays one read and one write.
        with services.db.peek() as connection:
            inbox.keep(connection, loaded.bank_id, member_id, message.sender.phone,
                       body, texts, outcome.route)
    return twiml(texts), outcome.state, work


def _load(
    connection: Connection, services: Services, bank: banks.BankInfo, message: Inbound,
    state: State,
) -> _Loaded:
    """The facts the step needs, in one statement for a member (two for a stranger). A phone
    two members share yields both rows: the member chosen in this dialog, if any, is the
    sender (``conversations.machine.step`` asks otherwise)."""
    config = services.config
    phone = message.sender.phone
    rows = members.facts_rows(connection, bank.id, phone)
    current = [r for r in rows if r.status != "left"]
    sharing: tuple[MemberFacts, ...] = ()
    if len(current) > 1:
        sharing = tuple(_member_facts(r, bank) for r in current)
        row = next((r for r in current if r.id == state.speaker), None)
    else:
        row = current[0] if current else (rows[0] if rows else None)
    if rows:
        opted_out = bool(rows[0].opted_out)
    else:
        opted_out = members.opted_out_by_connection(connection, bank.id, phone)
    facts = Facts(
        bank_name=bank.name,
        member=_member_facts(row, bank) if row is not None else None,
        opted_out=opted_out,
        has_media=message.has_media,
        require_approval=bank.require_approval,
        region=config.default_region,
        carrier_answers_keywords=config.twilio_answers_keywords
        and message.sender.channel == "sms",
        sharing=sharing,
        languages=bank.languages,
        default_language=bank.default_language,
    )
    return _Loaded(
        bank_id=bank.id,
        member_id=row.id if row is not None else None,
        facts=facts,
        # A stranger reads the bank's default language; a member their own, while the bank
        # offers it.
        language=languages.effective(row.language if row is not None else None,
                                     bank.languages, bank.default_language),
        contact_stale=row is not None and members.contact_is_stale(
            row.last_channel, row.whatsapp, row.last_inbound_at, message.sender
        ),
        sharing=frozenset(m.id for m in sharing),
    )


def _member_facts(row: Any, bank: banks.BankInfo) -> MemberFacts:
    return MemberFacts(
        id=row.id, name=row.name, status=row.status, role=row.role,
        balance_minutes=int(row.balance_minutes or 0), area=row.area, skills=row.skills,
        availability=row.availability,
        language=languages.effective(row.language, bank.languages, bank.default_language),
        away=row.away_since is not None,
        check_in_pending=row.check_in_sent_at is not None and (
            row.last_inbound_at is None or row.last_inbound_at < row.check_in_sent_at),
    )
