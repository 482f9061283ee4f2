"""Offers and needs, and asking helpers: the first YES to a need wins, atomically."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ledger import banks, match_cache, members
from ledger.confirmations import next_ref
from ledger.matching import Candidate, Helper
from ledger.models import Ask, Bank, Member, OptOut, Post, utcnow

NEED_DAYS = 14
FAIRNESS_DAYS = 30


def post(session: Session, *, bank_id: int, member: Member, kind: str, text: str,
         request_key: str) -> tuple[Post, bool]:
    """Post an offer or a need once per request key; needs expire after 14 days.

    Two statements in the usual case (the reference, then ``INSERT … ON CONFLICT DO NOTHING
    RETURNING``), on the webhook's write path; a request key already used (a text handled
    again) finds the first post, and its reference number is left unused."""
    values = {
        "bank_id": bank_id, "member_id": member.id, "kind": kind, "text": text[:300],
        "ref": next_ref(session, bank_id), "request_key": request_key,
        "expires_at": utcnow() + timedelta(days=NEED_DAYS) if kind == "need" else None,
    }
    statement = _insert_post(session.get_bind().dialect.name, kind == "offer")
    item = session.scalars(statement, values).one_or_none()
    if item is not None:
        return item, True
    again = session.scalars(
        select(Post).where(Post.bank_id == bank_id, Post.request_key == request_key)
    ).one()
    return again, False


_INSERT_POST: dict[tuple[str, bool], Any] = {}
_POST_FIELDS = ("bank_id", "member_id", "kind", "text", "ref", "request_key", "expires_at")


def _insert_post(dialect: str, offer: bool) -> Any:
    """``INSERT … ON CONFLICT (bank_id, request_key) DO NOTHING RETURNING`` the post, built
    once per dialect and kind (building a statement costs more than running it)."""
    key = (dialect, offer)
    if key not in _INSERT_POST:
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        _INSERT_POST[key] = (
            insert(Post).values({name: bindparam(name) for name in _POST_FIELDS})
            .on_conflict_do_nothing(index_elements=["bank_id", "request_key"])
            .returning(Post)
            # A statement is not a flushed object: it says what matching must know (an
            # offer changes what helpers offer, with the bank_id among its parameters).
            .execution_options(**{match_cache.OPTION: match_cache.FROM_PARAMETERS if offer
                                  else match_cache.NOTHING})
        )
    return _INSERT_POST[key]


def by_ref(session: Session, bank_id: int, ref: int) -> Post | None:
    return session.scalars(
        select(Post).where(Post.bank_id == bank_id, Post.ref == ref)
    ).one_or_none()


def mine(session: Session, bank_id: int, member_id: int) -> list[Post]:
    return list(session.scalars(
        select(Post).where(
            Post.bank_id == bank_id, Post.member_id == member_id,
            Post.status.in_(("open", "matched")),
        ).order_by(Post.id.desc()).limit(5)
    ))


def close(session: Session, bank_id: int, member_id: int, ref: int) -> Post | None:
    """Withdraw one's own open post; None if there is no such post."""
    item = session.scalars(
        select(Post).where(Post.bank_id == bank_id, Post.ref == ref, Post.member_id == member_id,
                           Post.status.in_(("open", "matched")))
        .with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if item is not None:
        item.status = "closed"
        item.closed_at = utcnow()
    return item


def renew(session: Session, bank_id: int, member_id: int, ref: int) -> Post | None:
    """Keep one's open need open for another 14 days."""
    item = session.scalars(
        select(Post).where(Post.bank_id == bank_id, Post.ref == ref, Post.member_id == member_id,
                           Post.kind == "need", Post.status.in_(("open", "expired")))
        .with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if item is not None:
        item.status = "open"
        item.expires_at = utcnow() + timedelta(days=NEED_DAYS)
        item.expiry_warned_at = None
        item.closed_at = None
    return item


def helpers(session: Session, bank_id: int) -> list[Helper]:
    """Who could be asked: active, opted-in members, with what they offer, how often they
    were asked lately and whether they were asked enough today (brokers may set a member's
    status back to pending to hold them)."""
    bank = session.get(Bank, bank_id)
    assert bank is not None
    recent, today = ask_counts(session, bank)
    return [
        replace(helper, recent_asks=recent.get(helper.member_id, 0),
                asked_enough_today=today.get(helper.member_id, 0)
                >= bank.asks_per_helper_per_day)
        for helper in helper_profiles(session, bank_id)
    ]


def helper_profiles(session: Session, bank_id: int) -> list[Helper]:
    """Who could be asked (active, opted-in members who offer something), with what they
    offer, where and when: what a match index keeps (``ledger.match_cache``), without asks."""
    offers: dict[int, list[str]] = {}
    for member_id, text in session.execute(
        select(Post.member_id, Post.text).where(
            Post.bank_id == bank_id, Post.kind == "offer", Post.status == "open"
        )
    ):
        offers.setdefault(member_id, []).append(text)
    opted_out = select(OptOut.phone).where(OptOut.bank_id == bank_id)
    found = []
    for member_id, name, skills, area, availability in session.execute(
        select(Member.id, Member.name, Member.skills, Member.area, Member.availability).where(
            Member.bank_id == bank_id, Member.status == "active",
            # A member without a phone can't be texted: a broker accepts for them.
            Member.phone.is_not(None), Member.phone.not_in(opted_out),
            Member.away_since.is_(None),  # paused (AWAY): not asked
        )
    ):
        words = ", ".join(filter(None, [skills, *offers.get(member_id, [])]))
        if words:
            found.append(Helper(member_id, name, words, area, availability))
    return found


def ask_counts(session: Session, bank: Bank) -> tuple[dict[int, int], dict[int, int]]:
    """How many needs each member was asked about lately (fairness) and today (the bank's
    daily limit): they change with every wave, so they are read fresh each time."""
    since = utcnow() - timedelta(days=FAIRNESS_DAYS)
    recent = {member_id: int(count) for member_id, count in session.execute(
        select(Ask.member_id, func.count(Ask.id))
        .join(Post, Post.id == Ask.post_id)
        .where(Post.bank_id == bank.id, Ask.created_at >= since)
        .group_by(Ask.member_id)
    )}
    return recent, asked_today(session, bank)


def asked_today(session: Session, bank: Bank, member_ids: Iterable[int] | None = None
                ) -> dict[int, int]:
    """How many needs each member was asked about since the bank's day began (by a wave or
    by a broker), for the bank's daily limit."""
    query = (
        select(Ask.member_id, func.count(Ask.id)).join(Post, Post.id == Ask.post_id)
        .where(Post.bank_id == bank.id, Ask.created_at >= banks.day_bounds(bank)[0])
        .group_by(Ask.member_id)
    )
    if member_ids is not None:
        query = query.where(Ask.member_id.in_(list(member_ids)))
    return {member_id: int(count) for member_id, count in session.execute(query)}


def record_asks(session: Session, need: Post, candidates: list[Candidate]) -> list[Ask]:
    need.wave += 1
    need.asked_at = utcnow()
    asks = [
        Ask(post_id=need.id, member_id=c.member_id, wave=need.wave, score=c.score,
            reasons="; ".join(c.reasons)[:300])
        for c in candidates
    ]
    session.add_all(asks)
    session.flush()
    return asks


def asked_ids(session: Session, post_id: int) -> set[int]:
    return set(session.scalars(select(Ask.member_id).where(Ask.post_id == post_id)))


@dataclass(frozen=True)
class Reply:
    """``matched`` (this YES won), ``too_late`` (someone else's did), ``declined``,
    ``released`` (the matched helper said NO after all), ``not_asked`` (this member was
    not asked), ``closed`` (withdrawn, expired, or its member left or stopped texts)."""

    outcome: str
    need: Post | None = None


def answer(session: Session, *, bank_id: int, member_id: int, ref: int, yes: bool) -> Reply:
    """A helper's YES or NO to need ``ref``. The need's row is locked: of two YES at once,
    exactly one is matched."""
    need = session.scalars(
        select(Post).where(Post.bank_id == bank_id, Post.ref == ref, Post.kind == "need")
        .with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if need is None:
        return Reply("not_asked")
    ask = session.scalars(
        select(Ask).where(Ask.post_id == need.id, Ask.member_id == member_id)
        .with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if ask is None:
        return Reply("not_asked", need)
    owner = session.get(Member, need.member_id)
    gone = owner is None or owner.status != "active" or not members.can_be_texted(
        session, owner
    )
    if need.status == "matched":
        if need.helper_member_id != member_id:
            return Reply("too_late", need)
        if yes:
            return Reply("matched", need)
        # The helper can't after all: the need is open again for others.
        need.status = "open"
        need.helper_member_id = None
        need.matched_at = None
        ask.status = "declined"
        ask.answered_at = utcnow()
        return Reply("released", need)
    if gone and need.status == "open":
        # The member who asked left or stopped texts: nobody is introduced to them now.
        need.status = "closed"
        need.closed_at = utcnow()
    if need.status != "open":
        return Reply("closed", need)
    ask.answered_at = utcnow()
    if not yes:
        ask.status = "declined"
        return Reply("declined", need)
    ask.status = "accepted"
    need.status = "matched"
    need.helper_member_id = member_id
    need.matched_at = utcnow()
    session.execute(
        update(Ask).where(Ask.post_id == need.id, Ask.id != ask.id, Ask.status == "asked")
        .values(status="too_late")
    )
    return Reply("matched", need)


def waiting_for_answers(session: Session, post_id: int) -> int:
    return int(session.scalar(
        select(func.count(Ask.id)).where(Ask.post_id == post_id, Ask.status == "asked")
    ) or 0)


def open_asks_for(session: Session, bank_id: int, member_id: int) -> list[int]:
    """Refs of open needs this member was asked about and has not answered, newest first."""
    return list(session.scalars(
        select(Post.ref).join(Ask, Ask.post_id == Post.id).where(
            Post.bank_id == bank_id, Post.status == "open", Ask.member_id == member_id,
            Ask.status == "asked",
        ).order_by(Post.id.desc())
    ))


def close_all(session: Session, bank_id: int, member_id: int) -> int:
    """Close a member's open and matched posts (they left the bank or stopped texts)."""
    result = session.execute(
        update(Post).where(Post.bank_id == bank_id, Post.member_id == member_id,
                           Post.status.in_(("open", "matched")))
        .values(status="closed", closed_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
