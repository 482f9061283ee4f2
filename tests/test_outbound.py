"""Texts the bank sends on its own, through the real twilio client to a stand-in for Twilio.

Every test runs on each backend: an app configured with Twilio credentials and
``TWILIO_API_BASE_URL`` pointing at ``tests.twilio_standin`` on loopback.
"""

from __future__ import annotations

import contextlib
import logging
import time
import zlib
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from redis import Redis
from rq.job import Job
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.test import TestResponse

from app import create_app, outbound
from app.cli import prepare
from app.jobs import send_message
from app.services import Services
from app.transports import OutboundText, TransientSendError, TwilioTransport
from ledger import banks, members
from ledger.models import Bank, Member, Message, OptOut
from tests.conftest import Backend, make_config, wipe
from tests.helpers import Outbox, Phone
from tests.twilio_standin import TwilioStandIn

ACCOUNT_SID = "AC" + "5a" * 16
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
BANK_SMS = "+447700900999"
MEMBER = "+447700900001"
APPROVED = (
    "Good news, Sam: you're now an active member of Lambeth Time Bank. "
    "Reply MENU for what you can do"
)
STATUS_URL = "http://localhost/twilio/status"


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as running:
        yield running


class TwilioBank:
    """An app that sends through the stand-in, used inside its app context."""

    def __init__(self, app: Flask, standin: TwilioStandIn) -> None:
        self.app = app
        self.standin = standin
        self.services: Services = app.extensions["timebank"]
        self.config = self.services.config

    def phone(self, number: str = MEMBER, **kwargs: object) -> Phone:
        return Phone(self.app, number, auth_token=AUTH_TOKEN, **kwargs)  # type: ignore[arg-type]

    def join(self, number: str = MEMBER, name: str = "Sam", **kwargs: object) -> int:
        """The person at ``number`` joins by text (signed, as Twilio would); their member id."""
        phone = self.phone(number, **kwargs)
        assert "Welcome to" in phone.text(f"JOIN {name}")[0]
        with self.services.db.reading() as session:
            return session.scalars(
                select(Member.id).where(Member.phone == number).order_by(Member.id.desc())
            ).first()  # type: ignore[return-value]

    def queue(self, member_id: int, n: int = 0, *, enqueue: bool = False) -> int | None:
        """Record a text to the member (as the app does), optionally handing it to RQ."""
        with self.services.db.writing() as session:
            member = members.get_member(session, member_id)
            bank = session.get(Bank, member.bank_id)
            assert bank is not None
            message_id = outbound.queue_text(
                session, member, kind="test", key="approved",
                idempotency_key=f"test:{member_id}:{n}",
                values={"name": member.name, "bank": bank.name},
            )
        if enqueue and message_id is not None:
            outbound.enqueue(self.services, [message_id])
        return message_id

    def message(self, message_id: int) -> Message:
        with self.services.db.reading() as session:
            found = session.get(Message, message_id)
            assert found is not None
            return found

    def opted_out(self, number: str = MEMBER, bank_id: int | None = None) -> bool:
        with self.services.db.reading() as session:
            if bank_id is None:
                bank_id = banks.bank_for_address(session, None).id
            return members.is_opted_out(session, bank_id, number)

    def use_timeout(self, seconds: float) -> None:
        self.services._transport = TwilioTransport(self.config, timeout=seconds)

    def run_jobs(self) -> None:
        Outbox(self.services).run_jobs()

    def run_due_retries(self) -> list[str]:
        """Pretend every retry's wait has passed: move scheduled jobs to the queue, run them."""
        registry = self.services.queue.scheduled_job_registry
        ids = registry.get_job_ids()
        for job_id in ids:
            job = Job.fetch(job_id, connection=self.services.redis)
            registry.remove(job)
            self.services.queue.enqueue_job(job)
        self.run_jobs()
        return ids

    def callback(self, form: dict[str, str], *, token: str | None = AUTH_TOKEN,
                 url: str = STATUS_URL) -> TestResponse:
        headers = {}
        if token is not None:
            headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(url, form)
        return self.app.test_client().post("/twilio/status", data=form, headers=headers)


@pytest.fixture
def make_bank(backend: Backend, standin: TwilioStandIn
              ) -> Iterator[Callable[..., TwilioBank]]:
    made = []

    def make(**overrides: object) -> TwilioBank:
        settings: dict[str, object] = {
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_sms_from": BANK_SMS,
            "twilio_api_base_url": standin.base_url,
        }
        settings.update(overrides)
        app = create_app(make_config(backend, **settings))
        shared: Services = app.extensions["timebank"]
        if not made:
            wipe(shared)  # only before the first app: a later one sees the same data
        context = app.app_context()
        context.push()
        made.append((context, shared))
        prepare(shared)
        return TwilioBank(app, standin)

    yield make
    for context, shared in reversed(made):
        context.pop()
        shared.close()


