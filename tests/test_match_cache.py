"""The match index a worker keeps between asking waves: reused while nothing matching reads
has changed, and never stale when something has (through the webhook, and from another
process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app.cli import prepare
from ledger import banks, match_cache, members
from ledger.models import Ask, Bank, Member, Post
from tests.conftest import wipe
from tests.helpers import join

ROOT = Path(__file__).resolve().parent.parent
BROKER = "+447700900700"


@pytest.fixture(autouse=True)
def fresh_cache():  # type: ignore[no-untyped-def]
    match_cache.forget()
    yield
    match_cache.forget()


@pytest.fixture
def drivers(make_phone, outbox):  # type: ignore[no-untyped-def]
    """Ana and Kemi drive (Lambeth); Bob needs lifts; the first need builds the index."""
    people = {
        "ana": join(make_phone("+447700900901"), "Ana", "driving", "Lambeth"),
        "kemi": join(make_phone("+447700900903"), "Kemi", "lifts in my car", "Lambeth"),
        "bob": join(make_phone("+447700900904"), "Bob", "SKIP", "Lambeth"),
    }
    people["bob"].text("NEED a lift to the clinic")
    assert len(outbox.to(people["ana"].number)) == 1
    assert len(outbox.to(people["kemi"].number)) == 1
    return people


def _need_again(bob, outbox):  # type: ignore[no-untyped-def]
    """Bob needs another lift; the worker runs the wave. Nobody else changed anything, so
    only the change under test can have moved the bank's match version on."""
    assert "asking neighbours" in bob.reply("NEED a lift to the shops")
    outbox.run_jobs()


def _hold(services, make_phone, number: str) -> None:  # type: ignore[no-untyped-def]
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        members.make_broker(session, bank, BROKER, "Bea")
    assert "is on hold" in make_phone(BROKER).reply(f"HOLD {number}")


@pytest.mark.parametrize("change", ["skills", "leave", "stop", "hold", "away", "other process"])
def test_a_helper_who_changed_is_not_asked_from_the_kept_index(change, drivers, make_phone,
                                                               outbox, services, backend):
    ana = drivers["ana"]
    if change == "skills":
        ana.text("SKILLS knitting")
    elif change == "leave":
        ana.text("LEAVE")
        ana.text("LEAVE NOW")
    elif change == "stop":
        ana.text("STOP")
    elif change == "away":
        ana.text("AWAY")
    elif change == "hold":
        _hold(services, make_phone, ana.number)
    else:  # a broker's tool in another process puts Ana on hold, through the ORM
        script = (
            "import sys; from sqlalchemy import select; from ledger.db import Database; "
            "from ledger.models import Member\n"
            "db = Database(sys.argv[1])\n"
            "with db.writing() as s:\n"
            "    s.scalars(select(Member).where(Member.phone == sys.argv[2])).one().status = "
            "'pending'\n"
        )
        subprocess.run([sys.executable, "-c", script, backend.database_url, ana.number],
                       cwd=ROOT, check=True, timeout=60)
    before = len(outbox.to(ana.number, status=None))
    _need_again(drivers["bob"], outbox)
    asked = outbox.to(ana.number, status=None)[before:]
    assert not any("needs:" in text for text in asked), asked
    # Not even asked without a text: the wave's places went to those who could help.
    with services.db.reading() as session:
        asked_names = set(session.scalars(
            select(Member.name).join(Ask, Ask.member_id == Member.id).join(
                Post, Post.id == Ask.post_id).where(Post.text == "a lift to the shops")))
    assert asked_names == {"Kemi"}
    assert outbox.to(drivers["kemi"].number)[-1].startswith("Bob needs: a lift to the shops")


def test_a_helper_who_joins_or_offers_after_the_index_was_built_is_asked(
        drivers, make_phone, outbox):
    dee = join(make_phone("+447700900906"), "Dee", "gardening", "Lambeth")
    assert "Your offer is saved" in dee.reply("OFFER lifts to the hospital")
    eve = join(make_phone("+447700900907"), "Eve", "driving", "Lambeth")
    drivers["ana"].text("LEAVE")
    drivers["kemi"].text("LEAVE")
    _need_again(drivers["bob"], outbox)
    assert outbox.to(dee.number)[-1].startswith("Bob needs: a lift to the shops")
    assert outbox.to(eve.number)[-1].startswith("Bob needs: a lift to the shops")


def _version(services) -> int:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        bank = banks.bank_for_address(session, None)
        return int(session.scalar(select(Bank.match_version).where(Bank.id == bank.id)))


def test_the_index_is_kept_while_nothing_matching_reads_changes(drivers, make_phone, outbox,
                                                                services):
    with services.db.reading() as session:
        bank_id = banks.bank_for_address(session, None).id
        kept = match_cache.index_for(session, bank_id)
    version = _version(services)
    # Needs, balances, answers and a stranger's texts change nothing matching reads.
    drivers["bob"].text("NEED help with my computer")
    drivers["bob"].text("BALANCE")
    drivers["ana"].text("MINE")
    make_phone("+447700900999").text("hello")
    outbox.run_jobs()
    assert _version(services) == version
    with services.db.reading() as session:
        assert match_cache.index_for(session, bank_id) is kept
    # An area moved: a new index, in which Ana lives elsewhere.
    drivers["ana"].text("AREA Brixton")
    assert _version(services) != version
    with services.db.reading() as session:
        fresh = match_cache.index_for(session, bank_id)
    assert fresh is not kept
    ana_id = next(m for m, h in fresh.helpers.items() if h.name == "Ana")
    assert fresh.helpers[ana_id].area == "Brixton"


def test_a_change_rolled_back_does_not_move_the_version(drivers, services):
    version = _version(services)
    with pytest.raises(RuntimeError), services.db.writing() as session:
        member = session.scalars(select(Member).where(Member.name == "Ana")).one()
        member.skills = "knitting"
        session.flush()
        raise RuntimeError("the transaction fails")
    assert _version(services) == version


def test_an_offer_posted_after_the_index_was_built_is_seen(drivers, make_phone, outbox):
    dee = join(make_phone("+447700900906"), "Dee", "gardening", "Lambeth")
    drivers["bob"].text("NEED a lift to the fair")  # the index, again, with Dee the gardener
    outbox.run_jobs()
    assert not any("needs:" in text for text in outbox.to(dee.number))
    assert "Your offer is saved" in dee.reply("OFFER lifts to the hospital")
    # Nobody else changed anything since (a member joining would move the version on too).
    assert "asking neighbours" in drivers["bob"].reply("NEED a lift to the shops")
    assert outbox.to(dee.number)[-1].startswith("Bob needs: a lift to the shops")


def test_a_database_wiped_and_filled_again_never_gets_an_old_index(make_phone, outbox,
                                                                    services):
    """The same changes in the same order after a wipe (or a restore) must not bring back a
    version a worker kept an index for: versions are random, not counted."""
    def fill(ana_skills: str) -> set[str]:
        join(make_phone("+447700900901"), "Ana", ana_skills, "Lambeth")
        join(make_phone("+447700900903"), "Kemi", "lifts in my car", "Lambeth")
        bob = join(make_phone("+447700900904"), "Bob", "SKIP", "Lambeth")
        _need_again(bob, outbox)
        with services.db.reading() as session:
            return set(session.scalars(select(Member.name).join(Ask, Ask.member_id == Member.id)))

    assert fill("driving") == {"Ana", "Kemi"}
    wipe(services)
    prepare(services)
    assert fill("knitting") == {"Kemi"}
