"""The dashboard with many rows: the members list and the ledger come a page at a time, with
links a broker follows, and no page runs more SQL statements as the bank grows.

How fast the pages are at 100,000 members is measured by ``bench/dashboard_scale.py``, not
here: these tests check what a broker sees and how many statements each page costs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, insert, select

from app import auth
from ledger import accounts, banks, members, reports
from ledger.models import Account, Activity, Bank, Member, Transfer, utcnow
from tests.test_dashboard import BROKER, PASSWORD, post, sign_in, text_of

AREAS = ("Brixton", "Stockwell", "Clapham")


@pytest.fixture
def signed_in(app, services):  # type: ignore[no-untyped-def]
    """A broker (Bea) of the default bank, signed in to the dashboard."""
    with services.db.writing() as session:
        broker, _ = members.make_broker(session, bank_of(session), BROKER, "Bea")
        broker.password_hash = auth.hash_password(PASSWORD)
    client = app.test_client()
    assert sign_in(client).status_code == 302
    return client


def bank_of(session) -> Bank:  # type: ignore[no-untyped-def]
    return banks.bank_for_address(session, None)


def add_members(services, count: int, *, start: int = 0, prefix: str = "Member") -> list[int]:  # type: ignore[no-untyped-def]
    """``count`` active members (names sort in number order), each with an account."""
    with services.db.writing() as session:
        bank = bank_of(session)
        now = utcnow()
        rows = [{"bank_id": bank.id, "phone": f"+4477008{start + n:05d}",
                 "name": f"{prefix} {start + n:04d}", "area": AREAS[n % 3],
                 "skills": "gardening" if n % 2 else "cooking", "language": "en",
                 "status": "active", "role": "member", "last_channel": "sms",
                 "joined_at": now - timedelta(days=n % 400), "session_generation": 0}
                for n in range(count)]
        ids = list(session.scalars(insert(Member).returning(Member.id), rows))
        session.execute(insert(Account), [
            {"bank_id": bank.id, "kind": "member", "member_id": member_id, "name": "member",
             "balance_minutes": 0, "created_at": now} for member_id in ids])
        return ids


def add_transfers(services, member_ids: list[int], count: int, *, tag: str = "t") -> None:  # type: ignore[no-untyped-def]
    """``count`` exchanges, gifts, recorded hours and activity credits between the members,
    spread over months, with the cached balances kept true (``ledger verify`` passes)."""
    with services.db.writing() as session:
        bank = bank_of(session)
        fund = banks.ensure_fund(session, bank)
        account_of = dict(session.execute(select(Account.member_id, Account.id).where(
            Account.member_id.in_(member_ids))).all())
        activity = Activity(bank_id=bank.id, ref=9000 + len(tag) + count, text="Litter pick",
                            request_key=f"scale-{tag}-{count}", status="sending")
        session.add(activity)
        session.flush()
        now = utcnow()
        rows, change = [], {}
        for n in range(count):
            a = member_ids[n % len(member_ids)]
            b = member_ids[(n * 7 + 1) % len(member_ids)]
            if a == b:
                b = member_ids[(n + 1) % len(member_ids)]
            kind = ("exchange", "gift", "record", "activity")[n % 4]
            source = account_of[a] if kind in ("exchange", "gift") else fund.id
            key = f"activity:{activity.id}:{b}" if kind == "activity" else f"{tag}:{n}"
            if kind == "activity" and key in {r["idempotency_key"] for r in rows}:
                kind, key = "record", f"{tag}:{n}"
            rows.append({"bank_id": bank.id, "from_account_id": source,
                         "to_account_id": account_of[b], "minutes": 60, "kind": kind,
                         "description": "gardening for Sam", "entered_by": "system",
                         "idempotency_key": key,
                         "created_at": now - timedelta(days=(count - n) % 300)})
            change[source] = change.get(source, 0) - 60
            change[account_of[b]] = change.get(account_of[b], 0) + 60
        session.execute(insert(Transfer), rows)
        for account_id, minutes in change.items():
            account = session.get(Account, account_id)
            assert account is not None
            account.balance_minutes += minutes
        assert accounts.verify(session, bank.id) == []


@contextmanager
def statements(services) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The SQL statements run inside the block."""
    seen: list[str] = []

    def count(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)