@pytest.fixture
def bank(make_bank: Callable[..., TwilioBank]) -> TwilioBank:
    return make_bank()


def redis_contents(redis: Redis) -> bytes:
    """Every key and value in Redis (RQ's compressed job data decompressed), for searching."""
    found: list[bytes] = []
    for key in redis.scan_iter():
        found.append(key)
        kind = redis.type(key)
        if kind == b"string":
            found.append(redis.get(key) or b"")
        elif kind == b"hash":
            for field, value in redis.hgetall(key).items():
                with contextlib.suppress(zlib.error):
                    value = zlib.decompress(value)
                found += [field, value]
        elif kind == b"list":
            found += redis.lrange(key, 0, -1)
        elif kind == b"set":
            found += list(redis.smembers(key))
        elif kind == b"zset":
            found += redis.zrange(key, 0, -1)
        elif kind == b"stream":
            for entry_id, fields in redis.xrange(key):
                found.append(entry_id)
                for field, value in fields.items():
                    found += [field, value]
    return b"\n".join(found)


# --- delivery ---------------------------------------------------------------------------------


def test_a_text_goes_through_twilio_once_from_the_banks_number(bank, standin):
    member_id = bank.join()
    message_id = bank.queue(member_id)
    assert message_id is not None

    assert send_message(message_id) == "sent"

    [request] = standin.requests
    assert request.authorised and request.account_sid == ACCOUNT_SID
    assert request.form == {"To": MEMBER, "From": BANK_SMS, "Body": APPROVED}
    message = bank.message(message_id)
    assert message.status == "sent"
    assert message.provider_sid == request.sid and request.sid.startswith("SM")
    assert message.attempts == 1
    # Running the job again (RQ redelivering it, say) sends nothing more.
    assert send_message(message_id) == "sent"
    assert len(standin.requests) == 1
    assert bank.message(message_id).attempts == 1


def test_the_worker_sends_a_queued_text_once(bank, standin):
    message_id = bank.queue(bank.join(), enqueue=True)
    bank.run_jobs()
    bank.run_jobs()
    [accepted] = standin.accepted
    assert (accepted.to, accepted.from_, accepted.body) == (MEMBER, BANK_SMS, APPROVED)
    assert bank.message(message_id).status == "sent"
    job = Job.fetch(f"message-{message_id}", connection=bank.services.redis)
    assert job.get_status() == "finished"
    # The same message handed to RQ again (a second enqueue) is not sent again.
    outbound.enqueue(bank.services, [message_id])
    bank.run_jobs()
    assert len(standin.requests) == 1


def test_approval_flow_texts_the_broker_through_twilio(make_bank, standin):
    bank = make_bank(require_approval=True)
    broker = "+447700900501"
    with bank.services.db.writing() as session:
        members.make_broker(session, banks.bank_for_address(session, None), broker, "Bea")
    ola = bank.phone("+447700900502")
    # With an auth token configured, an unsigned webhook is refused.
    assert Phone(bank.app, "+447700900502").send("JOIN Ola").status_code == 403
    assert "will be in touch" in ola.text("JOIN Ola")[0]

    bank.run_jobs()

    [request] = standin.requests
    assert request.to == broker and request.from_ == BANK_SMS
    assert "Ola" in request.body and "+44" not in request.body
    with bank.services.db.reading() as session:
        message = session.scalars(select(Message).where(Message.to_address == broker)).one()
    assert message.status == "sent" and message.provider_sid == request.sid
    assert send_message(message.id) == "sent"
    ola.text("JOIN Ola")
    bank.run_jobs()
    assert len(standin.requests) == 1


def test_a_bank_with_its_own_number_texts_from_it(bank, standin):
    with bank.services.db.writing() as session:
        banks.add_bank(session, "Brixton Time Bank", addresses=["+447700900777"],
                       require_approval=False)
    member_id = bank.join(to="+447700900777")
    message_id = bank.queue(member_id)
    assert send_message(message_id) == "sent"
    [request] = standin.requests
    assert request.from_ == "+447700900777" and request.to == MEMBER
    assert "Brixton Time Bank" in request.body


def test_whatsapp_members_are_texted_on_whatsapp(make_bank, standin):
    bank = make_bank(twilio_whatsapp_from="whatsapp:+447700900998")
    member_id = bank.join(channel="whatsapp", to="whatsapp:+447700900998")
    assert send_message(bank.queue(member_id)) == "sent"
    [request] = standin.requests
    assert request.to == f"whatsapp:{MEMBER}"
    assert request.from_ == "whatsapp:+447700900998"


