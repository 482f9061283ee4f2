"""Brokers running group activities and welcoming members by text, through the webhook."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from ledger import accounts, banks, members
from ledger.models import AuditEntry, Bank, Member, Message, Transfer
from tests.helpers import Phone

BROKER = "+447700900700"


@pytest.fixture
def bea(make_phone, services):
    phone = make_phone(BROKER)
    with services.db.writing() as session:
        members.make_broker(session, banks.bank_for_address(session, None), phone.number, "Bea")
    return phone


@pytest.fixture
def neighbours(make_phone):
    """Five members: three in Brixton (two gardeners), two in Clapham."""
    people = {}
    for n, (name, area, skills) in enumerate([
        ("Ana", "Brixton", "gardening, cooking"),
        ("Ben", "Brixton Hill", "lifts"),
        ("Cat", "Brixton", "garden work"),
        ("Dev", "Clapham", "gardening"),
        ("Eve", "Clapham", "shopping"),
    ]):
        phone = make_phone(f"+4477009008{n:02d}")
        phone.text(f"JOIN {name}")
        phone.text(skills)
        phone.text(area)
        phone.text("SKIP")
        people[name] = phone
    return people


def ref_of(text: str) -> int:
    return int(re.search(r"YES (\d+)", text).group(1))  # type: ignore[union-attr]


def sent_ref(text: str) -> int:
    """The number in "Broadcast 7 is on its way. Members invited: 5. …"."""
    found = re.fullmatch(r"Broadcast (\d+) is on its way\. Members invited: \d+\. "
                         r"To see who's coming, reply WHO \1", text)
    assert found, text
    return int(found.group(1))


def count(services, model, *where) -> int:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def balance(phone) -> str:  # type: ignore[no-untyped-def]
    return phone.reply("BALANCE").split(". ")[0]


def test_a_small_broadcast_goes_at_once_and_members_answer(bea, neighbours, outbox, services):
    reply = bea.reply("BROADCAST Seed swap Sat 2pm at St Mark's")
    ref = sent_ref(reply)
    assert "Members invited: 5." in reply
    for phone in neighbours.values():
        [invite] = outbox.to(phone.number)
        assert invite == (f"Lambeth Time Bank: Seed swap Sat 2pm at St Mark's\n"
                          f"Reply YES {ref} to come")
    assert outbox.to(bea.number) == []  # the broker is not invited to their own activity
    assert neighbours["Ana"].reply(f"YES {ref}") == (
        f"Thanks Ana, you're on the list for no. {ref}. If you can't come after all, "
        f"reply NO {ref}")
    assert neighbours["Ben"].reply("yes") .startswith("Thanks Ben, you're on the list")
    assert "off the list" in neighbours["Cat"].reply(f"NO {ref}")
    who = bea.reply(f"WHO {ref}")
    assert who == (f"Broadcast {ref}: coming 2, can't 1. Ana and Ben. Texts sent: 5 of 5. "
                   f"To credit them, reply CREDIT {ref} 2")


def test_credit_pays_everyone_coming_once_however_often_it_is_sent(
        bea, neighbours, outbox, services):
    ref = sent_ref(bea.reply("BROADCAST Litter pick Sunday"))
    neighbours["Ana"].text(f"YES {ref}")
    neighbours["Dev"].text(f"YES {ref}")
    outbox.run_jobs()
    reply = bea.reply(f"CREDIT {ref} 2")
    assert reply == (f"Broadcast {ref}: 2 hours each from the community fund. Credited now: 2. "
                     f"Credited before: 0. Reply WHO {ref} to check")
    assert balance(neighbours["Ana"]) == "Balance: 2 hours"
    assert outbox.to(neighbours["Dev"].number)[-1] == (
        f"Lambeth Time Bank credited you 2 hours for coming to no. {ref}. Thank you! "
        "Your balance: 2 hours")
    again = bea.reply(f"CREDIT {ref} 3")
    assert "Credited now: 0. Credited before: 2." in again
    assert bea.reply(f"WHO {ref}").startswith(f"Broadcast {ref}: coming 2, can't 0, credited 2.")
    assert balance(neighbours["Ana"]) == "Balance: 2 hours"
    assert count(services, Transfer, Transfer.kind == "activity") == 2
    # Latecomers named by number are credited; the others are not paid again.
    reply = bea.reply(f"CREDIT {ref} 2 {neighbours['Eve'].number} 07700 900800")
    assert "Credited now: 1. Credited before: 1." in reply
    assert balance(neighbours["Eve"]) == "Balance: 2 hours"
    assert balance(neighbours["Ana"]) == "Balance: 2 hours"
    with services.db.reading() as session:
        assert accounts.verify(session) == []
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "activity.credited")) == 2


def test_credit_names_a_number_that_is_not_a_member_and_pays_nobody(bea, neighbours, services):
    ref = sent_ref(bea.reply("BROADCAST Quiz night"))
    reply = bea.reply(f"CREDIT {ref} 1 {neighbours['Ana'].number} 07700900999")
    assert reply.startswith("No member of Lambeth Time Bank has the number +447700900999")
    assert count(services, Transfer) == 0
    assert "isn't a number we can read" in bea.reply(f"CREDIT {ref} 1 12345")
    assert "CREDIT 7 2" in bea.reply("CREDIT 7")
    assert bea.reply("CREDIT 999 2").startswith("Number 999 isn't a broadcast")
    assert "nobody was credited" in bea.reply(f"CREDIT {ref} 2")


def test_a_large_broadcast_waits_for_the_brokers_yes(bea, neighbours, outbox, services):
    with services.db.writing() as session:
        session.execute(update(Bank).values(broadcast_confirm_over=3))
    reply = bea.reply("BROADCAST Lunch club Friday 12:30, all welcome")
    ref = ref_of(reply)
    assert reply == (f"Broadcast {ref} goes to 5 members: 5 texts in all, 1 each. To send it, "
                     f"reply YES {ref}. To cancel, NO {ref}")
    assert count(services, Message, Message.kind == "broadcast") == 0
    # A member cannot send it, nor answer it before it goes.
    assert neighbours["Ana"].reply(f"YES {ref}").startswith(f"Sorry, I can't find number {ref}")
    assert count(services, Message, Message.kind == "broadcast") == 0
    assert sent_ref(bea.reply(f"YES {ref}")) == ref
    assert "already on its way. Members invited: 5." in bea.reply(f"YES {ref}")
    assert "can't be canceled" in bea.reply(f"NO {ref}")
    assert count(services, Message, Message.kind == "broadcast") == 5
    for phone in neighbours.values():
        assert len(outbox.to(phone.number)) == 1


def test_no_cancels_a_planned_broadcast_and_nothing_is_sent(bea, neighbours, outbox, services):
    with services.db.writing() as session:
        session.execute(update(Bank).values(broadcast_confirm_over=0))
    ref = ref_of(bea.reply("BROADCAST Coffee morning"))
    assert bea.reply(f"NO {ref}") == f"Broadcast {ref} canceled: nothing was sent"
    assert bea.reply(f"YES {ref}") == f"Broadcast {ref} canceled: nothing was sent"
    assert count(services, Message, Message.kind == "broadcast") == 0
    assert neighbours["Ana"].reply(f"YES {ref}").startswith(f"Sorry, no. {ref} has been called")


def test_a_broadcast_can_go_to_an_area_or_a_skill(bea, neighbours, outbox):
    reply = bea.reply("BROADCAST @brixton Street party Saturday")
    assert "Members invited: 3." in reply  # Ana, Ben (Brixton Hill) and Cat
    assert len(outbox.to(neighbours["Dev"].number)) == 0
    reply = bea.reply("BROADCAST #gardening Allotment open day")
    assert "Members invited: 3." in reply  # Ana, Cat ("garden work") and Dev
    assert len(outbox.to(neighbours["Eve"].number)) == 0
    assert bea.reply("BROADCAST @Brixton #shopping Market trip") == (
        "No members match @Brixton #shopping, so nothing was sent. Reply BROADCAST with "
        "another @area or #skill")
    assert "reply BROADCAST and the details" in bea.reply("BROADCAST @Brixton")


def test_a_broadcast_skips_members_who_stopped_left_or_are_on_hold(
        bea, neighbours, outbox, services):
    neighbours["Ana"].text("STOP")
    neighbours["Ben"].text("LEAVE")
    neighbours["Ben"].text("LEAVE NOW")  # confirmed (app.care.away)
    assert "Cat is on hold" in bea.reply(f"HOLD {neighbours['Cat'].number}")
    reply = bea.reply("BROADCAST Film night")
    assert "Members invited: 2." in reply
    assert outbox.to(neighbours["Ana"].number) == []
    assert outbox.to(neighbours["Ben"].number) == []
    assert outbox.to(neighbours["Cat"].number) == []


def test_members_cannot_use_broker_commands_and_nothing_is_sent(neighbours, outbox, services):
    ana = neighbours["Ana"]
    assert ana.reply("BROADCAST Free cake for all") == (
        "Sorry, only Lambeth Time Bank's brokers can do that")
    assert ana.reply("CREDIT 7 2") == "Sorry, only Lambeth Time Bank's brokers can do that"
    assert ana.reply("APPROVE 07700900801").startswith("Sorry, only")
    assert ana.reply("HOLD 07700900801").startswith("Sorry, only")
    assert ana.reply("WHO 7").startswith("Sorry, only")
    # Everyday words are not refused as broker commands.
    assert "Sorry, only" not in ana.reply("Who is this?")
    assert ana.reply("Credit?").startswith("Balance: 0 hours")
    assert count(services, Message) == 0
    assert count(services, Transfer) == 0


def test_approve_and_hold_by_number(bea, make_phone, outbox, services, settings):
    with services.db.writing() as session:
        session.execute(update(Bank).values(require_approval=True))
    kemi = make_phone("+447700900850")
    kemi.text("JOIN Kemi")
    assert bea.reply("APPROVE 07700 900850") == "Kemi is now an active member of Lambeth Time Bank"
    assert outbox.to(kemi.number)[-1].startswith("Good news, Kemi")
    assert bea.reply("APPROVE +447700900850") == (
        "Kemi is already an active member of Lambeth Time Bank")
    assert bea.reply("HOLD 07700900850").startswith("Kemi is on hold")
    assert "already on hold" in bea.reply("HOLD 07700900850")
    # On hold: no hours move.
    assert "welcome you soon" in kemi.reply("DONE 2 Bea gardening")
    assert bea.reply("APPROVE 07700900850").startswith("Kemi is now an active member")
    assert bea.reply("HOLD 07700900999").startswith("No member of Lambeth Time Bank")
    assert bea.reply("HOLD").startswith("Reply HOLD and the member's number")
    assert bea.reply(f"HOLD {BROKER}").startswith("Bea is a broker")
    with services.db.reading() as session:
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        held = session.scalars(select(Member).where(Member.name == "Kemi")).one()
    assert actions == ["member.approved", "member.held", "member.approved"]
    assert held.status == "active" and held.held_at is None


def test_a_retried_broadcast_webhook_sends_once(bea, neighbours, outbox, services):
    form = bea.form("BROADCAST Picnic in the park")
    first = bea.post(form)
    again = bea.post(form)
    assert first.data == again.data
    assert count(services, Message, Message.kind == "broadcast") == 5
    for phone in neighbours.values():
        assert len(outbox.to(phone.number)) == 1


_broker_words = st.sampled_from(
    ["BROADCAST", "BROADCAST @", "BROADCAST #", "BROADCAST @Brixton #", "WHO", "WHO 1",
     "WHO 99999999999", "CREDIT", "CREDIT 1", "CREDIT 1 2", "CREDIT 1 -2", "CREDIT 1 0.1",
     "CREDIT 1 2 07700", "CREDIT 1 2 +447700900800 +447700900800", "CREDIT 1 99",
     "APPROVE", "APPROVE +", "HOLD 0", "HOLD +447700900800", "APPROVE 07700900800",
     "YES 1", "NO 1", "YES", "RECORD 07700900800 2"])


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=_broker_words, rest=st.text(max_size=80))
def test_odd_broker_texts_get_an_answer_and_never_break_the_ledger(
        app, services, first, rest):
    services.redis.flushdb()  # each example starts afresh: no answers counted (app.caps)
    broker = Phone(app, BROKER)
    with services.db.writing() as session:
        members.make_broker(session, banks.bank_for_address(session, None), BROKER, "Bea")
    Phone(app, "+447700900800").text("JOIN Ana")
    answers = broker.text(f"{first} {rest}")
    assert len(answers) == 1 and answers[0].strip()
    with services.db.reading() as session:
        assert accounts.verify(session) == []


def test_a_broker_cannot_credit_themselves(bea, neighbours, services):
    ref = sent_ref(bea.reply("BROADCAST Quiz night"))
    assert bea.reply(f"CREDIT {ref} 10 {BROKER}").startswith("Brokers can't record hours for "
                                                             "themselves")
    assert count(services, Transfer) == 0


def test_credit_skips_people_who_left_or_are_on_hold_since_they_said_yes(
        bea, neighbours, services):
    ref = sent_ref(bea.reply("BROADCAST Quiz night"))
    for name in ("Ana", "Ben", "Cat"):
        neighbours[name].text(f"YES {ref}")
    neighbours["Ben"].text("LEAVE")
    neighbours["Ben"].text("LEAVE NOW")  # confirmed (app.care.away)
    bea.text(f"HOLD {neighbours['Cat'].number}")
    assert bea.reply(f"WHO {ref}").startswith(f"Broadcast {ref}: coming 1,")
    assert "Credited now: 1." in bea.reply(f"CREDIT {ref} 2")
    assert count(services, Transfer) == 1


def test_a_member_who_leaves_or_is_held_before_their_invitation_goes_is_not_texted(
        bea, neighbours, outbox, services):
    bea.text("BROADCAST Street party")  # recorded; the worker has not run yet
    neighbours["Ana"].text("LEAVE")
    neighbours["Ana"].text("LEAVE NOW")  # confirmed (app.care.away)
    bea.text(f"HOLD {neighbours['Ben'].number}")
    outbox.run_jobs()
    assert outbox.to(neighbours["Ana"].number) == []
    assert outbox.to(neighbours["Ben"].number) == []
    assert len(outbox.to(neighbours["Cat"].number)) == 1
    with services.db.reading() as session:
        reasons = sorted(session.scalars(select(Message.error_code).where(
            Message.kind == "broadcast", Message.status == "canceled")))
    assert reasons == ["left", "on-hold"]


def test_yes_alone_does_not_answer_an_invitation_not_yet_sent(bea, neighbours):
    bea.text("BROADCAST Street party")  # not yet handed to Twilio
    assert "nothing" in neighbours["Ana"].reply("YES").lower()


def test_an_unanswered_invitation_never_blocks_yes_alone(bea, neighbours, outbox):
    bea.text("BROADCAST Street party")
    outbox.run_jobs()
    ben = neighbours["Ben"]
    preview = ben.reply("GIVE 1 Ana")
    assert "reply YES" in preview
    assert ben.reply("YES") == "Done: 1 hour given to Ana. Your balance: -1 hour"
    # With nothing else waiting, YES alone answers the invitation.
    assert ben.reply("YES").startswith("Thanks Ben, you're on the list")
