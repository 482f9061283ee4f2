"""Members' words reach a person: every text kept, the brokers' inbox, TALK, distress, small
talk, the duty rota, alert caps and retention. Through the webhook, the dashboard (Flask's
test client) and the command line, as members, brokers and attackers would use them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from app import auth, jobs
from app.care import duty
from conversations import care
from ledger import banks, members
from ledger.models import AuditEntry, Bank, BrokerDuty, InboundText, Member, Message
from tests.helpers import join

BROKER = "+447700900700"
BROKER_TWO = "+447700900701"
PASSWORD = "correct horse battery"
SAM = "+447700900001"
CRISIS = "Samaritans 116 123, free, day or night"


@pytest.fixture
def brokers(services):
    """Bea and Bob, brokers of the default bank; Bea has a dashboard password."""
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        bea, _ = members.make_broker(session, bank, BROKER, "Bea")
        bea.password_hash = auth.hash_password(PASSWORD)
        bob, _ = members.make_broker(session, bank, BROKER_TWO, "Bob")
        return bea.id, bob.id


@pytest.fixture
def sam(make_phone):
    return join(make_phone(SAM), "Sam", area="Brixton")


def kept(services, number: str | None = None) -> list[InboundText]:
    with services.db.reading() as session:
        query = select(InboundText).order_by(InboundText.id)
        if number is not None:
            bank = banks.bank_for_address(session, None)
            member = members.find_member(session, bank.id, number)
            query = query.where(InboundText.member_id == (member.id if member else -1))
        return list(session.scalars(query))


def alerts(services, kind: str | None = None) -> list[Message]:
    with services.db.reading() as session:
        query = select(Message).where(Message.kind.like("care_%alert")).order_by(Message.id)
        if kind:
            query = query.where(Message.kind == kind)
        return list(session.scalars(query))


# --- Routing: a table of real-sounding texts ------------------------------------------------

ROUTES: list[tuple[str, str]] = [
    # Distress, whatever else the text says (a command, a wish to talk, "help me").
    ("I feel really low, can someone call me?", care.DISTRESS),
    ("I want to die", care.DISTRESS),
    ("i just want to die tbh", care.DISTRESS),
    ("I can't go on like this", care.DISTRESS),
    ("cant go on anymore", care.DISTRESS),
    ("help me I want to end it all", care.DISTRESS),
    ("I'm going to kill myself", care.DISTRESS),
    ("I've been having thoughts of suicide", care.DISTRESS),
    ("feeling really low today", care.DISTRESS),
    ("I don't want to be here anymore", care.DISTRESS),
    ("I keep hurting myself", care.DISTRESS),
    ("I took too many pills", care.DISTRESS),
    ("NEED someone to talk to, I feel hopeless", care.DISTRESS),
    ("I'm not safe at home", care.DISTRESS),
    ("Everyone would be better off without me", care.DISTRESS),
    # A wish to talk to a person.
    ("TALK", care.TALK),
    ("talk", care.TALK),
    ("TALK please", care.TALK),
    ("Can someone ring me please", care.TALK),
    ("call me", care.TALK),
    ("I need to speak to someone about my hours", care.TALK),
    ("Could you call me back when you get a chance", care.TALK),
    ("I'd like to talk to a person", care.TALK),
    ("can I speak to a broker", care.TALK),
    ("Hi, can someone phone me?", care.TALK),
    ("I'm so lonely", care.TALK),
    # Thanks and small talk.
    ("thanks!", care.SMALL_TALK),
    ("ok", care.SMALL_TALK),
    ("cheers", care.SMALL_TALK),
    ("👍", care.SMALL_TALK),
    ("thank you so much x", care.SMALL_TALK),
    ("Ok thanks", care.SMALL_TALK),
    ("Brilliant, thank you", care.SMALL_TALK),
    ("Lovely x", care.SMALL_TALK),
    ("talk to you soon", care.SMALL_TALK),
    ("Fine", care.SMALL_TALK),
    # Commands, even with words that would otherwise ask for a person.
    ("BALANCE", care.COMMAND),
    ("Balence?", care.COMMAND),
    ("OFFER lifts to the shops", care.COMMAND),
    ("NEED a lift to the clinic, call me on 07700900123", care.COMMAND),
    ("MENU", care.COMMAND),
    ("Hi", care.COMMAND),
    # Not understood: the inbox, never an alert. Single ambiguous words never mean distress.
    ("What time is the seed swap?", care.NOT_UNDERSTOOD),
    ("die", care.NOT_UNDERSTOOD),
    ("low", care.NOT_UNDERSTOOD),
    ("My balance is really low", care.NOT_UNDERSTOOD),
    ("I can't go on Tuesday, sorry", care.NOT_UNDERSTOOD),
    ("leave me alone", care.NOT_UNDERSTOOD),
    ("help me", care.NOT_UNDERSTOOD),
    ("please don't call me", care.NOT_UNDERSTOOD),
    ("😢", care.NOT_UNDERSTOOD),
    ("asdfgh", care.NOT_UNDERSTOOD),
]


def test_the_table_is_long_and_covers_every_route():
    assert len(ROUTES) >= 40
    assert {route for _, route in ROUTES} == set(care.ROUTES)


@pytest.mark.parametrize(("text", "route"), ROUTES, ids=[t for t, _ in ROUTES])
def test_a_text_is_routed_answered_and_kept(text, route, sam, brokers, services, outbox):
    answers = sam.text(text)
    [row] = kept(services, SAM)[-1:]
    assert (row.body, row.route) == (text, route)
    assert row.inbox == ("open" if route in (care.DISTRESS, care.TALK, care.NOT_UNDERSTOOD)
                         else None)
    assert row.answer == ("\n".join(answers) or None)  # the kept row holds the bank's answer
    words = " ".join(answers)
    if route != care.NOT_UNDERSTOOD:
        assert "didn't understand" not in words
    if route == care.DISTRESS:
        assert answers and CRISIS in words and "call you" in words
        assert len(alerts(services, "care_distress_alert")) == 2  # Bea and Bob, at once
    elif route == care.TALK:
        assert answers == ["Thanks Sam, a broker from Lambeth Time Bank will be in touch "
                           "soon. Reply MENU for what else you can do"]
        assert len(alerts(services, "care_talk_alert")) == 2
    else:
        assert alerts(services) == []
    if route == care.SMALL_TALK:
        assert answers in ([], ["You're welcome, Sam! Reply MENU any time to see what you can "
                                "do"])
    with services.db.reading() as session:  # nobody left the bank by accident
        assert members.find_member(session, 1, SAM).status == "active"


def test_help_me_offers_a_person_as_well_as_the_menu(sam):
    answer = sam.reply("help me")
    assert "Reply TALK and a broker will be in touch" in answer and "MENU" in answer
    assert "didn't understand" not in answer


def test_distress_is_caught_while_a_question_waits_and_the_question_is_dropped(
        make_phone, brokers, services):
    ana = make_phone("+447700900002")
    assert ana.reply("JOIN Ana").startswith("Welcome to")  # asks what she could help with
    answer = ana.reply("honestly I can't cope anymore")
    assert CRISIS in answer
    with services.db.reading() as session:
        ana_row = members.find_member(session, 1, ana.number)
        assert ana_row.skills is None  # not taken as her skills
    assert "Balance" in ana.reply("BALANCE")


# --- TALK and distress: the answers use the bank's own words ---------------------------------


def test_bank_settings_give_the_hours_and_the_lines(cli, sam, brokers, services):
    result = cli("bank", "set", "--contact-hours", "weekdays 10am to 4pm",
                 "--support-line", "020 7946 0123",
                 "--crisis-text", "Samaritans 116 123, any time")
    assert result.exit_code == 0, result.output
    assert "Brokers in touch: weekdays 10am to 4pm" in result.output
    assert "support line: 020 7946 0123; crisis line: Samaritans 116 123, any time." \
        in result.output
    services.bank_cache.clear()
    assert sam.reply("TALK") == ("Thanks Sam, a broker from Lambeth Time Bank will be in touch, "
                                 "usually weekdays 10am to 4pm. Reply MENU for what else you "
                                 "can do")
    answer = sam.reply("I want to end my life")
    assert answer == ("I'm so sorry you're feeling like this, Sam. Someone from Lambeth Time "
                      "Bank will call you as soon as they can. You can ring us on 020 7946 0123. "
                      "Right now: Samaritans 116 123, any time")
    # Taken back: the UK default again, and no support line.
    cli("bank", "set", "--support-line", "", "--crisis-text", "")
    with services.db.reading() as session:
        bank = banks.bank_for_address(session, None)
        assert (bank.support_line, bank.crisis_text) == (None, CRISIS)


@pytest.mark.parametrize(("option", "value", "why"), [
    ("--crisis-text", "Text STOP to 85258 or call the Samaritans on 116 123", "carriers"),
    ("--crisis-text", "x" * 61, "at most 60"),
    ("--support-line", "020 7946 0123 ☎", "plain letters"),
    ("--contact-hours", "from Monday to Friday, 10am to 4pm, not bank holidays", "at most 40"),
])
def test_bank_settings_that_would_break_a_text_are_refused(cli, option, value, why):
    result = cli("bank", "set", option, value)
    assert result.exit_code != 0 and why in result.output


def test_a_distress_alert_names_the_member_and_their_number(sam, brokers, services, outbox):
    sam.text("I feel so low I can't go on")
    [to_bea] = outbox.to(BROKER)
    with services.db.reading() as session:
        sam_id = members.find_member(session, 1, SAM).id
    assert to_bea == (f"Urgent: Sam (#{sam_id}) may be in distress: \"I feel so low I can't "
                      f"go on\" Call them on {SAM} as soon as you can. See Inbox")
    [alert, _] = alerts(services)
    assert alert.urgent and alert.caused_by_member_id == sam_id


def test_a_distress_alert_goes_in_quiet_hours_and_a_talk_alert_waits(
        backend, make_phone, services):
    from tests.test_bad_input import built_app

    now = datetime.now(ZoneInfo("Europe/London"))
    quiet = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=1)):%H:%M}"
    with built_app(backend, quiet_hours=quiet) as quiet_app:
        shared = quiet_app.extensions["timebank"]
        with shared.db.writing() as session:
            members.make_broker(session, banks.bank_for_address(session, None), BROKER, "Bea")
        from tests.helpers import Outbox, Phone

        outbox = Outbox(shared)
        ana = join(Phone(quiet_app, "+447700900002"), "Ana")
        ana.text("TALK")
        assert outbox.to(BROKER) == []  # held until the morning
        ana.text("I want to die")
        [sent] = outbox.to(BROKER)
        assert sent.startswith("Urgent: Ana")
        assert [m.status for m in alerts(shared)] == ["queued", "sent"]


def test_a_member_who_said_stop_gets_nothing_but_the_brokers_hear_of_distress(
        sam, brokers, services, outbox):
    sam.text("STOP")
    assert sam.text("I want to die") == []
    assert sam.text("TALK") == []
    assert len(outbox.to(BROKER)) == 1 and outbox.to(BROKER)[0].startswith("Urgent: Sam")
    assert [t.route for t in kept(services, SAM)][-2:] == [care.DISTRESS, care.COMMAND]


def test_stop_with_distress_is_obeyed_and_the_brokers_still_hear(sam, brokers, services, outbox):
    assert sam.text("Stop texting me, I can't go on") == [
        "You won't get any more texts from Lambeth Time Bank. To get texts again, reply START"]
    assert outbox.to(BROKER)[0].startswith("Urgent: Sam")
    assert outbox.to(SAM) == []
    assert kept(services, SAM)[-1].route == care.DISTRESS


def test_a_stranger_asking_to_talk_is_told_to_join_first_and_nobody_is_texted(
        make_phone, brokers, services, outbox):
    zoe = make_phone("+447700900099")
    assert zoe.reply("Can someone call me?") == (
        "To hear from someone at Lambeth Time Bank, reply JOIN and your first name, e.g. JOIN "
        "Sam, then TALK")
    [row] = kept(services)
    assert (row.member_id, row.masked_from, row.route, row.inbox) == (
        None, "+44******0099", care.TALK, "open")
    assert alerts(services) == []


# --- Alerts cannot run up the bill ----------------------------------------------------------


def test_repeated_talk_within_an_hour_alerts_once_and_the_inbox_keeps_every_one(
        sam, brokers, services, outbox):
    for _ in range(3):
        sam.text("TALK")
    sam.text("can someone ring me")
    assert len(outbox.to(BROKER)) == 1 and len(outbox.to(BROKER_TWO)) == 1
    assert [t.route for t in kept(services, SAM)][-4:] == [care.TALK] * 4
    # Distress is its own alert, at once, even after a TALK alert.
    sam.text("I want to die")
    sam.text("I want to die, please")
    assert len(outbox.to(BROKER)) == 2
    # An hour later, a TALK alerts again.
    with services.db.writing() as session:
        session.execute(update(Message).values(created_at=datetime.now(UTC) - timedelta(hours=2)))
    sam.text("TALK")
    assert len(outbox.to(BROKER)) == 3


def test_alerts_obey_the_members_daily_cap(cli, sam, brokers, services, outbox):
    assert cli("bank", "set", "--member-daily-texts", "1").exit_code == 0
    sam.text("TALK")  # one alert reaches Bea; Bob's is held back by the cap
    assert [(m.status, m.error_code) for m in alerts(services)] == [
        ("queued", None), ("canceled", "cap-member")]
    assert all(m.caused_by_member_id is not None for m in alerts(services))
    to_bea = outbox.to(BROKER)
    assert to_bea[0].startswith("Sam (#") and "reached today's limit" in to_bea[1]
    assert "reached today's limit" in outbox.to(BROKER_TWO)[0]  # told once, not the alert
    assert len(kept(services, SAM)) >= 1 and kept(services, SAM)[-1].inbox == "open"


def test_a_stranger_spamming_distress_or_talk_cannot_text_the_brokers_without_limit(
        make_phone, brokers, services, outbox):
    for n in range(12):
        make_phone(f"+4477009002{n:02d}").text("I want to kill myself")
        make_phone(f"+4477009003{n:02d}").text("TALK")
    # One alert an hour for all strangers together, to each broker on duty.
    assert outbox.to(BROKER) == [
        "Urgent: someone not in Lambeth Time Bank (+44******0200) may be in distress: \"I want "
        "to kill myself\" They got the crisis line. See Inbox"]
    assert len(alerts(services)) == 2
    with services.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(InboundText).where(
            InboundText.inbox == "open")) == 24  # every one kept for a broker to see
    # Nor can one stranger past the answers cap: silence, and nothing more.
    spammer = make_phone("+447700900400")
    answered = [spammer.text("I want to die") for _ in range(15)]
    assert answered[-1] == []
    assert len(alerts(services)) == 2


def test_a_member_spamming_distress_cannot_text_the_brokers_without_limit(
        sam, brokers, services, outbox):
    for n in range(25):
        sam.text(f"I want to die {n}")
    assert len(outbox.to(BROKER)) == 1


# --- The duty rota ---------------------------------------------------------------------------


def test_duty_days_and_hours_are_read_as_people_write_them():
    assert duty.parse_days("mon-fri") == 0b0011111
    assert duty.parse_days("sat,sun") == duty.parse_days("weekends") == 0b1100000
    assert duty.parse_days("fri-mon") == 0b1110001
    assert duty.parse_hours("09:00-17:00") == (540, 1020)
    assert duty.parse_hours("22:00-08:00") == (1320, 480)
    assert duty.parse_hours("all day") == (0, 1440)
    for bad in ("someday", ""):
        with pytest.raises(duty.BadDuty):
            duty.parse_days(bad)
    for bad in ("9am", "25:00-26:00", "09:70-10:00"):
        with pytest.raises(duty.BadDuty):
            duty.parse_hours(bad)


def test_brokers_on_duty_follow_the_rota_in_the_banks_time_zone(services, brokers):
    bea_id, bob_id = brokers
    london = ZoneInfo("Europe/London")
    monday_10 = datetime(2026, 12, 7, 10, 0, tzinfo=london)
    monday_23 = datetime(2026, 12, 7, 23, 0, tzinfo=london)
    tuesday_07 = datetime(2026, 12, 8, 7, 0, tzinfo=london)
    saturday_10 = datetime(2026, 12, 12, 10, 0, tzinfo=london)
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        names = lambda at: [b.name for b in duty.brokers_on_duty(session, bank, at)]  # noqa: E731
        assert names(monday_10) == ["Bea", "Bob"]  # no rota: everyone
        bea, bob = session.get(Member, bea_id), session.get(Member, bob_id)
        duty.add_duty(session, bank, bea, duty.parse_days("mon-fri"), (540, 1020))
        duty.add_duty(session, bank, bob, duty.parse_days("mon"), (1320, 480))  # overnight
        assert names(monday_10) == ["Bea"]
        assert names(monday_23) == ["Bob"]
        assert names(tuesday_07) == ["Bob"]  # Monday night runs into Tuesday morning
        assert names(saturday_10) == ["Bea", "Bob"]  # nobody on the rota: everyone
        bea.status = "pending"  # a broker on hold is never texted
        assert names(monday_10) == ["Bob"]


def test_the_rota_at_the_command_line_and_alerts_go_only_to_who_is_on_duty(
        cli, sam, brokers, services, outbox):
    result = cli("broker", "duty", BROKER, "--days", "daily", "--hours", "all day")
    assert result.exit_code == 0 and "Bea is on duty daily all day" in result.output
    listed = cli("broker", "duty").output
    assert "Bea (#" in listed and "On duty now: Bea" in listed
    assert cli("broker", "duty", "#999", "--days", "mon").exit_code != 0
    assert cli("broker", "duty", SAM, "--days", "mon").exit_code != 0  # not a broker
    assert cli("broker", "duty", BROKER, "--days", "someday",
               "--hours", "09:00-17:00").exit_code != 0
    sam.text("TALK")
    assert len(outbox.to(BROKER)) == 1 and outbox.to(BROKER_TWO) == []
    assert cli("broker", "duty", BROKER, "--clear").exit_code == 0
    with services.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(BrokerDuty)) == 0
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["duty.added", "duty.cleared"]


def test_a_broker_who_is_away_is_not_alerted_unless_every_broker_is(
        sam, brokers, make_phone, outbox):
    bea, bob = make_phone(BROKER), make_phone(BROKER_TWO)
    bea.text("AWAY 2 weeks")
    sam.text("TALK")
    assert outbox.to(BROKER) == [] and len(outbox.to(BROKER_TWO)) == 1
    bob.text("AWAY")  # nobody left on duty: an alert never goes to no one
    sam.text("I want to die")
    assert len(outbox.to(BROKER)) == 1 and len(outbox.to(BROKER_TWO)) == 2


# --- Retention -------------------------------------------------------------------------------


def test_the_sweep_deletes_texts_older_than_the_banks_retention(
        app, sam, services, make_phone):
    with services.db.writing() as session:
        other = banks.add_bank(session, "Hackney Time Bank", addresses=["+447700900555"])
        other.retention_days = 200
    make_phone("+447700900009", to="+447700900555").text("JOIN Kai")
    sam.text("BALANCE")
    old = datetime.now(UTC) - timedelta(days=100)
    with services.db.writing() as session:
        session.execute(update(InboundText).where(InboundText.body != "BALANCE")
                        .values(received_at=old))
    before = len(kept(services))
    with app.app_context():
        counts = jobs.sweep()
    left = kept(services)
    assert counts["texts_forgotten"] == before - 2  # Sam's old texts; Kai's bank keeps 200 days
    assert sorted(t.body for t in left) == ["BALANCE", "JOIN Kai"]


# --- The inbox on the dashboard --------------------------------------------------------------


@pytest.fixture
def client(app):
    return app.test_client()


def csrf(page: bytes) -> str:
    found = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1).decode()


def sign_in(client, phone: str = "07700 900700", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = csrf(client.get("/dashboard/login").data)
    response = client.post("/dashboard/login", data={"csrf_token": token, "phone": phone,
                                                     "password": password})
    assert response.status_code == 302
    return client


def text_of(response) -> str:  # type: ignore[no-untyped-def]
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.data.decode())).split())


def test_a_broker_sees_the_inbox_and_replies_from_the_dashboard(
        client, sam, brokers, services, outbox):
    sam.text("BALANCE")
    sam.text("I feel really low, can someone call me?")
    sam.text("What time is the seed swap?")
    sam.text("thanks!")
    sign_in(client)
    assert "2 in the inbox" in text_of(client.get("/dashboard/"))
    page = text_of(client.get("/dashboard/inbox"))
    assert "I feel really low, can someone call me?" in page and "distress" in page
    assert "What time is the seed swap?" in page and "not understood" in page
    assert "thanks!" not in page and "BALANCE" not in page  # only texts for a person
    assert page.index("I feel really low") < page.index("What time is the seed swap?")
    assert "On duty now: Bea, Bob" in page
    [distress] = [t for t in kept(services, SAM) if t.route == care.DISTRESS]
    item = client.get(f"/dashboard/inbox/{distress.id}")
    shown = text_of(item)
    assert "Text from Sam" in shown and SAM in shown and "Brixton" in shown
    assert "Sam wrote BALANCE" in shown and "The bank answered Balance: 0 hours" in shown
    # The reply goes out as a text from the bank, once, however often the form is sent.
    form = {"csrf_token": csrf(item.data), "words": "Hi Sam, it's Bea. I'll ring you at 3pm.",
            "request_id": "reply-1", "text_id": str(distress.id), "handled": "1"}
    done = client.post(f"/dashboard/members/{distress.member_id}/reply", data=form,
                       follow_redirects=True)
    assert "Your reply to Sam is on its way." in text_of(done)
    again = client.post(f"/dashboard/members/{distress.member_id}/reply", data=form,
                        follow_redirects=True)
    assert "That reply was already sent." in text_of(again)
    assert outbox.to(SAM)[-1:] == ["Lambeth Time Bank: Hi Sam, it's Bea. I'll ring you at 3pm. "
                                   "(Bea)"]
    assert len([m for m in outbox.to(SAM) if "ring you at 3pm" in m]) == 1
    with services.db.reading() as session:
        handled = session.get(InboundText, distress.id)
        assert (handled.inbox, handled.handled_by_member_id) == ("handled", brokers[0])
        entry = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "inbox.replied")).one()
        assert entry.detail == "Hi Sam, it's Bea. I'll ring you at 3pm."
        assert entry.broker_member_id == brokers[0]
    # The conversation shows both sides; the inbox has one text left.
    member_page = text_of(client.get(f"/dashboard/members/{distress.member_id}"))
    assert "Sam wrote I feel really low" in member_page
    assert "The bank sent Lambeth Time Bank: Hi Sam, it's Bea." in member_page
    assert "1 in the inbox" in text_of(client.get("/dashboard/"))
    # The other is marked handled without a reply.
    [other] = [t for t in kept(services, SAM) if t.inbox == "open"]
    token = csrf(client.get("/dashboard/inbox").data)
    marked = client.post(f"/dashboard/inbox/{other.id}/handled", data={"csrf_token": token},
                         follow_redirects=True)
    assert "Marked handled." in text_of(marked) and "Nothing is waiting" in text_of(marked)
    assert "handled by Bea" in text_of(marked)
    with services.db.reading() as session:
        actions = [a for a in session.scalars(select(AuditEntry.action)) if "inbox" in a]
    assert actions == ["inbox.replied", "inbox.handled", "inbox.handled"]


def test_a_reply_needs_words_and_a_member_who_can_be_texted(client, sam, brokers, services):
    sam.text("call me")
    [text] = [t for t in kept(services, SAM) if t.route == care.TALK]
    sign_in(client)
    token = csrf(client.get(f"/dashboard/inbox/{text.id}").data)
    empty = client.post(f"/dashboard/members/{text.member_id}/reply",
                        data={"csrf_token": token, "words": "  "}, follow_redirects=True)
    assert "Write a reply first." in text_of(empty)
    sam.text("STOP")
    stopped = client.post(f"/dashboard/members/{text.member_id}/reply",
                          data={"csrf_token": token, "words": "Hello"}, follow_redirects=True)
    assert "has stopped texts from the bank, so nothing was sent." in text_of(stopped)
    with services.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Message).where(
            Message.kind == "care_broker_reply")) == 0


def test_a_broker_of_another_bank_cannot_see_or_answer_this_banks_inbox(
        client, sam, brokers, services, outbox):
    sam.text("I want to die")
    [text] = [t for t in kept(services, SAM) if t.route == care.DISTRESS]
    with services.db.writing() as session:
        other = banks.add_bank(session, "Hackney Time Bank", addresses=["+447700900555"])
        zed, _ = members.make_broker(session, other, "+447700900556", "Zed")
        zed.password_hash = auth.hash_password(PASSWORD)
    sign_in(client, phone="07700 900556")
    assert "I want to die" not in text_of(client.get("/dashboard/inbox"))
    assert "0 in the inbox" in text_of(client.get("/dashboard/"))
    assert client.get(f"/dashboard/inbox/{text.id}").status_code == 404
    token = csrf(client.get("/dashboard/").data)
    assert client.post(f"/dashboard/inbox/{text.id}/handled",
                       data={"csrf_token": token}).status_code == 404
    assert client.post(f"/dashboard/members/{text.member_id}/reply",
                       data={"csrf_token": token, "words": "gotcha"}).status_code == 404
    # Nor by naming this bank's text with a member of their own.
    with services.db.writing() as session:
        kai = Member(bank_id=other.id, phone="+447700900557", name="Kai")
        session.add(kai)
        session.flush()
        kai_id = kai.id
    assert client.post(f"/dashboard/members/{kai_id}/reply",
                       data={"csrf_token": token, "words": "hi", "text_id": str(text.id),
                             "handled": "1"}).status_code == 404
    assert [t.inbox for t in kept(services, SAM) if t.id == text.id] == ["open"]
    assert not any("gotcha" in m for m in outbox.to(SAM, status=None))
    # And the alert about Sam went to this bank's brokers only.
    assert outbox.to("+447700900556") == []


def test_the_inbox_needs_a_signed_in_broker_and_a_csrf_token(client, sam, brokers, services):
    sam.text("call me")
    [text] = kept(services, SAM)[-1:]
    assert client.get("/dashboard/inbox").status_code == 302
    sign_in(client)
    assert client.post(f"/dashboard/inbox/{text.id}/handled").status_code == 400
    assert kept(services, SAM)[-1].inbox == "open"


def test_a_bank_without_brokers_still_keeps_and_answers(sam, services):
    answer = sam.reply("I want to die")
    assert CRISIS in answer
    assert alerts(services) == []
    with services.db.reading() as session:
        assert session.scalar(select(Bank.crisis_text)) == CRISIS


# --- The hot path stays lean -----------------------------------------------------------------


def test_a_balance_costs_one_read_and_the_one_insert_that_keeps_it(sam, services):
    from sqlalchemy import event

    sam.text("BALANCE")  # the bank's settings are cached from here on
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement.split()[0].upper())

    event.listen(services.db.engine, "before_cursor_execute", seen)
    try:
        assert sam.reply("BALANCE").startswith("Balance: 0 hours")
    finally:
        event.remove(services.db.engine, "before_cursor_execute", seen)
    assert statements == ["SELECT", "INSERT"]  # no BEGIN, no COMMIT: no extra round trips
    assert kept(services, SAM)[-1].answer.startswith("Balance: 0 hours")


def test_a_broker_replies_from_a_members_page_without_a_text_to_answer(
        client, sam, brokers, services, outbox):
    with services.db.reading() as session:
        sam_id = members.find_member(session, 1, SAM).id
    sign_in(client)
    page = client.get(f"/dashboard/members/{sam_id}")
    assert "Reply to Sam by text" in text_of(page)
    sent = client.post(f"/dashboard/members/{sam_id}/reply",
                       data={"csrf_token": csrf(page.data), "words": "Lunch club is back on Friday",
                             "request_id": "r9"}, follow_redirects=True)
    shown = text_of(sent)
    assert "Your reply to Sam is on its way." in shown and "Statement" in shown
    assert outbox.to(SAM)[-1] == "Lambeth Time Bank: Lunch club is back on Friday (Bea)"
    # A member can answer it: their words are kept and, if not understood, reach the inbox.
    sam.text("Which Friday?")
    assert kept(services, SAM)[-1].inbox == "open"
    assert "Which Friday?" in text_of(client.get(f"/dashboard/members/{sam_id}"))