def test_a_messaging_service_sends_sms_when_configured(make_bank, standin):
    bank = make_bank(twilio_messaging_service_sid="MG" + "1" * 32)
    assert send_message(bank.queue(bank.join())) == "sent"
    [request] = standin.requests
    assert request.form["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in request.form
    assert request.to == MEMBER


def test_a_bank_with_its_own_number_texts_from_it_despite_a_messaging_service(
    make_bank, standin
):
    bank = make_bank(twilio_messaging_service_sid="MG" + "1" * 32)
    with bank.services.db.writing() as session:
        banks.add_bank(session, "Brixton Time Bank", addresses=["+447700900777"],
                       require_approval=False)
    assert send_message(bank.queue(bank.join(to="+447700900777"))) == "sent"
    [request] = standin.requests
    assert request.from_ == "+447700900777"


def test_a_changed_sms_number_is_the_one_texts_come_from(make_bank, standin):
    make_bank(twilio_sms_from="+447700900888")
    bank = make_bank()  # the same deployment, restarted with TWILIO_SMS_FROM=BANK_SMS
    assert send_message(bank.queue(bank.join())) == "sent"
    [request] = standin.requests
    assert request.from_ == BANK_SMS


# --- failures worth trying again ----------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(500, None), (503, None), (429, 20429)])
def test_a_server_error_or_rate_limit_is_tried_again(bank, standin, status, code):
    message_id = bank.queue(bank.join())
    standin.fail_next(status=status, code=code)

    with pytest.raises(TransientSendError):
        send_message(message_id)
    message = bank.message(message_id)
    assert message.status == "queued" and message.provider_sid is None

    assert send_message(message_id) == "sent"
    assert [r.status for r in standin.requests] == [status, 201]
    assert len(standin.accepted_to(MEMBER)) == 1
    message = bank.message(message_id)
    assert message.status == "sent" and message.provider_sid == standin.accepted[0].sid
    assert message.attempts == 2


def test_the_worker_retries_a_server_error_on_rqs_schedule(bank, standin):
    message_id = bank.queue(bank.join(), enqueue=True)
    standin.fail_next(status=500)

    bank.run_jobs()

    assert bank.message(message_id).status == "queued"
    queue = bank.services.queue
    assert queue.scheduled_job_registry.get_job_ids() == [f"message-{message_id}"]
    assert queue.failed_job_registry.count == 0
    assert standin.accepted == []

    assert bank.run_due_retries() == [f"message-{message_id}"]
    assert bank.message(message_id).status == "sent"
    assert len(standin.accepted_to(MEMBER)) == 1
    assert queue.scheduled_job_registry.count == 0


def test_a_timeout_is_tried_again(bank, standin):
    bank.use_timeout(0.5)
    message_id = bank.queue(bank.join())
    standin.stall_next(2.0)

    # Stalled past the client's timeout: an error, never the stand-in's late success.
    with pytest.raises(TransientSendError):
        send_message(message_id)
    assert bank.message(message_id).status == "queued"

    assert send_message(message_id) == "sent"
    # A read timeout is ambiguous: the bank looked for the message before sending again.
    assert [r.method for r in standin.requests] == ["POST", "GET", "POST"]
    assert len(standin.accepted_to(MEMBER)) == 1
    assert bank.message(message_id).provider_sid == standin.accepted[0].sid


def test_a_dropped_connection_is_tried_again(bank, standin):
    message_id = bank.queue(bank.join())
    standin.drop_next()
    with pytest.raises(TransientSendError):
        send_message(message_id)
    assert bank.message(message_id).status == "queued"
    assert send_message(message_id) == "sent"
    assert len(standin.accepted_to(MEMBER)) == 1


def test_a_timeout_after_twilio_accepted_does_not_text_twice(bank, standin):
    bank.use_timeout(0.5)
    message_id = bank.queue(bank.join())
    standin.stall_next(2.0, accepted=True)  # Twilio created the message, then answered late
    with pytest.raises(TransientSendError):
        send_message(message_id)
    assert bank.message(message_id).status == "queued"
    assert len(standin.accepted_to(MEMBER)) == 1
    # The retry looks for the message first, finds it, and sends nothing.
    assert send_message(message_id) == "sent"
    assert [r.method for r in standin.requests] == ["POST", "GET"]
    assert len(standin.accepted_to(MEMBER)) == 1
    assert bank.message(message_id).provider_sid == standin.accepted[0].sid


# --- failures for good ------------------------------------------------------------------------


def test_21610_fails_the_text_and_opts_the_member_out(bank, standin):
    member_id = bank.join()
    first = bank.queue(member_id, 1, enqueue=True)
    second = bank.queue(member_id, 2, enqueue=True)
    standin.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient")

    bank.run_jobs()

    failed = bank.message(first)
    assert failed.status == "failed" and failed.error_code == "21610"
    assert bank.opted_out(MEMBER)
    with bank.services.db.reading() as session:
        opt_out = session.scalars(select(OptOut)).one()
        assert opt_out.reason == "carrier-21610"
    # The text queued behind it is not sent, and later ones are not even recorded.
    canceled = bank.message(second)
    assert canceled.status == "canceled" and canceled.error_code == "opted-out"
    assert bank.queue(member_id, 3, enqueue=True) is None
    bank.run_jobs()
    assert len(standin.requests) == 1 and standin.accepted == []
    # Not retried, and no exception reached RQ.
    queue = bank.services.queue
    assert queue.failed_job_registry.count == 0
    assert queue.scheduled_job_registry.count == 0
    assert queue.finished_job_registry.count == 2


@pytest.mark.parametrize(("code", "text"), [
    (21211, f"The 'To' number {MEMBER} is not a valid phone number."),
    (21408, "Permission to send an SMS has not been enabled for the region indicated by "
            "the 'To' number"),
    (21614, f"'To' number {MEMBER} is not a valid mobile number"),
])
def test_other_client_errors_fail_for_good_without_retrying(bank, standin, caplog, code, text):
    caplog.set_level(logging.INFO)
    message_id = bank.queue(bank.join(), enqueue=True)
    standin.fail_next(status=400, code=code, message=text)

    bank.run_jobs()

    message = bank.message(message_id)
    assert message.status == "failed" and message.error_code == str(code)
    assert message.provider_sid is None
    assert not bank.opted_out(MEMBER)
    queue = bank.services.queue
    assert queue.failed_job_registry.count == 0
    assert queue.scheduled_job_registry.count == 0
    assert Job.fetch(f"message-{message_id}", connection=bank.services.redis
                     ).get_status() == "finished"
    assert send_message(message_id) == "failed"
    assert bank.run_due_retries() == []
    assert len(standin.requests) == 1
    # Twilio's error text names the number; the logs must not.
    assert "7700900001" not in caplog.text


def test_a_member_who_opted_out_is_not_texted(bank, standin):
    member_id = bank.join()
    before = bank.queue(member_id, 1, enqueue=True)
    assert "won't get any more texts" in bank.phone().text("STOP")[0]
    assert bank.opted_out(MEMBER)

    assert bank.queue(member_id, 2) is None
    bank.run_jobs()

    message = bank.message(before)
    assert message.status == "canceled" and message.error_code == "opted-out"
    assert standin.requests == []


# --- status callbacks -------------------------------------------------------------------------


def test_status_callbacks_move_a_text_forward_only(bank, standin):
    message_id = bank.queue(bank.join())
    send_message(message_id)
    sid = bank.message(message_id).provider_sid
    form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "MessageStatus": "delivered",
            "To": MEMBER, "From": BANK_SMS}

    assert bank.callback(form).status_code == 204
    assert bank.message(message_id).status == "delivered"
    # "sent" arriving after "delivered" (callbacks come in any order) changes nothing.
    assert bank.callback({**form, "MessageStatus": "sent"}).status_code == 204
    assert bank.callback({**form, "MessageStatus": "queued"}).status_code == 204
    assert bank.message(message_id).status == "delivered"
    assert bank.callback({**form, "MessageStatus": "read"}).status_code == 204
    assert bank.message(message_id).status == "read"
    # An unknown sid is acknowledged and ignored.
    assert bank.callback({**form, "MessageSid": "SM" + "0" * 32}).status_code == 204


