"""Members who cannot text (issue 10): a broker registers them, acts for them (by the
dashboard and the command line), gives them a phone later; #12 names a member everywhere; a
phone shared by two members asks who is texting. Through the webhook, CLI and Flask client."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app import auth
from ledger import banks, members
from ledger.models import Account, AuditEntry, Confirmation, Member, Transfer
from tests.helpers import join
from tests.test_dashboard import post, sign_in, text_of

BEA = "+447700900700"  # a broker
KOFI = "+447700900710"  # another broker
SAM = "+447700900601"
SHARED = "+447700900650"
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
def bea_web(app, bea):
    client = app.test_client()
    assert sign_in(client, phone=BEA).status_code == 302
    return client


@pytest.fixture
def sam(make_phone):
    return join(make_phone(SAM), "Sam", skills="gardening and lifts", area="Brixton")


def added(result) -> int:  # type: ignore[no-untyped-def]
    """The member number ``timebank member add`` printed (``#12 …``)."""
    assert result.exit_code == 0, result.output
    found = re.match(r"#(\d+) ", result.output)
    assert found, result.output
    return int(found.group(1))


def balance_of(services, member_id: int) -> int:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return session.scalar(select(Account.balance_minutes).where(
            Account.member_id == member_id)) or 0


def audited(services, action: str) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        found = list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        session.expunge_all()
        return found


def yes_ref(text: str) -> int:
    return int(re.search(r"YES (\d+)", text).group(1))  # type: ignore[union-attr]


# --- from registration to a confirmed exchange and a printed statement ----------------------


def test_a_member_without_a_phone_from_registration_to_a_printed_statement(
        bea, bea_web, sam, cli, outbox, services):
    result = cli("member", "add", "Ann Smith", "--area", "Brixton", "--notes", "Ward 3")
    assert result.output.strip().endswith("is now a member of Lambeth Time Bank, without a phone.")
    ann = added(result)
    assert [e.subject for e in audited(services, "member.added")] == [f"member {ann}"]

    posted = cli("member", "post", f"#{ann}", "need", "help", "with", "the", "gardening")
    assert posted.exit_code == 0, posted.output
    need_ref = int(re.search(r"ref (\d+)", posted.output).group(1))  # type: ignore[union-attr]
    asks = outbox.to(SAM)
    assert any(f"YES {need_ref}" in body and "Ann Smith" in body for body in asks), asks

    # Sam's YES reaches the brokers with Sam's number; Sam hears a broker will call.
    answer = sam.reply(f"YES {need_ref}")
    assert "Ann Smith" in answer and "will call you to arrange it" in answer
    assert "+44" not in answer  # Ann has no number to give
    told = outbox.to(BEA)
    assert any(SAM in body and f"#{ann}" in body and f"(no. {need_ref})" in body for body in told)

    # Sam reports the hours; Ann can't be asked, so the brokers are.
    assert sam.reply(f"DONE {need_ref} 2").startswith("Thanks Sam!")
    asked = [b for b in outbox.to(BEA) if "confirm no. " in b]
    assert len(asked) == 1 and "Ann Smith" in asked[0]
    confirm_ref = int(re.search(r"confirm no\. (\d+)", asked[0]).group(1))  # type: ignore[union-attr]

    page = text_of(bea_web.get(f"/dashboard/members/{ann}"))
    assert "Act for Ann Smith" in page and "They confirm" in page and "#" + str(ann) in page
    done = post(bea_web, f"/dashboard/members/{ann}/confirm",
                {"ref": str(confirm_ref), "answer": "yes"}, page=f"/dashboard/members/{ann}")
    assert f"Ref {confirm_ref} confirmed for Ann Smith" in text_of(done)
    assert balance_of(services, ann) == -120
    with services.db.reading() as session:
        sam_id = members.find_member(session, 1, SAM).id  # type: ignore[union-attr]
        transfer = session.scalars(select(Transfer)).one()
        assert (transfer.entered_by, transfer.entered_by_member_id) == (
            "broker", session.scalar(select(Member.id).where(Member.phone == BEA)))
    assert balance_of(services, sam_id) == 120
    assert any("confirmed the 2 hours you gave" in body for body in outbox.to(SAM))
    [entry] = audited(services, "confirmation.answered_for")
    assert entry.via == "web" and entry.subject == f"ref {confirm_ref}"
    # Confirming twice changes nothing.
    again = post(bea_web, f"/dashboard/members/{ann}/confirm",
                 {"ref": str(confirm_ref), "answer": "yes"}, page=f"/dashboard/members/{ann}")
    assert "already" in text_of(again) and balance_of(services, ann) == -120
    assert "Ledger OK" in cli("ledger", "verify").output

    statement = bea_web.get(f"/dashboard/members/{ann}/statement")
    assert statement.status_code == 200
    html = statement.data.decode()
    assert "@media print" in html and "@page" in html
    words = text_of(statement)
    assert "Your balance: -2 hours" in words and "Sam" in words and "gardening" in words
    printed = cli("member", "statement", f"#{ann}")
    assert printed.exit_code == 0 and "Your balance: <strong>-2 hours" in printed.output
    assert len(audited(services, "member.statement")) == 2


def test_a_broker_adds_a_member_on_the_dashboard_and_gives_and_accepts_for_them(
        bea, bea_web, sam, outbox, services, cli):
    page = post(bea_web, "/dashboard/members/add", {"name": "Joy", "skills": "knitting"},
                page="/dashboard/members")
    words = text_of(page)
    joy = int(re.search(r"#(\d+) Joy is now a member, without a phone", words).group(1))  # type: ignore[union-attr]
    assert "Act for Joy" in words
    # Bad input: a clear answer, nothing added.
    refused = post(bea_web, "/dashboard/members/add", {"name": "Max", "phone": "12"},
                   page="/dashboard/members")
    assert "isn't a phone number" in text_of(refused)
    refused = post(bea_web, "/dashboard/members/add", {"name": "Max", "phone": SAM},
                   page="/dashboard/members")
    assert "belongs to Sam" in text_of(refused)
    with services.db.reading() as session:
        assert session.scalar(select(Member.id).where(Member.name == "Max")) is None

    # Sam needs help; Joy (no phone, so never asked by text) will help: a broker says so.
    ref = int(re.search(r"no\. (\d+)", sam.reply("NEED a scarf knitted")).group(1))  # type: ignore[union-attr]
    accepted = post(bea_web, f"/dashboard/members/{joy}/accept", {"ref": str(ref)},
                    page=f"/dashboard/members/{joy}")
    assert f"Joy will help with ref {ref}" in text_of(accepted)
    told = outbox.to(SAM)
    assert any("Joy can help with" in body and "in touch to arrange it" in body
               for body in told), told
    assert not any("+44" in body for body in told)
    assert len(audited(services, "need.accepted_for")) == 1

    # Joy earns hours (recorded by #), then gives one to the fund.
    assert cli("ledger", "record", f"#{joy}", "2", "knitting").exit_code == 0
    given = post(bea_web, f"/dashboard/members/{joy}/give", {"hours": "1", "to": "FUND"},
                 page=f"/dashboard/members/{joy}")
    assert "Joy gave 1 hours" in text_of(given)
    assert balance_of(services, joy) == 60
    too_much = post(bea_web, f"/dashboard/members/{joy}/give", {"hours": "50", "to": "FUND"},
                    page=f"/dashboard/members/{joy}")
    assert "Not given" in text_of(too_much) and balance_of(services, joy) == 60
    # A member with a phone answers for themselves.
    with services.db.reading() as session:
        sam_id = members.find_member(session, 1, SAM).id  # type: ignore[union-attr]
    mine = post(bea_web, f"/dashboard/members/{sam_id}/give", {"hours": "1", "to": "FUND"},
                page=f"/dashboard/members/{sam_id}")
    assert "answers for themselves" in text_of(mine)


# --- #12 wherever a number is accepted ------------------------------------------------------


def test_member_numbers_in_broker_texts_and_at_the_command_line(bea, sam, cli, services):
    ann = added(cli("member", "add", "Ann"))
    reply = bea.reply(f"RECORD #{ann} 2 gardening")
    assert reply.startswith("Recorded 2 hours for Ann (gardening)")
    assert bea.reply(f"APPROVE #{ann}") == "Ann is already an active member of Lambeth Time Bank"
    assert bea.reply("RECORD #99999 2 gardening").startswith("No member of Lambeth")
    shown = cli("member", "show", f"#{ann}")
    assert "Ann" in shown.output and "2 hours" in shown.output
    recorded = cli("ledger", "record", f"#{ann}", "1", "visit", "--by", BEA)
    assert recorded.exit_code == 0 and "Balance: 3 hours" in recorded.output
    assert balance_of(services, ann) == 180
    assert cli("ledger", "record", "#99999", "1", "visit").exit_code == 1
    # A broker needs a phone; a member number names the member to make one.
    no_phone = cli("broker", "add", f"#{ann}", "Ann")
    assert no_phone.exit_code == 1 and "with a phone" in no_phone.output
    with services.db.reading() as session:
        sam_id = members.find_member(session, 1, SAM).id  # type: ignore[union-attr]
    assert cli("broker", "add", f"#{sam_id}", "Sam").output == (
        "Sam is now a broker of Lambeth Time Bank.\n")
    assert cli("broker", "password", f"#{sam_id}", "--password",
               "a long enough password").exit_code == 0


# --- a phone later --------------------------------------------------------------------------


def test_a_member_given_a_phone_later_keeps_their_history(bea, sam, cli, make_phone, outbox,
                                                           services):
    ann = added(cli("member", "add", "Ann"))
    bea.reply(f"RECORD #{ann} 2 gardening")
    refused = cli("member", "phone", f"#{ann}", SAM)
    assert refused.exit_code == 1 and "belongs to Sam" in refused.output
    given = cli("member", "phone", f"#{ann}", "07700 900555")
    assert given.exit_code == 0 and "their hours and history stay" in given.output
    assert outbox.to("+447700900555")[0].startswith("Hello Ann, Lambeth Time Bank will text you")
    phone = make_phone("+447700900555")
    assert phone.reply("BALANCE").startswith("Balance: 2 hours")
    assert phone.reply("STATEMENT").count("gardening") == 1
    [entry] = audited(services, "member.phone")
    assert entry.subject == f"member {ann}" and "+44" not in entry.detail
    with services.db.reading() as session:
        assert session.scalar(select(Member.id).where(Member.phone == "+447700900555")) == ann


# --- a phone shared by two ------------------------------------------------------------------


@pytest.fixture
def couple(make_phone, cli, bea):  # type: ignore[no-untyped-def]
    """Sam joined from SHARED by text; a broker added Ann on the same phone; Ann has 2 hours."""
    phone = join(make_phone(SHARED), "Sam", area="Streatham")
    ann = added(cli("member", "add", "Ann", "--phone", SHARED, "--shared", "--area", "Tooting"))
    assert bea.reply(f"RECORD #{ann} 2 gardening").startswith("Recorded")
    return phone, ann


def test_a_shared_phone_is_asked_who_is_texting_and_the_answer_is_remembered(
        couple, outbox, services, redis):
    phone, _ann = couple
    ask = phone.reply("BALANCE")
    assert ask == ("Hello from Lambeth Time Bank. This phone is shared: who is texting? "
                   "Reply 1 for Sam, 2 for Ann. Later, SWITCH lets the other text")
    assert phone.reply("maybe") == "Sorry, I need to know who is texting first. Reply 1 for " \
                                   "Sam, 2 for Ann"
    assert phone.reply("2").startswith("Balance: 2 hours")  # carries on with BALANCE
    assert phone.reply("BALANCE").startswith("Balance: 2 hours")  # remembered
    assert "Tooting" in phone.reply("PROFILE")
    # The other person takes the phone.
    assert "Reply 1 for Sam, 2 for Ann" in phone.reply("SWITCH")
    assert phone.reply("1").startswith("Lambeth Time Bank: 1 hour given = 1 hour back")
    assert phone.reply("BALANCE").startswith("Balance: 0 hours")


def test_choosing_by_name_and_the_first_member(couple):
    phone, _ = couple
    phone.text("PROFILE")
    assert "Streatham" in phone.reply("sam")
    assert phone.reply("BALANCE").startswith("Balance: 0 hours")


def test_texts_the_bank_sends_to_a_shared_phone_name_the_member(couple, outbox, bea):
    _phone, _ann = couple
    bodies = outbox.to(SHARED)
    assert any(b.startswith("For Ann: Welcome to Lambeth Time Bank, Ann!") for b in bodies)
    assert any(b.startswith("For Ann: Lambeth Time Bank recorded 2 hours") for b in bodies)
    assert not any(b.startswith("For Sam") for b in bodies)
    # A broadcast reaches each of them, named.
    assert bea.text("BROADCAST Seed swap Sat 2pm")
    broadcast = [b for b in outbox.to(SHARED) if "Seed swap" in b]
    assert sorted(b.split(":")[0] for b in broadcast) == ["For Ann", "For Sam"]


def test_a_stranger_on_a_shared_phone_gets_no_details_without_choosing(couple, redis):
    phone, _ann = couple
    for text in ("BALANCE", "PROFILE", "STATEMENT", "DONE 1 07700 900999 x"):
        answer = phone.reply(text)
        assert "Reply 1 for Sam, 2 for Ann" in answer
        assert "Balance" not in answer and "Tooting" not in answer and "Streatham" not in answer
    # The text waiting for the choice is kept sealed: no number in Redis.
    for key in redis.keys("*"):
        if redis.type(key) == b"string":
            assert b"900999" not in (redis.get(key) or b""), key


def test_stop_from_a_shared_phone_stops_both_and_start_resumes(couple, services):
    phone, _ann = couple
    assert phone.reply("STOP").startswith("You won't get any more texts")
    with services.db.reading() as session:
        both = members.find_members(session, 1, SHARED)
        assert len(both) == 2
        assert not any(members.can_be_texted(session, m) for m in both)
    assert phone.reply("START").startswith("Welcome back!")
    with services.db.reading() as session:
        assert all(members.can_be_texted(session, m)
                   for m in members.find_members(session, 1, SHARED))


def test_sharing_is_only_for_two_and_never_a_brokers_phone(couple, cli):
    third = cli("member", "add", "Max", "--phone", SHARED, "--shared")
    assert third.exit_code == 1 and "at most two" in third.output
    broker = cli("member", "add", "Max", "--phone", BEA, "--shared")
    assert broker.exit_code == 1 and "a broker's phone can't be shared" in broker.output
    shown = cli("member", "show", SHARED)
    assert shown.exit_code == 1 and "shared by Sam" in shown.output
    [ann] = [int(n) for n in re.findall(r"Ann \(#(\d+)\)", shown.output)]
    assert "(shared with #" in cli("member", "show", f"#{ann}").output
    made = cli("broker", "add", SHARED, "Sam")
    assert made.exit_code == 1


def test_a_broker_names_one_member_of_a_shared_phone_by_number(couple, bea, services):
    _phone, ann = couple
    assert "member number" in bea.reply(f"RECORD {SHARED} 1 gardening")
    assert balance_of(services, ann) == 120
    assert bea.reply(f"RECORD #{ann} 1 gardening").startswith("Recorded 1 hour")


# --- attackers ------------------------------------------------------------------------------


def test_a_member_cannot_use_a_member_number_to_act_for_someone(bea, sam, cli, outbox,
                                                                 services):
    ann = added(cli("member", "add", "Ann"))
    bea.reply(f"RECORD #{ann} 3 gardening")
    assert sam.reply(f"RECORD #{ann} 2 x") == "Sorry, only Lambeth Time Bank's brokers can do that"
    assert sam.reply(f"GIVE 1 #{ann}").startswith("Sorry, I can't find")
    assert sam.reply(f"DONE 2 #{ann} gardening").startswith("Sorry, I can't find")
    # Hours reported to Ann wait for her (a broker's) answer: Sam can't answer for her.
    assert sam.reply("DONE 2 Ann gardening").startswith("Thanks Sam!")
    with services.db.reading() as session:
        ref = session.scalar(select(Confirmation.ref))
    assert sam.reply(f"YES {ref}").startswith("Sorry")
    assert balance_of(services, ann) == 180
    with services.db.reading() as session:
        assert session.scalar(select(Confirmation.status)) == "pending"


def test_a_broker_cannot_confirm_hours_they_are_part_of_for_a_member_without_a_phone(
        bea, bea_web, cli, services, make_phone):
    make_broker(services, KOFI, "Kofi")
    ann = added(cli("member", "add", "Ann"))
    assert bea.reply("DONE 2 Ann gardening").startswith("Thanks Bea!")
    with services.db.reading() as session:
        ref = session.scalar(select(Confirmation.ref))
    page = f"/dashboard/members/{ann}"
    refused = post(bea_web, f"{page}/confirm", {"ref": str(ref), "answer": "yes"}, page=page)
    assert "your own hours" in text_of(refused)
    assert cli("member", "confirm", f"#{ann}", str(ref), "--by", BEA).exit_code == 1
    unnamed = cli("member", "confirm", f"#{ann}", str(ref))
    assert unnamed.exit_code == 1 and "--by" in unnamed.output
    # Nor give the member's hours to themselves.
    assert cli("member", "give", f"#{ann}", "1", BEA, "--by", BEA).exit_code == 1
    assert balance_of(services, ann) == 0
    assert audited(services, "confirmation.answered_for") == []
    # Another broker may, after checking with Ann.
    kofi = cli("member", "confirm", f"#{ann}", str(ref), "--by", KOFI)
    assert kofi.exit_code == 0 and "confirmed for Ann" in kofi.output
    assert balance_of(services, ann) == -120
    assert "Ledger OK" in cli("ledger", "verify").output


def test_a_broker_cannot_act_for_a_member_of_another_bank(bea, bea_web, cli, services):
    assert cli("bank", "add", "Croydon Time Bank", "--sms", "+447700900990").exit_code == 0
    zed = added(cli("member", "add", "Zed", "--bank", "Croydon Time Bank"))
    page = f"/dashboard/members/{zed}"
    assert bea_web.get(page).status_code == 404
    assert bea_web.get(f"{page}/statement").status_code == 404
    for action, data in (("confirm", {"ref": "1"}), ("give", {"hours": "1", "to": "FUND"}),
                         ("post", {"kind": "need", "what": "x"}), ("accept", {"ref": "1"}),
                         ("phone", {"phone": "07700900991"})):
        response = post(bea_web, f"{page}/{action}", data, page="/dashboard/members")
        assert response.status_code == 404, action
    assert bea.reply(f"RECORD #{zed} 1 gardening").startswith("No member of Lambeth")
    other = cli("member", "post", f"#{zed}", "need", "a", "lift")
    assert other.exit_code == 1 and "no member of Lambeth Time Bank" in other.output
    assert balance_of(services, zed) == 0
    with services.db.reading() as session:
        assert session.scalar(select(Member.phone).where(Member.id == zed)) is None


# --- what stays as it was -------------------------------------------------------------------


def _statements(services, phone, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The statements that read or change members' rows for one text (not the INSERT that
    keeps the text itself, app.care.inbox)."""
    from sqlalchemy import event

    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        phone.reply(text)
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)
    return [s for s in seen if s.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE"))
            and "inbound_texts" not in s]


def test_balance_from_an_ordinary_number_is_still_one_statement(sam, couple, services):
    phone, _ann = couple
    sam.reply("BALANCE")  # the contact time is fresh after this
    assert len(_statements(services, sam, "BALANCE")) == 1
    phone.reply("2")
    phone.reply("BALANCE")
    # A shared phone, once chosen, costs the same one statement.
    assert len(_statements(services, phone, "BALANCE")) == 1


def test_a_member_added_with_a_number_that_stopped_texts_gets_no_welcome(
        make_phone, cli, outbox, services):
    stranger = make_phone("+447700900560")
    stranger.text("STOP")
    ann = added(cli("member", "add", "Ann", "--phone", "07700900560"))
    assert outbox.to("+447700900560", status=None) == []
    with services.db.reading() as session:
        assert session.get(Member, ann).phone == "+447700900560"  # type: ignore[union-attr]


def test_a_member_without_a_phone_is_never_asked_by_text(bea, bea_web, sam, cli, outbox,
                                                         services):
    joy = added(cli("member", "add", "Joy", "--skills", "knitting"))
    ref = int(re.search(r"no\. (\d+)", sam.reply("NEED a scarf knitted")).group(1))  # type: ignore[union-attr]
    outbox.run_jobs()
    from ledger.models import Ask

    with services.db.reading() as session:
        assert session.scalar(select(Ask.id).where(Ask.member_id == joy)) is None
    asked = post(bea_web, f"/dashboard/needs/{_need_id(services, ref)}/ask", {"who": f"#{joy}"},
                 page="/dashboard/needs")
    assert "has no phone" in text_of(asked)


def _need_id(services, ref: int) -> int:  # type: ignore[no-untyped-def]
    from ledger.models import Post

    with services.db.reading() as session:
        return session.scalar(select(Post.id).where(Post.ref == ref))  # type: ignore[return-value]


def test_a_broker_credits_a_member_without_a_phone_who_came_to_an_activity(
        bea, sam, cli, services):
    ann = added(cli("member", "add", "Ann"))
    sent = bea.reply("BROADCAST Seed swap Sat 2pm")
    ref = int(re.search(r"Broadcast (\d+)", sent).group(1))  # type: ignore[union-attr]
    credited = bea.reply(f"CREDIT {ref} 2 #{ann}")
    assert credited.startswith(f"Broadcast {ref}: 2 hours each") and "Credited now: 1" in credited
    assert balance_of(services, ann) == 120
    assert bea.reply(f"CREDIT {ref} 2 #{ann}").endswith(f"Reply WHO {ref} to check")
    assert balance_of(services, ann) == 120  # never twice


def test_a_broker_gives_a_member_a_phone_on_the_dashboard(bea, bea_web, sam, cli, outbox,
                                                          services):
    ann = added(cli("member", "add", "Ann"))
    page = f"/dashboard/members/{ann}"
    refused = post(bea_web, f"{page}/phone", {"phone": SAM}, page=page)
    assert "belongs to Sam" in text_of(refused)
    shared = post(bea_web, f"{page}/phone", {"phone": SAM, "shared": "1"}, page=page)
    assert "Ann has that number now" in text_of(shared)
    assert any(b.startswith("For Ann: Hello Ann") for b in outbox.to(SAM))
    [entry] = audited(services, "member.phone")
    assert entry.detail.startswith("number given, a phone shared with #")
    assert "Act for Ann" not in text_of(bea_web.get(page))  # she texts for herself now
