"""The ``timebank`` command, run with click's CliRunner against the test backend.

The CLI builds its own app from the environment; the ``app`` fixture wipes the data first and
the runner's environment points the CLI at the same database and Redis.
"""

from __future__ import annotations

from sqlalchemy import func, select

from ledger.models import Account, Bank, BankNumber, Member, Message
from tests.helpers import Outbox, Phone

PERSON = "+447700900555"
BRIXTON = "+447700900777"


def banks_by_name(services) -> dict[str, Bank]:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return {b.name: b for b in session.scalars(select(Bank))}


def members_of(services, phone: str) -> list[Member]:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return list(session.scalars(
            select(Member).where(Member.phone == phone).order_by(Member.bank_id)
        ))


def test_db_upgrade_is_safe_to_run_twice(cli, services):
    for _ in range(2):
        result = cli("db", "upgrade")
        assert result.exit_code == 0, result.output
        assert "Database is up to date." in result.output
    with services.db.reading() as session:
        assert session.scalar(select(func.count(Bank.id))) == 1
        bank = session.scalars(select(Bank)).one()
        assert bank.is_default and bank.name == "Lambeth Time Bank"
        assert session.scalar(
            select(func.count(Account.id)).where(Account.kind == "fund")
        ) == 1


def test_broker_add_makes_a_broker_and_twice_is_harmless(cli, services):
    result = cli("broker", "add", "07700900123", "Bea")
    assert result.exit_code == 0, result.output
    assert "Bea is now a broker of Lambeth Time Bank." in result.output
    [broker] = members_of(services, "+447700900123")
    assert (broker.role, broker.status, broker.name) == ("broker", "active", "Bea")

    again = cli("broker", "add", "+44 7700 900123", "Bea")
    assert again.exit_code == 0, again.output
    assert "Bea is already a broker" in again.output
    assert len(members_of(services, "+447700900123")) == 1


def test_broker_add_promotes_an_existing_member(cli, services, make_phone):
    make_phone("+447700900124").text("JOIN Kemi")
    result = cli("broker", "add", "07700900124", "Someone Else")
    assert result.exit_code == 0, result.output
    assert "Kemi is now a broker" in result.output
    [member] = members_of(services, "+447700900124")
    assert member.role == "broker" and member.name == "Kemi"


def test_broker_add_refuses_what_is_not_a_number_or_a_bank(cli, services):
    result = cli("broker", "add", "not-a-number", "Bea")
    assert result.exit_code == 2
    assert "is not a phone number" in result.output
    result = cli("broker", "add", "07700900123", "Bea", "--bank", "Nowhere Time Bank")
    assert result.exit_code == 1
    assert "no bank called 'Nowhere Time Bank'" in result.output
    with services.db.reading() as session:
        assert session.scalar(select(func.count(Member.id))) == 0


def test_bank_add_creates_a_bank_that_owns_its_numbers(cli, services):
    result = cli("bank", "add", "Brixton Time Bank", "--sms", BRIXTON,
                 "--whatsapp", f"whatsapp:{BRIXTON}")
    assert result.exit_code == 0, result.output
    assert "Added bank" in result.output and "Brixton Time Bank" in result.output

    brixton = banks_by_name(services)["Brixton Time Bank"]
    assert not brixton.is_default
    with services.db.reading() as session:
        numbers = session.scalars(
            select(BankNumber).where(BankNumber.bank_id == brixton.id).order_by(BankNumber.id)
        ).all()
        assert [(n.address, n.channel) for n in numbers] == [
            (BRIXTON, "sms"), (f"whatsapp:{BRIXTON}", "whatsapp"),
        ]
        assert session.scalar(select(func.count(Account.id)).where(
            Account.bank_id == brixton.id, Account.kind == "fund")) == 1

    listing = cli("bank", "list")
    assert listing.exit_code == 0, listing.output
    assert f"Brixton Time Bank: {BRIXTON}, whatsapp:{BRIXTON}" in listing.output
    assert "Lambeth Time Bank (default)" in listing.output


def test_a_member_texting_a_banks_number_joins_that_bank(cli, services, app):
    assert cli("bank", "add", "Brixton Time Bank", "--sms", BRIXTON,
               "--whatsapp", BRIXTON, "--no-require-approval").exit_code == 0
    found = banks_by_name(services)
    brixton, lambeth = found["Brixton Time Bank"], found["Lambeth Time Bank"]

    to_brixton = Phone(app, PERSON, to=BRIXTON)
    assert "Welcome to Brixton Time Bank, Sam" in to_brixton.reply("JOIN Sam")
    [member] = members_of(services, PERSON)
    assert member.bank_id == brixton.id
    # WhatsApp to the bank's WhatsApp number (given without the prefix): the same member.
    on_whatsapp = Phone(app, PERSON, to=f"whatsapp:{BRIXTON}", channel="whatsapp")
    assert "already a member" in on_whatsapp.reply("JOIN Sam")
    assert len(members_of(services, PERSON)) == 1

    # The same person joins the default bank too: a second member, with its own balance.
    to_lambeth = Phone(app, PERSON)
    assert "Welcome to Lambeth Time Bank, Sam" in to_lambeth.reply("JOIN Sam")
    in_brixton, in_lambeth = members_of(services, PERSON)
    assert {in_brixton.bank_id, in_lambeth.bank_id} == {brixton.id, lambeth.id}
    assert in_brixton.id != in_lambeth.id
    assert "Saved" in to_lambeth.reply("AREA Stockwell")
    assert "Area: not given" in to_brixton.reply("PROFILE")
    assert to_brixton.reply("BALANCE").startswith("Balance: 0 hours")


