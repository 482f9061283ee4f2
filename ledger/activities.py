"""Group activities: a broker's broadcast, members' answers, and crediting those who came.

An activity is planned (its audience counted), confirmed (its texts recorded in one
transaction, then handed to batched jobs), answered (``YES 7`` / ``NO 7``) and credited
(``CREDIT 7 2``): one transfer per attendee with the key ``activity:<id>:<member id>``, so
crediting the same activity twice never pays anyone twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger import accounts, banks, members
from ledger.confirmations import next_ref
from ledger.errors import LedgerError, LimitReached
from ledger.matching import Vocabulary
from ledger.models import (
    Account,
    Activity,
    Bank,
    Member,
    Message,
    OptOut,
    Post,
    Rsvp,
    Transfer,
    utcnow,
)

# An invitation a member may answer with a bare YES for this long after it was sent.
ANSWER_ALONE_DAYS = 3


# Members are read this many at a time, so a broadcast to 100,000 holds one batch in memory.
AUDIENCE_BATCH = 1000


def audience_batches(session: Session, bank_id: int, *, area: str | None = None,
                     skill: str | None = None, exclude: Iterable[int] = (),
                     size: int | None = None) -> Iterator[list[Any]]:
    """Members a broadcast goes to: active (not waiting or on hold), reachable, not opted
    out; in ``area`` (words of their area) or with ``skill`` among their skills or offers.
    In id order, ``size`` at a time, each a row of what a text to them needs (``id``,
    ``name``, ``phone``, ``whatsapp``, ``last_channel``, ``language``), never whole members."""
    opted_out = select(OptOut.phone).where(OptOut.bank_id == bank_id)
    query = (
        select(Member.id, Member.name, Member.phone, Member.whatsapp, Member.last_channel,
               Member.language, Member.area, Member.skills)
        .where(Member.bank_id == bank_id, Member.status == "active",
               Member.away_since.is_(None),  # paused (AWAY): no broadcasts
               (Member.phone.is_not(None) & Member.phone.not_in(opted_out))
               | (Member.phone.is_(None) & Member.whatsapp.is_not(None)))
        .order_by(Member.id).limit(size or AUDIENCE_BATCH)
    )
    skipped = set(exclude)
    wanted_area = _area_words(area) if area else None
    vocabulary = Vocabulary() if skill else None
    wanted_terms = vocabulary.terms(skill) if vocabulary and skill else set()
    offers: dict[int, list[str]] = {}
    if skill:
        for member_id, text in session.execute(
            select(Post.member_id, Post.text).where(
                Post.bank_id == bank_id, Post.kind == "offer", Post.status == "open")
        ):
            offers.setdefault(member_id, []).append(text)
    last = 0
    while True:
        rows = session.execute(query.where(Member.id > last)).all()
        if not rows:
            return
        last = rows[-1].id
        found = [
            row for row in rows
            if row.id not in skipped
            and (wanted_area is None or wanted_area <= _area_words(row.area or ""))
            and (vocabulary is None or wanted_terms & vocabulary.terms(
                " ".join([row.skills or "", *offers.get(row.id, [])])))
        ]
        if found:
            yield found


def audience_size(session: Session, bank_id: int, *, area: str | None = None,
                  skill: str | None = None, exclude: Iterable[int] = ()) -> int:
    return sum(len(batch) for batch in audience_batches(
        session, bank_id, area=area, skill=skill, exclude=exclude))


def _area_words(text: str) -> set[str]:
    return {word for word in "".join(
        ch.lower() if ch.isalnum() else " " for ch in text).split()}


def plan(session: Session, bank: Bank, *, broker: Member | None, text: str,
         area: str | None, skill: str | None, request_key: str,
         host: Account | None = None) -> tuple[Activity, bool]:
    """Record a broadcast once per request key, with its reference and audience size."""
    existing = by_request(session, bank.id, request_key)
    if existing is not None:
        return existing, False
    recipients = audience_size(session, bank.id, area=area, skill=skill,
                               exclude=[broker.id] if broker else [])
    try:
        with session.begin_nested():
            activity = Activity(
                bank_id=bank.id, ref=next_ref(session, bank.id),
                broker_member_id=broker.id if broker else None, text=text[:480],
                audience_area=area, audience_skill=skill,
                host_account_id=host.id if host else None, request_key=request_key,
                status="planned", recipients=recipients,
            )
            session.add(activity)
            session.flush()
    except IntegrityError:
        again = by_request(session, bank.id, request_key)
        if again is None:
            raise
        return again, False
    return activity, True


def by_request(session: Session, bank_id: int, request_key: str) -> Activity | None:
    return session.scalars(select(Activity).where(
        Activity.bank_id == bank_id, Activity.request_key == request_key)).one_or_none()


def by_ref(session: Session, bank_id: int, ref: int) -> Activity | None:
    return session.scalars(select(Activity).where(
        Activity.bank_id == bank_id, Activity.ref == ref)).one_or_none()


def locked(session: Session, activity_id: int) -> Activity:
    """The activity, locked for this transaction (PostgreSQL; SQLite writes are serial)."""
    return session.scalars(
        select(Activity).where(Activity.id == activity_id).with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def recent(session: Session, bank_id: int, limit: int = 50) -> list[Activity]:
    return list(session.scalars(
        select(Activity).where(Activity.bank_id == bank_id)
        .order_by(Activity.id.desc()).limit(limit)))


def answer(session: Session, activity: Activity, member: Member, coming: bool) -> bool:
    """Record (or change) a member's answer; whether it changed anything."""
    rsvp = session.scalars(select(Rsvp).where(
        Rsvp.activity_id == activity.id, Rsvp.member_id == member.id)).one_or_none()
    if rsvp is None:
        try:
            with session.begin_nested():
                session.add(Rsvp(activity_id=activity.id, member_id=member.id, coming=coming))
                session.flush()
            return True
        except IntegrityError:  # the same answer arriving twice at once
            rsvp = session.scalars(select(Rsvp).where(
                Rsvp.activity_id == activity.id, Rsvp.member_id == member.id)).one()
    if rsvp.coming == coming:
        return False
    rsvp.coming = coming
    rsvp.answered_at = utcnow()
    return True