def links(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The pager's links, by their words."""
    page = response.data.decode()
    return {html.unescape(re.sub(r"<[^>]+>|[←→]|&[lr]arr;", "", words)).strip():
            html.unescape(href)
            for href, words in re.findall(r'<a rel="(?:prev|next)" href="([^"]+)">(.*?)</a>',
                                          page)}


def names_on(response) -> list[str]:  # type: ignore[no-untyped-def]
    return re.findall(r"(Member \d{4}|Neighbour \d{4})", text_of(response))


# --- the members list ----------------------------------------------------------------------


def test_members_come_fifty_a_page_in_name_order_with_next_and_previous(signed_in, services):
    add_members(services, 120)
    first = signed_in.get("/dashboard/members")
    page = text_of(first)
    assert "121 found: 1 to 50, page 1 of 3." in page  # the broker Bea too
    assert "Bea" in page  # B before M
    assert names_on(first) == [f"Member {n:04d}" for n in range(49)]
    assert list(links(first)) == ["Next page"]
    second = signed_in.get(links(first)["Next page"])
    assert "51 to 100, page 2 of 3" in text_of(second)
    assert names_on(second) == [f"Member {n:04d}" for n in range(49, 99)]
    assert list(links(second)) == ["Previous page", "Next page"]
    third = signed_in.get(links(second)["Next page"])
    assert names_on(third) == [f"Member {n:04d}" for n in range(99, 120)]
    assert "101 to 121, page 3 of 3" in text_of(third)
    assert list(links(third)) == ["Previous page"]
    assert names_on(signed_in.get(links(third)["Previous page"])) == names_on(second)


def test_a_search_pages_too_and_its_links_keep_the_search(signed_in, services):
    add_members(services, 130)
    found = signed_in.get("/dashboard/members?q=garden&status=active")
    page = text_of(found)
    assert "65 found: 1 to 50, page 1 of 2." in page
    assert all(int(name[-4:]) % 2 for name in names_on(found))
    following = links(found)["Next page"]
    assert "q=garden" in following and "status=active" in following
    rest = signed_in.get(following)
    assert len(names_on(rest)) == 15 and all(int(n[-4:]) % 2 for n in names_on(rest))
    assert "Nobody found." in text_of(signed_in.get("/dashboard/members?q=plumbing"))


def test_a_search_for_wildcards_finds_only_those_characters(signed_in, services):
    add_members(services, 5)
    for query in ("%", "_", "%25", "\\"):
        assert "Nobody found." in text_of(signed_in.get(f"/dashboard/members?q={query}")), query


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "2.5", "99999999999999999999", "٣"])
def test_a_page_number_that_cannot_be_read_is_the_first_page(signed_in, services, raw):
    add_members(services, 60)
    response = signed_in.get(f"/dashboard/members?page={raw}")
    assert response.status_code == 200
    assert "page 1 of 2" in text_of(response)


def test_a_page_past_the_end_shows_the_last_page(signed_in, services):
    add_members(services, 60)
    response = signed_in.get("/dashboard/members?page=40")
    assert "page 2 of 2" in text_of(response) and list(links(response)) == ["Previous page"]


def test_another_banks_members_are_on_no_page(signed_in, services):
    add_members(services, 10)
    with services.db.writing() as session:
        other = banks.add_bank(session, "Hackney Time Bank", addresses=["+447700900555"])
        session.add_all(Member(bank_id=other.id, phone=f"+4477009006{n:02d}",
                               name=f"Neighbour {n:04d}") for n in range(60))
    for path in ("/dashboard/members", "/dashboard/members?page=2",
                 "/dashboard/members?q=Neighbour", "/dashboard/members?status=pending"):
        assert not any(n.startswith("Neighbour") for n in names_on(signed_in.get(path))), path


# --- the ledger ----------------------------------------------------------------------------


def ids_on(response) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(i) for i in re.findall(r"<tr><td>(\d+)</td>", response.data.decode())]


