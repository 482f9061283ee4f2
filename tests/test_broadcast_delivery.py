"""Broadcasts delivered through the real twilio client to the Twilio stand-in: a worker killed
halfway, the per-sender throttle, quiet hours, and the chain of batch jobs.

Every test runs on each backend (see ``tests/conftest.py``). The kill test starts real worker
processes (``app.worker.main``) against the same database, Redis and stand-in as the test.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rq.job import Job
from sqlalchemy import insert, select, update

from app import broadcasts, delivery, jobs
from app.services import Services
from app.transports import OutboundText
from ledger import activities, banks, members
from ledger.models import Account, Activity, Member, Message
from tests import test_outbound
from tests.conftest import Backend
from tests.helpers import Outbox
from tests.test_outbound import ACCOUNT_SID, AUTH_TOKEN, BANK_SMS, TwilioBank
from tests.twilio_standin import TwilioStandIn

# The stand-in and an app sending through it, as in test_outbound.py.
standin = test_outbound.standin
make_bank = test_outbound.make_bank

ROOT = Path(__file__).resolve().parent.parent
TEXT = "Street party Saturday 2pm at St Mark's"


# --- setting up ---------------------------------------------------------------------------


def add_members(services: Services, count: int) -> list[str]:
    """``count`` active members of the default bank, with accounts, in one transaction (bulk
    inserts: joining one by one would take longer than the test). Their numbers, in id order."""
    numbers = [f"+4477009{n:05d}" for n in range(count)]
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        ids = list(session.scalars(
            insert(Member).returning(Member.id, sort_by_parameter_order=True),
            [{"bank_id": bank.id, "phone": number, "name": f"M{n}", "status": "active",
              "last_channel": "sms", "language": "en"} for n, number in enumerate(numbers)],
        ))
        session.execute(insert(Account), [
            {"bank_id": bank.id, "kind": "member", "member_id": member_id, "name": f"M{n}"}
            for n, member_id in enumerate(ids)
        ])
    return numbers


def opt_out(services: Services, numbers: list[str]) -> None:
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        for number in numbers:
            assert members.opt_out(session, bank.id, number)


def start_broadcast(services: Services, text: str = TEXT, key: str = "test") -> int:
    """Plan and confirm a broadcast to every member (one transaction), then enqueue it."""
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        planned, created = activities.plan(session, bank, broker=None, text=text, area=None,
                                           skill=None, request_key=key)
        assert created
        activity, started = broadcasts.confirm(session, bank, planned.id, broker=None,
                                               via="cli")
        assert started
        activity_id = activity.id
    broadcasts.enqueue(services, activity_id)
    return activity_id


def progress(services: Services, activity_id: int) -> dict[str, int]:
    with services.db.reading() as session:
        return activities.progress(session, activity_id)


def statuses_by_number(services: Services, activity_id: int) -> dict[str, str]:
    with services.db.reading() as session:
        return dict(session.execute(
            select(Message.to_address, Message.status).where(Message.activity_id == activity_id)
        ).all())


def accepted_counts(standin: TwilioStandIn) -> Counter[str | None]:
    """How many messages Twilio created for each number (what each phone would receive)."""
    return Counter(record.to for record in standin.accepted)


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
             alive: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"the worker exited ({alive.returncode}) before {what}"
                                 + _tail(log))
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}" + _tail(log))
        time.sleep(0.02)


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    return "\nworker log:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# --- a real worker process ---------------------------------------------------------------

_CLEARED = ("DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL")


def worker_env(backend: Backend, standin: TwilioStandIn) -> dict[str, str]:
    """What ``worker.py`` reads, with the values ``make_bank`` gives its Config."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TWILIO_", "TIMEBANK_")) and key not in _CLEARED}
    env.update({
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": backend.redis_url,
        "TIMEBANK_INSTANCE_PATH": str(backend.instance),
        "TIMEBANK_NAME": "Lambeth Time Bank",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_SMS_FROM": BANK_SMS,
        "TWILIO_API_BASE_URL": standin.base_url,
        "TIMEBANK_QUIET_HOURS": "off",
        "TIMEBANK_SEND_RATE": "off",
        "PYTHONPATH": str(ROOT),
    })
    return env


def start_worker(backend: Backend, standin: TwilioStandIn, log: Path, *, burst: bool
                 ) -> subprocess.Popen[bytes]:
    """``worker.py`` as a process of its own (``burst``: until the queue is empty), in a
    process group of its own with RQ's scheduler, which it forks."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", f"from app.worker import main; main(burst={burst})"],
            cwd=ROOT, env=worker_env(backend, standin), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """The worker and its scheduler gone (a scheduler outliving a killed worker would go on
    polling Redis after the test)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def time_passes(services: Services, activity_id: int, minutes: int) -> None:
    """Pretend the broadcast's texts were last touched ``minutes`` earlier than they were."""
    earlier = timedelta(minutes=minutes)
    with services.db.writing() as session:
        rows = session.execute(select(Message.id, Message.updated_at, Message.possibly_sent_at)
                               .where(Message.activity_id == activity_id)).all()
        # By primary key, computed here: date arithmetic in SQL differs between backends.
        session.execute(update(Message), [
            {"id": row.id, "updated_at": row.updated_at - earlier,
             "possibly_sent_at": row.possibly_sent_at and row.possibly_sent_at - earlier}
            for row in rows
        ])


