"""The brokers' dashboard through Flask's test client: sign-in, CSRF, each page and action."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app import auth
from ledger import accounts, banks, members, reports
from ledger.models import Activity, AuditEntry, Bank, Member, Message, Transfer
from tests.helpers import ref_in

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
                 "/dashboard/reports", "/dashboard/reports/reciprocity",
                 "/dashboard/reports/reciprocity.csv", "/dashboard/ledger/export.csv"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.location.startswith("/dashboard/login")


def test_the_address_timebank_run_prints_leads_to_the_sign_in_page(client, broker):
    response = client.get("/", follow_redirects=True)
    assert response.status_code == 200
    assert response.request.path == "/dashboard/login"


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


def test_a_one_time_code_by_text_signs_a_broker_in(client, broker, outbox, services, capsys):
    token = csrf(client.get("/dashboard/login").data)
    page = client.post("/dashboard/login/code", data={"csrf_token": token, "phone": BROKER})
    assert "a 6-digit code is on its way" in text_of(page)
    [code_text] = outbox.received(BROKER)
    code = code_text.split()[0]
    assert re.fullmatch(r"\d{6}", code)
    assert code_text.endswith("It works for 10 minutes. If you didn't ask for it, you can "
                              "ignore this text")
    # The phone has the only copy: not the message row, not the worker's output.
    assert outbox.to(BROKER) == [code_text.replace(code, "******", 1)]
    with services.db.reading() as session:
        [row] = session.scalars(select(Message)).all()
        assert code not in f"{row.body} {row.values_json}"
    assert code not in capsys.readouterr().out
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
    ref = ref_in(outbox.to(ana.number)[0])
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
    ben = make_phone("+447700900603")
    ana.text("JOIN Ana")
    ana.text("gardening")
    ben.text("JOIN Ben")
    ben.text("knitting")  # no match: only a broker asks Ben
    kemi.text("JOIN Kemi")
    kemi.text("SKIP")
    kemi.text("NEED help with my garden")
    page = text_of(signed_in.get("/dashboard/needs"))
    assert "help with my garden" in page
    assert 'offers "gardening"' in page
    with services.db.reading() as session:
        from ledger.models import Ask, Post

        need = session.scalars(select(Post)).one()
        ben_id = session.scalars(select(Member.id).where(Member.name == "Ben")).one()
        session.expunge(need)
    assert f"YES {need.ref}" in outbox.to(ana.number)[-1]  # asked automatically
    assert not any(f"YES {need.ref}" in text for text in outbox.to(ben.number))
    asked = post(signed_in, f"/dashboard/needs/{need.id}/ask", {"member_id": str(ben_id)})
    assert f"Ben has been asked about ref {need.ref}." in text_of(asked)
    assert f"YES {need.ref}" in outbox.to(ben.number)[-1]
    with services.db.reading() as session:
        assert "asked by a broker" in session.scalars(
            select(Ask.reasons).where(Ask.member_id == ben_id)).one()
        assert "need.asked" in session.scalars(select(AuditEntry.action)).all()
    assert "Ben" in text_of(signed_in.get("/dashboard/needs"))
    again = post(signed_in, f"/dashboard/needs/{need.id}/ask", {"who": "ben"})  # by name
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
    # One report a page, each listed on every page, the period carried from one to another.
    period = "start=2020-01-01&end=2030-01-01"
    for name in reports.REPORTS:
        one = signed_in.get(f"/dashboard/reports/{name}?{period}")
        assert one.status_code == 200
        assert f'<h2 id="{name}">{reports.TITLES[name]}</h2>'.encode() in one.data
        assert one.data.count(b'aria-current="page"') == 1
        for other in reports.REPORTS:
            if other != name:
                link = f'href="/dashboard/reports/{other}?{period.replace("&", "&amp;")}"'
                assert link.encode() in one.data
    assert "Gardening" in text_of(signed_in.get("/dashboard/reports/hours-by-category"))
    assert signed_in.get("/dashboard/reports/nonsense").status_code == 404
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


# --- sign-in, as an attacker would try it ----------------------------------------------------


def sign_in_from(client, address: str, password: str = PASSWORD,  # type: ignore[no-untyped-def]
                 phone: str = BROKER, headers: dict[str, str] | None = None):
    token = csrf(client.get("/dashboard/login").data)
    return client.post("/dashboard/login", headers=headers or {},
                       data={"csrf_token": token, "phone": phone, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def copy_of(client, app):  # type: ignore[no-untyped-def]
    """Another browser holding a copy of ``client``'s dashboard cookie."""
    thief = app.test_client()
    thief.set_cookie("timebank_session", client.get_cookie("timebank_session").value)
    return thief


