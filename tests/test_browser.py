"""A broker in a real browser: sign in, announce an activity, send it, credit who came.

The real app runs in a real HTTP server on a loopback port; headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright) uses the dashboard as a person would, through
accessible names only. Members join, answer and check their balance by text, through the
webhook.

Without Chromium (or the ``playwright`` package) the test is skipped and says why, unless
``TIMEBANK_BROWSER_TESTS=required`` (as ``.ci/run`` sets), when it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app import auth
from app.services import Services
from ledger import accounts, banks, members
from ledger.models import AuditEntry, Transfer
from tests.helpers import Outbox, Phone

CHROMIUM = os.environ.get("TIMEBANK_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("TIMEBANK_BROWSER_TESTS", "").lower() == "required"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 10_000

BROKER = "+447700900700"
PASSWORD = "seed swap at st marks"
NEIGHBOURS = [  # name, number, skills, area
    ("Ana", "+447700900800", "gardening, cooking", "Brixton"),
    ("Ben", "+447700900801", "lifts", "Brixton Hill"),
    ("Cat", "+447700900802", "garden work", "Brixton"),
    ("Dev", "+447700900803", "gardening", "Clapham"),
    ("Eve", "+447700900804", "shopping", "Clapham"),
]

pytestmark = pytest.mark.slow


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"TIMEBANK_BROWSER_TESTS=required, but {reason}", pytrace=False)
    pytest.skip(f"{reason} (apt-get install chromium, or set TIMEBANK_CHROMIUM)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        try:
            # A first start after installing builds font caches: on a loaded machine that can
            # take longer than half a minute. A limit to wait for, not a speed assertion.
            launched = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=120_000)
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            _unavailable(f"Chromium at {CHROMIUM} did not start: {first_line}")
        yield launched
        launched.close()


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    """The app, served over real HTTP on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dashboard-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    server.server_close()


@pytest.fixture
def neighbours(app: Flask) -> dict[str, Phone]:
    """Five members who joined by text, with their skills and areas."""
    people = {}
    for name, number, skills, area in NEIGHBOURS:
        phone = Phone(app, number)
        phone.text(f"JOIN {name}")
        phone.text(skills)
        phone.text(area)
        phone.text("SKIP")
        people[name] = phone
    return people


@pytest.fixture
def broker(services: Services) -> None:
    """Bea, a broker with a dashboard password."""
    with services.db.writing() as session:
        bea, _ = members.make_broker(session, banks.bank_for_address(session, None), BROKER,
                                     "Bea")
        bea.password_hash = auth.hash_password(PASSWORD)


def balance_minutes(services: Services, number: str) -> int:
    with services.db.reading() as session:
        member = members.find_member(session, banks.bank_for_address(session, None).id, number)
        assert member is not None
        return members.member_account(session, member).balance_minutes


def balance_by_text(phone: Phone) -> str:
    return phone.reply("BALANCE").split(". ")[0]