def test_status_callbacks_must_be_signed(bank, standin):
    message_id = bank.queue(bank.join())
    send_message(message_id)
    form = {"MessageSid": bank.message(message_id).provider_sid, "MessageStatus": "failed",
            "ErrorCode": "30003"}
    assert bank.callback(form, token=None).status_code == 403
    assert bank.callback(form, token="not-the-token").status_code == 403
    assert bank.callback(form, url="http://elsewhere/twilio/status").status_code == 403
    assert bank.message(message_id).status == "sent"
    assert bank.callback(form).status_code == 204
    message = bank.message(message_id)
    assert message.status == "failed" and message.error_code == "30003"


def test_a_21610_status_callback_opts_the_member_out(bank, standin):
    member_id = bank.join()
    message_id = bank.queue(member_id, 1)
    send_message(message_id)
    form = {"MessageSid": bank.message(message_id).provider_sid, "SmsStatus": "undelivered",
            "ErrorCode": "21610"}
    assert bank.callback(form).status_code == 204
    message = bank.message(message_id)
    assert message.status == "undelivered" and message.error_code == "21610"
    assert bank.opted_out(MEMBER)
    assert bank.queue(member_id, 2) is None


def test_with_a_public_url_twilio_is_told_where_to_call_back(make_bank, standin):
    public = "https://bank.example.org"
    bank = make_bank(public_base_url=public)
    phone = Phone(bank.app, MEMBER, auth_token=AUTH_TOKEN, url=f"{public}/twilio/messages")
    assert "Welcome to" in phone.text("JOIN Sam")[0]
    with bank.services.db.reading() as session:
        member = session.scalars(select(Member)).one()
    message_id = bank.queue(member.id)
    send_message(message_id)
    [request] = standin.requests
    assert request.form["StatusCallback"] == f"{public}/twilio/status"

    form = {"MessageSid": request.sid, "MessageStatus": "delivered"}
    # Signatures are checked against the public URL, not the one Flask sees.
    assert bank.callback(form).status_code == 403
    assert bank.callback(form, url=f"{public}/twilio/status").status_code == 204
    assert bank.message(message_id).status == "delivered"