def is_signed_out(client) -> bool:  # type: ignore[no-untyped-def]
    response = client.get("/dashboard/members")
    return response.status_code == 302 and response.location.startswith("/dashboard/login")


def test_signing_out_ends_a_copied_cookie_too(signed_in, app, services):
    thief = copy_of(signed_in, app)
    assert "Hello, Bea" in text_of(thief.get("/dashboard/"))
    post(signed_in, "/dashboard/logout")
    assert is_signed_out(signed_in) and is_signed_out(thief)
    with services.db.reading() as session:
        assert session.scalars(select(AuditEntry.action)).all()[-1] == "signed_out"


def test_a_new_password_ends_every_session(signed_in, app, cli):
    thief = copy_of(signed_in, app)
    result = cli("broker", "password", BROKER, "--password", "a brand new passphrase")
    assert result.exit_code == 0, result.output
    assert is_signed_out(signed_in) and is_signed_out(thief)
    assert sign_in(app.test_client()).status_code == 401  # the old password is gone too
    assert sign_in(app.test_client(), password="a brand new passphrase").status_code == 302


def test_a_broker_put_on_hold_or_leaving_is_signed_out_everywhere(
        signed_in, app, services, make_phone):
    from app import effects

    thief = copy_of(signed_in, app)
    with services.db.writing() as session:
        bea = session.scalars(select(Member).where(Member.phone == BROKER)).one()
        bank = session.get(Bank, bea.bank_id)
        assert effects.set_status(session, bank, bea, approve=False, broker=None,
                                  via="cli").changed
    assert is_signed_out(thief)
    with services.db.writing() as session:
        bea = session.scalars(select(Member).where(Member.phone == BROKER)).one()
        effects.set_status(session, session.get(Bank, bea.bank_id), bea, approve=True,
                           broker=None, via="cli")
    # Approved again, the copied cookie still names the sessions that were ended.
    assert is_signed_out(thief) and is_signed_out(signed_in)
    # Leaving the bank by text ends a fresh session as well.
    fresh = app.test_client()
    assert sign_in(fresh).status_code == 302
    make_phone(BROKER).text("LEAVE")
    make_phone(BROKER).text("LEAVE NOW")
    with services.db.reading() as session:
        assert session.scalars(select(Member.status).where(Member.phone == BROKER)).one() \
            == "left"
    assert is_signed_out(fresh)


def test_a_session_ends_after_its_hours_whatever_the_cookie_says(signed_in):
    assert not is_signed_out(signed_in)
    with signed_in.session_transaction() as cookie:
        cookie["since"] -= auth.SESSION_HOURS * 3600 + 1
    assert is_signed_out(signed_in)
    assert sign_in(signed_in).status_code == 302
    with signed_in.session_transaction() as cookie:
        cookie["since"] += 3600  # a session from the future is no session either
    assert is_signed_out(signed_in)


def test_guessing_from_one_address_does_not_lock_the_broker_out_elsewhere(client, broker, app):
    for _ in range(30):
        response = sign_in_from(client, "203.0.113.66", password="guess guess")
        assert response.status_code in (401, 429)
    assert response.status_code == 429
    # The attacker's own address waits, even with the right password…
    assert sign_in_from(client, "203.0.113.66").status_code == 429
    # …while the broker, from anywhere else, signs in.
    broker_browser = app.test_client()
    assert sign_in_from(broker_browser, "198.51.100.7").status_code == 302
    assert "Hello, Bea" in text_of(broker_browser.get("/dashboard/"))


def test_only_failed_sign_ins_count(client, broker):
    for _ in range(auth.TRIES_PER_ADDRESS + auth.TRIES_PER_NUMBER):
        assert sign_in_from(client, "198.51.100.7").status_code == 302
    for _ in range(auth.TRIES_PER_NUMBER - 1):
        assert sign_in_from(client, "198.51.100.7", password="guess guess").status_code == 401
    assert sign_in_from(client, "198.51.100.7").status_code == 302


def test_one_address_trying_many_numbers_is_limited(client, broker, app):
    for n in range(auth.TRIES_PER_ADDRESS):
        assert sign_in_from(client, "203.0.113.66", phone=f"+4477009001{n:02d}",
                            password="guess guess").status_code == 401
    assert sign_in_from(client, "203.0.113.66", phone="+447700900199",
                        password="guess guess").status_code == 429
    assert sign_in_from(client, "203.0.113.66").status_code == 429
    assert sign_in_from(app.test_client(), "198.51.100.7").status_code == 302