# --- the tests ----------------------------------------------------------------------------


def test_a_worker_killed_halfway_texts_every_member_exactly_once(
        backend: Backend, make_bank: Callable[..., TwilioBank], standin: TwilioStandIn,
        tmp_path: Path) -> None:
    bank = make_bank()
    services = bank.services
    numbers = add_members(services, 1000)
    gone = numbers[7::20]  # 50 members who texted STOP before the broadcast
    opt_out(services, gone)
    staying = sorted(set(numbers) - set(gone))
    activity_id = start_broadcast(services)
    assert progress(services, activity_id) == {"queued": 950}

    log = tmp_path / "worker.log"
    first = start_worker(backend, standin, log, burst=False)
    try:
        # A limit to wait for, not a speed: on a loaded machine (the suite runs a test a
        # core) the worker has been seen sending a steady 10 texts a second.
        wait_for(lambda: len(standin.accepted) >= 500, 120, "500 texts", first, log)
        # The next text reaches Twilio, which creates it but answers only much later: the
        # worker is killed while it waits, so nobody knows the text went.
        standin.stall_next(60, accepted=True)
        wait_for(lambda: not standin._state.script, 10, "the stalled request", first, log)
        time.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop(first)

    left = progress(services, activity_id)
    assert left.get("sending") == 1, left  # the one killed mid-call
    assert left.get("queued", 0) > 0, left  # the rest of its batch and the batches after it
    with services.db.reading() as session:
        in_doubt = session.scalars(select(Message).where(
            Message.activity_id == activity_id, Message.status == "sending")).one()
    [created] = standin.accepted_to(in_doubt.to_address)  # Twilio has it already
    sent_before = len(standin.accepted)
    assert sent_before == left["sent"] + 1 < 950

    # The next sweep after the worker died (15 minutes later) re-sends the text in doubt
    # and starts the rest of the broadcast again; then a worker runs until the queue is empty.
    second = None
    try:
        time_passes(services, activity_id, minutes=15)
        jobs.sweep()
        second = start_worker(backend, standin, log, burst=True)
        second.wait(timeout=120)
        assert second.returncode == 0, _tail(log)
    finally:
        if second is not None:
            stop(second)

    assert progress(services, activity_id) == {"sent": 950}
    counts = accepted_counts(standin)
    assert {number: counts[number] for number in staying} == dict.fromkeys(staying, 1)
    assert not any(counts[number] for number in gone)
    assert sum(counts.values()) == 950
    assert len(standin.posts) == 950  # no text was even attempted twice
    # The text in doubt was looked up at Twilio, and found, instead of sent again.
    assert any(r.method == "GET" for r in standin.requests)
    assert bank.message(in_doubt.id).provider_sid == created.sid
    assert set(statuses_by_number(services, activity_id)) == set(staying)


def test_one_sweep_resumes_a_broadcast_whose_worker_died_mid_call(
        make_bank: Callable[..., TwilioBank], standin: TwilioStandIn) -> None:
    """The state a worker killed mid-call leaves (one text ``sending``, the rest ``queued``,
    no job left): the first sweep 10 minutes later should finish the broadcast."""
    bank = make_bank()
    services = bank.services
    add_members(services, 20)
    activity_id = start_broadcast(services)
    services.redis.flushdb()  # the chain of jobs died with the worker
    with services.db.writing() as session:
        ids = list(session.scalars(select(Message.id).where(
            Message.activity_id == activity_id).order_by(Message.id)))
        for message_id in ids[:5]:
            session.execute(update(Message).where(Message.id == message_id).values(
                status="sent", provider_sid=f"SMdone{message_id}"))
        session.execute(update(Message).where(Message.id == ids[5]).values(
            status="sending", attempts=1))
    time_passes(services, activity_id, minutes=15)
    jobs.sweep()
    bank.run_jobs()
    assert progress(services, activity_id) == {"sent": 20}
    assert len(standin.accepted) == 15


