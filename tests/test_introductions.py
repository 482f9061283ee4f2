"""Safer introductions: where a bank (or a broker's flag on a member) says so, two members
get each other's number only after a broker approves, by text, on the dashboard or at the
command line. Through the webhook, the Flask client and the CLI."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app import auth
from ledger import banks, members
from ledger.models import AuditEntry, Bank, Introduction, Member, Message, Post
from tests.helpers import Phone, ref_in

ANA, BOB, KEMI = "+447700900901", "+447700900902", "+447700900903"
BEA, DEE = "+447700900700", "+447700900710"  # brokers of the default bank
BRIXTON, ZED = "+447700900555", "+447700900720"  # another bank, and its broker
PASSWORD = "correct horse battery"


def _digits(number: str) -> str:
    return number[-9:]  # "7700900901": the number however it is written


def _join(phone: Phone, name: str, skills: str, area: str) -> Phone:
    phone.text(f"JOIN {name}")
    for answer in (skills, area, "SKIP"):
        phone.text(answer)
    return phone


@pytest.fixture
def people(make_phone, cli):
    """Ana and Kemi drive; Bob needs lifts; Bea and Dee are brokers (with passwords)."""
    for number, name in ((BEA, "Bea"), (DEE, "Dee")):
        assert cli("broker", "add", number, name).exit_code == 0
        assert cli("broker", "password", number, "--password", PASSWORD).exit_code == 0
    return {
        "ana": _join(make_phone(ANA), "Ana", "driving", "Lambeth"),
        "bob": _join(make_phone(BOB), "Bob", "SKIP", "Lambeth"),
        "kemi": _join(make_phone(KEMI), "Kemi", "lifts in my car", "Lambeth"),
        "bea": make_phone(BEA),
        "dee": make_phone(DEE),
    }


class Heard:
    """Every word a member was sent: replies to their texts and texts the bank sent them."""

    def __init__(self, phone: Phone, outbox) -> None:  # type: ignore[no-untyped-def]
        self.phone, self.outbox = phone, outbox
        self.replies: list[str] = []

    def text(self, body: str) -> list[str]:
        answers = self.phone.text(body)
        self.replies += answers
        return answers

    def reply(self, body: str) -> str:
        [answer] = self.text(body)
        return answer

    def everything(self) -> str:
        return "\n".join(self.replies + self.outbox.to(self.phone.number, status=None))


def _need(bob: Heard, ana: Phone, outbox) -> int:  # type: ignore[no-untyped-def]
    assert "I'm asking neighbours" in bob.reply("NEED a lift to the clinic on Tuesday")
    ask = outbox.to(ana.number)[-1]
    assert ask.startswith("Bob needs: a lift to the clinic")
    return int(ref_in(ask))


def _no_numbers(*heard: Heard) -> None:
    """No number of anyone crossed: every text sent to either member, replies included."""
    for person in heard:
        words = person.everything()
        assert "+44" not in words
        for number in (ANA, BOB, KEMI, BEA, DEE):
            assert _digits(number) not in words.replace(" ", ""), number


def _audit(services, action: str) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        found = list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        session.expunge_all()
        return found


def _introductions(services) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return [(i.status, i.helper_member_id) for i in session.scalars(
            select(Introduction).order_by(Introduction.id))]


def _member_id(services, number: str) -> int:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        bank = banks.default_bank(session)
        assert bank is not None
        found = members.find_member(session, bank.id, number)
        assert found is not None
        return found.id


# --- the dashboard -------------------------------------------------------------------------

def csrf(page: bytes) -> str:
    found = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1).decode()


def signed_in(app, phone: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    token = csrf(client.get("/dashboard/login").data)
    response = client.post("/dashboard/login", data={"csrf_token": token, "phone": phone,
                                                     "password": PASSWORD})
    assert response.status_code == 302, response.data[:300]
    return client


def post(client, path: str, data: dict | None = None):  # type: ignore[no-untyped-def]
    token = csrf(client.get("/dashboard/").data)
    return client.post(path, data={"csrf_token": token, **(data or {})}, follow_redirects=True)


def text_of(response) -> str:  # type: ignore[no-untyped-def]
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.data.decode())).split())


# --- a bank that introduces through a broker -------------------------------------------------


def test_yes_gives_nobody_a_number_until_a_broker_texts_intro(people, outbox, services, cli):
    result = cli("bank", "set", "--introductions", "broker")
    assert result.exit_code == 0, result.output
    assert "Introductions through a broker." in result.output
    ana, bob = Heard(people["ana"], outbox), Heard(people["bob"], outbox)
    kemi = Heard(people["kemi"], outbox)
    ref = _need(bob, people["ana"], outbox)

    helping = ana.reply(f"YES {ref}")
    assert helping == (f"Thank you! You're helping Bob: a lift to the clinic on Tuesday (no. "
                       f"{ref}). Someone from Lambeth Time Bank will introduce you both soon")
    assert outbox.to(BOB)[-1] == (
        f"Good news: Ana can help with: a lift to the clinic on Tuesday (no. {ref}). Someone "
        "from Lambeth Time Bank will introduce you both soon")
    # The first YES still wins: Kemi is thanked, and nobody is introduced to her.
    assert "someone else is already helping" in kemi.reply(f"YES {ref}")
    for broker in (BEA, DEE):
        [told] = outbox.to(broker)
        assert told == (f"Lambeth Time Bank: Ana can help Bob with a lift to the clinic on "
                        f"Tue... (no. {ref}). To introduce them, reply INTRO {ref} (or see the "
                        "dashboard)")
    with services.db.reading() as session:
        # Texts unasked because of Ana's YES: counted by the caps as hers.
        causes = set(session.scalars(select(Message.caused_by_member_id).where(
            Message.kind == "intro_broker")))
    assert causes == {_member_id(services, ANA)}
    # The same YES again (a retry, or Ana unsure) makes nothing new.
    assert "will introduce you both" in ana.reply(f"YES {ref}")
    assert len(_introductions(services)) == 1 and len(outbox.to(BEA)) == 1
    _no_numbers(ana, bob, kemi)

    assert people["bea"].reply(f"INTRO {ref}") == (
        f"Thank you. Ana and Bob now have each other's number (no. {ref})")
    assert outbox.to(ANA)[-1] == (
        f"Thank you! You're helping Bob: a lift to the clinic on Tuesday. Their number is "
        f"{BOB}; you both agreed. After, reply DONE {ref} and the hours")
    assert outbox.to(BOB)[-1] == (
        f"Good news: Ana can help with: a lift to the clinic on Tuesday (no. {ref}). Their number "
        f"is {ANA}; you both agreed")
    assert KEMI[-9:] not in "".join(outbox.to(BOB))  # Kemi, who was too late, stays private
    [entry] = _audit(services, "introduction.approved")
    assert (entry.broker_member_id, entry.via, entry.subject) == (
        _member_id(services, BEA), "sms", f"ref {ref}")
    # Asked again, the broker hears it is done; nobody is texted twice.
    assert "were already introduced" in people["dee"].reply(f"INTRO {ref}")
    assert len(outbox.to(ANA)) == 2
    # And the exchange goes on as a direct one would.
    assert "I've asked Bob to confirm 2 hours" in ana.reply(f"DONE {ref} 2")


def test_a_broker_declines_on_the_dashboard_and_others_are_asked(people, outbox, services,
                                                                  cli, app):
    assert cli("bank", "set", "--introductions", "broker").exit_code == 0
    assert cli("member", "note", ANA, "Prefers", "not", "to", "drive", "at", "night").exit_code == 0
    ana, bob = Heard(people["ana"], outbox), Heard(people["bob"], outbox)
    kemi = Heard(people["kemi"], outbox)
    ref = _need(bob, people["ana"], outbox)
    ana.text(f"YES {ref}")

    bea = signed_in(app, BEA)
    page = text_of(bea.get("/dashboard/introductions"))
    assert f"Ref {ref}: a lift to the clinic on Tuesday" in page
    # Both members' details and private notes, for the broker's eyes.
    assert "Bob #" in page and "Ana #" in page and "Prefers not to drive at night" in page
    assert ANA in page and BOB in page
    assert _introductions(services) == [("waiting", _member_id(services, ANA))]
    with services.db.reading() as session:
        introduction_id = session.scalar(select(Introduction.id))
    declined = text_of(post(bea, f"/dashboard/introductions/{introduction_id}/decline"))
    assert f"Ref {ref}: not introduced. Both members have been told" in declined
    assert "No introductions are waiting." in declined
    assert outbox.to(ANA)[-1] == (
        "Thank you for offering to help Bob (a lift to the clinic on Tue...). Someone else will "
        "help this time; I'll ask you again another time")
    assert outbox.to(BOB)[-1] == (
        f"About your request (a lift to the clinic on Tue..., no. {ref}): I'm asking other "
        "neighbours who could help and will text you")
    with services.db.reading() as session:
        need = session.scalars(select(Post).where(Post.ref == ref)).one()
        assert (need.status, need.helper_member_id) == ("open", None)
    [entry] = _audit(services, "introduction.declined")
    assert entry.via == "web" and entry.broker_member_id == _member_id(services, BEA)

    # Ana's YES does not take it back; Kemi, asked too, can still help.
    assert "someone else is already helping" in ana.reply(f"YES {ref}")
    assert "will introduce you both soon" in kemi.reply(f"YES {ref}")
    assert [s for s, _ in _introductions(services)] == ["declined", "waiting"]
    # Dee introduces them from the dashboard.
    dee = signed_in(app, DEE)
    with services.db.reading() as session:
        second = session.scalar(select(Introduction.id).where(Introduction.status == "waiting"))
    done = text_of(post(dee, f"/dashboard/introductions/{second}/approve"))
    assert f"Ref {ref}: introduced." in done
    assert BOB in outbox.to(KEMI)[-1] and KEMI in outbox.to(BOB)[-1]
    _no_numbers(ana)  # Ana, declined, never learned anyone's number
    assert _audit(services, "introduction.approved")[0].via == "web"


def test_a_helper_who_cannot_after_all_leaves_nothing_to_introduce(people, outbox, services,
                                                                   cli):
    assert cli("bank", "set", "--introductions", "broker").exit_code == 0
    ana, bob = Heard(people["ana"], outbox), Heard(people["bob"], outbox)
    ref = _need(bob, people["ana"], outbox)
    ana.text(f"YES {ref}")
    assert "Thanks for letting me know" in ana.reply(f"NO {ref}")
    assert [s for s, _ in _introductions(services)] == ["canceled"]
    assert "needs no introduction now" in people["bea"].reply(f"INTRO {ref}")
    assert people["bea"].reply("INTRO 999") == (
        "No introduction waits with number 999 at Lambeth Time Bank. The dashboard lists those "
        "waiting")
    assert "reply INTRO and the number" in people["bea"].reply("INTRO")
    _no_numbers(ana, bob)


def test_the_command_line_lists_and_approves(people, outbox, services, cli):
    assert cli("bank", "set", "--introductions", "broker").exit_code == 0
    ana, bob = Heard(people["ana"], outbox), Heard(people["bob"], outbox)
    ref = _need(bob, people["ana"], outbox)
    ana.text(f"YES {ref}")
    listing = cli("intro", "list")
    assert listing.exit_code == 0, listing.output
    assert f"ref {ref}: Ana (#" in listing.output and "to help Bob (#" in listing.output
    assert "+44" not in listing.output
    result = cli("intro", "approve", str(ref), "--by", BEA)
    assert result.exit_code == 0, result.output
    assert "introduced; both members have each other's number" in result.output
    assert BOB in outbox.to(ANA)[-1]
    assert _audit(services, "introduction.approved")[0].via == "cli"
    assert "No introductions waiting." in cli("intro", "list").output


def test_texts_to_brokers_obey_the_caps_and_the_introduction_waits_all_the_same(
        people, outbox, services, cli, app):
    assert cli("bank", "set", "--introductions", "broker").exit_code == 0
    ana, bob = Heard(people["ana"], outbox), Heard(people["bob"], outbox)
    ref = _need(bob, people["ana"], outbox)
    # Ana has caused as many texts to others today as the bank allows (none, here).
    assert cli("bank", "set", "--member-daily-texts", "0").exit_code == 0
    assert "will introduce you both soon" in ana.reply(f"YES {ref}")
    assert not any("INTRO" in t for t in outbox.to(BEA) + outbox.to(DEE))
    with services.db.reading() as session:
        held = list(session.scalars(select(Message.error_code).where(
            Message.kind == "intro_broker")))
    assert held == ["cap-member", "cap-member"]
    # The brokers hear of the cap once, and the introduction is on the dashboard.
    assert any("reached today's limit" in t for t in outbox.to(BEA))
    page = text_of(signed_in(app, BEA).get("/dashboard/introductions"))
    assert f"Ref {ref}: a lift to the clinic on Tuesday" in page
    _no_numbers(ana, bob)


# --- a member flagged by a broker, in a direct bank ----------------------------------------


def test_a_flagged_member_is_introduced_through_a_broker_in_a_direct_bank(
        people, outbox, services, cli, app):
    ana, bob = Heard(people["ana"], outbox), Heard(people["bob"], outbox)
    result = cli("member", "introductions", BOB, "broker")
    assert result.exit_code == 0, result.output
    assert "Bob is introduced through a broker." in result.output
    assert cli("member", "introductions", BOB, "broker").exit_code == 0  # again: no change
    assert len(_audit(services, "member.introductions")) == 1
    assert "introductions: through a broker" in cli("member", "show", BOB).output

    ref = _need(bob, people["ana"], outbox)
    assert "will introduce you both soon" in ana.reply(f"YES {ref}")
    _no_numbers(ana, bob)
    assert f"INTRO {ref}" in outbox.to(BEA)[-1]

    # Back to the bank's choice (direct): the next need introduces at once.
    assert cli("member", "introductions", f"#{_member_id(services, BOB)}", "bank").exit_code == 0
    assert BOB in people["kemi"].reply(
        f"YES {_need(bob, people['kemi'], outbox)}")

    # A broker flags the helper from the member's page: it works from either side.
    bea = signed_in(app, BEA)
    kemi_id = _member_id(services, KEMI)
    page = text_of(bea.get(f"/dashboard/members/{kemi_id}"))
    assert "As the bank chooses (direct)" in page
    saved = text_of(post(bea, f"/dashboard/members/{kemi_id}/introductions",
                         {"introductions": "broker"}))
    assert "Kemi is introduced through a broker." in saved
    with services.db.reading() as session:
        assert members.get_member(session, kemi_id).intro_via_broker
    assert _audit(services, "member.introductions")[-1].via == "web"
    kemi = Heard(people["kemi"], outbox)
    ref = _need(bob, people["kemi"], outbox)
    assert "will introduce you both soon" in kemi.reply(f"YES {ref}")
    _no_numbers(kemi)


# --- defaults ------------------------------------------------------------------------------


def test_bank_add_is_careful_by_default_and_the_quick_start_bank_is_not(cli, services, app,
                                                                        make_phone, outbox):
    result = cli("bank", "add", "Brixton Time Bank", "--sms", BRIXTON)
    assert result.exit_code == 0, result.output
    assert "New members wait for a broker; introductions through a broker." in result.output
    assert cli("bank", "add", "Peckham Time Bank", "--sms", "+447700900556",
               "--introductions", "direct", "--no-require-approval").exit_code == 0
    with services.db.reading() as session:
        found = {b.name: (b.introductions, b.require_approval, b.is_default)
                 for b in session.scalars(select(Bank))}
    assert found == {
        "Lambeth Time Bank": ("direct", False, True),  # make run's default bank
        "Brixton Time Bank": ("broker", True, False),
        "Peckham Time Bank": ("direct", False, False),
    }
    # In the new bank a member waits for a broker's welcome...
    sam = make_phone("+447700900801", to=BRIXTON)
    assert "Someone from Brixton Time Bank will be in touch" in sam.reply("JOIN Sam")
    # ...and on the default bank the quick start shows a whole exchange.
    ana = _join(make_phone(ANA), "Ana", "driving", "Lambeth")
    bob = Heard(_join(make_phone(BOB), "Bob", "SKIP", "Lambeth"), outbox)
    ref = _need(bob, ana, outbox)
    assert BOB in ana.reply(f"YES {ref}")


# --- attackers -----------------------------------------------------------------------------


def test_a_member_cannot_text_intro(people, outbox, services, cli):
    assert cli("bank", "set", "--introductions", "broker").exit_code == 0
    ana, bob = Heard(people["ana"], outbox), Heard(people["bob"], outbox)
    ref = _need(bob, people["ana"], outbox)
    ana.text(f"YES {ref}")
    for who in (ana, bob):
        for words in (f"INTRO {ref}", f"introduce {ref}", f"INTRO #{ref}"):
            assert who.reply(words) == "Sorry, only Lambeth Time Bank's brokers can do that"
    # Words that merely start with "intro" are not a broker's command.
    assert "brokers" not in ana.reply("Intro to my sister please")
    assert [s for s, _ in _introductions(services)] == ["waiting"]
    assert _audit(services, "introduction.approved") == []
    _no_numbers(ana, bob)


def test_a_broker_cannot_introduce_themselves(people, outbox, services, cli, app):
    assert cli("bank", "set", "--introductions", "broker").exit_code == 0
    bea, ana = Heard(people["bea"], outbox), Heard(people["ana"], outbox)
    assert "I'm asking neighbours" in bea.reply("NEED a lift to the clinic on Tuesday")
    ref = int(ref_in(outbox.to(ANA)[-1]))
    assert "will introduce you both soon" in ana.reply(f"YES {ref}")
    assert not any("INTRO" in t for t in outbox.to(BEA))  # told only as the member she is
    assert f"INTRO {ref}" in outbox.to(DEE)[-1]

    assert bea.reply(f"INTRO {ref}") == (
        f"You're one of the two members in no. {ref}: another broker of Lambeth Time Bank "
        "must introduce them")
    client = signed_in(app, BEA)
    page = text_of(client.get("/dashboard/introductions"))
    assert "You are one of the two members: another broker decides this one." in page
    with services.db.reading() as session:
        introduction_id = session.scalar(select(Introduction.id))
    for action in ("approve", "decline"):
        refused = text_of(post(client, f"/dashboard/introductions/{introduction_id}/{action}"))
        assert "You are one of the two members of ref" in refused
    result = cli("intro", "approve", str(ref), "--by", BEA)
    assert result.exit_code == 1 and "another broker must" in result.output
    # An operator naming no broker may not decide a broker's own introduction either.
    result = cli("intro", "approve", str(ref))
    assert result.exit_code == 1 and "another broker must" in result.output
    assert [s for s, _ in _introductions(services)] == ["waiting"]
    assert _audit(services, "introduction.approved") == []
    _no_numbers(ana, bea)
    assert "now have each other's number" in people["dee"].reply(f"INTRO {ref}")


def test_a_broker_of_another_bank_cannot_introduce(people, outbox, services, cli, app,
                                                  make_phone):
    assert cli("bank", "set", "--introductions", "broker").exit_code == 0
    assert cli("bank", "add", "Brixton Time Bank", "--sms", BRIXTON).exit_code == 0
    assert cli("broker", "add", ZED, "Zed", "--bank", "Brixton Time Bank").exit_code == 0
    with services.db.writing() as session:
        zed = session.scalars(select(Member).where(Member.phone == ZED)).one()
        zed.password_hash = auth.hash_password(PASSWORD)
    ana, bob = Heard(people["ana"], outbox), Heard(people["bob"], outbox)
    ref = _need(bob, people["ana"], outbox)
    ana.text(f"YES {ref}")

    to_brixton = make_phone(ZED, to=BRIXTON)
    assert "No introduction waits with number" in to_brixton.reply(f"INTRO {ref}")
    to_lambeth = make_phone(ZED)  # not a member of Lambeth at all
    assert "brokers" not in to_lambeth.reply(f"INTRO {ref}").lower()
    client = signed_in(app, ZED)
    with services.db.reading() as session:
        introduction_id = session.scalar(select(Introduction.id))
    token = csrf(client.get("/dashboard/").data)
    for action in ("approve", "decline"):
        response = client.post(f"/dashboard/introductions/{introduction_id}/{action}",
                               data={"csrf_token": token})
        assert response.status_code == 404
    assert "No introductions are waiting." in text_of(client.get("/dashboard/introductions"))
    result = cli("intro", "approve", str(ref), "--bank", "Brixton Time Bank", "--by", ZED)
    assert result.exit_code == 1 and f"no introduction with ref {ref}" in result.output
    assert [s for s, _ in _introductions(services)] == ["waiting"]
    _no_numbers(ana, bob)


# --- what a member is told about their introductions, and forgetting -----------------------


def test_an_introduction_is_in_the_members_export_and_a_waiting_one_stops_forgetting(
        people, outbox, services, cli):
    from app import privacy

    assert cli("bank", "set", "--introductions", "broker").exit_code == 0
    ana, bob = Heard(people["ana"], outbox), Heard(people["bob"], outbox)
    ref = _need(bob, people["ana"], outbox)
    ana.reply(f"YES {ref}")
    ident = _member_id(services, ANA)

    def exported() -> list[dict[str, object]]:
        with services.db.reading() as session:
            member = session.get(Member, ident)
            assert member is not None
            data = privacy.export(session, member)
        rows = list(data["sources"]["introductions"])
        text = repr(rows)
        assert "Bob" not in text and _digits(BOB) not in text  # the other member unnamed
        return rows

    [row] = exported()
    assert row["need_ref"] == ref and row["you"] == "offered to help"
    assert row["with"] == "another member" and row["status"] == "waiting"
    # While a broker has yet to decide, Ana cannot be forgotten: the introduction would
    # hand Bob a number that no longer exists.
    refused = cli("member", "forget", f"#{ident}", "--reason", "asked",
                  input=f"y\n#{ident}\n")
    assert refused.exit_code != 0
    assert (f"an introduction for need ref {ref} waits for a broker: approve or decline it "
            "on the dashboard's Introductions page") in refused.output
    with services.db.reading() as session:
        assert session.get(Member, ident).phone == ANA  # type: ignore[union-attr]

    people["bea"].reply(f"INTRO {ref}")
    [row] = exported()
    assert row["status"] == "approved" and row["decided_at"]
    after = cli("member", "forget", f"#{ident}", "--reason", "asked", input=f"y\n#{ident}\n")
    assert "introduction" not in after.output  # the decided one no longer stands in the way
