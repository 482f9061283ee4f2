"""Offers, needs and matches by text, with the worker running the jobs."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from ledger import banks, members
from ledger.models import Ask, Post, Transfer
from tests.helpers import ref_in


@pytest.fixture
def people(make_phone, outbox):
    """Ana offers lifts (Lambeth); Sam can garden; Kemi drives too (Brixton); Bea is a broker."""
    def join(number: str, name: str, skills: str, area: str):  # type: ignore[no-untyped-def]
        phone = make_phone(number)
        phone.text(f"JOIN {name}")
        phone.text(skills)
        phone.text(area)
        phone.text("SKIP")
        return phone

    return {
        "ana": join("+447700900901", "Ana", "driving", "Lambeth"),
        "sam": join("+447700900902", "Sam", "gardening", "Lambeth"),
        "kemi": join("+447700900903", "Kemi", "lifts in my car", "Brixton"),
    }


def test_the_whole_journey_from_offer_to_receipts(people, make_phone, outbox, services):
    ana, kemi = people["ana"], people["kemi"]
    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    for answer in ("SKIP", "Lambeth", "SKIP"):
        bob.text(answer)
    assert "Your offer is saved" in ana.reply("OFFER lifts to the hospital")
    posted = bob.reply("NEED a lift to the clinic on Tuesday")
    assert "I'm asking neighbours who could help with: a lift to the clinic on Tuesday" in posted
    [ask] = outbox.to(ana.number)
    assert ask.startswith("Bob needs: a lift to the clinic on Tuesday (Lambeth). Reply YES ")
    assert "+44" not in ask  # no number before both agree
    ref = ref_in(ask)
    assert len(outbox.to(kemi.number)) == 1  # asked too, in the same wave
    intro = ana.reply(f"YES {ref}")
    assert intro.startswith("Thank you! You're helping Bob") and bob.number in intro
    [told] = outbox.to(bob.number)
    assert told.startswith("Good news: Ana can help with") and ana.number in told
    assert "someone else is already helping" in kemi.reply(f"YES {ref}")
    # After the help, the helper reports it on the match; Bob confirms.
    assert "I've asked Bob to confirm 2 hours" in ana.reply(f"DONE {ref} 2")
    confirm = outbox.to(bob.number)[-1]
    assert confirm.startswith("Ana says they helped you for 2 hours")
    bob.text(f"YES {ref_in(confirm)}")
    assert ana.reply("BALANCE").startswith("Balance: 2 hours")
    assert bob.reply("BALANCE").startswith("Balance: -2 hours")
    assert outbox.to(ana.number)[-1].startswith("Bob confirmed the 2 hours you gave")


def test_two_yes_at_once_match_exactly_one_helper(people, make_phone, outbox, services):
    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    bob.text("NEED a lift to the shops")
    ref = ref_in(outbox.to(people["ana"].number)[0])
    barrier = threading.Barrier(2)
    answers: dict[str, str] = {}

    def say_yes(name: str) -> None:
        barrier.wait()
        answers[name] = people[name].reply(f"YES {ref}")

    threads = [threading.Thread(target=say_yes, args=(n,)) for n in ("ana", "kemi")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [n for n, a in answers.items() if a.startswith("Thank you! You're helping")]
    assert len(winners) == 1
    assert sum("someone else is already helping" in a for a in answers.values()) == 1
    with services.db.reading() as session:
        assert session.scalar(select(func.count(Ask.id)).where(Ask.status == "accepted")) == 1
    assert len(outbox.to(bob.number)) == 1


def test_no_passes_to_the_next_helper_and_nobody_left_is_told(people, make_phone, outbox,
                                                               services):
    with services.db.writing() as session:
        members.make_broker(session, banks.bank_for_address(session, None),
                            "+447700900905", "Bea")
    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    bob.text("NEED help in the garden")
    [ask] = outbox.to(people["sam"].number)
    assert "pass" in ask
    assert "I'll ask someone else" in people["sam"].reply(f"NO {ref_in(ask)}")
    assert outbox.to(bob.number) == [
        "Sorry Bob, no one is free for: help in the garden yet. Someone from Lambeth Time "
        "Bank will be in touch"
    ]
    assert any("No helper found" in t for t in outbox.to("+447700900905"))


def test_a_stop_between_the_ask_and_the_answer(people, make_phone, outbox, services):
    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    people["ana"].text("STOP")
    bob.text("NEED a lift to the station")
    assert outbox.to(people["ana"].number) == []  # not asked after STOP
    ref = ref_in(outbox.to(people["kemi"].number)[0])
    people["kemi"].text("STOP")
    assert people["kemi"].text(f"YES {ref}") == []  # nothing is sent until START
    with services.db.reading() as session:
        need = session.scalars(select(Post).where(Post.kind == "need")).one()
        assert need.status == "open"
        assert session.scalar(select(func.count(Transfer.id))) == 0


def test_mine_and_close(people):
    ana = people["ana"]
    ana.text("OFFER lifts to the hospital")
    ana.text("NEED help with my laptop")
    mine = ana.reply("MINE")
    assert mine.startswith("Your needs and offers: ") and "need: help with my laptop" in mine
    ref = mine.split("Your needs and offers: ")[1].split()[0]
    assert ana.reply(f"CLOSE {ref}") == f"Number {ref} is closed. Thank you"
    assert "no open need or offer" in ana.reply(f"CLOSE {ref}")
    assert "CLOSE 42" in ana.reply("CLOSE")
    assert "e.g. NEED" in ana.reply("NEED")


def test_unanswered_needs_go_to_the_next_helpers_and_old_needs_expire(people, make_phone,
                                                                       outbox, services):
    from datetime import timedelta

    from app import jobs

    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    bob.text("NEED a lift to the market")
    assert len(outbox.to(people["ana"].number)) == 1
    with services.db.writing() as session:
        need = session.scalars(select(Post)).one()
        need.asked_at = need.asked_at - timedelta(hours=7)
    assert jobs.sweep()["next_waves"] == 1
    # Both drivers were asked in the first wave; the next finds nobody new to ask, so Bob
    # is told, and the first helpers may still say yes.
    assert outbox.to(bob.number)[-1].startswith("Sorry Bob, no one is free")
    with services.db.writing() as session:
        need = session.scalars(select(Post)).one()
        assert need.status == "open" and need.wave == 1
        need.expires_at = need.expires_at - timedelta(days=15)
    assert jobs.sweep()["needs_expired"] == 1
    with services.db.reading() as session:
        assert session.scalars(select(Post)).one().status == "expired"


def test_a_need_about_to_close_is_announced_and_can_be_renewed(people, make_phone, outbox,
                                                                services):
    from datetime import timedelta

    from app import jobs

    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    bob.text("NEED a lift to the market")
    with services.db.writing() as session:
        need = session.scalars(select(Post)).one()
        need.expires_at = need.expires_at - timedelta(days=13, hours=12)
        ref = need.ref
    assert jobs.sweep()["needs_warned"] == 1
    assert jobs.sweep()["needs_warned"] == 0
    assert outbox.to(bob.number)[-1] == (
        f"Your need (a lift to the market, no. {ref}) closes tomorrow. To keep it open, reply "
        f"RENEW {ref}"
    )
    assert bob.reply(f"RENEW {ref}").startswith(f"Number {ref} stays open for another 14 days")
    with services.db.reading() as session:
        need = session.scalars(select(Post)).one()
        assert need.expiry_warned_at is None and need.status == "open"


def test_the_helper_is_reminded_to_report_hours(people, make_phone, outbox, services):
    from datetime import timedelta

    from app import jobs

    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    bob.text("NEED a lift to the market")
    ref = ref_in(outbox.to(people["ana"].number)[0])
    people["ana"].text(f"YES {ref}")
    with services.db.writing() as session:
        need = session.scalars(select(Post)).one()
        need.matched_at = need.matched_at - timedelta(days=2)
    assert jobs.sweep()["done_reminded"] == 1
    assert outbox.to(people["ana"].number)[-1] == (
        f"Did you help Bob (a lift to the market)? Reply DONE {ref} and the hours, "
        f"e.g. DONE {ref} 2"
    )
    assert jobs.sweep()["done_reminded"] == 0


def test_brokers_see_who_was_asked_and_why(people, make_phone, outbox, cli):
    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    bob.text("NEED a lift to the clinic")
    outbox.run_jobs()
    shown = cli("needs").output
    assert "Bob: a lift to the clinic" in shown
    assert 'Ana (score' in shown and 'offers "driving"' in shown and "fits transport" in shown


def test_yes_alone_answers_the_one_ask_waiting(people, make_phone, outbox):
    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    bob.text("NEED help in the garden")
    assert len(outbox.to(people["sam"].number)) == 1
    assert people["sam"].reply("YES").startswith("Thank you! You're helping Bob")


def _matched(people, make_phone, outbox):  # type: ignore[no-untyped-def]
    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    bob.text("NEED a lift to the fair")
    ref = ref_in(outbox.to(people["ana"].number)[0])
    people["ana"].text(f"YES {ref}")
    return bob, ref


def test_hours_on_a_match_are_reported_once_whoever_reports(people, make_phone, outbox,
                                                             services):
    bob, ref = _matched(people, make_phone, outbox)
    ana = people["ana"]
    assert "I've asked Bob" in ana.reply(f"DONE {ref} 2")
    assert "already reported" in bob.reply(f"DONE {ref} 2")
    assert "already reported" in ana.reply(f"DONE {ref} 2")
    bob.text("YES")
    with services.db.reading() as session:
        assert session.scalar(select(func.sum(Transfer.minutes))) == 120


def test_a_member_who_left_is_never_introduced(people, make_phone, outbox):
    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    bob.text("NEED a lift to the fair")
    ref = ref_in(outbox.to(people["ana"].number)[0])
    bob.text("LEAVE")
    bob.text("LEAVE NOW")  # confirmed (app.care.away)
    reply = people["ana"].reply(f"YES {ref}")
    assert bob.number not in reply and "no help is needed" in reply
    assert not any("Good news" in t for t in outbox.to(bob.number))


def test_a_helper_can_step_back_and_others_are_asked(people, make_phone, outbox, services):
    bob, ref = _matched(people, make_phone, outbox)
    assert "I'll ask someone else" in people["ana"].reply(f"NO {ref}")
    assert any(t.startswith("Ana can't help with") for t in outbox.to(bob.number))
    with services.db.reading() as session:
        assert session.scalars(select(Post)).one().status == "open"
    assert people["kemi"].reply(f"YES {ref}").startswith("Thank you! You're helping Bob")


def test_a_need_closed_after_its_match_can_still_be_reported(people, make_phone, outbox):
    bob, ref = _matched(people, make_phone, outbox)
    bob.text(f"CLOSE {ref}")
    assert "I've asked Bob" in people["ana"].reply(f"DONE {ref} 1")


def test_a_need_whose_first_ask_was_lost_is_asked_by_the_sweep(people, make_phone, outbox,
                                                                services, monkeypatch):
    from datetime import timedelta

    from app import jobs

    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    real = services.queue.enqueue

    def lose_asks(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if path == "app.jobs.ask_helpers":
            raise ConnectionError("lost")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(services.queue, "enqueue", lose_asks)
    assert "I'm asking neighbours" in bob.reply("NEED a lift to the fair")
    monkeypatch.undo()
    with services.db.writing() as session:
        need = session.scalars(select(Post)).one()
        need.created_at = need.created_at - timedelta(minutes=11)
    assert jobs.sweep()["next_waves"] == 1
    assert len(outbox.to(people["ana"].number)) == 1


def test_a_repeated_introduction_is_answered_again_but_redis_keeps_no_number(
        people, make_phone, outbox, redis):
    """Twilio delivers the YES twice: the helper reads the same introduction, yet the first
    answer kept for 72 hours under the MessageSid shows no number in a dump of Redis."""
    from tests.helpers import ref_in, replies
    from tests.test_outbound import redis_contents

    ana = people["ana"]
    bob = make_phone("+447700900904")
    bob.text("JOIN Bob")
    bob.text("NEED a lift to the clinic")
    ref = ref_in(outbox.to(ana.number)[0])
    sid = "SM" + "7" * 32
    first = ana.send(f"YES {ref}", sid=sid)
    assert bob.number in replies(first)[0]
    assert ana.send(f"YES {ref}", sid=sid).data == first.data
    assert redis.ttl(f"tb:inbound:{sid}") > 71 * 3600
    for outbox_key in redis.scan_iter("tb:outbox:*"):  # the console's stand-in for phones
        redis.delete(outbox_key)
    dump = redis_contents(redis)
    for number in (ana.number, bob.number):
        national = number.replace("+44", "0")
        for form in (number, national, number[3:]):
            assert form.encode() not in dump, form


def test_a_kept_answer_the_bank_did_not_seal_is_never_sent(people, redis):
    """An answer written into Redis by someone else (or kept under another secret key) is
    not read back to the member: the repeat gets an empty answer."""
    from tests.helpers import replies

    sid = "SM" + "8" * 32
    redis.set(f"tb:inbound:{sid}", b"<Response><Message>forged</Message></Response>")
    again = people["sam"].send("BALANCE", sid=sid)
    assert replies(again) == []
