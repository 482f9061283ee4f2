"""No one pays themselves: a broker's own hours, by text, on the dashboard and at the command
line, and group activities that pay only the members they invited (or a broker names)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app import auth
from ledger import accounts, banks, members
from ledger.models import (
    Activity,
    AuditEntry,
    Bank,
    Confirmation,
    Member,
    Transfer,
    utcnow,
)
from tests.test_dashboard import csrf, post, sign_in, text_of

BEA = "+447700900700"  # a broker
KOFI = "+447700900710"  # another broker
PASSWORD = "correct horse battery"


def make_broker(services, phone: str, name: str) -> int:  # type: ignore[no-untyped-def]
    with services.db.writing() as session:
        member, _ = members.make_broker(session, banks.bank_for_address(session, None), phone,
                                        name)
        member.password_hash = auth.hash_password(PASSWORD)
        return member.id


@pytest.fixture
def bea(make_phone, services):
    make_broker(services, BEA, "Bea")
    return make_phone(BEA)


@pytest.fixture
def sam(make_phone):
    phone = make_phone("+447700900601")
    phone.text("JOIN Sam")
    return phone


@pytest.fixture
def ana(make_phone):
    phone = make_phone("+447700900602")
    phone.text("JOIN Ana")
    return phone


@pytest.fixture
def bea_web(app, bea):
    client = app.test_client()
    assert sign_in(client, phone=BEA).status_code == 302
    return client


@pytest.fixture
def kofi_web(app, services):
    make_broker(services, KOFI, "Kofi")
    client = app.test_client()
    assert sign_in(client, phone=KOFI).status_code == 302
    return client


def balance(phone) -> str:  # type: ignore[no-untyped-def]
    return phone.reply("BALANCE").split(". ")[0]


def only_request(services) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        request = session.scalars(select(Confirmation)).one()
        return request.id, request.ref


def transfers(services) -> int:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return int(session.scalar(select(func.count(Transfer.id))) or 0)


def audit_actions(services) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return [(e.action, e.subject, e.detail) for e in session.scalars(
            select(AuditEntry).order_by(AuditEntry.id))]


def escalate(services, cli) -> None:  # type: ignore[no-untyped-def]
    """Let the request go unanswered past the bank's escalation time, then sweep."""
    with services.db.writing() as session:
        session.execute(update(Confirmation).values(
            created_at=utcnow() - timedelta(days=30)))
    assert "escalated: 1" in cli("ledger", "sweep").output


def settle(client, confirmation_id: int, **form: str):  # type: ignore[no-untyped-def]
    return text_of(post(client, f"/dashboard/confirmations/{confirmation_id}/settle",
                        {"action": "confirm", **form}, page="/dashboard/confirmations"))


# --- settling ---------------------------------------------------------------------------------


def test_a_broker_who_texts_done_cannot_settle_it_on_the_dashboard(bea, bea_web, sam, services,
                                                                   outbox):
    """The issue's scenario: Bea texts DONE 24 Sam and records it herself, past Sam's floor."""
    assert "Sam" in bea.reply("DONE 24 Sam cleared the loft")
    confirmation_id, ref = only_request(services)
    page = settle(bea_web, confirmation_id)
    assert balance(sam) == "Balance: 0 hours"
    assert f"Ref {ref} is your own hours (you give, receive or answer them): another broker " \
           "must settle it." in page
    queue = text_of(bea_web.get("/dashboard/confirmations"))
    assert f"Your own hours: another broker settles ref {ref}" in queue
    assert f"Record ref {ref}" not in queue
    closed = settle(bea_web, confirmation_id, action="close")
    assert "another broker must settle it" in closed
    assert balance(sam) == "Balance: 0 hours"
    assert balance(bea) == "Balance: 0 hours"
    assert transfers(services) == 0
    # Even once escalated, and with the floor "overridden", it stays hers to leave alone.
    with services.db.writing() as session:
        session.execute(update(Confirmation).values(escalated_at=utcnow()))
    page = settle(bea_web, confirmation_id, past_floor="1", floor_reason="I say so")
    assert "another broker must settle it" in page
    assert balance(sam) == "Balance: 0 hours"
    with services.db.reading() as session:
        assert session.scalars(select(Confirmation.status)).one() == "pending"


