"""The brokers' ledger commands, run as a broker would run them."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from ledger import accounts, banks
from ledger.models import Account, Transfer
from tests.helpers import ref_in


@pytest.fixture
def ana(make_phone):
    phone = make_phone("+447700900702")
    phone.text("JOIN Ana")
    return phone


@pytest.fixture
def sam(make_phone):
    phone = make_phone("+447700900701")
    phone.text("JOIN Sam")
    return phone


def balance(phone) -> str:  # type: ignore[no-untyped-def]
    return phone.reply("BALANCE").split(". Every")[0]


def test_record_credits_from_the_fund_and_texts_a_receipt(cli, ana, outbox):
    result = cli("ledger", "record", "07700 900702", "2", "gardening", "club")
    assert result.exit_code == 0, result.output
    assert "Recorded 2 hours for Ana from the community fund" in result.output
    assert balance(ana) == "Balance: 2 hours"
    assert outbox.to(ana.number) == [
        "Lambeth Time Bank recorded 2 hours for you (gardening club). Thank you! "
        "Your balance: 2 hours"
    ]


def test_record_with_the_same_key_records_once(cli, ana):
    for _ in range(2):
        result = cli("ledger", "record", ana.number, "1.5", "timesheet", "--key", "sheet-7")
        assert result.exit_code == 0
    assert "Already recorded" in result.output
    assert balance(ana) == "Balance: 1.5 hours"


def test_record_from_an_organisation(cli, ana, services):
    assert cli("org", "add", "Maudsley Ward").exit_code == 0
    result = cli("ledger", "record", ana.number, "3", "ward visits", "--from", "maudsley ward")
    assert "for Ana from Maudsley Ward" in result.output
    with services.db.reading() as session:
        ward = session.scalars(select(Account).where(Account.kind == "organisation")).one()
        assert ward.balance_minutes == -180


def test_record_refuses_what_it_cannot_do(cli, ana):
    unknown = cli("ledger", "record", "07700900999", "1", "x")
    assert unknown.exit_code != 0 and "no member" in unknown.output
    bad_hours = cli("ledger", "record", ana.number, "1.1", "x")
    assert bad_hours.exit_code != 0 and "quarter-hour" in bad_hours.output
    no_org = cli("ledger", "record", ana.number, "1", "x", "--from", "Nowhere")
    assert no_org.exit_code != 0 and "Nowhere" in no_org.output
    assert balance(ana) == "Balance: 0 hours"


def test_reverse_corrects_once(cli, ana, services, outbox):
    cli("ledger", "record", ana.number, "2", "wrong member")
    with services.db.reading() as session:
        transfer_id = session.scalars(select(Transfer.id)).one()
    first = cli("ledger", "reverse", str(transfer_id), "--reason", "wrong member")
    again = cli("ledger", "reverse", str(transfer_id), "--reason", "wrong member")
    assert "reversed by transfer" in first.output and "was already reversed" in again.output
    assert balance(ana) == "Balance: 0 hours"
    assert outbox.to(ana.number)[-1] == (
        "Lambeth Time Bank corrected an entry: 2 hours from the community fund to Ana "
        "(wrong member) was reversed. Your balance: 0 hours"
    )
    missing = cli("ledger", "reverse", "999", "--reason", "x")
    assert missing.exit_code != 0 and "there is no transfer 999" in missing.output


def test_verify_passes_and_names_a_breach(cli, ana, services):
    cli("ledger", "record", ana.number, "2", "x")
    ok = cli("ledger", "verify")
    assert ok.exit_code == 0 and "Ledger OK" in ok.output
    with services.db.writing() as session:
        account = session.scalars(select(Account).where(Account.member_id.is_not(None))).one()
        account.balance_minutes += 15
    broken = cli("ledger", "verify")
    assert broken.exit_code == 1
    assert "BREACH" in broken.output and "cached balance 2.25" in broken.output


def test_export_writes_transfers_and_balances_as_csv(cli, ana, sam, outbox):
    cli("ledger", "record", ana.number, "2", "gardening")
    sam.text("DONE 1 Ana shopping")
    ana.text("YES")
    rows = list(csv.DictReader(io.StringIO(cli("ledger", "export").output)))
    assert [(r["from_name"], r["to_name"], r["hours"], r["kind"]) for r in rows] == [
        ("Community fund", "Ana", "2", "record"),
        ("Ana", "Sam", "1", "exchange"),
    ]
    assert rows[1]["description"] == "shopping" and rows[1]["entered_by"] == "member"
    none = cli("ledger", "export", "--until", "2000-01-01").output
    assert len(list(csv.DictReader(io.StringIO(none)))) == 0
    balances = {
        r["name"]: r["balance_hours"]
        for r in csv.DictReader(io.StringIO(cli("ledger", "export", "--balances").output))
    }
    assert balances == {"Community fund": "-2", "Ana": "1", "Sam": "1"}


def test_queue_and_settle_a_dispute(cli, ana, sam, outbox, services):
    sam.text("DONE 2 Ana gardening")
    ref = ref_in(outbox.to(ana.number)[0])
    ana.text(f"NO {ref}")
    queue = cli("ledger", "queue").output
    assert f"ref {ref}" in queue and "disputed" in queue
    settled = cli("ledger", "settle", ref, "--record")
    assert "confirmed" in settled.output
    assert balance(sam) == "Balance: 2 hours"
    assert outbox.to(ana.number)[-1] == (
        f"Lambeth Time Bank has recorded no. {ref}: 2 hours from Ana to Sam (gardening). "
        "Your balance: -2 hours"
    )
    assert outbox.to(sam.number)[-1].endswith("Your balance: 2 hours")
    assert "Nothing is waiting" in cli("ledger", "queue").output
    again = cli("ledger", "settle", ref, "--record")
    assert "already confirmed" in again.output
    with services.db.reading() as session:
        assert accounts.verify(session) == []
        assert len(session.scalars(select(Transfer)).all()) == 1


def test_member_show_note_and_limit(cli, ana):
    assert cli("member", "note", ana.number, "Prefers", "a", "call").exit_code == 0
    assert cli("member", "limit", ana.number, "5").exit_code == 0
    shown = cli("member", "show", ana.number).output
    assert "Prefers a call" in shown and "-5 hours" in shown and "Ana" in shown
    assert cli("member", "limit", ana.number, "bank").exit_code == 0
    assert "-20 hours" in cli("member", "show", ana.number).output


def test_bank_settings(cli, services):
    result = cli("bank", "set", "--min-balance", "10", "--max-exchange", "8",
                 "--auto-confirm", "--remind-after", "24", "--escalate-after", "72")
    assert result.exit_code == 0, result.output
    with services.db.reading() as session:
        bank = banks.bank_for_address(session, None)
        assert (bank.min_balance_minutes, bank.max_exchange_minutes) == (-600, 480)
        assert bank.auto_confirm and bank.confirm_remind_hours == 24
    bad = cli("bank", "set", "--timezone", "Mars/Base")
    assert bad.exit_code != 0 and "unknown time zone" in bad.output


def test_members_limit_applies_to_their_yes(cli, ana, sam, outbox):
    cli("member", "limit", ana.number, "1")
    sam.text("DONE 2 Ana gardening")
    assert "below -1 hour" in ana.reply("YES")
    assert balance(ana) == "Balance: 0 hours"


def test_broker_added_by_cli_can_record_by_text(cli, make_phone, ana):
    cli("broker", "add", "07700900703", "Bea")
    bea = make_phone("+447700900703")
    assert bea.reply("RECORD 07700900702 1 befriending").startswith("Recorded 1 hour for Ana")
