"""The brokers' dashboard through Flask's test client: sign-in, CSRF, each page and action."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app import auth
from ledger import accounts, banks, members
from ledger.models import Activity, AuditEntry, Bank, Member, Transfer

BROKER = "+447700900700"
PASSWORD = "correct horse battery"


@pytest.fixture
def broker(services):
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        member, _ = members.make_broker(session, bank, BROKER, "Bea")
        member.password_hash = auth.hash_password(PASSWORD)
        return member.id


@pytest.fixture
def client(app):
    return app.test_client()


def csrf(page: bytes) -> str:
    found = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1).decode()


def sign_in(client, password: str = PASSWORD, phone: str = "07700 900700"):  # type: ignore[no-untyped-def]
    token = csrf(client.get("/dashboard/login").data)
    return client.post("/dashboard/login", data={"csrf_token": token, "phone": phone,
                                                 "password": password})


@pytest.fixture
def signed_in(client, broker):
    response = sign_in(client)
    assert response.status_code == 302
    return client


def post(client, path: str, data: dict | None = None, page: str = "/dashboard/"):  # type: ignore[no-untyped-def]
    token = csrf(client.get(page).data)
    return client.post(path, data={"csrf_token": token, **(data or {})}, follow_redirects=True)


def text_of(response) -> str:  # type: ignore[no-untyped-def]
    """The page as a person reads it: tags dropped, entities decoded, spaces collapsed."""
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.data.decode())).split())


def test_pages_need_a_signed_in_broker(client, broker):
    for path in ("/dashboard/", "/dashboard/members", "/dashboard/ledger",
                 "/dashboard/reports", "/dashboard/ledger/export.csv"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.location.startswith("/dashboard/login")


def test_a_broker_signs_in_with_a_password_and_out_again(client, broker, services):
    assert "That number and password don't match a broker." in text_of(
        sign_in(client, password="wrong password"))
    response = sign_in(client)
    assert response.status_code == 302 and response.location == "/dashboard/"
    assert "Hello, Bea" in text_of(client.get("/dashboard/"))
    post(client, "/dashboard/logout")
    assert client.get("/dashboard/").status_code == 302
    with services.db.reading() as session:
        assert session.scalar(select(AuditEntry.action)) == "signed_in"


def test_a_member_who_is_not_a_broker_cannot_sign_in(client, make_phone, services):
    make_phone("+447700900801").text("JOIN Ana")
    with services.db.writing() as session:
        ana = session.scalars(select(Member).where(Member.name == "Ana")).one()
        ana.password_hash = auth.hash_password(PASSWORD)
    response = sign_in(client, phone="+447700900801")
    assert response.status_code == 401


def test_sign_in_is_rate_limited(client, broker):
    for _ in range(auth.TRIES_PER_NUMBER):
        assert sign_in(client, password="guess guess").status_code == 401
    response = sign_in(client)  # even the right password waits now
    assert response.status_code == 429
    assert "Too many tries" in text_of(response)


def test_a_post_without_the_csrf_token_is_refused(signed_in, services):
    response = signed_in.post("/dashboard/ledger/record",
                              data={"member": BROKER, "hours": "2", "what": "x"})
    assert response.status_code == 400
    response = signed_in.post("/dashboard/ledger/record",
                              data={"csrf_token": "forged", "member": BROKER, "hours": "2"})
    assert response.status_code == 400
    with services.db.reading() as session:
        assert session.scalar(select(func.count(Transfer.id))) == 0


def test_a_one_time_code_by_text_signs_a_broker_in(client, broker, outbox):
    token = csrf(client.get("/dashboard/login").data)
    page = client.post("/dashboard/login/code", data={"csrf_token": token, "phone": BROKER})
    assert "a 6-digit code is on its way" in text_of(page)
    [code_text] = outbox.to(BROKER)
    code = code_text.split()[0]
    assert re.fullmatch(r"\d{6}", code)
    assert code_text.endswith("It works for 10 minutes. If you didn't ask for it, you can "
                              "ignore this text")
    wrong = client.post("/dashboard/login/verify",
                        data={"csrf_token": token, "phone": BROKER, "code": "000000"
                              if code != "000000" else "111111"})
    assert wrong.status_code == 401
    right = client.post("/dashboard/login/verify",
                        data={"csrf_token": token, "phone": BROKER, "code": code})
    assert right.status_code == 302
    assert "Hello, Bea" in text_of(client.get("/dashboard/"))
    # A code works once.
    client.get("/dashboard/login")
    again = client.post("/dashboard/login/verify",
                        data={"csrf_token": csrf(client.get("/dashboard/login").data),
                              "phone": BROKER, "code": code})
    assert again.status_code == 401


def test_a_code_for_a_number_that_is_not_a_broker_sends_nothing_and_says_the_same(
        client, broker, outbox, services):
    token = csrf(client.get("/dashboard/login").data)
    page = client.post("/dashboard/login/code",
                       data={"csrf_token": token, "phone": "07700900999"})
    assert "a 6-digit code is on its way" in text_of(page)
    assert outbox.to("+447700900999", status=None) == []


def test_members_search_page_notes_approve_and_hold(signed_in, make_phone, services, outbox):
    ana = make_phone("+447700900801")
    ana.text("JOIN Ana")
    ana.text("gardening and cooking")
    ana.text("Brixton")
    for query in ("Ana", "garden", "brixton", "900801"):
        assert "Ana" in text_of(signed_in.get(f"/dashboard/members?q={query}")), query
    assert "Ana" not in text_of(signed_in.get("/dashboard/members?q=plumbing"))
    with services.db.reading() as session:
        ana_id = session.scalars(select(Member.id).where(Member.name == "Ana")).one()
    page = text_of(signed_in.get(f"/dashboard/members/{ana_id}"))
    assert "gardening and cooking" in page and "Brixton" in page
    saved = post(signed_in, f"/dashboard/members/{ana_id}/note",
                 {"notes": "Prefers a call in the morning"})
    assert "Notes saved." in text_of(saved)
    assert "Prefers a call in the morning" in text_of(saved)
    held = post(signed_in, f"/dashboard/members/{ana_id}/hold")
    assert "Ana is on hold." in text_of(held)
    assert "welcome you soon" in ana.reply("DONE 2 Bea gardening")
    approved = post(signed_in, f"/dashboard/members/{ana_id}/approve")
    assert "Ana is now an active member." in text_of(approved)
    assert outbox.to(ana.number)[-1].startswith("Good news, Ana")
    with services.db.reading() as session:
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["signed_in", "member.note", "member.held", "member.approved"]
    assert "member.held" in text_of(signed_in.get("/dashboard/audit"))


def test_another_banks_member_is_not_found(signed_in, services):
    with services.db.writing() as session:
        other = banks.add_bank(session, "Hackney Time Bank", addresses=["+447700900555"])
        stranger = Member(bank_id=other.id, phone="+447700900556", name="Zed")
        session.add(stranger)
        session.flush()
        stranger_id = stranger.id
    assert signed_in.get(f"/dashboard/members/{stranger_id}").status_code == 404
    token = csrf(signed_in.get("/dashboard/").data)
    response = signed_in.post(f"/dashboard/members/{stranger_id}/hold",
                              data={"csrf_token": token})
    assert response.status_code == 404


def test_compose_send_answer_and_credit_an_activity(signed_in, make_phone, services, outbox):
    people = []
    for n, name in enumerate(["Ana", "Ben", "Cat"]):
        phone = make_phone(f"+44770090081{n}")
        phone.text(f"JOIN {name}")
        people.append(phone)
    page = post(signed_in, "/dashboard/activities",
                {"text": "Seed swap Saturday 2pm", "request_id": "r1"},
                page="/dashboard/activities")
    text = text_of(page)
    assert "Goes to 3 members" in text and "Send to 3 members (3 texts)" in text
    # The same form sent twice plans one activity.
    post(signed_in, "/dashboard/activities", {"text": "Seed swap Saturday 2pm",
                                               "request_id": "r1"})
    with services.db.reading() as session:
        [activity] = session.scalars(select(Activity)).all()
    assert outbox.to(people[0].number) == []  # nothing goes before the broker confirms
    sent = post(signed_in, f"/dashboard/activities/{activity.id}/send")
    assert f"Ref {activity.ref} is on its way to 3 members." in text_of(sent)
    assert outbox.to(people[0].number) == [
        f"Lambeth Time Bank: Seed swap Saturday 2pm\nReply YES {activity.ref} to come"]
    people[0].text(f"YES {activity.ref}")
    people[1].text(f"NO {activity.ref}")
    page = text_of(signed_in.get(f"/dashboard/activities/{activity.id}"))
    assert "3 of 3 texts handed to the phone network" in page
    assert "Ana coming" in page and "Ben can't come" in page
    with services.db.reading() as session:
        ana = session.scalars(select(Member).where(Member.name == "Ana")).one()
    credited = post(signed_in, f"/dashboard/activities/{activity.id}/credit",
                    {"hours": "2", "member_id": str(ana.id),
                     "numbers": people[2].number})
    assert "2 credited 2 hours each; 0 already had theirs." in text_of(credited)
    again = post(signed_in, f"/dashboard/activities/{activity.id}/credit",
                 {"hours": "2", "member_id": str(ana.id)})
    assert "0 credited 2 hours each; 1 already had theirs." in text_of(again)
    assert people[0].reply("BALANCE").startswith("Balance: 2 hours")
    with services.db.reading() as session:
        assert session.scalar(select(func.count(Transfer.id))) == 2
        assert accounts.verify(session) == []


def test_record_hours_for_a_member_without_a_phone_and_reverse_them(
        signed_in, make_phone, services, outbox):
    ana = make_phone("+447700900801")
    ana.text("JOIN Ana")
    form = {"member": "07700 900801", "hours": "1.5", "what": "reading to Mo",
            "request_id": "abc"}
    done = post(signed_in, "/dashboard/ledger/record", form, page="/dashboard/ledger")
    assert "Recorded 1.5 hours for Ana (reading to Mo)." in text_of(done)
    again = post(signed_in, "/dashboard/ledger/record", form)
    assert "That entry was already recorded." in text_of(again)
    assert ana.reply("BALANCE").startswith("Balance: 1.5 hours")
    bad = post(signed_in, "/dashboard/ledger/record", {**form, "hours": "1.3",
                                                        "request_id": "x"})
    assert "quarter hours" in text_of(bad)
    with services.db.reading() as session:
        transfer_id = session.scalars(select(Transfer.id)).one()
    reversed_ = post(signed_in, f"/dashboard/transfers/{transfer_id}/reverse",
                     {"reason": "recorded twice on paper"})
    assert f"Entry {transfer_id} reversed" in text_of(reversed_)
    assert ana.reply("BALANCE").startswith("Balance: 0 hours")
    csv_text = signed_in.get("/dashboard/ledger/export.csv").data.decode()
    assert csv_text.splitlines()[0].startswith("transfer_id,created_at,bank")
    assert len(csv_text.splitlines()) == 3
    assert "reading to Mo" in csv_text


def test_the_confirmation_queue_settles_a_dispute(signed_in, make_phone, services, outbox):
    sam, ana = make_phone("+447700900601"), make_phone("+447700900602")
    sam.text("JOIN Sam")
    ana.text("JOIN Ana")
    sam.text("DONE 2 Ana gardening")
    ref = outbox.to(ana.number)[0].split("YES ")[1].split()[0]
    ana.text(f"NO {ref}")
    page = text_of(signed_in.get("/dashboard/confirmations"))
    assert f"Record ref {ref}" in page and "disputed" in page
    with services.db.reading() as session:
        from ledger.models import Confirmation

        confirmation_id = session.scalars(select(Confirmation.id)).one()
    settled = post(signed_in, f"/dashboard/confirmations/{confirmation_id}/settle",
                   {"action": "confirm"})
    assert f"Ref {ref} recorded; both members have been told." in text_of(settled)
    assert sam.reply("BALANCE").startswith("Balance: 2 hours")


def test_needs_show_candidates_and_why_and_a_broker_can_ask_by_hand(
        signed_in, make_phone, services, outbox):
    kemi, ana = make_phone("+447700900601"), make_phone("+447700900602")
    ana.text("JOIN Ana")
    ana.text("gardening")
    kemi.text("JOIN Kemi")
    kemi.text("SKIP")
    with services.db.writing() as session:
        # Not asked automatically yet: the broker chooses.
        pass
    kemi.text("NEED help with my garden")
    page = text_of(signed_in.get("/dashboard/needs"))
    assert "help with my garden" in page
    assert 'offers "gardening"' in page
    with services.db.reading() as session:
        from ledger.models import Post

        need = session.scalars(select(Post)).one()
        ana_id = session.scalars(select(Member.id).where(Member.name == "Ana")).one()
        session.expunge(need)
    asked = post(signed_in, f"/dashboard/needs/{need.id}/ask", {"member_id": str(ana_id)})
    assert f"Ana has been asked about ref {need.ref}." in text_of(asked)
    assert f"YES {need.ref}" in outbox.to(ana.number)[-1]
    again = post(signed_in, f"/dashboard/needs/{need.id}/ask", {"who": "ana"})  # by name
    assert "already asked" in text_of(again)
    nobody = post(signed_in, f"/dashboard/needs/{need.id}/ask", {"who": "Zed"})
    assert "No active member has that number or name" in text_of(nobody)


def test_reports_and_coproduction_pages_show_charts_and_csv(signed_in, make_phone, services):
    sam, ana = make_phone("+447700900601"), make_phone("+447700900602")
    sam.text("JOIN Sam")
    ana.text("JOIN Ana")
    with services.db.writing() as session:
        bank = session.scalars(select(Bank)).first()
        sam_m = session.scalars(select(Member).where(Member.name == "Sam")).one()
        ana_m = session.scalars(select(Member).where(Member.name == "Ana")).one()
        accounts.transfer(session, bank_id=bank.id,
                          from_account_id=members.member_account(session, ana_m).id,
                          to_account_id=members.member_account(session, sam_m).id,
                          minutes=120, kind="exchange", idempotency_key="t1",
                          entered_by="member", description="gardening")
    page = signed_in.get("/dashboard/reports")
    assert page.status_code == 200
    assert b"<svg" in page.data and b'role="img"' in page.data
    text = text_of(page)
    assert "Hours given each month" in text or "Hours given" in text
    for name in ("hours-by-month", "reciprocity", "network-growth"):
        response = signed_in.get(f"/dashboard/reports/{name}.csv")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert len(response.data.decode().splitlines()) >= 2
    assert signed_in.get("/dashboard/reports/nonsense.csv").status_code == 404
    copro = text_of(signed_in.get("/dashboard/coproduction"))
    for value in ("Assets", "Redefining work", "Reciprocity", "Social networks"):
        assert value in copro
    assert signed_in.get("/dashboard/coproduction.csv").data.decode().startswith("value,")
    # A period that cannot be read falls back to the default rather than failing.
    assert signed_in.get("/dashboard/reports?start=yesterday&end=2").status_code == 200


def test_csv_cells_that_look_like_formulas_are_made_harmless(signed_in, make_phone, services):
    ana = make_phone("+447700900801")
    ana.text("JOIN Ana")
    post(signed_in, "/dashboard/ledger/record",
         {"member": ana.number, "hours": "1", "what": "=HYPERLINK(\"http://x\")",
          "request_id": "f1"})
    csv_text = signed_in.get("/dashboard/ledger/export.csv").data.decode()
    assert "'=HYPERLINK" in csv_text
    assert ",=HYPERLINK" not in csv_text


def test_a_broker_cannot_credit_themselves_on_the_dashboard(signed_in, make_phone, services):
    make_phone("+447700900801").text("JOIN Ana")
    post(signed_in, "/dashboard/activities", {"text": "Quiz", "request_id": "q"})
    with services.db.reading() as session:
        activity_id = session.scalars(select(Activity.id)).one()
    post(signed_in, f"/dashboard/activities/{activity_id}/send")
    page = post(signed_in, f"/dashboard/activities/{activity_id}/credit",
                {"hours": "5", "numbers": BROKER})
    assert "Brokers can't credit themselves" in text_of(page)
    with services.db.reading() as session:
        assert session.scalar(select(func.count(Transfer.id))) == 0


def test_the_dashboard_is_off_on_a_public_deployment_with_the_development_key(backend):
    from app import create_app
    from tests.conftest import make_config

    public = create_app(make_config(backend, testing=False,
                                    public_base_url="https://bank.example.org"))
    response = public.test_client().get("/dashboard/login")
    assert response.status_code == 503
    assert b"TIMEBANK_SECRET_KEY" in response.data
    keyed = create_app(make_config(backend, testing=False, secret_key="x" * 40,
                                   public_base_url="https://bank.example.org"))
    assert keyed.test_client().get("/dashboard/login").status_code == 200
    public.extensions["timebank"].close()
    keyed.extensions["timebank"].close()