def test_a_taken_number_or_name_is_refused_clearly(cli, services):
    assert cli("bank", "add", "Brixton Time Bank", "--sms", BRIXTON).exit_code == 0

    for number in (BRIXTON, "07700 900777"):
        result = cli("bank", "add", "Peckham Time Bank", "--sms", number)
        assert result.exit_code != 0
        assert "Error:" in result.output and "already belongs to bank" in result.output
    result = cli("bank", "add", "Brixton Time Bank", "--sms", "+447700900778")
    assert result.exit_code != 0 and "already exists" in result.output
    result = cli("bank", "add", "Peckham Time Bank", "--sms", "hello")
    assert result.exit_code != 0 and "Error:" in result.output
    result = cli("bank", "add", "Peckham Time Bank")
    assert result.exit_code == 2 and "at least one number" in result.output
    assert set(banks_by_name(services)) == {"Lambeth Time Bank", "Brixton Time Bank"}


def test_member_approve_activates_a_pending_member_and_texts_them(cli, services, app):
    assert cli("bank", "add", "Brixton Time Bank", "--sms", BRIXTON,
               "--require-approval").exit_code == 0
    phone = Phone(app, PERSON, to=BRIXTON)
    assert "will be in touch" in phone.reply("JOIN Sam")
    assert members_of(services, PERSON)[0].status == "pending"

    result = cli("member", "approve", "07700900555", "--bank", "Brixton Time Bank")
    assert result.exit_code == 0, result.output
    assert "Sam is now active." in result.output
    assert members_of(services, PERSON)[0].status == "active"
    outbox = Outbox(services)
    assert outbox.to(PERSON) == [
        "Good news, Sam: you're now an active member of Brixton Time Bank. "
        "Reply MENU for what you can do"
    ]

    again = cli("member", "approve", str(members_of(services, PERSON)[0].id),
                "--bank", "Brixton Time Bank")
    assert again.exit_code == 0, again.output
    assert "Sam is already active." in again.output
    assert len(outbox.to(PERSON, status=None)) == 1


def test_member_approve_for_someone_unknown_is_an_error(cli):
    result = cli("member", "approve", "07700900556")
    assert result.exit_code == 1
    assert "no member with that number in Lambeth Time Bank" in result.output
    result = cli("member", "approve", "4242")
    assert result.exit_code == 1 and "Error:" in result.output


def test_approving_by_the_command_a_broker_is_texted_names_the_right_bank(cli, services, app):
    assert cli("bank", "add", "Brixton Time Bank", "--sms", BRIXTON,
               "--require-approval").exit_code == 0
    assert cli("broker", "add", "07700900123", "Bea", "--bank",
               "Brixton Time Bank").exit_code == 0
    Phone(app, PERSON, to=BRIXTON).text("JOIN Sam")
    outbox = Outbox(services)
    [to_broker] = outbox.to("+447700900123")
    command = to_broker.split("Approve with: ")[1]
    assert command.startswith("timebank member approve ")

    result = cli(*command.split()[1:])
    assert result.exit_code == 0, result.output
    [approved] = outbox.to(PERSON)
    assert "Brixton Time Bank" in approved


def test_chat_shows_the_banks_replies(cli, services):
    result = cli("chat", PERSON, input="JOIN Sam\nBALANCE\n")
    assert result.exit_code == 0, result.output
    assert f"Texting the bank as {PERSON}" in result.output
    assert "bank> Welcome to Lambeth Time Bank, Sam!" in result.output
    assert "bank> Balance: 0 hours" in result.output
    [member] = members_of(services, PERSON)
    assert member.name == "Sam"


def test_chat_can_text_another_banks_number(cli, services):
    assert cli("bank", "add", "Brixton Time Bank", "--sms", BRIXTON,
               "--no-require-approval").exit_code == 0
    result = cli("chat", "07700900555", "--to", BRIXTON, input="JOIN Sam\n\nBALANCE\n")
    assert result.exit_code == 0, result.output
    assert "bank> Welcome to Brixton Time Bank, Sam!" in result.output
    assert "Balance" not in result.output  # an empty line ends the chat
    [member] = members_of(services, PERSON)
    assert member.bank_id == banks_by_name(services)["Brixton Time Bank"].id
    with services.db.reading() as session:
        assert session.scalar(select(func.count(Message.id))) == 0


def test_chat_shows_a_text_sent_while_away_in_full_though_redis_holds_no_number(
        cli, services, capsys):
    from app import outbound
    from app.transports import outbox_key, read_outbox
    from ledger import members as members_module

    assert cli("chat", PERSON, input="JOIN Sam\n").exit_code == 0

    with services.db.writing() as session:
        [sam] = members_of(services, PERSON)
        member = members_module.get_member(session, sam.id)
        message_id = outbound.queue_text(
            session, member, kind="match_requester", key="match_requester",
            idempotency_key="test-intro",
            values={"name": "Ana", "what": "a lift", "phone": "+447700900777", "ref": 12})
    outbound.enqueue(services, [message_id])
    Outbox(services).run_jobs()  # the console transport prints it, masked
    printed = capsys.readouterr().out
    assert "Good news: Ana can help" in printed and "900777" not in printed

    # What an open chat reads as texts arrive: the message's id, its text from the database.
    key = outbox_key(PERSON, services.config.secret_key)
    assert read_outbox(services.redis, key, "0-0", 1)[1] == [(message_id, None)]

    result = cli("chat", PERSON, input="\n")
    assert "bank> (sent while you were away) Good news: Ana can help with: a lift (no. 12). " \
           "Their number is +447700900777" in result.output
    for key in services.redis.scan_iter():
        assert b"900777" not in key
        if services.redis.type(key) == b"stream":
            for _, fields in services.redis.xrange(key):
                assert not any(b"900777" in value for value in fields.values())