# --- privacy ----------------------------------------------------------------------------------


def test_jobs_carry_ids_never_phone_numbers(bank, standin, caplog):
    caplog.set_level(logging.INFO)
    message_id = bank.queue(bank.join(), enqueue=True)
    [job] = bank.services.queue.jobs
    assert job.args == (message_id,) and job.kwargs == {}
    for seen in (repr(job.args), repr(job.kwargs), job.description, job.id, job.func_name):
        assert "+44" not in seen and "7700900001" not in seen
    # A failure recorded by RQ (a traceback, a retry) carries no number either.
    standin.fail_next(status=500)
    bank.run_jobs()
    bank.run_due_retries()
    assert bank.message(message_id).status == "sent"
    contents = redis_contents(bank.services.redis)
    assert b"app.jobs.send_message" in contents  # the search does see inside RQ's job data
    assert b"7700900001" not in contents
    assert "7700900001" not in caplog.text


# --- the stand-in itself ----------------------------------------------------------------------


def test_the_standin_checks_credentials_like_twilio(standin):
    def client(token: str) -> Client:
        return Client(ACCOUNT_SID, token, http_client=_LocalHttp(standin.base_url))

    with pytest.raises(TwilioRestException) as refused:
        client("wrong").messages.create(to=MEMBER, from_=BANK_SMS, body="hi")
    assert (refused.value.status, refused.value.code) == (401, 20003)
    with pytest.raises(TwilioRestException) as invalid:
        client(AUTH_TOKEN).messages.create(to=MEMBER, body="hi", status_callback="x")
    assert (invalid.value.status, invalid.value.code) == (400, 21603)
    created = client(AUTH_TOKEN).messages.create(to=MEMBER, from_=BANK_SMS, body="hi")
    assert created.sid.startswith("SM") and created.status == "queued"
    assert created.to == MEMBER and created.from_ == BANK_SMS and created.body == "hi"
    assert created.date_created is not None
    assert [r.status for r in standin.requests] == [401, 400, 201]
    assert [r.sid for r in standin.accepted] == [created.sid]


class _LocalHttp(TwilioHttpClient):
    def __init__(self, base_url: str) -> None:
        super().__init__(timeout=5)
        self.base_url = base_url

    def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        url = url.replace("https://api.twilio.com", self.base_url)
        return super().request(method, url, *args, **kwargs)


# --- when and how texts go: quiet hours, WhatsApp's window, loops, segments -----------------