def test_another_broker_settles_only_after_escalation_and_only_within_the_floor(
        bea, kofi_web, sam, services, outbox, cli):
    bea.text("DONE 24 Sam cleared the loft")
    confirmation_id, ref = only_request(services)
    queue = text_of(kofi_web.get("/dashboard/confirmations"))
    assert "Waiting for the member's reply" in queue and f"Record ref {ref}" not in queue
    early = settle(kofi_web, confirmation_id)
    assert f"Ref {ref} is still waiting for the member's own reply" in early
    early_close = settle(kofi_web, confirmation_id, action="close")
    assert "still waiting for the member's own reply" in early_close
    assert transfers(services) == 0
    escalate(services, cli)
    assert f"Record ref {ref}" in text_of(kofi_web.get("/dashboard/confirmations"))
    held = settle(kofi_web, confirmation_id)
    assert f"Ref {ref} would take the payer below their limit: not recorded." in held
    assert balance(sam) == "Balance: 0 hours"
    no_reason = settle(kofi_web, confirmation_id, past_floor="1", floor_reason="  ")
    assert "Say why these hours may go past the balance floor." in no_reason
    assert balance(sam) == "Balance: 0 hours"
    done = settle(kofi_web, confirmation_id, past_floor="1",
                  floor_reason="loft clearance agreed with Sam's daughter")
    assert f"Ref {ref} recorded; both members have been told." in done
    assert balance(sam) == "Balance: -24 hours"
    assert balance(bea) == "Balance: 24 hours"
    assert ("confirmation.confirmed", f"ref {ref}",
            "24 hours, past the balance floor: loft clearance agreed with Sam's daughter"
            ) in audit_actions(services)
    with services.db.reading() as session:
        transfer = session.scalars(select(Transfer)).one()
        assert transfer.entered_by == "broker"
        kofi = members.find_member(session, transfer.bank_id, KOFI)
        assert kofi is not None and transfer.entered_by_member_id == kofi.id
        assert accounts.verify(session) == []


def test_a_disputed_request_is_settled_within_the_floor(bea, kofi_web, sam, ana, services,
                                                        outbox, cli):
    ana.text("DONE 21 Sam decorating")
    _, ref = only_request(services)
    sam.text(f"NO {ref}")
    # A dispute needs no escalation, but the floor still holds, at the command line too.
    refused = cli("ledger", "settle", str(ref), "--record")
    assert refused.exit_code == 1
    assert "would take the payer past their balance floor" in refused.output
    assert "--override-floor REASON" in refused.output
    assert balance(sam) == "Balance: 0 hours"
    empty = cli("ledger", "settle", str(ref), "--record", "--override-floor", " ")
    assert empty.exit_code != 0 and balance(sam) == "Balance: 0 hours"
    done = cli("ledger", "settle", str(ref), "--record", "--override-floor", "agreed at visit")
    assert done.exit_code == 0 and "confirmed" in done.output
    assert balance(sam) == "Balance: -21 hours"
    assert any(action == "confirmation.confirmed" and "agreed at visit" in detail
               for action, _, detail in audit_actions(services))


def test_settling_at_the_command_line_names_the_broker_for_a_brokers_own_hours(
        bea, sam, services, outbox, cli, make_phone):
    bea.text("DONE 2 Sam shopping")
    _, ref = only_request(services)
    sam.text(f"NO {ref}")
    unnamed = cli("ledger", "settle", str(ref), "--record")
    assert unnamed.exit_code == 1 and "name the broker acting with --by" in unnamed.output
    assert cli("ledger", "settle", str(ref), "--record", "--by", sam.number).exit_code == 1
    assert "no active broker" in cli("ledger", "settle", str(ref), "--record", "--by",
                                     sam.number).output
    make_broker(services, KOFI, "Kofi")
    herself = cli("ledger", "settle", str(ref), "--record", "--by", BEA)
    assert herself.exit_code == 1 and "another broker must" in herself.output
    assert balance(bea) == "Balance: 0 hours" and transfers(services) == 0
    kofi = cli("ledger", "settle", str(ref), "--record", "--by", KOFI)
    assert kofi.exit_code == 0 and "confirmed" in kofi.output
    assert balance(bea) == "Balance: 2 hours"
    assert "Ledger OK" in cli("ledger", "verify").output


def test_the_only_broker_may_settle_their_own_hours_at_the_command_line_audited(
        bea, bea_web, sam, services, outbox, cli):
    bea.text("DONE 2 Sam shopping")
    confirmation_id, ref = only_request(services)
    sam.text(f"NO {ref}")
    # Not on the dashboard, even as the only broker.
    assert "another broker must settle it" in settle(bea_web, confirmation_id)
    with services.db.reading() as session:
        bea_id = session.scalars(select(Member.id).where(Member.phone == BEA)).one()
    done = cli("ledger", "settle", str(ref), "--record", "--by", f"#{bea_id}")
    assert done.exit_code == 0, done.output
    assert balance(bea) == "Balance: 2 hours"
    with services.db.reading() as session:
        transfer_id = session.scalars(select(Transfer.id)).one()
        override = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "own_hours.override")).one()
    assert (override.subject, override.via, override.broker_member_id) == (
        f"transfer {transfer_id}", "cli", bea_id)
    assert "only broker" in override.detail
    assert "Ledger OK" in cli("ledger", "verify").output
    assert "own_hours.override" in text_of(bea_web.get("/dashboard/audit"))


