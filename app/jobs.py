"""RQ jobs, by dotted path. They take ids, never phone numbers or objects.

The worker (``worker.py``) builds the app and runs each job inside its context. Exceptions
that should be retried reach RQ, which records them and retries on the job's schedule.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import auth, broadcasts, caps, delivery, metrics, outbound, privacy
from app import services as current_services
from app.care import away, inbox
from app.config import Config
from app.services import Services
from app.transports import (
    AmbiguousSendError,
    OutboundText,
    PermanentSendError,
    TransientSendError,
)
from conversations.machine import for_others, shorten
from conversations.texts import Hours
from ledger import banks, confirmations, match_cache, members, messages, posts
from ledger.matching import Need as MatchNeed
from ledger.models import (
    Account,
    Activity,
    Ask,
    Bank,
    Confirmation,
    Introduction,
    Member,
    Message,
    Post,
    utcnow,
)

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
    held_until = None
    notices: list[int] = []
    with services.db.writing() as session:
        message = session.scalars(
            select(Message).where(Message.id == message_id).with_for_update()
            .execution_options(populate_existing=True)
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
        gone = _no_longer_for(session, message)
        if gone is not None:  # left, or put on hold before their invitation went
            message.status = "canceled"
            message.error_code = gone
            return message.status
        body, values_json = message.body, message.values_json
        if message.kind == auth.CODE_KIND:
            # The row holds the text with the code hidden; the phone gets the only copy.
            revealed = auth.reveal_code(services, message)
            if revealed is None:  # run out (or Redis lost it): the broker asks again
                message.status = "canceled"
                message.error_code = "code-expired"
                return message.status
            body, values_json = revealed
        # Locked (FOR NO KEY UPDATE: rows that merely refer to the bank are not held up), so
        # that the bank's daily count is read and added to by one sender at a time.
        bank = session.get(Bank, message.bank_id, with_for_update={"key_share": True})
        assert bank is not None
        if message.attempts >= MAX_ATTEMPTS:
            message.status = "failed"
            message.error_code = "attempts"
            log.warning("message %s failed after %s attempts", message_id, message.attempts)
            return message.status
        now = utcnow()
        held_until = None if message.urgent else delivery.quiet_until(
            now, bank.timezone, config.quiet_hours
        )
        if held_until is not None:
            message.not_before = held_until
        elif not caps.exempt(message) and caps.bank_full(session, bank, now):
            held_until, notices = caps.hold_for_tomorrow(session, bank, message, now)
        elif message.attempts == 0 and _looping(services, message.to_address, body):
            message.status = "canceled"
            message.error_code = "loop-guard"
            log.warning("message %s not sent: the same text went to that number %s times "
                        "in %s minutes", message_id, LOOP_LIMIT, LOOP_MINUTES)
            return message.status
        else:
            text = _outbound_text(session, config, bank, message, now, body, values_json)
            if isinstance(text, str):  # a reason it cannot be sent
                message.status = "failed"
                message.error_code = text
                return message.status
            # An earlier attempt may have reached Twilio: look before sending again.
            possibly_sent_at = message.possibly_sent_at
            slots = max(1, message.segments)
            # When it was due: recorded, or the end of the quiet hours it waited for.
            due = max(message.created_at, message.not_before or message.created_at)
            message.not_before = None
            message.status = "sending"
            message.sent_at = now
            message.attempts += 1
    if held_until is not None:
        outbound.enqueue(services, notices)
        # Quiet hours: a job for when they end (its own id: this job's record is about to
        # be overwritten by RQ), and the sweep knows not_before too.
        outbound.enqueue(services, [message_id], at=held_until,
                         job_id=f"message-{message_id}-at-{int(held_until.timestamp())}")
        log.info("message %s held (quiet hours or the bank's daily cap) until %s UTC",
                 message_id, held_until.strftime("%Y-%m-%d %H:%M"))
        return "held"

    assert not isinstance(text, str)
    _throttle(services, text, slots)
    attempt_started = utcnow()
    try:
        provider_sid = None
        if possibly_sent_at is not None:
            # The earlier attempt may have reached Twilio: never text twice.
            provider_sid = services.transport.find_sent(text, possibly_sent_at)
        if provider_sid is None:
            attempt_started = utcnow()
            call_started = time.perf_counter()
            provider_sid = services.transport.send(text)
            metrics.record_send(services.redis, (attempt_started - due).total_seconds(),
                                time.perf_counter() - call_started)
    except AmbiguousSendError:
        _set_status(message_id, "queued", possibly_sent_at=attempt_started)
        raise
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
        sent.error_code = None
        if sent.status in ("sending", "queued"):
            sent.status = "sent"
    # A status callback that came before the sid was saved (read after the commit, so one
    # arriving meanwhile finds the message itself).
    return _apply_early_status(services, provider_sid, phone) or "sent"


def _apply_early_status(services: Services, provider_sid: str, phone: str) -> str | None:
    early = services.redis.getdel(f"tb:early-status:{provider_sid}")
    with services.db.writing() as session:
        message = session.scalars(
            select(Message).where(Message.provider_sid == provider_sid)
        ).one_or_none()
        if message is None:
            return None
        if early:
            raw = early.decode() if isinstance(early, bytes) else str(early)
            status, _, error = raw.partition("|")
            messages.update_status(session, provider_sid, status, error or None)
            if error == OPTED_OUT_CODE:
                members.opt_out(session, message.bank_id, phone, reason="carrier-21610")
        return message.status


# The next free sending slot of a sender, shared by every worker: each caller takes the
# next slot and waits for it, so one number never sends faster than the configured rate.
_NEXT_SLOT = """
local now = tonumber(ARGV[1])
local gap = tonumber(ARGV[2])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
redis.call('SET', KEYS[1], tostring(slot + gap), 'PX', math.ceil(slot + gap - now) + 1000)
return tostring(slot - now)
"""


def _no_longer_for(session: Session, message: Message) -> str | None:
    """Why a recorded text should no longer go to its member, if it shouldn't: they left,
    or what it is about has gone while it waited (held for quiet hours, or retried)."""
    if message.member_id is None:
        return None
    member = session.get(Member, message.member_id)
    if member is None or member.status == "left":
        return "left"
    if message.activity_id is not None and member.status != "active":
        return "on-hold"
    if member.away_since is not None and (
            message.activity_id is not None or message.kind in _ASK_KINDS):
        return "away"  # paused while it waited: no broadcasts, no asks
    return _subject_gone(session, message)


_ASK_KINDS = ("ask_helper", "ask_helper_no_area")


def _subject_gone(session: Session, message: Message) -> str | None:
    """A text about something that can stop being true while it waits, named by the head of
    its idempotency key (``ask:<id>``, ``expiring:<need id>``…): "stale" once it has."""
    head, _, rest = message.idempotency_key.partition(":")
    subject = rest.partition(":")[0]
    if not subject.isdecimal():
        return None
    subject_id = int(subject)
    if head == "ask":  # a helper asked about a need
        ask = session.get(Ask, subject_id)
        wanted = ask is not None and ask.status == "asked" and _need_open(session, ask.post_id)
    elif head in ("expiring", "nobody", "broker-nobody"):
        wanted = _need_open(session, subject_id)
    elif head == "done-reminder":
        need = session.get(Post, subject_id)
        wanted = need is not None and need.status == "matched"
    elif head == "intro":  # brokers told an introduction waits (app.care.introductions)
        introduction = session.get(Introduction, subject_id)
        wanted = introduction is not None and introduction.status == "waiting"
    elif head in ("confirm-ask", "confirm-reminder", "broker_unanswered"):
        request = session.get(Confirmation, subject_id)
        wanted = request is not None and request.status == "pending"
    else:
        return None
    return None if wanted else "stale"


def _need_open(session: Session, post_id: int) -> bool:
    need = session.get(Post, post_id)
    return need is not None and need.status == "open"


def release_held() -> int:
    """Quiet hours turned off (``TIMEBANK_QUIET_HOURS=off`` at start): texts held for them
    go now; each is checked again when it is sent, so one no longer wanted is dropped. (A
    broadcast's batch waiting for the morning is resumed by the sweep, as a stalled one.)"""
    services = current_services()
    with services.db.writing() as session:
        held = list(session.scalars(
            select(Message).where(Message.status == "queued", Message.not_before.is_not(None))
            .with_for_update(skip_locked=True)))
        for message in held:
            message.not_before = None
    outbound.enqueue(services, [message.id for message in held])
    return len(held)


def _throttle(services: Services, text: OutboundText, slots: int = 1) -> None:
    """Wait for this sender's next slot (``TIMEBANK_SEND_RATE`` SMS segments a second: a
    text of three segments takes three slots, as Twilio counts them)."""
    rate = services.config.send_rate
    if rate <= 0:
        return
    sender = text.messaging_service_sid or text.sender or "default"
    if text.channel == "whatsapp" and not text.sender:
        sender = "whatsapp:default"
    key = f"tb:rate:{services.address_key(sender)}"
    wait_ms = float(services.redis.eval(
        _NEXT_SLOT, 1, key, f"{time.time() * 1000:.0f}", f"{1000 * slots / rate:.3f}"))
    if wait_ms > 0:
        time.sleep(wait_ms / 1000)


# A batch job stops after this long and hands the rest to the next job, so texts to
# individual members (matches, receipts) are not stuck behind a long broadcast.
BATCH_SECONDS = 15.0


def send_broadcast(activity_id: int, after_id: int = 0) -> str:
    """Send the next batch of a broadcast's queued texts (ids after ``after_id``), then
    enqueue the batch after it. Safe to run twice or side by side: each text is claimed."""
    services = current_services()
    with services.db.reading() as session:
        activity = session.get(Activity, activity_id)
        if activity is None or activity.status != "sending":
            return "not sending"
        bank = session.get(Bank, activity.bank_id)
        assert bank is not None
        now = utcnow()
        held_until = delivery.quiet_until(now, bank.timezone, services.config.quiet_hours)
        if held_until is None and caps.bank_full(session, bank, now):
            held_until = banks.day_bounds(bank, now)[1]
        batch = broadcasts.next_batch(session, activity_id, after_id)
    if not batch:
        return "done"
    if held_until is not None:
        broadcasts.enqueue(services, activity_id, after_id, at=held_until,
                           job_id=f"broadcast-{activity_id}-{after_id}-at-"
                                  f"{int(held_until.timestamp())}")
        return "held"
    started = time.monotonic()
    last = after_id
    for message_id in batch:
        try:
            outcome = send_message(message_id)
        except (TransientSendError, AmbiguousSendError):
            # This one goes on with its own retries; the batch moves on.
            outbound.enqueue(services, [message_id],
                             job_id=f"message-{message_id}-retry-{int(time.time())}")
            outcome = "retrying"
        last = message_id
        if outcome == "held" or time.monotonic() - started > BATCH_SECONDS:
            break
    broadcasts.enqueue(services, activity_id, last)
    return f"sent up to message {last}"


LOOP_LIMIT = 3
LOOP_MINUTES = 5


def _looping(services: Services, to_address: str, body: str) -> bool:
    """More than a few identical texts to one number within minutes: a loop, not a person."""
    key = f"tb:loop:{services.address_key(to_address + chr(0) + body)}"
    pipe = services.redis.pipeline(transaction=False)
    pipe.set(key, 0, nx=True, ex=LOOP_MINUTES * 60)  # the window starts with the first text
    pipe.incr(key)
    _, count = pipe.execute()
    return int(count) > LOOP_LIMIT


def _outbound_text(session: Session, config: Config, bank: Bank, message: Message,
                   now: datetime, body: str, values_json: str | None) -> OutboundText | str:
    """How to send ``message`` (its ``body`` and template ``values_json`` as the phone gets
    them) now, switching channel or to a template where WhatsApp's 24-hour window has
    closed; or the reason it cannot go."""
    channel, to, content_sid, variables = message.channel, message.to_address, None, None
    if channel == "whatsapp":
        member = session.get(Member, message.member_id) if message.member_id else None
        last = member.last_inbound_at if member is not None else None
        if not delivery.in_whatsapp_window(last, now):
            template = delivery.templates(config.twilio_whatsapp_templates).get(message.kind)
            if template is not None:
                content_sid = template.sid
                variables = template.content_variables(values_json)
            elif (member is not None and member.phone
                  and not members.is_opted_out(session, bank.id, member.phone)):
                channel, to = "sms", member.phone  # outside the window: by SMS instead
                message.channel, message.to_address = channel, to
            else:
                return "window-closed"
    configured = config.twilio_whatsapp_from if channel == "whatsapp" else config.twilio_sms_from
    # A bank texts from its own number; the default bank may use a Messaging Service.
    sender = banks.sender_for(bank, channel, configured if bank.is_default else None)
    if sender is None and bank.is_default:
        sender = configured or None
    # Only the default bank may use the Messaging Service: another bank's members must
    # see (and answer) that bank's own number, or their replies reach the wrong bank.
    service = config.twilio_messaging_service_sid if channel == "sms" and bank.is_default else ""
    return OutboundText(
        message_id=message.id, to=to, body=body, sender=sender, channel=channel,
        shown=message.body,
        messaging_service_sid=service or None, content_sid=content_sid,
        content_variables=variables,
    )


def _set_status(message_id: int, status: str, *,
                possibly_sent_at: datetime | None = None) -> None:
    """Back to ``status`` after a failed attempt; the first ambiguous attempt's time is kept
    (never moved later), so a look-up before the next send covers it."""
    with current_services().db.writing() as session:
        message = session.get(Message, message_id)
        if message is not None:
            message.status = status
            if possibly_sent_at is not None and message.possibly_sent_at is None:
                message.possibly_sent_at = possibly_sent_at
                message.error_code = AMBIGUOUS


ASK_PER_WAVE = 3
# A need nobody has said yes to after this long is offered to the next few helpers.
NEXT_WAVE_AFTER = timedelta(hours=6)


def ask_helpers(post_id: int) -> str:
    """Ask the best few helpers not yet asked about a need (one wave), passing by those asked
    about as many needs today as the bank allows; tell the member and the brokers when nobody
    can be found. Safe to run twice: asks are unique per helper."""
    services = current_services()
    with services.db.reading() as session:
        need = session.get(Post, post_id)
        if need is None or need.kind != "need" or need.status != "open":
            return need.status if need is not None else "missing"
        requester = members.get_member(session, need.member_id)
        if requester.status != "active" or not members.can_be_texted(session, requester):
            return "owner-gone"
        # Kept between waves, refreshed when a member or an offer changes; asks are fresh.
        index = match_cache.index_for(session, need.bank_id)
        bank = session.get(Bank, need.bank_id)
        assert bank is not None
        recent, today = posts.ask_counts(session, bank)
        resting = {m for m, n in today.items() if n >= bank.asks_per_helper_per_day}
        already = posts.asked_ids(session, post_id)
        candidates = index.rank(
            MatchNeed(requester.id, need.text, requester.area), limit=ASK_PER_WAVE,
            exclude=already | resting, recent=recent,
        )
        bank_id = need.bank_id
    with services.db.writing() as session:
        # One wave at a time in a bank: two waves cannot both take a helper's last ask today.
        bank = session.scalars(
            select(Bank).where(Bank.id == bank_id).with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        need = session.scalars(
            select(Post).where(Post.id == post_id).with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if need.status != "open":
            return need.status
        already = posts.asked_ids(session, post_id)
        today = posts.asked_today(session, bank, [c.member_id for c in candidates])
        fresh = [c for c in candidates if c.member_id not in already
                 and today.get(c.member_id, 0) < bank.asks_per_helper_per_day]
        queued: list[int] = []
        what = shorten(need.text)
        if not fresh:
            stale = need.asked_at is not None and need.asked_at < (
                utcnow() - NEXT_WAVE_AFTER
            )
            need.asked_at = utcnow()  # look again after another wait, not every sweep
            if posts.waiting_for_answers(session, post_id) == 0 or stale:
                queued += _queue_one(session, requester, "nobody_found", f"nobody:{need.id}",
                                     {"name": requester.name, "what": what, "bank": bank.name})
                queued += outbound.tell_brokers(
                    session, bank, "broker_nobody", f"broker-nobody:{need.id}",
                    {"ref": need.ref, "what": for_others(need.text),
                     "name": requester.name},
                )
            outcome = "nobody"
        else:
            for ask in posts.record_asks(session, need, fresh):
                helper = members.get_member(session, ask.member_id)
                key, values = outbound.ask_text(need, requester, helper)
                message_id, _ = caps.queue_caused(
                    session, bank, helper, requester, key=key, idempotency_key=f"ask:{ask.id}",
                    values=values)
                queued += [message_id] if message_id else []
            queued += caps.notices(session, bank)
            outcome = f"asked {len(fresh)}"
    outbound.enqueue(services, queued)
    return outcome


WARN_BEFORE_EXPIRY = timedelta(days=1)
REMIND_DONE_AFTER = timedelta(days=1)


def _post_reminders(services: Services, now: datetime) -> tuple[int, int]:
    """Tell members a need closes tomorrow; remind helpers to report hours a day after a
    match. Each at most once (recorded on the post, in the same transaction)."""
    queued: list[int] = []
    warned = reminded = 0
    with services.db.writing() as session:
        for need in session.scalars(
            select(Post).where(
                Post.kind == "need", Post.status == "open", Post.expiry_warned_at.is_(None),
                Post.expires_at < now + WARN_BEFORE_EXPIRY, Post.expires_at > now,
            ).with_for_update(skip_locked=True)
        ):
            owner = members.get_member(session, need.member_id)
            if away.is_away(owner):
                continue  # held until they are back (if it is still open then)
            need.expiry_warned_at = now
            queued += _queue_one(session, owner, "need_expiring", f"expiring:{need.id}",
                                 {"what": shorten(need.text, 30), "ref": need.ref})
            warned += 1
        for need in session.scalars(
            select(Post).where(
                Post.kind == "need", Post.status == "matched", Post.done_reminded_at.is_(None),
                Post.matched_at < now - REMIND_DONE_AFTER,
                # Not introduced yet: a broker has still to approve (app.care.introductions).
                Post.id.not_in(select(Introduction.post_id).where(
                    Introduction.status == "waiting")),
            ).with_for_update(skip_locked=True)
        ):
            if need.helper_member_id is not None and away.is_away(
                    members.get_member(session, need.helper_member_id)):
                continue  # held until the helper is back
            need.done_reminded_at = now
            reported = session.scalar(
                select(Confirmation.id).where(
                    Confirmation.bank_id == need.bank_id,
                    Confirmation.description == need.text[:200],
                    Confirmation.payer_account_id == members.member_account(
                        session, members.get_member(session, need.member_id)).id,
                ).limit(1)
            )
            if reported is not None or need.helper_member_id is None:
                continue
            helper = members.get_member(session, need.helper_member_id)
            owner = members.get_member(session, need.member_id)
            queued += _queue_one(session, helper, "done_reminder", f"done-reminder:{need.id}",
                                 {"name": owner.name,
                                  "what": for_others(need.text, most=30),
                                  "ref": need.ref})
            reminded += 1
    outbound.enqueue(services, queued)
    return warned, reminded


def _queue_one(session: Session, member: Member, key: str, idempotency_key: str,
               values: dict[str, object]) -> list[int]:
    message_id = outbound.queue_text(session, member, kind=key, key=key,
                                     idempotency_key=idempotency_key, values=values)
    return [message_id] if message_id else []


# A text whose job was lost (a crash between the commit and the enqueue, a Redis that lost
# its queue) is handed over again by the sweep: one never tried after 10 minutes, one waiting
# for a retry after an hour (longer than RQ's longest backoff), and one left "sending" by a
# worker killed mid-call after 10 minutes, as ambiguous (looked up before it is sent again).
NEVER_TRIED_AFTER = timedelta(minutes=10)
RETRY_LOST_AFTER = timedelta(hours=1)
SENDING_STUCK_AFTER = timedelta(minutes=10)
HELD_LATE_AFTER = timedelta(minutes=5)


def sweep() -> dict[str, int]:
    """Periodic upkeep, safe to run from many workers at once: remind, escalate, expire or
    auto-confirm unanswered requests, one transaction each, re-enqueue texts whose job
    was lost, and erase what is past each bank's retention period. Driven by SQL, not by
    Redis."""
    services = current_services()
    counts = {"reminded": 0, "escalated": 0, "expired": 0, "auto_confirmed": 0, "requeued": 0,
              "next_waves": 0, "needs_expired": 0, "needs_warned": 0, "done_reminded": 0}
    with services.db.reading() as session:
        due = confirmations.due(session)
    for confirmation_id in due:
        with services.db.writing() as session:
            step = confirmations.sweep_one(session, confirmation_id,
                                           never_asked=partial(caps.never_asked, session))
            if step is None:
                continue
            queued = _after_sweep(session, step)
        outbound.enqueue(services, queued)
        key = {"remind": "reminded", "escalate": "escalated", "expire": "expired",
               "auto": "auto_confirmed"}[step.action]
        counts[key] += 1
    now = utcnow()
    with services.db.reading() as session:
        waves = list(session.scalars(
            select(Post.id).where(
                Post.kind == "need", Post.status == "open",
                (Post.asked_at < now - NEXT_WAVE_AFTER)
                # never asked: the first job was lost
                | (Post.asked_at.is_(None) & (Post.created_at < now - NEVER_TRIED_AFTER)),
            )
        ))
        expired = list(session.scalars(
            select(Post.id).where(Post.status == "open", Post.expires_at < now)
        ))
    counts["needs_warned"], counts["done_reminded"] = _post_reminders(services, now)
    if expired:
        with services.db.writing() as session:
            session.execute(update(Post).where(Post.id.in_(expired), Post.kind == "need",
                                               Post.status == "open", Post.expires_at < now)
                            .values(status="expired", closed_at=now))
    for post_id in set(waves) - set(expired):
        services.queue.enqueue("app.jobs.ask_helpers", post_id,
                               job_id=f"ask_helpers-{post_id}-{int(now.timestamp())}")
    counts["next_waves"] = len(set(waves) - set(expired))
    counts["needs_expired"] = len(expired)
    # Before texts stuck mid-call are touched below, which would make their broadcast look
    # busy.
    counts["broadcasts_resumed"] = _resume_broadcasts(services, now)
    with services.db.writing() as session:
        stuck = list(session.scalars(
            select(Message).where(
                # held for quiet hours that ended a while ago
                ((Message.status == "queued") & (Message.not_before < now - HELD_LATE_AFTER))
                | (Message.not_before.is_(None) & (
                    # a broadcast's queued texts wait for their batch (resumed below)
                    ((Message.status == "queued") & (Message.attempts == 0)
                     & Message.activity_id.is_(None)
                     & (Message.updated_at < now - NEVER_TRIED_AFTER))
                    | ((Message.status == "queued") & Message.activity_id.is_(None)
                       & (Message.updated_at < now - RETRY_LOST_AFTER))
                    | ((Message.status == "sending")
                       & (Message.updated_at < now - SENDING_STUCK_AFTER))
                ))
            ).limit(1000).with_for_update(skip_locked=True)
        ))
        for message in stuck:
            if message.status == "sending":
                # A worker died mid-call: the text may have gone. Look before sending again,
                # from when that attempt started (at the latest, when it was last touched).
                message.status = "queued"
                message.error_code = AMBIGUOUS
                if message.possibly_sent_at is None:
                    message.possibly_sent_at = message.updated_at - SENDING_STUCK_AFTER
            message.not_before = None
            message.updated_at = now
        requeue = [message.id for message in stuck]
    outbound.enqueue(services, requeue)
    counts["requeued"] = len(requeue)
    # Each bank's retention period: old texts' words and sign-in records go, hours stay.
    counts.update(privacy.expire_all(services, now))
    # Care: pauses that run out, "back tomorrow", the brokers' daily summary, check-ins.
    counts.update(away.sweep(services, now))
    with services.db.writing() as session:
        # What members wrote, kept for their bank's retention period (app.care.inbox).
        counts["texts_forgotten"] = inbox.forget_old(session, now)
    return counts


def _resume_broadcasts(services: Services, now: datetime) -> int:
    """Start again a broadcast whose chain of batch jobs was lost (a worker killed, Redis
    emptied): one with texts still queued and none touched for a while."""
    resumed = 0
    with services.db.reading() as session:
        sending = list(session.execute(
            select(Activity.id, Bank).join(Bank, Bank.id == Activity.bank_id)
            .where(Activity.status == "sending")))
        for activity_id, bank in sending:
            if (delivery.quiet_until(now, bank.timezone, services.config.quiet_hours)
                    is not None or caps.bank_full(session, bank, now)):
                continue  # its batch waits for the morning on RQ's schedule
            waiting = session.scalar(
                select(Message.id).where(Message.activity_id == activity_id,
                                         Message.status == "queued").limit(1))
            if waiting is None:  # finished: a cheap look on the (activity, status) index
                continue
            latest = session.scalar(
                select(func.max(Message.updated_at)).where(Message.activity_id == activity_id))
            if latest is None or latest > now - NEVER_TRIED_AFTER:
                continue
            broadcasts.enqueue(services, activity_id, 0,
                               job_id=f"broadcast-{activity_id}-resume-{int(now.timestamp())}")
            resumed += 1
    return resumed


def _after_sweep(session: Session, step: confirmations.SweepStep) -> list[int]:
    request = step.confirmation
    if step.action == "remind":
        return _remind(session, request)
    if step.action == "escalate":
        if caps.never_asked(session, request):
            return []  # on the dashboard; the brokers had the day's summary of the member
        return _escalate(session, request, "broker_unanswered")
    if step.action == "auto" and step.settlement is not None:
        if step.settlement.outcome == "confirmed":
            return _auto_receipts(session, request)
        return _escalate(session, request, "broker_held")
    return []


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
    bank = session.get(Bank, request.bank_id)
    if confirmer is None or requester is None or bank is None or request.kind != "exchange":
        return []
    # Unasked, like the first ask: counted against the same caps as the requester's DONE.
    message_id, _ = caps.queue_caused(
        session, bank, confirmer, requester, key="confirm_reminder",
        idempotency_key=f"confirm-reminder:{request.id}",
        values={"other": requester.name, "hours": Hours(request.minutes),
                "what": for_others(request.description),
                "ref": request.ref},
    )
    return ([message_id] if message_id else []) + caps.notices(session, bank)


def _escalate(session: Session, request: Confirmation, key: str) -> list[int]:
    bank = session.get(Bank, request.bank_id)
    assert bank is not None
    payer, payee = _names(session, request)
    return outbound.tell_brokers(
        session, bank, key, f"{key}:{request.id}",
        {"ref": request.ref, "payer": payer.name if payer else "the fund",
         "payee": payee.name if payee else "the fund", "hours": Hours(request.minutes),
         "what": for_others(request.description)},
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
                    "what": for_others(request.description),
                    "balance": Hours(account.balance_minutes)},
        )
        if message_id:
            ids.append(message_id)
    return ids