def test_a_made_up_forwarded_address_does_not_escape_the_limit(client, broker, app):
    # TIMEBANK_TRUSTED_PROXIES is 0: the header is the attacker's own words.
    for n in range(auth.TRIES_PER_NUMBER + 2):
        sign_in_from(client, "203.0.113.66", password="guess guess",
                     headers={"X-Forwarded-For": f"192.0.2.{n}"})
    assert sign_in_from(client, "203.0.113.66",
                        headers={"X-Forwarded-For": "192.0.2.200"}).status_code == 429


@pytest.mark.parametrize("settings", [{"trusted_proxies": 1}])
def test_behind_one_trusted_proxy_the_address_it_saw_is_counted(client, broker, app, settings):
    proxy = "10.0.0.1"
    for n in range(auth.TRIES_PER_NUMBER + 2):
        # Whatever the attacker writes first, the proxy appends the address it saw.
        sign_in_from(client, proxy, password="guess guess",
                     headers={"X-Forwarded-For": f"192.0.2.{n}, 203.0.113.66"})
    assert sign_in_from(client, proxy, headers={
        "X-Forwarded-For": "192.0.2.200, 203.0.113.66"}).status_code == 429
    # The broker, through the same proxy from elsewhere, signs in.
    assert sign_in_from(app.test_client(), proxy, headers={
        "X-Forwarded-For": "198.51.100.7"}).status_code == 302


def ask_code(client, address: str = "198.51.100.7"):  # type: ignore[no-untyped-def]
    token = csrf(client.get("/dashboard/login").data)
    return client.post("/dashboard/login/code", data={"csrf_token": token, "phone": BROKER},
                       environ_base={"REMOTE_ADDR": address})


def try_code(client, code: str, address: str = "198.51.100.7"):  # type: ignore[no-untyped-def]
    token = csrf(client.get("/dashboard/login").data)
    return client.post("/dashboard/login/verify",
                       data={"csrf_token": token, "phone": BROKER, "code": code},
                       environ_base={"REMOTE_ADDR": address})


def test_a_phone_gets_only_so_many_codes_a_day(client, broker, outbox):
    for n in range(auth.CODES_PER_DAY + 3):
        page = ask_code(client, address=f"192.0.2.{n}")
        assert "a 6-digit code is on its way" in text_of(page)
    assert len(outbox.received(BROKER)) == auth.CODES_PER_DAY


def test_a_code_gives_only_so_many_tries(client, broker, outbox):
    ask_code(client)
    [text] = outbox.received(BROKER)
    code = text.split()[0]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(auth.CODE_TRIES):
        assert try_code(client, wrong).status_code == 401
    assert try_code(client, code).status_code == 401  # the code is spent
    ask_code(client)
    new_code = outbox.received(BROKER)[-1].split()[0]
    assert try_code(client, new_code).status_code == 302


def test_a_code_text_whose_code_is_lost_is_never_sent(client, broker, outbox, services, redis):
    ask_code(client)
    for key in redis.scan_iter("tb:login-code-seed:*"):  # Redis lost it, or it ran out
        redis.delete(key)
    assert outbox.received(BROKER) == []
    with services.db.reading() as session:
        row = session.scalars(select(Message)).one()
        assert (row.status, row.error_code) == ("canceled", "code-expired")


# --- pages that must answer 400 or 404, not fail ---------------------------------------------


def test_report_periods_out_of_the_calendar_or_too_long_are_refused(signed_in, make_phone,
                                                                     services):
    for query in ("start=9999-12-31", "start=9999-12-31&end=9999-12-31",
                  "start=9999-06-01&end=9999-12-31", "start=0001-01-01",
                  "start=1990-01-01&end=2026-01-01"):
        for page in ("/dashboard/reports", "/dashboard/coproduction",
                     "/dashboard/reports/hours-by-month.csv", "/dashboard/coproduction.csv"):
            response = signed_in.get(f"{page}?{query}")
            assert response.status_code == 400, (page, query)
    assert "at most ten years" in text_of(
        signed_in.get("/dashboard/reports?start=1990-01-01&end=2026-01-01"))
    # The longest period allowed, with hours in it, is still a small page.
    sam, ana = make_phone("+447700900601"), make_phone("+447700900602")
    sam.text("JOIN Sam")
    ana.text("JOIN Ana")
    ana.text("DONE 1 Sam gardening")
    response = signed_in.get("/dashboard/reports?start=2016-12-03&end=2026-12-02")
    assert response.status_code == 200
    assert len(response.data) < 300_000
    for query in ("start=9998-12-31", "start=0001-01-01&end=0001-02-01",
                  "start=9998-01-01&end=9999-01-01"):
        for page in ("/dashboard/reports", "/dashboard/coproduction",
                     "/dashboard/coproduction.csv"):
            assert signed_in.get(f"{page}?{query}").status_code == 200, (page, query)


