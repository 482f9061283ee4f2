"""The whole path from Twilio's webhook to the TwiML a member reads."""

from __future__ import annotations

from sqlalchemy import func, select

from ledger.models import Member, OptOut


def count_members(services) -> int:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return int(session.scalar(select(func.count(Member.id))) or 0)


def test_a_stranger_is_welcomed_and_told_how_to_join(phone):
    reply = phone.reply("hello")
    assert "Lambeth Time Bank" in reply
    assert "reply JOIN and your first name" in reply


def test_join_in_one_text_then_questions_each_skippable(phone, services):
    assert "Welcome to Lambeth Time Bank, Ana!" in phone.reply("JOIN ana")
    assert "Which area" in phone.reply("Gardening and lifts")
    assert "usually free" in phone.reply("skip")
    assert "All set, Ana" in phone.reply("Weekday mornings")
    profile = phone.reply("PROFILE")
    assert "Area: not given" in profile
    assert "Can help with: Gardening and lifts" in profile
    assert "Free: Weekday mornings" in profile
    assert count_members(services) == 1


def test_balance_of_a_new_member_is_zero(phone):
    phone.text("JOIN Sam")
    assert phone.reply("Balance?").startswith("Balance: 0 hours")
    assert phone.reply("bal").startswith("Balance: 0 hours")
    assert phone.reply("balence").startswith("Balance: 0 hours")


def test_a_command_interrupts_a_pending_question(phone):
    phone.text("JOIN Sam")
    assert phone.reply("BALANCE").startswith("Balance: 0 hours")
    # The question was dropped: free text now is not taken as an answer.
    assert "didn't understand" in phone.reply("Gardening")


def test_a_repeated_message_sid_gets_the_same_answer_and_changes_nothing(phone, services):
    first = phone.send("JOIN Sam", sid="SM" + "a" * 32)
    again = phone.send("JOIN Sam", sid="SM" + "a" * 32)
    assert first.data == again.data
    assert count_members(services) == 1
    # A different body with the same sid is still the same message to Twilio.
    third = phone.send("LEAVE", sid="SM" + "a" * 32)
    assert third.data == first.data
    assert phone.reply("BALANCE").startswith("Balance: 0")


def test_stop_silences_the_bank_until_start(phone, services):
    phone.text("JOIN Sam")
    assert "won't get any more texts" in phone.reply("STOP")
    assert phone.text("BALANCE") == []
    with services.db.reading() as session:
        assert session.scalar(select(func.count(OptOut.id))) == 1
    assert "will text you again" in phone.reply("start")
    assert phone.reply("BALANCE").startswith("Balance: 0")


def test_every_opt_out_word_works_alone(make_phone):
    for i, word in enumerate(
        ["STOP", "stopall", "Unsubscribe", "CANCEL", "end", "QUIT", "revoke", "OPTOUT"]
    ):
        phone = make_phone(f"+4477009001{i:02d}")
        assert "won't get any more texts" in phone.reply(word), word
        assert phone.text("hello") == [], word


def test_words_twilio_answers_are_acted_on_silently_when_it_answers_them(
    backend, make_phone
):
    from app import create_app
    from app.cli import prepare
    from tests.conftest import make_config, wipe

    app = create_app(make_config(backend, twilio_answers_keywords=True))
    shared = app.extensions["timebank"]
    wipe(shared)
    with app.app_context():
        prepare(shared)
        from tests.helpers import Phone

        sms = Phone(app, "+447700900201")
        assert sms.text("STOP") == []
        assert sms.text("BALANCE") == []
        assert sms.text("HELP") == []
        assert sms.text("START") == []
        assert "reply JOIN" in sms.reply("hello")
        # Twilio does not answer these words on WhatsApp: the bank does.
        whatsapp = Phone(app, "+447700900202", channel="whatsapp")
        assert "won't get any more texts" in whatsapp.reply("STOP")
    shared.close()


def test_help_explains_the_bank_in_one_text(phone):
    assert "To join" in phone.reply("HELP")
    phone.text("JOIN Sam")
    # HELP and INFO say what the bank is and how to reach a person; MENU lists what to send.
    about = phone.reply("info")
    assert "1 hour given = 1 hour back" in about and "TALK" in about and "MENU" in about


def test_unknown_text_lists_the_commands_that_fit(phone):
    assert "JOIN" in phone.reply("what is this")
    phone.text("JOIN Sam")
    phone.text("SKIP")
    phone.text("SKIP")
    phone.text("SKIP")
    reply = phone.reply("blah blah")
    assert "didn't understand" in reply
    assert "Reply MENU" in reply and "BALANCE" in reply
    menu = phone.reply("MENU")
    for command in ("NEED", "OFFER", "DONE", "GIVE", "BALANCE", "STATEMENT", "MINE", "LEAVE"):
        assert command in menu