def _window_around_now(zone: str = "Europe/London") -> str:
    """A quiet-hours setting that covers the present moment, whatever the time."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo(zone))
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


def test_quiet_hours_hold_a_text_until_they_end(make_bank, standin):
    from app import delivery

    bank = make_bank(quiet_hours=_window_around_now())
    message_id = bank.queue(bank.join())
    assert send_message(message_id) == "held"
    held = bank.message(message_id)
    assert held.status == "queued" and held.not_before is not None
    assert standin.accepted == []
    [scheduled] = bank.services.queue.scheduled_job_registry.get_job_ids()
    assert scheduled.startswith(f"message-{message_id}-at-")
    # The held job keeps its own record (the running job's is overwritten by RQ).
    assert Job.fetch(scheduled, connection=bank.services.redis).get_status() == "scheduled"
    # The sweep leaves held texts alone.
    from app.jobs import sweep

    assert sweep()["requeued"] == 0
    # When the quiet hours are over, the same job sends it.
    later = make_bank(quiet_hours="off")
    assert send_message(message_id) == "sent"
    assert len(standin.accepted_to(MEMBER)) == 1
    assert delivery.quiet_until(held.not_before, "Europe/London", _window_around_now()) is None
    del later


def test_urgent_texts_are_not_held(make_bank, standin):
    bank = make_bank(quiet_hours=_window_around_now())
    member_id = bank.join()
    with bank.services.db.writing() as session:
        member = members.get_member(session, member_id)
        message_id = outbound.queue_text(
            session, member, kind="test", key="approved", idempotency_key="urgent",
            urgent=True, values={"name": "Sam", "bank": "Lambeth Time Bank"},
        )
    assert send_message(message_id) == "sent"


@pytest.mark.parametrize(("spec", "hour", "held_until"), [
    ("21:00-08:00", 22, "08:00"), ("21:00-08:00", 3, "08:00"), ("21:00-08:00", 12, None),
    ("21:00-08:00", 8, None), ("13:00-14:00", 13, "14:00"), ("off", 23, None),
])
def test_quiet_hours_in_the_banks_time_zone(spec, hour, held_until):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from app.delivery import quiet_until

    zone = ZoneInfo("Europe/London")
    now = datetime(2026, 7, 1, hour, 30, tzinfo=zone)  # summer time: UTC+1
    until = quiet_until(now, "Europe/London", spec)
    if held_until is None:
        assert until is None
    else:
        assert until is not None and until.astimezone(zone).strftime("%H:%M") == held_until


def test_a_bad_quiet_hours_setting_is_named():
    from app.delivery import BadSetting, parse_quiet_hours

    with pytest.raises(BadSetting, match="21:00-08:00"):
        parse_quiet_hours("nine till eight")


def test_the_same_text_again_and_again_is_stopped(bank, standin):
    member_id = bank.join()
    sent = [send_message(bank.queue(member_id, n)) for n in range(5)]
    assert sent == ["sent", "sent", "sent", "canceled", "canceled"]
    assert len(standin.accepted_to(MEMBER)) == 3


def _close_the_window(bank: TwilioBank, member_id: int) -> None:
    from datetime import timedelta

    with bank.services.db.writing() as session:
        member = members.get_member(session, member_id)
        assert member.last_inbound_at is not None
        member.last_inbound_at = member.last_inbound_at - timedelta(hours=25)


def test_outside_whatsapps_window_a_template_is_sent(make_bank, standin):
    import json

    templates = json.dumps({"test": {"sid": "HX" + "1" * 32, "variables": ["name", "bank"]}})
    bank = make_bank(twilio_whatsapp_from="whatsapp:+447700900998",
                     twilio_whatsapp_templates=templates)
    member_id = bank.join(channel="whatsapp", to="whatsapp:+447700900998")
    _close_the_window(bank, member_id)
    assert send_message(bank.queue(member_id)) == "sent"
    [request] = standin.requests
    assert request.form["ContentSid"] == "HX" + "1" * 32
    assert json.loads(request.form["ContentVariables"]) == {"1": "Sam", "2": "Lambeth Time Bank"}
    assert "Body" not in request.form


def test_outside_whatsapps_window_without_a_template_sms_is_used(make_bank, standin):
    bank = make_bank(twilio_whatsapp_from="whatsapp:+447700900998")
    member_id = bank.join(channel="whatsapp", to="whatsapp:+447700900998")
    _close_the_window(bank, member_id)
    message_id = bank.queue(member_id)
    assert send_message(message_id) == "sent"
    [request] = standin.requests
    assert request.to == MEMBER and request.from_ == BANK_SMS
    assert bank.message(message_id).channel == "sms"


def test_segments_are_counted_for_every_text(bank):
    member_id = bank.join()
    with bank.services.db.writing() as session:
        member = members.get_member(session, member_id)
        plain = outbound.queue_text(session, member, kind="t", key="approved",
                                    idempotency_key="plain",
                                    values={"name": "Sam", "bank": "Lambeth Time Bank"})
        emoji = outbound.queue_text(session, member, kind="t", key="approved",
                                    idempotency_key="emoji",
                                    values={"name": "Sam 😀", "bank": "Lambeth Time Bank"})
    assert bank.message(plain).segments == 1
    assert bank.message(emoji).segments == 2  # one emoji: UCS-2, 70 characters a segment


def test_a_status_callback_that_arrives_before_the_sid_is_saved_is_kept(bank, standin,
                                                                         monkeypatch):
    message_id = bank.queue(bank.join())
    transport = bank.services.transport
    real_send = transport.send

    def send_then_callback(text):  # type: ignore[no-untyped-def]
        sid = real_send(text)
        # Twilio calls back before the job has written the sid down.
        response = bank.callback({"MessageSid": sid, "MessageStatus": "delivered"})
        assert response.status_code == 204
        return sid

    monkeypatch.setattr(transport, "send", send_then_callback)
    assert send_message(message_id) == "delivered"
    assert bank.message(message_id).status == "delivered"


def test_an_ambiguous_send_found_long_after_is_not_sent_again(bank, standin):
    """A read timeout after Twilio accepted, then the retry lost and the sweep re-sending an
    hour later: the look-up still covers the first attempt."""
    from datetime import timedelta

    from app.jobs import sweep

    bank.use_timeout(0.5)
    message_id = bank.queue(bank.join())
    standin.stall_next(2.0, accepted=True)
    with pytest.raises(TransientSendError):
        send_message(message_id)
    with bank.services.db.writing() as session:
        message = session.get(Message, message_id)
        message.updated_at = message.updated_at - timedelta(minutes=90)
    assert sweep()["requeued"] == 1
    bank.run_jobs()
    assert len(standin.accepted_to(MEMBER)) == 1
    assert bank.message(message_id).status == "sent"


def test_a_worker_killed_mid_send_is_looked_up_before_sending_again(bank, standin):
    from datetime import timedelta

    from app.jobs import sweep

    message_id = bank.queue(bank.join())
    # The worker sent it, then died before writing anything down.
    bank.services.transport.send(OutboundText(
        message_id=message_id, to=MEMBER, body=bank.message(message_id).body,
        sender=BANK_SMS, channel="sms"))
    with bank.services.db.writing() as session:
        message = session.get(Message, message_id)
        message.status = "sending"
        message.updated_at = message.updated_at - timedelta(minutes=15)
    assert sweep()["requeued"] == 1
    bank.run_jobs()
    assert len(standin.accepted_to(MEMBER)) == 1


# --- quiet hours across time zones, and held texts that are no longer wanted ---------------

@pytest.fixture
def host_in_london(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's own zone is Europe/London (a UK server), as ``TZ`` sets it."""
    monkeypatch.setenv("TZ", "Europe/London")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_quiet_hours_keep_utc_on_a_london_host_in_summer_for_two_zones(
        make_bank, standin, host_in_london, monkeypatch):
    """A bank in London and one in New York, quiet 22:00-01:00 each: in July (BST, EDT)
    their windows are 21:00-00:00 and 02:00-05:00 UTC, which do not overlap."""
    from datetime import UTC, datetime

    from app import delivery, jobs

    spec = "22:00-01:00"
    bank = make_bank(quiet_hours=spec)
    with bank.services.db.writing() as session:
        banks.add_bank(session, "Queens Time Bank", addresses=["+12125550100"],
                       timezone="America/New_York", region="US", require_approval=False)
    london = bank.join(MEMBER, "Sam")
    new_york = bank.join("+12125550123", "Ray", to="+12125550100")
    clock = [datetime(2026, 7, 15, 21, 30, tzinfo=UTC)]  # 22:30 in London, 17:30 in New York
    monkeypatch.setattr(jobs, "utcnow", lambda: clock[0])

    to_sam, to_ray = bank.queue(london, 1), bank.queue(new_york, 1)
    assert send_message(to_sam) == "held"
    assert send_message(to_ray) == "sent"
    held = bank.message(to_sam)
    assert held.not_before == datetime(2026, 7, 16, 0, 0, tzinfo=UTC)  # 01:00 BST
    assert held.not_before.utcoffset() is not None
    assert delivery.quiet_until(held.not_before, "Europe/London", spec) is None
    [job_id] = bank.services.queue.scheduled_job_registry.get_job_ids()
    assert job_id == f"message-{to_sam}-at-{int(held.not_before.timestamp())}"

    clock[0] = datetime(2026, 7, 16, 2, 30, tzinfo=UTC)  # 03:30 in London, 22:30 in New York
    assert send_message(to_sam) == "sent"
    later_to_ray = bank.queue(new_york, 2)
    assert send_message(later_to_ray) == "held"
    held = bank.message(later_to_ray)
    assert held.not_before == datetime(2026, 7, 16, 5, 0, tzinfo=UTC)  # 01:00 EDT
    assert delivery.quiet_until(held.not_before, "America/New_York", spec) is None
    assert [r.to for r in standin.accepted] == ["+12125550123", MEMBER]