def _sent(activity_id: Any, member_id: Any) -> Exists:
    """Whether the broadcast was sent to the member: its text to them, keyed
    ``broadcast:<activity>:<member>``, not canceled before it went. Either side may be a
    column, for a correlated test."""
    return select(Message.id).where(
        Message.activity_id == activity_id, Message.member_id == member_id,
        Message.idempotency_key.like("broadcast:%"), Message.status != "canceled").exists()


def coming(session: Session, activity_id: int, *, was_invited: bool = True) -> list[Member]:
    """Active members (not those who left or are on hold) who said they are coming: those
    the broadcast was sent to, or with ``was_invited=False`` those who also said yes without
    being invited (held apart: ``CREDIT`` pays them only when a broker names them)."""
    sent = _sent(activity_id, Member.id)
    return list(session.scalars(
        select(Member).join(Rsvp, Rsvp.member_id == Member.id)
        .where(Rsvp.activity_id == activity_id, Rsvp.coming, Member.status == "active",
               sent if was_invited else ~sent)
        .order_by(Rsvp.answered_at, Rsvp.id)))


def invited_ids(session: Session, activity_id: int) -> set[int]:
    """Members who answered the activity and were sent it."""
    return set(session.scalars(select(Rsvp.member_id).where(
        Rsvp.activity_id == activity_id, _sent(activity_id, Rsvp.member_id))))