def test_the_ledger_pages_back_by_entry_and_a_page_stays_the_same_as_entries_arrive(
        signed_in, services):
    people = add_members(services, 20)
    add_transfers(services, people, 250)
    with services.db.reading() as session:
        all_ids = sorted(session.scalars(select(Transfer.id)), reverse=True)
    newest = signed_in.get("/dashboard/ledger")
    assert ids_on(newest) == all_ids[:100]
    assert "Latest entries" in text_of(newest) and list(links(newest)) == ["Older entries"]
    older = links(newest)["Older entries"]
    second = signed_in.get(older)
    assert ids_on(second) == all_ids[100:200]
    assert "Earlier entries" in text_of(second)
    assert list(links(second)) == ["Newer entries", "Older entries"]
    last = signed_in.get(links(second)["Older entries"])
    assert ids_on(last) == all_ids[200:] and list(links(last)) == ["Newer entries"]
    # New entries arrive: the page a broker was reading shows the same entries.
    add_transfers(services, people, 30, tag="later")
    assert ids_on(signed_in.get(older)) == all_ids[100:200]
    back = signed_in.get(links(second)["Newer entries"])
    assert ids_on(back) == all_ids[:100]
    assert "Newer entries" in links(back)  # the 30 new ones are newer still


def test_a_reversed_entry_is_marked_on_whichever_page_it_is(signed_in, services):
    people = add_members(services, 10)
    add_transfers(services, people, 150)
    with services.db.writing() as session:
        oldest = session.scalar(select(Transfer.id).order_by(Transfer.id).limit(1))
        assert oldest is not None
    page = post(signed_in, f"/dashboard/transfers/{oldest}/reverse", {"reason": "typo"},
                page="/dashboard/ledger")
    assert f"Entry {oldest} reversed" in text_of(page)
    newest = signed_in.get("/dashboard/ledger")
    assert f"corrects #{oldest}" in text_of(newest)
    back = signed_in.get(f"/dashboard/ledger?before={oldest + 1}")
    assert ids_on(back) == [oldest]
    assert "reversed" in text_of(back) and f"Reverse #{oldest}" not in text_of(back)


@pytest.mark.parametrize("query", ["before=abc", "after=-3", "before=0",
                                   "before=99999999999999", "after=x&before=-1"])
def test_a_ledger_page_that_cannot_be_read_is_the_newest(signed_in, services, query):
    people = add_members(services, 5)
    add_transfers(services, people, 120)
    newest = ids_on(signed_in.get("/dashboard/ledger"))
    response = signed_in.get(f"/dashboard/ledger?{query}")
    assert response.status_code == 200 and ids_on(response) == newest


def test_another_banks_entries_are_on_no_ledger_page(signed_in, services):
    people = add_members(services, 5)
    add_transfers(services, people, 10)
    with services.db.writing() as session:
        other = banks.add_bank(session, "Hackney Time Bank", addresses=["+447700900555"])
        fund = banks.ensure_fund(session, other)
        theirs = Member(bank_id=other.id, phone="+447700900556", name="Zed")
        session.add(theirs)
        session.flush()
        account = Account(bank_id=other.id, kind="member", member_id=theirs.id, name="Zed")
        session.add(account)
        session.flush()
        secret = accounts.transfer(session, bank_id=other.id, from_account_id=fund.id,
                                   to_account_id=account.id, minutes=60, kind="record",
                                   idempotency_key="theirs", entered_by="system",
                                   description="secret work").transfer.id
    for path in ("/dashboard/ledger", f"/dashboard/ledger?before={secret + 1}",
                 f"/dashboard/ledger?after={secret - 1}", "/dashboard/ledger?after=0"):
        page = signed_in.get(path)
        assert secret not in ids_on(page) and "secret work" not in text_of(page), path