def test_the_throttle_spaces_a_senders_texts(
        make_bank: Callable[..., TwilioBank], standin: TwilioStandIn,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """At 5 a second, each text waits for its own slot 0.2 s after the one before. The clock
    stands still, so what is asserted is the slots handed out, in order, not how long a
    loaded machine took (the speed itself is measured in bench/broadcast.py)."""
    bank = make_bank(send_rate=5.0)
    services = bank.services
    numbers = add_members(services, 10)
    waits: list[float] = []
    monkeypatch.setattr(jobs.time, "sleep", waits.append)
    monkeypatch.setattr(jobs.time, "time", lambda: 1_000_000.0)
    activity_id = start_broadcast(services)
    bank.run_jobs()

    assert progress(services, activity_id) == {"sent": 10}
    assert [r.to for r in standin.accepted] == numbers  # in the order they were queued
    assert {r.from_ for r in standin.posts} == {BANK_SMS}
    # The first slot is free; each later text waits one more slot.
    assert waits == [pytest.approx(0.2 * n) for n in range(1, 10)]


def test_one_throttle_is_shared_by_several_workers(
        make_bank: Callable[..., TwilioBank], monkeypatch: pytest.MonkeyPatch) -> None:
    """Three workers (each its own app and Redis connection) sending from one number take
    turns at its slots; another number has slots of its own."""
    workers = [make_bank(send_rate=2.0).services for _ in range(3)]
    waits: list[float] = []
    monkeypatch.setattr(jobs.time, "sleep", waits.append)
    monkeypatch.setattr(jobs.time, "time", lambda: 1_000_000.0)
    text = OutboundText(message_id=1, to="+447700900001", body="x", sender=BANK_SMS,
                        channel="sms")
    for worker in workers * 2:
        jobs._throttle(worker, text)
    assert waits == [pytest.approx(0.5 * n) for n in range(1, 6)]
    other = OutboundText(message_id=2, to="+447700900001", body="x", sender="+447700900777",
                         channel="sms")
    jobs._throttle(workers[1], other)
    assert len(waits) == 5  # its first slot is free


def test_quiet_hours_hold_a_broadcast_until_they_end(
        make_bank: Callable[..., TwilioBank], standin: TwilioStandIn) -> None:
    local = datetime.now(ZoneInfo("Europe/London"))  # the bank's time zone
    spec = (f"{(local - timedelta(hours=1)):%H:%M}-{(local + timedelta(hours=2)):%H:%M}")
    bank = make_bank(quiet_hours=spec)
    services = bank.services
    add_members(services, 3)
    activity_id = start_broadcast(services)
    ends = delivery.quiet_until(datetime.now(UTC), "Europe/London", spec)
    assert ends is not None

    bank.run_jobs()

    assert standin.requests == []
    assert progress(services, activity_id) == {"queued": 3}
    registry = services.queue.scheduled_job_registry
    [job_id] = registry.get_job_ids()
    assert job_id == f"broadcast-{activity_id}-0-at-{int(ends.timestamp())}"
    job = Job.fetch(job_id, connection=services.redis)
    assert job.func_name == "app.jobs.send_broadcast"
    assert job.args == (activity_id, 0)
    assert registry.get_scheduled_time(job) == ends.replace(microsecond=0)


def test_a_broadcast_goes_out_in_a_chain_of_batches(
        make_bank: Callable[..., TwilioBank], standin: TwilioStandIn) -> None:
    bank = make_bank()
    services = bank.services
    numbers = add_members(services, 250)
    activity_id = start_broadcast(services)

    Outbox(services).run_jobs()

    assert progress(services, activity_id) == {"sent": 250}
    with services.db.reading() as session:
        activity = session.get(Activity, activity_id)
        assert activity is not None and activity.recipients == 250
        assert activities.handed_over(activities.progress(session, activity_id)) == 250
    counts = accepted_counts(standin)
    assert {number: counts[number] for number in numbers} == dict.fromkeys(numbers, 1)
    assert len(standin.posts) == 250
    # A chain of batches of at most 100 (fewer when a batch runs out of time on a loaded
    # machine), each starting after the last text of the one before, and a last job that
    # finds nothing left.
    registry = services.queue.finished_job_registry
    chain = sorted((Job.fetch(job_id, connection=services.redis)
                    for job_id in registry.get_job_ids()
                    if job_id.startswith(f"broadcast-{activity_id}-")),
                   key=lambda job: job.args[1])
    starts = [job.args[1] for job in chain]
    results = [job.return_value() for job in chain]
    assert starts[0] == 0 and len(set(starts)) == len(starts), starts
    assert results[-1] == "done" and "done" not in results[:-1], results
    with services.db.reading() as session:
        ids = list(session.scalars(select(Message.id).where(
            Message.activity_id == activity_id).order_by(Message.id)))
    sent_by = [ids.index(start) + 1 if start else 0 for start in starts]  # after each batch
    sizes = [after - before for before, after in itertools.pairwise(sent_by)]
    assert all(0 < size <= 100 for size in sizes) and sum(sizes) == 250, sizes


def test_a_text_of_three_segments_takes_three_slots(
        make_bank: Callable[..., TwilioBank], monkeypatch: pytest.MonkeyPatch) -> None:
    """Twilio's rate is in segments: at 10 a second, a three-segment text holds the sender
    for 0.3 s before the next may go."""
    from app.transports import OutboundText

    bank = make_bank(send_rate=10.0)
    waits: list[float] = []
    monkeypatch.setattr(jobs.time, "sleep", waits.append)
    monkeypatch.setattr(jobs.time, "time", lambda: 1_000_000.0)  # both calls at one moment
    text = OutboundText(message_id=1, to="+447700900001", body="x", sender=BANK_SMS,
                        channel="sms")
    jobs._throttle(bank.services, text, 3)
    jobs._throttle(bank.services, text, 1)
    assert waits == [pytest.approx(0.3)]
