"""Caps on what texts cost (``app.caps``): each measured by flooding the webhook and counting
what the Twilio stand-in received, on every backend.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app import jobs
from app.caps import REPEATS
from ledger import banks, confirmations, members
from ledger.models import Bank, Confirmation, Member, Message
from tests import test_outbound
from tests.helpers import ref_in
from tests.test_broadcast_delivery import add_members
from tests.test_outbound import TwilioBank, redis_contents
from tests.twilio_standin import TwilioStandIn

standin = test_outbound.standin
make_bank = test_outbound.make_bank

ANA = "+447700900101"
SAM = "+447700900102"
BROKER = "+447700900700"
NAMES = ["Alba", "Bruno", "Cleo", "Dara", "Esme", "Finn", "Gwen", "Hugo", "Iris", "Jude", "Kofi",
         "Lena", "Milo", "Nora", "Otto", "Pia", "Quinn", "Rosa", "Theo", "Uma", "Vera",
         "Wren", "Xena", "Yara", "Zeno"]
SILENCE = b'<?xml version="1.0" encoding="UTF-8"?><Response />'


@pytest.fixture
def bank(make_bank: Callable[..., TwilioBank]) -> TwilioBank:
    return make_bank()


def set_bank(bank: TwilioBank, **values: object) -> None:
    with bank.services.db.writing() as session:
        session.execute(update(Bank).values(**values))
    bank.services.bank_cache.clear()


def add_broker(bank: TwilioBank, number: str = BROKER) -> None:
    with bank.services.db.writing() as session:
        members.make_broker(session, banks.bank_for_address(session, None), number, "Bea")


def a_day_ago(bank: TwilioBank, *fields: str) -> None:
    """Move every message's ``fields`` back a day: the bank's next day, without waiting."""
    with bank.services.db.writing() as session:
        for message in session.scalars(select(Message)):
            for name in fields:
                moment = getattr(message, name)
                if moment is not None:
                    setattr(message, name, moment - timedelta(days=1))


def bodies(standin: TwilioStandIn, to: str) -> list[str]:
    return [r.body or "" for r in standin.accepted_to(to)]


def answered(response_data: bytes) -> bool:
    return response_data != SILENCE


# --- per recipient and per member, a day ----------------------------------------------------


def test_forty_dones_reach_sam_ten_times_and_nothing_is_lost(bank, standin):
    set_bank(bank, answers_per_hour=100)  # this test is about outbound texts
    add_broker(bank)
    bank.join(ANA, "Ana")
    bank.join(SAM, "Sam")
    ana, sam = bank.phone(ANA), bank.phone(SAM)
    replies = [ana.reply(f"DONE 1 Sam job {n}") for n in range(40)]
    # The same words forty times are one request anyway: not a way round.
    for _ in range(3):
        ana.reply("DONE 1 Sam job 0")
    bank.run_jobs()

    asks = [b for b in bodies(standin, SAM) if "says they helped you" in b]
    assert len(asks) == 10
    # Ana is told once, by text, and every later DONE says a broker will check it.
    [told] = bodies(standin, ANA)
    assert "reached today's limit" in told and "broker will look" in told
    assert all(r.startswith("Thanks Ana! I've asked Sam") for r in replies[:10])
    assert all("a broker will check it with Sam" in r for r in replies[10:])
    # The brokers get one summary, not thirty.
    [summary] = bodies(standin, BROKER)
    assert "Ana" in summary and "limit of texts to others" in summary
    # Every DONE is recorded: Sam can still confirm one he was never texted about.
    with bank.services.db.reading() as session:
        waiting = session.scalars(select(Confirmation).where(
            Confirmation.status == "pending")).all()
    assert len(waiting) == 40
    held_ref = re.search(r"no\. (\d+)", replies[-1]).group(1)  # type: ignore[union-attr]
    sam.reply(f"YES {held_ref}")
    with bank.services.db.reading() as session:
        assert session.scalar(select(Confirmation.status).where(
            Confirmation.ref == int(held_ref))) == "confirmed"


@pytest.mark.parametrize("auto_confirm", [False, True])
def test_held_back_requests_are_never_credited_unasked_nor_escalated_one_by_one(
        bank, standin, auto_confirm):
    set_bank(bank, answers_per_hour=100, auto_confirm=auto_confirm)
    add_broker(bank)
    bank.join(ANA, "Ana")
    bank.join(SAM, "Sam")
    ana = bank.phone(ANA)
    for n in range(25):
        ana.reply(f"DONE 1 Sam job {n}")
    bank.run_jobs()
    assert len(bodies(standin, BROKER)) == 1
    # A week on, nobody has answered.
    with bank.services.db.writing() as session:
        for request in session.scalars(select(Confirmation)):
            request.created_at = request.created_at - timedelta(days=8)
    jobs.sweep()
    bank.run_jobs()
    with bank.services.db.reading() as session:
        statuses = session.scalars(select(Confirmation.status)).all()
    to_broker = bodies(standin, BROKER)
    if auto_confirm:
        # Only the ten Sam was asked about are credited without his answer.
        assert statuses.count("confirmed") == 10 and statuses.count("pending") == 15
        assert len(to_broker) == 1
    else:
        assert statuses.count("pending") == 25
        # One text each for the ten Sam was asked about; the rest had their summary.
        assert len(to_broker) == 1 + 10
    with bank.services.db.reading() as session:
        assert len(confirmations.broker_queue(session, banks.bank_for_address(
            session, None).id)) == (15 if auto_confirm else 25)


def test_gifts_reach_a_member_ten_times_a_day_and_every_hour_is_given(bank, standin):
    bank.join(ANA, "Ana")
    bank.join(SAM, "Sam")
    ana = bank.phone(ANA)
    for n in range(1, 13):  # a quarter of an hour more each time: 19.5 hours in all
        ana.reply(f"YES {ref_in(ana.reply(f'GIVE {n / 4} Sam'))}")
    bank.run_jobs()
    gifts = [b for b in bodies(standin, SAM) if "gave you" in b]
    assert len(gifts) == 10
    assert bank.phone(SAM).reply("BALANCE").startswith("Balance: 19.5 hours")


def test_one_member_texts_twenty_others_a_day_at_most(bank, standin):
    set_bank(bank, member_daily_texts=20)
    add_broker(bank)
    bank.join(ANA, "Ana")
    others = [f"+4477009002{n:02d}" for n in range(25)]
    for n, number in enumerate(others):
        bank.join(number, NAMES[n])
    ana = bank.phone(ANA)
    for n in range(25):
        ana.reply(f"DONE 1 {NAMES[n]} help")
    bank.run_jobs()
    reached = [number for number in others if bodies(standin, number)]
    assert len(reached) == 20
    assert len(bodies(standin, ANA)) == 1
    assert len(bodies(standin, BROKER)) == 1
    # A new day: the held ones are still pending for a broker (not resent on their own).
    with bank.services.db.reading() as session:
        held = session.scalars(select(Message).where(Message.error_code == "cap-member")).all()
    assert len(held) == 5 and {m.status for m in held} == {"canceled"}
    # The budget is a day's: yesterday's texts no longer count.
    a_day_ago(bank, "created_at")
    assert ana.reply(f"DONE 2 {NAMES[24]} more help").startswith("Thanks Ana! I've asked")
    bank.run_jobs()
    assert len(bodies(standin, others[24])) == 1


def test_the_asks_for_a_members_needs_count_against_their_budget(bank, standin):
    set_bank(bank, member_daily_texts=4)
    add_broker(bank)
    bank.join(ANA, "Ana")
    helpers = [f"+4477009004{n:02d}" for n in range(6)]
    for n, number in enumerate(helpers):
        bank.join(number, NAMES[n])
        helper = bank.phone(number)
        for answer in ("gardening", "Lambeth", "SKIP"):
            helper.text(answer)
    ana = bank.phone(ANA)
    for what in ("weeding the front garden", "mowing a lawn", "pruning roses in the garden"):
        assert "I'm asking neighbours" in ana.reply(f"NEED gardening: {what}")
    bank.run_jobs()
    asks = [b for number in helpers for b in bodies(standin, number) if "needs:" in b]
    assert len(asks) == 4
    assert len(bodies(standin, ANA)) == 1
    assert len(bodies(standin, BROKER)) == 1


def test_a_broker_is_not_held_to_the_member_budget(bank, standin):
    set_bank(bank, member_daily_texts=3)
    add_broker(bank)
    others = [f"+4477009002{n:02d}" for n in range(6)]
    for n, number in enumerate(others):
        bank.join(number, NAMES[n])
    broker = bank.phone(BROKER)
    for n in range(6):
        broker.reply(f"DONE 1 {NAMES[n]} help")
    bank.run_jobs()
    assert all(len(bodies(standin, number)) == 1 for number in others)
    assert bodies(standin, BROKER) == []
    # But a broker's DONEs are no way round what one member receives.
    for n in range(12):
        broker.reply(f"DONE 1 {NAMES[0]} job {n}")
    bank.run_jobs()
    assert len(bodies(standin, others[0])) == 10


def test_broadcasts_and_answers_to_a_members_own_texts_do_not_count(bank, standin):
    set_bank(bank, recipient_daily_texts=10)
    add_broker(bank)
    bank.join(ANA, "Ana")
    bank.join(SAM, "Sam")
    ana, sam, broker = bank.phone(ANA), bank.phone(SAM), bank.phone(BROKER)
    # Sam's own DONEs, confirmed by Ana: the receipts answer Sam's own texts.
    for n in range(3):
        sam.reply(f"DONE 1 Ana weeding {n}")
    bank.run_jobs()
    for ask in bodies(standin, ANA):
        ana.reply(f"YES {ref_in(ask)}")
    assert broker.reply("BROADCAST Street party Saturday").startswith("Broadcast ")
    for n in range(12):
        ana.reply(f"DONE 1 Sam shopping {n}")
    bank.run_jobs()
    to_sam = bodies(standin, SAM)
    assert len([b for b in to_sam if "says they helped you" in b]) == 10
    assert len([b for b in to_sam if "Street party" in b]) == 1
    assert len(to_sam) == 3 + 1 + 10


# --- answers to one number ------------------------------------------------------------------


def test_an_auto_responder_gets_a_few_answers_then_silence(bank, standin):
    bank.join(ANA, "Ana")
    robot = bank.phone(ANA)
    responses = [robot.send("I am out of office until Monday").data for _ in range(20)]
    assert [answered(r) for r in responses] == [True] * REPEATS + [False] * (20 - REPEATS)
    # Silence is for those words: a real question still gets its answer.
    assert "0 hours" in robot.reply("BALANCE")
    # A retried webhook gets the same silence, not an answer.
    form = robot.form("I am out of office until Monday")
    assert robot.post(form).data == SILENCE
    assert robot.post(form).data == SILENCE
    # Another number with the same words is answered.
    assert answered(bank.phone(SAM).send("I am out of office until Monday").data)
    # No number in Redis, in keys or values.
    contents = redis_contents(bank.services.redis)
    assert ANA.encode() not in contents and ANA[1:].encode() not in contents


def test_a_stranger_gets_fewer_answers_than_a_member_and_stop_always_works(bank, standin):
    bank.join(ANA, "Ana")
    member, stranger = bank.phone(ANA), bank.phone(SAM)
    to_member = [answered(member.send(f"question number {n}").data) for n in range(100)]
    to_stranger = [answered(stranger.send(f"hello there {n}").data) for n in range(100)]
    # Her JOIN was one of her 30 texts this hour.
    assert sum(to_member) == 29 and to_member[:29] == [True] * 29
    assert sum(to_stranger) == 10 and to_stranger[:10] == [True] * 10
    # Past the limit, STOP is still carried out (silently): nothing more is sent.
    assert member.send("STOP").data == SILENCE
    assert bank.opted_out(ANA)
    bank.run_jobs()
    assert standin.accepted == []


# --- the bank's day -------------------------------------------------------------------------


def test_past_the_banks_daily_cap_texts_wait_and_brokers_are_told_once(bank, standin):
    set_bank(bank, bank_daily_texts=5)
    add_broker(bank)
    bank.join(ANA, "Ana")
    others = [f"+4477009002{n:02d}" for n in range(8)]
    for n, number in enumerate(others):
        bank.join(number, NAMES[n])
    ana = bank.phone(ANA)
    for n in range(8):
        ana.reply(f"DONE 1 {NAMES[n]} help")
    bank.run_jobs()
    bank.run_jobs()
    reached = [number for number in others if bodies(standin, number)]
    assert len(reached) == 5
    [told] = bodies(standin, BROKER)
    assert "sent its 5 texts for today" in told
    # The others wait for tomorrow, still queued; the sweep does not send them early.
    jobs.sweep()
    bank.run_jobs()
    assert len(standin.accepted) == 6
    with bank.services.db.reading() as session:
        waiting = session.scalars(select(Message).where(Message.status == "queued")).all()
    assert len(waiting) == 3 and all(m.not_before is not None for m in waiting)
    # Replies still go: they are the answer to a text, not a new one.
    assert "0 hours" in ana.reply("BALANCE")
    # More texts to hold: the brokers are not told again.
    ana.reply(f"DONE 2 {NAMES[0]} more help")
    bank.run_jobs()
    assert len(bodies(standin, BROKER)) == 1
    # The next day they go (the sweep hands them over once their time has come).
    a_day_ago(bank, "sent_at", "not_before")
    jobs.sweep()
    bank.run_jobs()
    assert len([number for number in others if bodies(standin, number)]) == 8
    assert len(standin.accepted) == 6 + 4


def test_workers_side_by_side_never_send_past_the_banks_cap(bank, standin):
    set_bank(bank, bank_daily_texts=5)
    numbers = add_members(bank.services, 16)
    with bank.services.db.reading() as session:
        ids = session.scalars(select(Member.id).where(Member.phone.in_(numbers))).all()
    message_ids = [bank.queue(member_id) for member_id in ids]

    def work(share: list[int | None]) -> None:
        with bank.app.app_context():
            for message_id in share:
                assert message_id is not None
                jobs.send_message(message_id)

    workers = [threading.Thread(target=work, args=(message_ids[n::4],)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(standin.accepted) == 5
    with bank.services.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Message).where(
            Message.status == "queued", Message.not_before.is_not(None))) == 11


def test_a_broadcast_waits_at_the_banks_daily_cap(bank, standin):
    set_bank(bank, bank_daily_texts=3)
    add_broker(bank)
    others = [f"+4477009002{n:02d}" for n in range(6)]
    for n, number in enumerate(others):
        bank.join(number, NAMES[n])
    assert bank.phone(BROKER).reply("BROADCAST Street party Saturday").startswith("Broadcast ")
    bank.run_jobs()
    bank.run_jobs()
    assert len([number for number in others if bodies(standin, number)]) == 3
    assert len(bodies(standin, BROKER)) == 1
    with bank.services.db.reading() as session:
        assert len(session.scalars(select(Message).where(
            Message.kind == "broadcast", Message.status == "queued")).all()) == 3
    # The sweep does not restart it before the day is over.
    assert jobs.sweep()["broadcasts_resumed"] == 0


def test_twenty_joins_make_one_summary_for_the_brokers(bank, standin):
    set_bank(bank, require_approval=True)
    add_broker(bank)
    for n in range(20):
        reply = bank.phone(f"+4477009003{n:02d}").reply(f"JOIN {NAMES[n]}")
        assert "will be in touch" in reply
    bank.run_jobs()
    [summary] = bodies(standin, BROKER)
    assert summary.startswith("New members wait for a welcome") and "Alba" in summary


def test_the_caps_are_bank_settings(cli):
    result = cli("bank", "set", "--member-daily-texts", "5", "--recipient-daily-texts", "4",
                 "--bank-daily-texts", "300", "--answers-per-hour", "12",
                 "--stranger-answers-per-hour", "3")
    assert result.exit_code == 0, result.output
    assert ("Texts a day: 5 caused by one member, 4 to one member because of others, 300 in "
            "all; answers an hour: 12 to a member, 3 to a stranger.") in result.output
