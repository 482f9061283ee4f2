"""What one text costs in round trips, pinned: SQL statements (BEGIN and COMMIT included)
and Redis round trips through the webhook. A count, not a time, so that a regression on the
hot path shows in any test run (bench/profile_need.py lists the statements)."""

from __future__ import annotations

from sqlalchemy import func, select

from bench.counting import Counts, counting
from ledger.models import Post
from tests.helpers import join


def _counted(services, phone, body: str) -> tuple[str, Counts]:  # type: ignore[no-untyped-def]
    with counting(services.db) as counts:
        answer = phone.reply(body)
    return answer, counts


def test_a_balance_costs_one_read_one_insert_and_two_round_trips(phone, services):
    join(phone, "Ana", "driving", "Lambeth")
    phone.text("BALANCE")  # the bank's number is looked up once per process and kept
    answer, counts = _counted(services, phone, "BALANCE")
    assert answer.startswith("Balance: 0 hours")
    assert counts.statements[0].startswith("SELECT members.id")
    # And the INSERT that keeps the text for the bank's retention period (app.care.inbox).
    assert counts.statements[1].startswith("INSERT INTO inbound_texts")
    assert (counts.sql, counts.transactions, counts.redis_round_trips) == (2, 0, 2), counts


def test_a_need_costs_seven_statements_one_transaction_and_two_round_trips(phone, services):
    join(phone, "Ana", "SKIP", "Lambeth")
    phone.text("NEED help with my computer")  # RQ asks Redis its version once per process
    answer, counts = _counted(services, phone, "NEED a lift to the clinic on Tuesday")
    assert "asking neighbours" in answer
    # Facts; BEGIN; bank and member; the reference; the post; the kept text; COMMIT. The
    # matching job goes to Redis with the answer, in one round trip after the claim's.
    assert counts.by_verb() == {"SELECT": 2, "BEGIN": 1, "UPDATE": 1, "INSERT": 2,
                                "COMMIT": 1}, counts.statements
    assert (counts.transactions, counts.redis_round_trips) == (1, 2), counts
    assert services.queue.count == 2  # the matching jobs, enqueued


def test_the_same_need_handled_again_posts_once(phone, services):
    """The statements saved must not cost the idempotency: a MessageSid handled again after
    a fault (its claim released) finds the first post."""
    join(phone, "Ana", "SKIP", "Lambeth")
    form = phone.form("NEED a lift to the clinic")
    first = phone.post(form).get_data(as_text=True)
    services.redis.delete(f"tb:inbound:{form['MessageSid']}")
    again = phone.post(form).get_data(as_text=True)
    assert "asking neighbours" in first and first == again
    with services.db.reading() as session:
        assert session.scalar(select(func.count(Post.id))) == 1


def test_an_offer_also_moves_the_match_version_on(phone, services):
    join(phone, "Ana", "SKIP", "Lambeth")
    phone.text("BALANCE")
    answer, counts = _counted(services, phone, "OFFER lifts to the hospital")
    assert "Your offer is saved" in answer
    assert counts.by_verb() == {"SELECT": 2, "BEGIN": 1, "UPDATE": 2, "INSERT": 2,
                                "COMMIT": 1}, counts.statements