def test_times_read_back_from_the_database_are_aware_utc(bank, host_in_london):
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy.exc import StatementError

    message_id = bank.queue(bank.join())
    summer = datetime(2026, 7, 15, 23, 30, tzinfo=timezone(timedelta(hours=1)))
    with bank.services.db.writing() as session:
        session.get(Message, message_id).not_before = summer
    message = bank.message(message_id)
    assert message.not_before == summer
    assert message.not_before.tzinfo is UTC and message.not_before.hour == 22
    assert message.created_at.tzinfo is UTC
    with pytest.raises(StatementError, match="naive"), bank.services.db.writing() as session:
        session.get(Message, message_id).not_before = datetime(2026, 7, 15, 23, 30)


def _helpers_and_a_need(bank: TwilioBank) -> tuple[Phone, Phone, Phone]:
    """Ana and Kemi drive; Bob needs a lift (the asks are held: it is quiet hours)."""
    helpers = []
    for number, name in (("+447700900901", "Ana"), ("+447700900903", "Kemi")):
        helper = bank.phone(number)
        for text in (f"JOIN {name}", "driving", "Lambeth", "SKIP"):
            helper.text(text)
        helpers.append(helper)
    bob = bank.phone("+447700900904")
    for text in ("JOIN Bob", "SKIP", "Lambeth", "SKIP"):
        bob.text(text)
    bob.text("NEED a lift to the clinic")
    bank.run_jobs()
    return helpers[0], helpers[1], bob


