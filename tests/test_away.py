"""Leaving, pausing and being missed (app.care.away), as members and brokers see it: through
the webhook, the sweep, the dashboard and the command line. The clock moves by rows and
parameters, never by sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from app import jobs
from app.care import away
from conversations.gsm import segments
from ledger import banks, members
from ledger.models import AuditEntry, Bank, Confirmation, Member, Message, Post, utcnow
from tests.helpers import join, ref_in
from tests.test_dashboard import csrf, post, sign_in, text_of

LONDON = ZoneInfo("Europe/London")
BROKER = "+447700900700"


@pytest.fixture
def sam(make_phone):
    return join(make_phone("+447700900601"), "Sam", skills="gardening")


@pytest.fixture
def ana(make_phone):
    return join(make_phone("+447700900602"), "Ana")


@pytest.fixture
def broker(services):
    from app import auth
    from tests.test_dashboard import PASSWORD

    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        member, _ = members.make_broker(session, bank, BROKER, "Bea")
        member.password_hash = auth.hash_password(PASSWORD)
        return member.id


def member_row(services, number: str) -> Member:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        found = session.scalars(select(Member).where(Member.phone == number)).one()
        session.expunge(found)
        return found


def change(services, number: str, **values: object) -> None:  # type: ignore[no-untyped-def]
    with services.db.writing() as session:
        session.execute(update(Member).where(Member.phone == number).values(**values))


def next_summary_time(now: datetime | None = None) -> datetime:
    """The first 10:30 in London after now: when the daily summary is due."""
    local = (now or utcnow()).astimezone(LONDON)
    at = datetime.combine(local.date(), time(10, 30), tzinfo=LONDON)
    if at <= local:
        at += timedelta(days=1)
    return at.astimezone(UTC)


# --- LEAVE, confirmed ------------------------------------------------------------------------


def test_leave_asks_for_the_exact_words_and_leaves_only_then(sam, services):
    sam.text("NEED a lift to the clinic")
    asked = sam.reply("LEAVE")
    assert "reply LEAVE NOW" in asked and "hours are kept" in asked
    assert member_row(services, sam.number).status == "active"
    with services.db.reading() as session:
        assert session.scalar(select(Post.status).where(Post.kind == "need")) == "open"
    assert sam.reply("LEAVE NOW").startswith("You have left Lambeth Time Bank, Sam")
    assert member_row(services, sam.number).status == "left"
    with services.db.reading() as session:  # what leaving did before, only later
        assert session.scalar(select(Post.status).where(Post.kind == "need")) == "closed"


@pytest.mark.parametrize("words", ["Leave me alone", "leave it", "Leave it to me",
                                   "Leaving soon?", "leave now please", "LEAVE ME ALONE"])
def test_sentences_starting_with_leave_are_not_leaving(sam, services, words):
    answer = " ".join(sam.text(words))
    assert "LEAVE NOW" not in answer and "You have left" not in answer
    assert member_row(services, sam.number).status == "active"
    # Nor did it start leaving: LEAVE NOW next is only asked to be confirmed.
    assert "reply LEAVE NOW" in sam.reply("LEAVE NOW")
    assert member_row(services, sam.number).status == "active"


def test_any_other_text_cancels_leaving(sam, services):
    sam.text("LEAVE")
    assert sam.reply("BALANCE").startswith("Balance: 0 hours")
    assert "reply LEAVE NOW" in sam.reply("LEAVE NOW")  # asked again, not gone
    assert member_row(services, sam.number).status == "active"
    assert "staying with Lambeth Time Bank" in sam.reply("NO")
    assert "reply LEAVE NOW" in sam.reply("LEAVE NOW")
    assert member_row(services, sam.number).status == "active"


def test_a_stale_confirm_asks_again(sam, services):
    sam.text("LEAVE")
    change(services, sam.number, leave_asked_at=utcnow() - timedelta(minutes=31))
    assert "reply LEAVE NOW" in sam.reply("LEAVE NOW")
    assert member_row(services, sam.number).status == "active"
    # Asked afresh, a prompt LEAVE NOW does it.
    assert sam.reply("LEAVE NOW").startswith("You have left")


def test_a_confirm_from_another_number_leaves_nobody(sam, ana, make_phone, services):
    sam.text("LEAVE")
    assert "reply LEAVE NOW" in ana.reply("LEAVE NOW")  # Ana is only asked
    stranger = make_phone("+447700900999")
    assert "JOIN" in stranger.reply("LEAVE NOW")
    assert member_row(services, sam.number).status == "active"
    assert member_row(services, ana.number).status == "active"


def test_losing_the_dialog_never_leaves(sam, services, redis):
    sam.text("LEAVE")
    redis.flushdb()
    assert "reply LEAVE NOW" in sam.reply("LEAVE NOW")
    assert member_row(services, sam.number).status == "active"


# --- AWAY and BACK ---------------------------------------------------------------------------


def test_away_and_back(sam, services):
    answer = sam.reply("AWAY")
    assert "you're paused" in answer and "BACK" in answer
    assert member_row(services, sam.number).away_since is not None
    profile = sam.text("PROFILE")
    assert profile[-1].startswith("Paused: no asks")
    assert "Welcome back, Sam" in sam.reply("BACK")
    assert member_row(services, sam.number).away_since is None
    assert "you're not paused" in sam.reply("BACK")
    assert len(sam.text("PROFILE")) == 1


def test_away_keeps_needs_open_and_says_how_to_close_them(sam, services):
    sam.text("NEED a lift to the clinic")
    with services.db.reading() as session:
        ref = session.scalar(select(Post.ref))
    answers = sam.text("AWAY 2 weeks")
    assert answers[0].startswith("Sam, you're paused until ")
    assert answers[1] == f"Your need no. {ref} stays open. To close it, reply CLOSE {ref}"
    with services.db.reading() as session:
        assert session.scalar(select(Post.status)) == "open"
    sam.text("NEED help with a form")
    assert "2 open needs stay open" in sam.text("AWAY")[1]


@pytest.mark.parametrize("words", ["AWAY with the fairies", "AWAY 500 days",
                                   "AWAY until 2020-01-01", "AWAY #2", "AWAY 07700900602"])
def test_away_with_words_it_cannot_read_explains_and_changes_nothing(sam, ana, services,
                                                                       words):
    assert "AWAY 3 weeks" in sam.reply(words)
    assert member_row(services, sam.number).away_since is None
    assert member_row(services, ana.number).away_since is None  # nobody else, either


def test_reading_lengths_and_dates(services):
    with services.db.reading() as session:
        bank = banks.bank_for_address(session, None)
        session.expunge(bank)
    now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # a Wednesday

    def back_on(words: str) -> str:
        until = away.read_until(words, bank, now)
        assert until is not None
        local = until.astimezone(LONDON)
        assert local.time() == time(0)
        return local.date().isoformat()

    assert back_on("3 weeks") == "2026-12-23"
    assert back_on("10 days") == "2026-12-12"
    assert back_on("a fortnight") == "2026-12-16"
    assert back_on("for two weeks") == "2026-12-16"
    assert back_on("until 24 Dec") == "2026-12-24"
    assert back_on("till 24/12") == "2026-12-24"
    assert back_on("until December 24th") == "2026-12-24"
    assert back_on("until 2027-01-05") == "2027-01-05"
    assert back_on("until Monday") == "2026-12-07"
    assert back_on("until 1 Nov") == "2027-11-01"  # passed this year: next year's
    assert away.read_until("", bank, now) is None
    for words in ("until 2 Dec", "until 2026-11-30", "400 days", "0 days", "until 31/02",
                  "soon", "3 parsecs"):
        with pytest.raises(away.AwayWords):
            away.read_until(words, bank, now)


def test_away_members_get_no_asks(sam, ana, make_phone, services, outbox):
    sam.text("AWAY")
    ana.text("NEED help with gardening")
    outbox.run_jobs()
    assert not any("gardening" in text for text in outbox.to(sam.number, status=None))
    sam.text("BACK")
    ana.text("NEED gardening help on Sunday")
    assert any("YES" in text for text in outbox.to(sam.number))


def test_away_members_get_no_broadcasts(sam, ana, broker, make_phone, services, outbox):
    bea = make_phone(BROKER)
    sam.text("AWAY 3 weeks")
    assert "Broadcast" in bea.reply("BROADCAST Seed swap Saturday 2pm")
    assert any("Seed swap" in text for text in outbox.to(ana.number))
    assert not any("Seed swap" in text for text in outbox.to(sam.number, status=None))


def test_a_broadcast_text_held_for_a_member_who_went_away_is_not_sent(
        sam, ana, broker, make_phone, services, outbox):
    bea = make_phone(BROKER)
    bea.text("BROADCAST Seed swap Saturday 2pm")  # recorded for Sam and Ana, not sent yet
    sam.text("AWAY")
    outbox.run_jobs()
    with services.db.reading() as session:
        sam_id = member_row(services, sam.number).id
        held = session.scalars(select(Message).where(
            Message.member_id == sam_id, Message.activity_id.is_not(None))).one()
        assert (held.status, held.error_code) == ("canceled", "away")


def _age_requests(services, hours: int) -> None:  # type: ignore[no-untyped-def]
    with services.db.writing() as session:
        for request in session.scalars(select(Confirmation)):
            request.created_at = request.created_at - timedelta(hours=hours)


def test_reminders_wait_for_an_away_member_and_hours_are_never_lost(
        sam, ana, broker, services, outbox):
    with services.db.writing() as session:
        session.execute(update(Bank).values(auto_confirm=True))
    sam.text("DONE 2 Ana gardening")
    ref = ref_in(outbox.to(ana.number)[0])
    ana.text("AWAY")
    _age_requests(services, 49)
    assert jobs.sweep()["reminded"] == 0  # held while she is away
    assert len(outbox.to(ana.number)) == 1
    ana.text("BACK")
    assert jobs.sweep()["reminded"] == 1  # now that she is back
    assert outbox.to(ana.number)[-1].startswith("Reminder: Sam helped you")
    ana.text("AWAY")
    _age_requests(services, 24 * 7)
    counts = jobs.sweep()
    # The brokers get it on time; her hours are not taken without her answer.
    assert (counts["escalated"], counts["auto_confirmed"]) == (1, 0)
    assert "Recorded: Sam gave you 2 hours" in ana.reply(f"YES {ref}")


def test_the_timed_resume_and_the_day_before(sam, services, outbox):
    assert "We'll text the day before" in sam.reply("AWAY 3 weeks")
    row = member_row(services, sam.number)
    assert row.away_until is not None
    assert row.away_until.astimezone(LONDON).time() == time(0)
    assert jobs.sweep()["away_warned"] == 0  # three weeks to go
    # Three weeks later, at 10:00 the day before.
    change(services, sam.number, away_since=row.away_since - timedelta(days=20),
           away_until=utcnow() + timedelta(hours=13))
    assert jobs.sweep()["away_warned"] == 1
    assert jobs.sweep()["away_warned"] == 0  # once
    tomorrow = outbox.to(sam.number)
    assert len(tomorrow) == 1 and tomorrow[0].startswith(
        "Hello Sam, you're back with Lambeth Time Bank tomorrow")
    assert "AWAY 2 weeks" in tomorrow[0]
    change(services, sam.number, away_until=utcnow() - timedelta(minutes=1))
    assert jobs.sweep()["away_resumed"] == 1
    row = member_row(services, sam.number)
    assert row.away_since is None and row.away_until is None and row.back_at is not None


def test_staying_away_longer_moves_the_end(sam, services):
    sam.text("AWAY 3 weeks")
    first = member_row(services, sam.number).away_until
    sam.text("AWAY 5 weeks")
    later = member_row(services, sam.number).away_until
    assert first is not None and later is not None and later - first == timedelta(weeks=2)


def test_a_short_pause_gets_no_back_tomorrow_text(sam, services, outbox):
    sam.text("AWAY 1 day")
    assert jobs.sweep()["away_warned"] == 0
    assert outbox.to(sam.number) == []


# --- a broker sets a member away -------------------------------------------------------------


def test_a_broker_sets_a_member_away_at_the_command_line(sam, cli, services, outbox):
    number = f"#{member_row(services, sam.number).id}"
    result = cli("member", "away", number, "--for", "3 weeks")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Sam is away until ")
    assert member_row(services, sam.number).away_since is not None
    told = outbox.to(sam.number)
    assert told[-1].startswith("Hello Sam, Lambeth Time Bank has paused asks and news to you "
                               "until")
    assert "away:" in cli("member", "show", number).output
    assert cli("member", "back", sam.number).output == "Sam is back.\n"
    assert cli("member", "back", sam.number).output == "Sam was not away.\n"
    bad = cli("member", "away", number, "--until", "yesterday")
    assert bad.exit_code != 0 and "within a year" in bad.output
    with services.db.reading() as session:
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["member.away", "member.back"]


def test_the_cli_names_the_bank_it_acts_in(sam, cli, services):
    with services.db.writing() as session:
        banks.add_bank(session, "Hackney Time Bank", addresses=["+447700900555"])
    number = f"#{member_row(services, sam.number).id}"
    result = cli("member", "away", number, "--bank", "Hackney Time Bank")
    assert result.exit_code != 0
    assert member_row(services, sam.number).away_since is None


def test_a_broker_sets_a_member_away_on_the_dashboard(sam, broker, app, services, outbox):
    client = app.test_client()
    assert sign_in(client).status_code == 302
    sam_id = member_row(services, sam.number).id
    page = f"/dashboard/members/{sam_id}"
    done = post(client, f"{page}/away", {"until": "2099-01-01"}, page=page)
    assert "That isn't a length" in text_of(done)  # more than a year away
    done = post(client, f"{page}/away", {"for": "3 weeks"}, page=page)
    assert "Sam is away until" in text_of(done)
    assert "Away until" in text_of(client.get(page))
    assert "(set by a broker)" in text_of(client.get(page))
    check = text_of(client.get("/dashboard/check-on"))
    assert "Sam" in check and "set by Bea" in check
    assert "Sam is back." in text_of(post(client, f"{page}/back", page=page))
    with services.db.reading() as session:
        entries = list(session.execute(select(AuditEntry.action, AuditEntry.via,
                                              AuditEntry.broker_member_id)
                                       .where(AuditEntry.action.like("member.%"))
                                       .order_by(AuditEntry.id)))
    assert entries == [("member.away", "web", broker), ("member.back", "web", broker)]


def test_a_broker_of_another_bank_cannot_set_a_member_away(sam, broker, app, services):
    with services.db.writing() as session:
        other = banks.add_bank(session, "Hackney Time Bank", addresses=["+447700900555"])
        zed = Member(bank_id=other.id, phone="+447700900556", name="Zed")
        session.add(zed)
        session.flush()
        zed_id = zed.id
    client = app.test_client()
    sign_in(client)
    token = csrf(client.get("/dashboard/").data)
    for action in ("away", "back"):
        response = client.post(f"/dashboard/members/{zed_id}/{action}",
                               data={"csrf_token": token, "for": "3 weeks"})
        assert response.status_code == 404
    with services.db.reading() as session:
        assert session.get(Member, zed_id).away_since is None  # type: ignore[union-attr]


def test_a_member_cannot_use_the_dashboard_to_set_anyone_away(sam, ana, app, services):
    client = app.test_client()
    token = csrf(client.get("/dashboard/login").data)
    ana_id = member_row(services, ana.number).id
    response = client.post(f"/dashboard/members/{ana_id}/away",
                           data={"csrf_token": token, "for": "3 weeks"})
    assert response.status_code == 302 and "/dashboard/login" in response.location
    assert member_row(services, ana.number).away_since is None


# --- the brokers' daily summary ----------------------------------------------------------------


def _quiet(services, number: str, since: datetime) -> None:  # type: ignore[no-untyped-def]
    change(services, number, joined_at=since, last_inbound_at=since)


def test_the_daily_summary_names_who_to_check_on_once(sam, ana, broker, make_phone, services,
                                                      outbox):
    at = next_summary_time()
    cat = join(make_phone("+447700900603"), "Cat")
    dan = join(make_phone("+447700900604"), "Dan")
    eve = join(make_phone("+447700900605"), "Eve")
    sam.text("LEAVE")
    sam.text("LEAVE NOW")
    ana.text("STOP")
    cat.text("AWAY 3 weeks")
    _quiet(services, dan.number, at - timedelta(weeks=6, hours=1))
    _quiet(services, eve.number, at - timedelta(weeks=2))  # not quiet long enough
    ids = {name: member_row(services, phone.number).id
           for name, phone in (("Sam", sam), ("Ana", ana), ("Cat", cat), ("Dan", dan))}
    assert away.daily(services, at - timedelta(hours=1))["care_summaries"] == 0  # too early
    assert away.daily(services, at)["care_summaries"] == 1
    assert away.daily(services, at + timedelta(minutes=5))["care_summaries"] == 0  # once
    texts = outbox.to(BROKER)
    assert len(texts) == 1
    summary = texts[0]
    assert summary.startswith("Lambeth Time Bank, people to check on: ")
    assert f"Sam #{ids['Sam']} left" in summary
    assert f"Ana #{ids['Ana']} stopped texts" in summary
    assert f"Cat #{ids['Cat']} away till " in summary
    assert f"Dan #{ids['Dan']} quiet 6 weeks" in summary
    assert "Eve" not in summary and "Bea" not in summary
    # The next day, nothing new: nothing sent (the quiet and the away are not told twice).
    assert away.daily(services, at + timedelta(days=1))["care_summaries"] == 0
    assert len(outbox.to(BROKER)) == 1
    # And the dashboard has them all (seen at the summary's time, whatever the hour now).
    assert {c.name for c in _concerns_at(services, at)} == {"Sam", "Ana", "Cat", "Dan"}


def test_the_summary_is_one_text_per_bank_and_day_even_from_two_workers(
        sam, broker, services, outbox):
    at = next_summary_time()
    sam.text("AWAY")
    # A retried sweep, or a second worker that read the bank before the first wrote it.
    assert away.daily(services, at)["care_summaries"] == 1
    change_bank(services, care_summary_through=None)
    away.daily(services, at + timedelta(minutes=1))
    with services.db.reading() as session:
        rows = list(session.scalars(select(Message).where(Message.kind == "care_summary")))
    assert len(rows) == 1


def change_bank(services, **values: object) -> None:  # type: ignore[no-untyped-def]
    with services.db.writing() as session:
        session.execute(update(Bank).values(**values))


def test_a_long_summary_fits_two_segments_and_points_to_the_dashboard(
        broker, make_phone, services, outbox):
    at = next_summary_time()
    for n in range(30):
        phone = make_phone(f"+4477009008{n:02d}")
        phone.text(f"JOIN Person{chr(65 + n % 26)}{n}")
        _quiet(services, phone.number, at - timedelta(weeks=6, hours=1, minutes=n))
    away.daily(services, at)
    summary = outbox.to(BROKER)[0]
    assert segments(summary) <= 2
    assert summary.endswith("more: see the dashboard")
    assert len(_concerns_at(services, at)) == 30


def test_the_summary_goes_to_active_brokers_who_are_not_away(sam, broker, make_phone,
                                                            services, outbox):
    at = next_summary_time()
    with services.db.writing() as session:
        members.make_broker(session, banks.bank_for_address(session, None), "+447700900701",
                            "Bo")
    make_phone("+447700900701").text("AWAY")
    sam.text("AWAY")
    away.daily(services, at)
    assert len(outbox.to(BROKER)) == 1
    assert outbox.to("+447700900701") == []


def test_no_summary_in_quiet_hours_or_before_the_hour(services):
    with services.db.reading() as session:
        bank = banks.bank_for_address(session, None)
        session.expunge(bank)
    at = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)  # 10:30 in London in winter
    assert away.summary_due(bank, at, "21:00-08:00")
    assert not away.summary_due(bank, at, "10:00-11:00")
    assert not away.summary_due(bank, at - timedelta(hours=1), "off")
    bank.care_summary_through = at
    assert not away.summary_due(bank, at + timedelta(hours=3), "off")
    assert away.summary_due(bank, at + timedelta(days=1), "off")


# --- check-ins ---------------------------------------------------------------------------------


def test_check_ins_are_off_by_default_and_once_a_quiet_spell(sam, services, outbox, cli):
    at = next_summary_time() - timedelta(days=4)  # the days below are past: OK comes after
    _quiet(services, sam.number, at - timedelta(weeks=7))
    assert away.daily(services, at)["check_ins"] == 0
    assert outbox.to(sam.number) == []
    assert "check-in texts on" in cli("bank", "set", "--check-in").output
    assert away.daily(services, at + timedelta(days=1))["check_ins"] == 1
    assert outbox.to(sam.number) == [
        "Hello Sam, it's been a while. Reply OK if all is well, or TALK to hear from a broker"]
    assert away.daily(services, at + timedelta(days=2))["check_ins"] == 0  # once a spell
    assert "Thank you, Sam" in sam.reply("OK")
    assert sam.text("OK") == []  # answered: a plain OK gets a nod, not the thanks again
    # Sam's OK ended that spell; seven weeks on, a new one gets a new check-in.
    later = member_row(services, sam.number).last_inbound_at
    assert later is not None
    # (at the summary's hour: the daily round sends nothing in quiet hours, whatever the clock)
    assert away.daily(services, next_summary_time(later + timedelta(weeks=7)))["check_ins"] == 1
    assert len(outbox.to(sam.number)) == 2


def test_check_ins_keep_to_the_banks_daily_cap(sam, services, outbox, cli):
    at = next_summary_time()
    cli("bank", "set", "--check-in", "--bank-daily-texts", "0")
    _quiet(services, sam.number, at - timedelta(weeks=7))
    assert away.daily(services, at)["check_ins"] == 0


def test_quiet_after_is_the_banks_to_set(sam, services, cli):
    at = next_summary_time()
    _quiet(services, sam.number, at - timedelta(weeks=3))
    assert _concerns_at(services, at) == []
    assert "Quiet after 2 weeks" in cli("bank", "set", "--quiet-after-weeks", "2").output
    assert [c.kind for c in _concerns_at(services, at)] == ["quiet"]


def _concerns_at(services, at: datetime) -> list[away.Concern]:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return away.people_to_check_on(session, banks.bank_for_address(session, None), at)