def test_the_ledger_checks_the_sum_on_every_page_and_every_balance_when_asked(
        signed_in, services):
    people = add_members(services, 5)
    add_transfers(services, people, 20)
    assert "doesn't add up" not in text_of(signed_in.get("/dashboard/ledger"))
    checked = text_of(signed_in.get("/dashboard/ledger?check=1"))
    assert "Every account's balance matches its entries." in checked
    with services.db.writing() as session:  # two balances wrong, but still summing to zero
        one, two = session.scalars(select(Account).where(Account.member_id.in_(people[:2])))
        one.balance_minutes += 60
        two.balance_minutes -= 60
        first_id = one.id
    checked = text_of(signed_in.get("/dashboard/ledger?check=1"))
    assert f"The ledger doesn't add up: account {first_id}: cached balance" in checked
    with services.db.writing() as session:  # and now not summing to zero either
        account = session.get(Account, first_id)
        assert account is not None
        account.balance_minutes += 15
    assert ("The ledger doesn't add up: balances sum to 0.25, not 0"
            in text_of(signed_in.get("/dashboard/ledger")))


# --- SQL statements per page do not grow with the bank -------------------------------------


PAGES = ("/dashboard/", "/dashboard/members", "/dashboard/members?page=2",
         "/dashboard/members?q=garden", "/dashboard/members/{member}", "/dashboard/ledger",
         "/dashboard/ledger?before={middle}", "/dashboard/activities", "/dashboard/reports",
         *[f"/dashboard/reports/{name}" for name in reports.REPORTS],
         "/dashboard/reports/network-growth.csv", "/dashboard/coproduction")


def counts(signed_in, services, member: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        ids = sorted(session.scalars(select(Transfer.id)))
    found = {}
    for path in PAGES:
        url = path.format(member=member, middle=ids[len(ids) // 2])
        with statements(services) as seen:
            response = signed_in.get(url)
        assert response.status_code == 200, url
        found[path] = len(seen)
    return found


def test_no_page_runs_more_statements_for_a_bigger_bank(signed_in, services):
    people = add_members(services, 60)
    add_transfers(services, people, 240)
    small = counts(signed_in, services, people[1])
    more = add_members(services, 240, start=60)
    add_transfers(services, people + more, 1200, tag="more")
    big = counts(signed_in, services, people[1])
    assert big == small
    # And each page is a handful of statements, not one per row (a member's page adds their
    # conversation and what waits on them).
    assert max(big.values()) <= 16, big


# --- a broadcast's audience, read a batch at a time ----------------------------------------


def test_a_broadcast_read_in_small_batches_texts_exactly_its_audience_once(
        signed_in, services, monkeypatch):
    from app import broadcasts
    from ledger import activities
    from ledger.models import Message

    monkeypatch.setattr(activities, "AUDIENCE_BATCH", 3)  # many batch boundaries
    people = add_members(services, 20)
    with services.db.writing() as session:
        bank = bank_of(session)
        broker = session.scalars(select(Member).where(Member.role == "broker")).one()
        left = members.leave(session, people[4]).id
        members.opt_out(session, bank.id, session.get(Member, people[7]).phone)
        held = session.get(Member, people[8])
        held.status = "pending"
        # Brixton: people 0, 3, 6, …, 18.
        planned, _ = broadcasts.plan(session, bank, broker=broker, text="Litter pick",
                                     area="brixton", skill=None, request_key="scale-1",
                                     via="web")
        everyone, _ = broadcasts.plan(session, bank, broker=broker, text="Street party",
                                      area=None, skill=None, request_key="scale-2", via="web")
        assert planned.recipients == 7 and everyone.recipients == 17
        for activity_id in (planned.id, everyone.id):
            for _ in range(2):  # confirming twice records once
                broadcasts.confirm(session, bank, activity_id, broker=broker, via="web")
        brixton_id, everyone_id = planned.id, everyone.id
    with services.db.reading() as session:
        def texted(activity_id: int) -> list[int]:
            return list(session.scalars(select(Message.member_id).where(
                Message.activity_id == activity_id).order_by(Message.member_id)))

        expected = [p for n, p in enumerate(people) if n not in (4, 7, 8)]
        assert texted(everyone_id) == expected  # not the broker, a leaver, STOP or on hold
        assert texted(brixton_id) == [p for n, p in enumerate(people)
                                      if n % 3 == 0 and n not in (4, 7, 8)]
        assert session.get(Activity, everyone_id).recipients == 17
    assert left == people[4]