def _held_to(bank: TwilioBank, number: str) -> list[Message]:
    with bank.services.db.reading() as session:
        return list(session.scalars(select(Message).where(
            Message.to_address == number, Message.status == "queued",
            Message.not_before.is_not(None))))


def test_a_held_ask_about_a_need_that_was_matched_meanwhile_is_never_sent(make_bank, standin):
    from app.jobs import release_held

    bank = make_bank(quiet_hours=_window_around_now())
    ana, kemi, bob = _helpers_and_a_need(bank)
    [ask_ana], [ask_kemi] = _held_to(bank, ana.number), _held_to(bank, kemi.number)
    assert standin.accepted == []
    # Kemi heard about it from Bob in person and answered in the night.
    assert "You're helping Bob" in kemi.text(f"YES {ask_kemi.body.split('YES ')[1].split()[0]}")[0]
    make_bank(quiet_hours="off")  # the morning, or a restart with quiet hours off
    release_held()
    bank.run_jobs()
    assert standin.accepted_to(ana.number) == []
    assert (bank.message(ask_ana.id).status, bank.message(ask_ana.id).error_code) == (
        "canceled", "stale")
    assert len(standin.accepted_to(bob.number)) == 1  # "Good news: Kemi can help", still wanted


def test_a_held_ask_about_the_need_of_a_member_who_left_is_never_sent(make_bank, standin):
    from app.jobs import release_held

    bank = make_bank(quiet_hours=_window_around_now())
    ana, kemi, bob = _helpers_and_a_need(bank)
    bob.text("LEAVE")
    bob.text("LEAVE NOW")  # confirmed (app.care.away)
    make_bank(quiet_hours="off")
    release_held()
    bank.run_jobs()
    assert standin.accepted_to(ana.number) == standin.accepted_to(kemi.number) == []


def test_a_held_request_to_confirm_that_was_answered_meanwhile_is_never_sent(make_bank,
                                                                              standin):
    from app.jobs import release_held

    bank = make_bank(quiet_hours=_window_around_now())
    ana, _, bob = _helpers_and_a_need(bank)
    assert "I've asked Bob to confirm" in ana.text("DONE 2 Bob lift")[0]
    bank.run_jobs()
    [confirm_ask] = _held_to(bank, bob.number)
    assert bob.text("YES")[0]  # Ana told him; he confirms before the morning
    assert bank.phone(ana.number).text("BALANCE")[0].startswith("Balance: 2 hours")
    make_bank(quiet_hours="off")
    release_held()
    bank.run_jobs()
    assert bank.message(confirm_ask.id).status == "canceled"
    assert not any("says they helped you" in r.body for r in standin.accepted_to(bob.number))


def test_quiet_hours_off_at_start_releases_held_texts_still_wanted(make_bank, standin):
    from app.jobs import release_held

    bank = make_bank(quiet_hours=_window_around_now())
    message_id = bank.queue(bank.join())
    assert send_message(message_id) == "held"
    make_bank(quiet_hours="off")
    assert release_held() == 1
    bank.run_jobs()
    assert len(standin.accepted_to(MEMBER)) == 1
    assert bank.message(message_id).status == "sent"


def test_one_sweep_per_period_however_many_workers(make_bank):
    """Every worker's timer tries to enqueue the sweep; each period gets exactly one."""
    from app.worker import SWEEP_EVERY_SECONDS, enqueue_sweep

    workers = [make_bank().services for _ in range(3)]
    period = 5_000
    start = period * SWEEP_EVERY_SECONDS
    for offset in (1, SWEEP_EVERY_SECONDS // 2, SWEEP_EVERY_SECONDS - 1):
        tried = [enqueue_sweep(w.redis, w.queue, start + offset) for w in workers]
        assert tried == [offset == 1, False, False]
    tried = [enqueue_sweep(w.redis, w.queue, start + SWEEP_EVERY_SECONDS + 7)
             for w in reversed(workers)]
    assert tried == [True, False, False]
    queue = workers[0].queue
    assert sorted(queue.get_job_ids()) == [f"sweep-{period}", f"sweep-{period + 1}"]
    Outbox(workers[0]).run_jobs()
    assert sorted(queue.finished_job_registry.get_job_ids()) == [
        f"sweep-{period}", f"sweep-{period + 1}"]