# --- reversing and recording --------------------------------------------------------------


def test_a_broker_cannot_reverse_a_transfer_they_paid(bea, bea_web, sam, services, outbox, cli):
    bea.text("GIVE 3 Sam")
    bea.text("YES")
    assert balance(sam) == "Balance: 3 hours" and balance(bea) == "Balance: -3 hours"
    with services.db.reading() as session:
        transfer_id = session.scalars(select(Transfer.id)).one()
    page = text_of(post(bea_web, f"/dashboard/transfers/{transfer_id}/reverse",
                        {"reason": "changed my mind"}, page="/dashboard/ledger"))
    assert "Not corrected: a broker can't act on hours they give or receive: another broker " \
           "must." in page
    unnamed = cli("ledger", "reverse", str(transfer_id), "--reason", "oops")
    assert unnamed.exit_code == 1 and "--by" in unnamed.output
    assert balance(bea) == "Balance: -3 hours" and transfers(services) == 1
    # The only broker, at the command line, audited.
    sole = cli("ledger", "reverse", str(transfer_id), "--reason", "oops", "--by", BEA)
    assert sole.exit_code == 0 and "reversed by transfer" in sole.output
    assert balance(bea) == "Balance: 0 hours"
    assert [a for a, *_ in audit_actions(services)].count("own_hours.override") == 1
    assert "Ledger OK" in cli("ledger", "verify").output


def test_a_second_broker_reverses_what_the_first_may_not(bea, bea_web, kofi_web, sam, services,
                                                         outbox, cli):
    bea.text("GIVE 3 Sam")
    bea.text("YES")
    with services.db.reading() as session:
        transfer_id = session.scalars(select(Transfer.id)).one()
    herself = cli("ledger", "reverse", str(transfer_id), "--reason", "oops", "--by", BEA)
    assert herself.exit_code == 1 and "another broker must" in herself.output
    assert "Not corrected" in text_of(post(bea_web, f"/dashboard/transfers/{transfer_id}/reverse",
                                           {"reason": "oops"}, page="/dashboard/ledger"))
    # Sam, a member, cannot stand in for a broker at the command line.
    assert cli("ledger", "reverse", str(transfer_id), "--reason", "x", "--by",
               sam.number).exit_code == 1
    assert balance(bea) == "Balance: -3 hours"
    page = text_of(post(kofi_web, f"/dashboard/transfers/{transfer_id}/reverse",
                        {"reason": "Bea gave by mistake"}, page="/dashboard/ledger"))
    assert f"Entry {transfer_id} reversed" in page
    assert balance(bea) == "Balance: 0 hours" and balance(sam) == "Balance: 0 hours"
    assert "own_hours.override" not in [a for a, *_ in audit_actions(services)]
    assert "Ledger OK" in cli("ledger", "verify").output


def test_nobody_records_hours_to_a_broker_at_the_command_line_without_naming_who_acts(
        bea, sam, services, outbox, cli):
    unnamed = cli("ledger", "record", BEA, "5", "admin")
    assert unnamed.exit_code == 1 and "--by" in unnamed.output
    # Members' hours need no --by, as before.
    assert cli("ledger", "record", sam.number, "1", "timesheet").exit_code == 0
    make_broker(services, KOFI, "Kofi")
    herself = cli("ledger", "record", BEA, "5", "admin", "--by", BEA)
    assert herself.exit_code == 1 and "another broker must" in herself.output
    assert balance(bea) == "Balance: 0 hours"
    assert cli("ledger", "record", BEA, "5", "admin", "--by", KOFI).exit_code == 0
    assert balance(bea) == "Balance: 5 hours"
    # By text, as before: a broker's RECORD to themselves is refused, a member's is not theirs.
    assert bea.reply(f"RECORD {BEA} 2 admin").startswith("Brokers can't record hours for "
                                                         "themselves")
    assert sam.reply(f"RECORD {sam.number} 2 admin").startswith("Sorry, only")
    assert balance(bea) == "Balance: 5 hours"


# --- the ledger check ----------------------------------------------------------------------


def test_ledger_verify_names_a_transfer_a_broker_recorded_to_themselves(bea, sam, services,
                                                                       cli):
    assert "Ledger OK" in cli("ledger", "verify").output
    with services.db.writing() as session:
        bank = session.scalars(select(Bank)).one()
        broker = session.scalars(select(Member).where(Member.phone == BEA)).one()
        fund = banks.ensure_fund(session, bank)
        # Written past the services, as a careless script or a tampered database would.
        recorded = accounts.transfer(
            session, bank_id=bank.id, from_account_id=fund.id,
            to_account_id=members.member_account(session, broker).id, minutes=600,
            kind="record", idempotency_key="direct", entered_by="broker",
            entered_by_member_id=broker.id, description="direct insert")
        transfer_id = recorded.transfer.id
    result = cli("ledger", "verify")
    assert result.exit_code == 1
    assert (f"BREACH transfer {transfer_id}: its broker is its giver or receiver, and no "
            "override is audited") in result.output
    # The same breach shows on the dashboard's ledger page.
    client = sam.app.test_client()
    sign_in(client, phone=BEA)
    assert f"transfer {transfer_id}: its broker is its giver or receiver" in text_of(
        client.get("/dashboard/ledger"))