def test_ids_too_big_for_the_database_are_not_found(signed_in, make_phone, services):
    make_phone("+447700900801").text("JOIN Ana")
    big = str(2**31)
    for path in (f"/dashboard/members/{big}", f"/dashboard/activities/{big}",
                 "/dashboard/members/99999999999999999999"):
        assert signed_in.get(path).status_code == 404, path
    for path in (f"/dashboard/members/{big}/hold", f"/dashboard/needs/{big}/ask",
                 f"/dashboard/confirmations/{big}/settle",
                 f"/dashboard/transfers/{big}/reverse"):
        token = csrf(signed_in.get("/dashboard/").data)
        response = signed_in.post(path, data={"csrf_token": token, "reason": "x"})
        assert response.status_code == 404, path
    post(signed_in, "/dashboard/activities", {"text": "Quiz", "request_id": "q"})
    with services.db.reading() as session:
        activity_id = session.scalars(select(Activity.id)).one()
    post(signed_in, f"/dashboard/activities/{activity_id}/send")
    page = post(signed_in, f"/dashboard/activities/{activity_id}/credit",
                {"hours": "1", "member_id": [big, "²"]})
    assert "Tick the people who came" in text_of(page)
    page = post(signed_in, "/dashboard/ledger/record",
                {"member": "+447700900801", "hours": "1", "what": "x", "source": big})
    assert page.status_code == 404


def test_a_next_page_with_a_line_break_goes_home(client, broker):
    for wanted in ("/dashboard/\r\nSet-Cookie: x=1", "/dashboard/\n", "/dashboard/\\evil",
                   "/dashboard/ x"):
        token = csrf(client.get("/dashboard/login").data)  # new with each sign-in
        response = client.post("/dashboard/login", query_string={"next": wanted},
                               data={"csrf_token": token, "phone": BROKER,
                                     "password": PASSWORD})
        assert response.status_code == 302 and response.location == "/dashboard/", wanted
    response = client.post("/dashboard/login", query_string={"next": "/dashboard/ledger"},
                           data={"csrf_token": csrf(client.get("/dashboard/login").data),
                                 "phone": BROKER, "password": PASSWORD})
    assert response.location == "/dashboard/ledger"


# --- the development key ---------------------------------------------------------------------


def test_with_the_development_key_only_this_machine_reaches_the_dashboard(backend):
    from app import create_app
    from tests.conftest import make_config

    local = create_app(make_config(backend, testing=False))
    client = local.test_client()
    assert client.get("/dashboard/login").status_code == 200  # straight from loopback
    for environ, headers in (({"REMOTE_ADDR": "203.0.113.66"}, {}),
                             ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "1.2.3.4"}),
                             ({"REMOTE_ADDR": "127.0.0.1"}, {"Via": "1.1 proxy"})):
        response = client.get("/dashboard/login", environ_base=environ, headers=headers)
        assert response.status_code == 503, (environ, headers)
        assert b"TIMEBANK_SECRET_KEY" in response.data
    local.extensions["timebank"].close()


def test_timebank_run_keeps_a_random_key_every_process_reads(tmp_path):
    from app.config import DEVELOPMENT_KEY, Config, keep_secret_key

    env = {"TIMEBANK_INSTANCE_PATH": str(tmp_path)}
    assert Config.from_env(env=env).secret_key == DEVELOPMENT_KEY
    assert keep_secret_key(tmp_path) is True
    key = Config.from_env(env=env).secret_key
    assert key != DEVELOPMENT_KEY and len(key) >= 40
    assert keep_secret_key(tmp_path) is False  # kept, not replaced
    assert Config.from_env(env=env).secret_key == key
    assert Config.from_env(env={}, instance_path=tmp_path).secret_key == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert Config.from_env(env={**env, "TIMEBANK_SECRET_KEY": "k" * 40}).secret_key == "k" * 40