def test_a_broker_signs_in_sends_a_broadcast_and_credits_who_came(
        browser: Any, base_url: str, broker: None, neighbours: dict[str, Phone],
        services: Services) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    outbox = Outbox(services)
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        # A wrong password is refused, and says so.
        page.goto("/dashboard/login")
        sign_in = page.get_by_role("button", name="Sign in", exact=True)
        phone_box = page.get_by_role("textbox", name="Your phone number", exact=True)
        phone_box.fill("07700 900700")
        page.get_by_label("Password").fill("not the password")
        sign_in.click()
        expect(page.get_by_role("alert")).to_have_text(
            "That number and password don't match a broker.")
        assert _audit_count(services, "signed_in") == 0

        # The right one signs in.
        page.get_by_label("Password").fill(PASSWORD)
        sign_in.click()
        expect(page.get_by_role("heading", name="Hello, Bea")).to_be_visible()
        assert _audit_count(services, "signed_in") == 1

        # Announce an activity: first a count, nothing sent yet.
        page.get_by_role("navigation", name="Dashboard").get_by_role(
            "link", name="Activities", exact=True).click()
        page.get_by_label("What, when and where").fill("Seed swap and tea, Saturday 2pm")
        page.get_by_role("button", name="Count who it goes to").click()
        heading = page.get_by_role("heading", level=1)
        expect(heading).to_have_text(re.compile(r"^Ref \d+: Seed swap and tea, Saturday 2pm$"))
        ref = int(re.search(r"Ref (\d+)", heading.inner_text()).group(1))  # type: ignore[union-attr]
        expect(page.get_by_text("Goes to 5 members")).to_be_visible()
        _assert_no_broadcast(outbox)

        # Send it.
        page.get_by_role("button", name="Send to 5 members (5 texts)").click()
        expect(page.get_by_role("status")).to_have_text(f"Ref {ref} is on its way to 5 members.")
        outbox.run_jobs()
        invitation = f"Lambeth Time Bank: Seed swap and tea, Saturday 2pm\nReply YES {ref} to come"
        for name, number, *_ in NEIGHBOURS:
            assert outbox.to(number)[-1] == invitation, name
        assert invitation not in outbox.to(BROKER)

        # Two say yes, one can't come; the broker sees who answered.
        assert "on the list" in neighbours["Ana"].reply(f"YES {ref}")
        assert "on the list" in neighbours["Dev"].reply(f"YES {ref}")
        assert "off the list" in neighbours["Cat"].reply(f"NO {ref}")
        # A second tab, still showing the boxes ticked, to send the same credit again later.
        stale = context.new_page()
        stale.goto(page.url)
        page.get_by_role("link", name="Refresh").click()
        expect(page.get_by_text("5 of 5", exact=False)).to_be_visible()
        for who, coming in (("Ana", True), ("Dev", True), ("Cat", False)):
            box = page.get_by_role("checkbox", name=who, exact=True)
            if coming:
                expect(box).to_be_checked()
            else:
                expect(box).not_to_be_checked()
        expect(page.get_by_role("checkbox")).to_have_count(3)

        # Credit them.
        before = {name: balance_minutes(services, number) for name, number, *_ in NEIGHBOURS}
        page.get_by_label("Hours each").fill("1.5")
        page.get_by_role("button", name="Credit attendees").click()
        expect(page.get_by_role("status")).to_have_text(
            "2 credited 1.5 hours each; 0 already had theirs.")
        after = {name: balance_minutes(services, number) for name, number, *_ in NEIGHBOURS}
        assert {n: after[n] - before[n] for n in after} == {
            "Ana": 90, "Ben": 0, "Cat": 0, "Dev": 90, "Eve": 0}
        assert balance_by_text(neighbours["Ana"]) == "Balance: 1.5 hours"
        assert outbox.to(NEIGHBOURS[3][1])[-1].startswith(
            f"Lambeth Time Bank credited you 1.5 hours for coming to no. {ref}.")
        expect(page.get_by_role("checkbox")).to_have_count(1)  # only Cat's is left

        # The same credit again, from the stale tab: nobody is paid twice.
        stale.get_by_label("Hours each").fill("1.5")
        stale.get_by_role("button", name="Credit attendees").click()
        expect(stale.get_by_role("status")).to_have_text(
            "0 credited 1.5 hours each; 2 already had theirs.")
        # A latecomer by number is paid; Ana, named again by number, is not.
        page.get_by_label("Others who came (phone numbers, one a line)").fill(
            f"07700 900804\n{NEIGHBOURS[0][1]}")
        page.get_by_label("Hours each").fill("1.5")
        page.get_by_role("button", name="Credit attendees").click()
        expect(page.get_by_role("status")).to_have_text(
            "1 credited 1.5 hours each; 1 already had theirs.")
        final = {name: balance_minutes(services, number) for name, number, *_ in NEIGHBOURS}
        assert {n: final[n] - before[n] for n in final} == {
            "Ana": 90, "Ben": 0, "Cat": 0, "Dev": 90, "Eve": 90}
        with services.db.reading() as session:
            assert session.scalar(select(func.count()).select_from(Transfer).where(
                Transfer.kind == "activity")) == 3
            assert accounts.verify(session) == []
        stale.close()
    finally:
        context.close()


def _assert_no_broadcast(outbox: Outbox) -> None:
    for _, number, *_ in NEIGHBOURS:
        assert not any("Reply YES" in body for body in outbox.to(number, status=None))


def _audit_count(services: Services, action: str) -> int:
    with services.db.reading() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == action)) or 0)


def test_a_broker_answers_a_member_from_the_inbox(
        browser: Any, base_url: str, broker: None, neighbours: dict[str, Phone],
        services: Services) -> None:
    """Ana asks for a person by text; Bea sees it in the inbox, reads the conversation and
    replies; Ana's phone gets the reply from the bank, and the inbox is empty again."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    outbox = Outbox(services)
    ana = neighbours["Ana"]
    assert "will be in touch" in ana.reply("Hi, could someone ring me about my hours?")
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto("/dashboard/login")
        page.get_by_role("textbox", name="Your phone number", exact=True).fill("07700 900700")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("link", name="1 in the inbox")).to_be_visible()

        page.get_by_role("navigation", name="Dashboard").get_by_role(
            "link", name="Inbox", exact=True).click()
        expect(page.get_by_role("cell", name="Hi, could someone ring me about my hours?")
               ).to_be_visible()
        page.get_by_role("link", name="Reply to Ana").click()
        expect(page.get_by_role("heading", name=re.compile("^Text from Ana"))).to_be_visible()
        # The conversation: what Ana wrote when she joined, and what the bank answered.
        expect(page.get_by_role("cell", name="JOIN Ana", exact=True)).to_be_visible()

        page.get_by_label("Reply to Ana by text").fill("Hi Ana, Bea here. I'll ring you at 3.")
        expect(page.get_by_role("checkbox", name="Mark this text handled")).to_be_checked()
        page.get_by_role("button", name="Send reply").click()
        expect(page.get_by_role("status")).to_have_text("Your reply to Ana is on its way.")
        expect(page.get_by_role("cell", name=re.compile("Bea here. I'll ring you at 3"))
               ).to_be_visible()

        assert outbox.to(NEIGHBOURS[0][1])[-1] == (
            "Lambeth Time Bank: Hi Ana, Bea here. I'll ring you at 3. (Bea)")
        assert _audit_count(services, "inbox.replied") == 1
        page.get_by_role("link", name="Back to the inbox").click()
        expect(page.get_by_text("Nothing is waiting for a person.")).to_be_visible()
    finally:
        context.close()
