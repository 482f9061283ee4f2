"""Harvesting numbers: a member who lists every skill there is, to be asked about every need
and collect every requester's number, and links written into needs and areas.

The caps are counted where a member's phone would see them: what the Twilio stand-in accepted
(through the real twilio client, as in test_outbound.py), the TwiML replies, and the outbox.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from app import jobs
from ledger import banks, members
from ledger.matching import VOCABULARY
from ledger.models import Ask, Bank, Member, Post, utcnow
from tests import test_dashboard, test_outbound
from tests.helpers import join, ref_in
from tests.test_dashboard import post, text_of
from tests.test_outbound import TwilioBank

standin = test_outbound.standin
make_bank = test_outbound.make_bank
broker = test_dashboard.broker
client = test_dashboard.client
signed_in = test_dashboard.signed_in

STU = "+447700900800"
GINA = "+447700900801"
ANA = "+447700900802"
BOB = "+447700900803"
CY = "+447700900804"
BEA = "+447700900805"
# Four words of every category, 64 in all: more than one answer can hold, so the rest goes in
# an offer, which matching reads with the skills.
STUFFED = " ".join(word for words in VOCABULARY.values() for word in words[:4])
NEEDS = [
    "help with my garden", "a lift to the clinic", "someone to fix my shelves",
    "help with my laptop", "a chat and a cup of tea", "help with the weekly shopping",
    "someone to walk my dog", "help with some forms", "cooking a meal", "mending a coat",
]
# What would make a link in a text: schemes, www., short links, domains, e-mail addresses.
LINK = re.compile(r"https?|hxxp|://|www|bit\.ly|example|evil|@", re.IGNORECASE)


def asks_to(standin, number: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.body or "" for r in standin.accepted_to(number) if "needs:" in (r.body or "")]


def test_a_member_who_lists_every_skill_is_asked_about_three_needs_a_day(make_bank, standin):
    bank: TwilioBank = make_bank()
    cut = STUFFED[:300].rsplit(" ", 1)[0]
    stu = join(bank.phone(STU), "Stu", cut, "Lambeth")
    assert "Your offer is saved" in stu.text("OFFER " + STUFFED[len(cut):].strip())[0]
    join(bank.phone(GINA), "Gina", "gardening, weeding, mowing", "Brixton")
    requesters = [join(bank.phone(f"+4477009008{n:02d}"), name, area="Lambeth")
                  for n, name in enumerate(["Ann", "Ben", "Cat", "Dan", "Eve"], start=10)]
    # Ten needs from five neighbours in one day, each one the stuffed list fits.
    for n, need in enumerate(NEEDS):
        assert "I'm asking neighbours" in requesters[n % 5].text(f"NEED {need}")[0]
    bank.run_jobs()
    asked = asks_to(standin, STU)
    assert len(asked) == 3
    # The gardener is asked about the garden whatever the stuffed list does.
    assert asks_to(standin, GINA) == [
        f"Ann needs: help with my garden (Lambeth). Reply YES {ref_in(asked[0])} to help or "
        f"NO {ref_in(asked[0])} to pass"]
    # Saying NO at once does not bring more asks today: each NO starts the next wave, and
    # later waves by the sweep pass Stu by too.
    for ask in asked:
        stu.text(f"NO {ref_in(ask)}")
    with bank.services.db.writing() as session:
        session.execute(update(Post).values(asked_at=utcnow() - timedelta(hours=7)))
    jobs.sweep()
    bank.run_jobs()
    assert len(asks_to(standin, STU)) == 3
    # The next day Stu may be asked about three more.
    with bank.services.db.writing() as session:
        for ask in session.scalars(select(Ask)):
            ask.created_at -= timedelta(days=1)
        session.execute(update(Post).values(asked_at=utcnow() - timedelta(hours=7)))
    jobs.sweep()
    bank.run_jobs()
    assert len(asks_to(standin, STU)) == 6
    assert len({ref_in(ask) for ask in asks_to(standin, STU)}) == 6


def test_links_a_member_writes_never_reach_other_members(make_bank, standin):
    bank: TwilioBank = make_bank()
    with bank.services.db.writing() as session:
        session.execute(update(Bank).values(asks_per_helper_per_day=20))
        members.make_broker(session, banks.bank_for_address(session, None), BEA, "Bea")
    ana = join(bank.phone(ANA), "Ana", "driving", "Lambeth")
    bob = join(bank.phone(BOB), "Bob", area="Brixton bit.ly/brixton")
    cy = join(bank.phone(CY), "Cy", area="www.example.com")
    for need in [
        "a lift to the clinic on Tuesday www.example.com bit.ly/abc",
        "a lift, see HTTP://EXAMPLE.COM/route",
        "a lift hxxps://evil.example.com/login",
        "a lift: example.com/path",
        "a lift WWW.EXAMPLE.ORG",
        "a lift, text bob@example.com",
        "a lift \uff57\uff57\uff57\uff0e\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43"
        "\uff4f\uff4d",  # full-width letters and dots
        "bit.ly/abc",  # nothing but a link: about nothing a helper could read
    ]:
        bob.text(f"NEED {need}")
    cy.text("NEED a lift")
    bank.run_jobs()
    asked = asks_to(standin, ANA)
    assert [a.split(". Reply")[0] for a in asked] == [
        "Bob needs: a lift to the clinic on Tuesday (Brixton)",
        "Bob needs: a lift, see (Brixton)",
        "Bob needs: a lift (Brixton)",
        "Bob needs: a lift (Brixton)",
        "Bob needs: a lift (Brixton)",
        "Bob needs: a lift, text (Brixton)",
        "Bob needs: a lift (Brixton)",
        "Cy needs: a lift",
    ]
    # The introduction after YES, and a report of hours with a link in it, carry none either.
    intro = ana.reply(f"YES {ref_in(asked[0])}")
    assert intro.startswith("Thank you! You're helping Bob: a lift to the clinic on Tuesday.")
    assert "I've asked Bob to confirm" in ana.reply("DONE 1 Bob lifts, receipts at bit.ly/pay")
    bank.run_jobs()
    assert not LINK.search(intro)
    [confirm] = [r.body for r in standin.accepted_to(BOB) if "says they helped" in (r.body or "")]
    assert confirm.startswith("Ana says they helped you for 1 hour (lifts, receipts at).")
    # Brokers hear about the need that was only a link, without it.
    assert any("for Bob: help (no. " in (r.body or "") for r in standin.accepted_to(BEA))
    for sent in standin.accepted:
        if sent.to not in (BOB, CY):  # what goes back to the member who wrote it
            assert not LINK.search(sent.body or ""), sent.body
    # What was written is kept as written.
    with bank.services.db.reading() as session:
        assert session.scalar(select(Member.area).where(Member.phone == CY)) == "www.example.com"
        assert "bit.ly/abc" in session.scalars(select(Post.text)).all()


def test_brokers_set_the_limit_see_who_was_asked_enough_and_see_the_links(
        signed_in, make_phone, outbox, services, cli):
    assert "at most 1 asks per helper a day" in cli(
        "bank", "set", "--asks-per-helper-per-day", "1").output
    ana, bob = make_phone(ANA), make_phone(BOB)
    join(ana, "Ana", "driving", "Lambeth")
    join(bob, "Bob", area="Lambeth")
    bob.text("NEED a lift to the clinic, see www.example.com")
    bob.text("NEED a lift home bit.ly/abc")
    [ask] = outbox.to(ANA)
    assert ask.startswith("Bob needs: a lift to the clinic, see (Lambeth). Reply YES")
    page = text_of(signed_in.get("/dashboard/needs"))
    assert "a lift to the clinic, see www.example.com" in page
    assert "a lift home bit.ly/abc" in page
    assert "asked enough today" in page
    assert "Asked enough today (asked again tomorrow): Ana" in cli("needs").output
    # A broker may still ask her by hand, knowingly; the text carries no link.
    with services.db.reading() as session:
        second = session.scalars(select(Post).where(Post.text.like("%home%"))).one()
        ana_id = session.scalars(select(Member.id).where(Member.phone == ANA)).one()
    done = post(signed_in, f"/dashboard/needs/{second.id}/ask", {"member_id": str(ana_id)})
    assert "Ana has been asked" in text_of(done)
    assert outbox.to(ANA)[-1] == (
        f"Bob needs: a lift home (Lambeth). Reply YES {second.ref} to help or NO "
        f"{second.ref} to pass")