def coming_counts(session: Session, activity_ids: list[int]) -> dict[int, int]:
    """How many invited members said they are coming, for each activity."""
    return {activity_id: int(count) for activity_id, count in session.execute(
        select(Rsvp.activity_id, func.count()).where(
            Rsvp.activity_id.in_(activity_ids), Rsvp.coming,
            _sent(Rsvp.activity_id, Rsvp.member_id))
        .group_by(Rsvp.activity_id))}


def credited_ids(session: Session, activity_id: int) -> set[int]:
    """Members credited for the activity so far (their transfers carry its key)."""
    return set(session.scalars(
        select(Account.member_id).join(Transfer, Transfer.to_account_id == Account.id)
        .where(Transfer.idempotency_key.like(f"activity:{activity_id}:%"))))


def answers(session: Session, activity_id: int) -> dict[str, int]:
    counts = {"coming": 0, "not_coming": 0}
    for is_coming, count in session.execute(
        select(Rsvp.coming, func.count()).where(Rsvp.activity_id == activity_id)
        .group_by(Rsvp.coming)
    ):
        counts["coming" if is_coming else "not_coming"] = int(count)
    return counts


def invitations_waiting(session: Session, bank_id: int, member_id: int) -> list[int]:
    """Refs of recent activities this member was texted about and has not answered."""
    since = utcnow() - timedelta(days=ANSWER_ALONE_DAYS)
    answered = select(Rsvp.activity_id).where(Rsvp.member_id == member_id)
    return list(session.scalars(
        select(Activity.ref).join(Message, Message.activity_id == Activity.id)
        .where(Activity.bank_id == bank_id, Activity.status == "sending",
               Message.member_id == member_id, Message.created_at > since,
               Message.status.in_(HANDED_OVER),  # not one still held for the morning
               Activity.id.not_in(answered))
    ))


def progress(session: Session, activity_id: int) -> dict[str, int]:
    """How a broadcast's texts stand: queued, sending, sent, delivered, failed, canceled…"""
    counts: dict[str, int] = {}
    for status, count in session.execute(
        select(Message.status, func.count()).where(Message.activity_id == activity_id)
        .group_by(Message.status)
    ):
        counts[status] = int(count)
    return counts


HANDED_OVER = ("sent", "delivered", "undelivered", "read")


def handed_over(counts: dict[str, int]) -> int:
    """Texts Twilio has accepted (sent, and anything it reported on since)."""
    return sum(n for status, n in counts.items() if status in HANDED_OVER)


@dataclass
class Credited:
    paid: list[Member] = field(default_factory=list)
    already: list[Member] = field(default_factory=list)
    # Over their limit (never for the fund), left or on hold, or the broker crediting.
    refused: list[Member] = field(default_factory=list)
    source: Account | None = None


def credit(session: Session, bank: Bank, activity: Activity, people: list[Member],
           minutes: int, *, broker: Member | None, entered_by: str = "broker") -> Credited:
    """Credit each person ``minutes`` for the activity, once each however often it is asked,
    from the host organisation's account or else the community fund."""
    source = session.get(Account, activity.host_account_id) if activity.host_account_id else None
    if source is None:
        source = banks.ensure_fund(session, bank)
    result = Credited(source=source)
    for person in people:
        if person.bank_id != bank.id:
            raise LedgerError("that member belongs to another bank")
        if person.status != "active" or (broker is not None and person.id == broker.id):
            result.refused.append(person)
            continue
        account = members.member_account(session, person)
        try:
            recorded = accounts.transfer(
                session, bank_id=bank.id, from_account_id=source.id, to_account_id=account.id,
                minutes=minutes, kind="activity",
                # No words: the activity is in the key, and "group activity 7: …" is
                # written in the member's language when shown (app.ledger_words).
                description="",
                idempotency_key=f"activity:{activity.id}:{person.id}", entered_by=entered_by,
                entered_by_member_id=broker.id if broker else None,
            )
        except LimitReached:
            result.refused.append(person)
            continue
        (result.paid if recorded.created else result.already).append(person)
    return result
