"""No text is assembled from fragments a translator cannot reorder.

The ledger stores codes and data (a gift's kind, the activity in a credit's key, the reason
for a correction); the words a member reads ("gift", "group activity 7: …", "correction: …",
"the community fund", lists of names) are made from catalogue entries when the text is
rendered, in the member's language. Rows written before keep their words as they were.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from app import effects
from app.ledger_words import transfer_what
from conversations.texts import listed, render
from ledger import banks, members
from ledger.models import Account, Transfer
from tests.helpers import ref_in

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sam(make_phone):
    phone = make_phone("+447700900801")
    phone.text("JOIN Sam")
    return phone


@pytest.fixture
def ana(make_phone):
    phone = make_phone("+447700900802")
    phone.text("JOIN Ana")
    return phone


@pytest.fixture
def bea(make_phone, services):
    phone = make_phone("+447700900803")
    with services.db.writing() as session:
        members.make_broker(session, banks.bank_for_address(session, None), phone.number, "Bea")
    return phone


def transfers(services) -> list[Transfer]:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        rows = list(session.scalars(select(Transfer).order_by(Transfer.id)))
        session.expunge_all()
        return rows


def test_a_gift_is_stored_without_words_and_shown_as_a_gift(sam, ana, services):
    sam.reply(f"YES {ref_in(sam.reply('GIVE 2 Ana'))}")
    [gift] = transfers(services)
    assert (gift.kind, gift.description) == ("gift", "")
    statement = ana.reply("STATEMENT")
    assert "+2 hours from Sam: gift" in statement, statement


def test_a_group_activity_credit_stores_the_activity_not_a_sentence(bea, ana, outbox, services):
    sent = bea.reply("BROADCAST Seed swap Saturday 2pm")
    outbox.run_jobs()
    ref = int(re.search(r"Broadcast (\d+)", sent).group(1))  # type: ignore[union-attr]
    ana.reply(f"YES {ref}")
    bea.reply(f"CREDIT {ref} 2")
    [credit] = transfers(services)
    assert (credit.kind, credit.description) == ("activity", "")
    statement = ana.reply("STATEMENT")
    assert f"from the community fund: group activity {ref}: Seed swap Saturday" in statement


def test_a_correction_stores_the_reason_and_says_what_it_corrects(sam, ana, outbox, services):
    sam.reply("DONE 2 Ana gardening")
    ana.reply(f"YES {ref_in(outbox.to(ana.number)[-1])}")
    [exchange] = transfers(services)
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        effects.reverse(session, bank, exchange.id, "wrong member")
    reversal = transfers(services)[-1]
    assert (reversal.kind, reversal.description) == ("reversal", "wrong member")
    told = outbox.to(ana.number, status=None)[-1]  # queued by the caller's transaction
    assert "2 hours from Ana to Sam (gardening) was reversed" in told, told
    assert "correction: wrong member" in ana.reply("STATEMENT")


@pytest.mark.parametrize(("kind", "words"), [
    ("gift", "gift"), ("activity", "Group activity 3: Seed swap"),
    ("reversal", "reverses #1: wrong member"), ("exchange", "gardening"),
])
def test_rows_written_before_keep_their_words(kind, words, sam, services):
    with services.db.reading() as session:
        transfer = Transfer(kind=kind, description=words, reverses_id=1,
                            idempotency_key="old:1")
        assert transfer_what(session, transfer, "en") == words


def test_the_community_fund_and_lists_are_in_the_members_language(sam, services):
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        fund = banks.ensure_fund(session, bank)
        assert effects.account_label(session, fund, "en") == render("community_fund", "en")
        assert isinstance(session.get(Account, fund.id), Account)
    assert listed(["Ana", "Ben", "Kemi"]) == "Ana, Ben and Kemi"
    assert listed(["Ana"]) == "Ana" and listed([]) == ""


def test_who_lists_names_as_the_language_does(bea, make_phone, outbox):
    phones = [make_phone(f"+4477009008{i:02d}") for i in range(10, 16)]
    for i, phone in enumerate(phones):
        phone.text(f"JOIN N{chr(65 + i)}")
    sent = bea.reply("BROADCAST Lunch club Friday")
    outbox.run_jobs()
    ref = int(re.search(r"Broadcast (\d+)", sent).group(1))  # type: ignore[union-attr]
    for phone in phones:
        phone.reply(f"YES {ref}")
    who = bea.text(f"WHO {ref}")[0]
    assert ". NA, NB, NC, ND and 2 more. " in who, who


# Code that writes words a member reads must not join them by hand: a translator could not
# change the order or the word for "and". (app/ledger_words.py reads the old words.)
RENDERING = ["app/effects.py", "app/care/away.py", "app/care/inbox.py", "app/outbound.py",
             "app/broadcasts.py", "app/jobs.py", "ledger/accounts.py",
             "ledger/activities.py"]
FRAGMENTS = re.compile(r"""["'](, |; | and )["']\.join\(|description=f?["'](gift|Group activ"""
                       r"""|reverses)|f["']reverses #|f["']Group activity""")


@pytest.mark.parametrize("path", RENDERING)
def test_no_member_facing_words_are_joined_by_hand(path):
    source = (ROOT / path).read_text(encoding="utf-8")
    assert not FRAGMENTS.findall(source), path


@pytest.mark.parametrize("line", [
    'names = ", ".join(shorten(p.name) for p in people)', "x = ' and '.join(names)",
    'refs = "; ".join(refs)', 'description="gift",', 'description=f"reverses #{id}: {r}"',
    'f"Group activity {ref}: {text}"',
])
def test_the_fragment_check_finds_hand_made_lists_and_words(line):
    assert FRAGMENTS.findall(line)