# --- group activities ----------------------------------------------------------------------


def sent_ref(text: str) -> int:
    found = re.match(r"Broadcast (\d+) is on its way", text)
    assert found, text
    return int(found.group(1))


def test_yes_to_a_broadcast_never_sent_is_held_apart_and_not_paid(
        bea, bea_web, ana, services, outbox, make_phone):
    ref = sent_ref(bea.reply("BROADCAST Litter pick Sunday 10am"))
    assert len(outbox.to(ana.number)) == 1
    ana.text(f"YES {ref}")
    # Zed joined after the broadcast went: he was never sent it, but says yes anyway.
    zed = make_phone("+447700900699")
    zed.text("JOIN Zed")
    assert outbox.to(zed.number) == []
    zed.text(f"YES {ref}")
    # A stranger (not a member) gets nowhere at all.
    stranger = make_phone("+447700900698")
    assert "on the list" not in " ".join(stranger.text(f"YES {ref}"))
    who = bea.text(f"WHO {ref}")
    assert who[0].startswith(f"Broadcast {ref}: coming 1, can't 0. Ana. Texts sent: 1 of 1.")
    assert who[1] == (f"Not invited but said yes to broadcast {ref}: Zed. CREDIT {ref} 2 pays the "
                      "invited only; to pay these, add their numbers")
    with services.db.reading() as session:
        activity_id = session.scalars(select(Activity.id)).one()
        zed_id = session.scalars(select(Member.id).where(Member.name == "Zed")).one()
    page = bea_web.get(f"/dashboard/activities/{activity_id}").data.decode()
    assert "Zed" in text_of_html(page) and "also said yes, not invited" in text_of_html(page)
    zed_box = re.search(rf'<input type="checkbox" id="m{zed_id}"[^>]*>', page)
    assert zed_box and "checked" not in zed_box.group(0)
    # The list of activities counts the invited: sent to 1, coming 1.
    listing = bea_web.get("/dashboard/activities").data.decode()
    assert '<td class="num">1</td><td class="num">1</td></tr>' in listing
    credit = bea.reply(f"CREDIT {ref} 2")
    assert f"Broadcast {ref}: 2 hours each from the community fund. Credited now: 1." in credit
    assert balance(ana) == "Balance: 2 hours"
    assert balance(zed) == "Balance: 0 hours"
    # The broker may still name him: then he is paid, once.
    named = bea.reply(f"CREDIT {ref} 2 {zed.number}")
    assert "Credited now: 1. Credited before: 0." in named
    assert balance(zed) == "Balance: 2 hours"
    with services.db.reading() as session:
        assert accounts.verify(session) == []


def test_the_dashboard_credits_an_uninvited_yes_only_when_ticked(
        bea, bea_web, ana, services, outbox, make_phone):
    ref = sent_ref(bea.reply("BROADCAST Quiz night"))
    outbox.run_jobs()
    ana.text(f"YES {ref}")
    zed = make_phone("+447700900699")
    zed.text("JOIN Zed")
    zed.text(f"YES {ref}")
    with services.db.reading() as session:
        activity_id = session.scalars(select(Activity.id)).one()
        ana_id = session.scalars(select(Member.id).where(Member.name == "Ana")).one()
        zed_id = session.scalars(select(Member.id).where(Member.name == "Zed")).one()
    page = bea_web.get(f"/dashboard/activities/{activity_id}").data.decode()
    # What the form sends with the boxes as they are shown: Ana only.
    ticked_ids = re.findall(r'<input type="checkbox" id="m\d+" name="member_id" '
                            r'value="(\d+)" checked>', page)
    assert ticked_ids == [str(ana_id)]
    token = csrf(page.encode())
    bea_web.post(f"/dashboard/activities/{activity_id}/credit",
                 data={"csrf_token": token, "hours": "2", "member_id": ticked_ids})
    assert balance(ana) == "Balance: 2 hours" and balance(zed) == "Balance: 0 hours"
    ticked = post(bea_web, f"/dashboard/activities/{activity_id}/credit",
                  {"hours": "2", "member_id": str(zed_id)})
    assert "1 credited 2 hours each; 0 already had theirs." in text_of(ticked)
    assert balance(zed) == "Balance: 2 hours"


def text_of_html(page: str) -> str:
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