def test_leave_keeps_the_member_and_join_brings_them_back(phone, services):
    phone.text("JOIN Sam")
    assert "reply LEAVE NOW" in phone.reply("LEAVE")
    assert "You have left" in phone.reply("LEAVE NOW")
    assert "you left" in phone.reply("BALANCE")
    assert "Welcome back" in phone.reply("JOIN Sam")
    assert phone.reply("BALANCE").startswith("Balance: 0")
    assert count_members(services) == 1


def test_profile_can_be_changed_by_text(phone):
    phone.text("JOIN Sam")
    assert "Saved" in phone.reply("AREA Brixton")
    assert "Saved, Samira" in phone.reply("NAME Samira")
    assert "Saved" in phone.reply("SKILLS cooking, IT help")
    profile = phone.reply("PROFILE")
    assert profile.startswith("Samira.")
    assert "Area: Brixton" in profile
    assert "cooking, IT help" in profile


def test_the_same_person_by_sms_and_whatsapp_is_one_member(make_phone, services):
    sms = make_phone("+447700900301")
    whatsapp = make_phone("+447700900301", channel="whatsapp")
    sms.text("JOIN Kemi")
    assert "already a member" in whatsapp.reply("JOIN Kemi")
    assert whatsapp.reply("BALANCE").startswith("Balance: 0")
    assert count_members(services) == 1
    with services.db.reading() as session:
        member = session.scalars(select(Member)).one()
        assert member.whatsapp == "whatsapp:+447700900301"
        assert member.last_channel == "whatsapp"


def test_numbers_in_any_format_are_one_member(make_phone, services):
    make_phone("+447700900401").text("JOIN Jo")
    assert count_members(services) == 1
    # Twilio writes numbers in E.164; national forms from the CLI normalise to the same one.
    from ledger.phones import normalise

    assert normalise("07700 900401") == normalise("+44 (0)7700-900401".replace("(0)", ""))


def test_approval_makes_new_members_wait_and_tells_brokers(backend, outbox):
    from click.testing import CliRunner

    from app import create_app
    from app.cli import prepare
    from tests.conftest import make_config, wipe
    from tests.helpers import Outbox, Phone

    app = create_app(make_config(backend, require_approval=True))
    shared = app.extensions["timebank"]
    wipe(shared)
    with app.app_context():
        prepare(shared)
        broker = Phone(app, "+447700900501")
        from ledger import banks, members

        with shared.db.writing() as session:
            members.make_broker(session, banks.bank_for_address(session, None),
                                broker.number, "Bea")
        phone = Phone(app, "+447700900502")
        assert "will be in touch" in phone.reply("JOIN Ola")
        assert "waiting for a welcome" in phone.reply("PROFILE")
        box = Outbox(shared)
        sent = box.to(broker.number)
        assert len(sent) == 1 and "Ola" in sent[0] and "+44" not in sent[0]
        # Joining again does not bother the broker twice.
        phone.text("JOIN Ola")
        assert len(box.to(broker.number)) == 1
    shared.close()
    del CliRunner


def test_healthz_reports_database_and_redis(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_twiml_is_written_exactly_as_twilios_own_builder_writes_it():
    import xml.etree.ElementTree as ET

    from hypothesis import given
    from hypothesis import strategies as st
    from twilio.twiml.messaging_response import MessagingResponse

    from app.inbound import twiml

    legal = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="".join(
        chr(c) for c in range(32) if c not in (9, 10, 13)
    )), max_size=200)

    @given(st.lists(legal, max_size=3))
    def same(texts: list[str]) -> None:
        response = MessagingResponse()
        for text in texts:
            response.message(text)
        assert twiml(texts) == str(response)

    @given(st.lists(st.text(max_size=50), max_size=3))
    def always_parseable(texts: list[str]) -> None:
        # Twilio's builder would write control characters raw (invalid XML); ours drops them.
        ET.fromstring(twiml(texts).encode("utf-8", "surrogatepass"))

    same()
    always_parseable()


def test_healthz_answers_503_when_the_database_is_down(backend, tmp_path):
    from app import create_app
    from tests.conftest import make_config

    # A database in a folder that does not exist: every connection fails.
    gone = create_app(make_config(backend, database_url=f"sqlite:///{tmp_path}/no/such.db"))
    response = gone.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "error"
    assert response.get_json()["database"].startswith("error")
    assert response.get_json()["redis"] == "ok"


def test_healthz_answers_503_when_redis_is_down(backend):
    from app import create_app
    from tests.conftest import make_config

    # A port where no Redis listens.
    gone = create_app(make_config(backend, redis_url="redis://127.0.0.1:1/0"))
    response = gone.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "ok",
                                   "redis": "error: ConnectionError"}
