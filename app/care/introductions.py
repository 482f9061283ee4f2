"""Safer introductions: numbers exchanged only after a broker approves, where a bank or a
broker chooses so.

A bank chooses how members who agreed to help are introduced (``timebank bank set
--introductions broker|direct``); a broker can flag one member "introductions through a
broker" in their private notes (``timebank member introductions WHO broker|bank``, or the
member's dashboard page). An introduction goes through a broker if the bank says so or either
member is flagged.

Then the first ``YES`` to a need still wins it (``ledger.posts.answer``), but nobody gets a
number: both members are told a broker will introduce them, the brokers are texted (a text
caused by the helper, under the caps of ``app.caps``) and the introduction waits on the
dashboard with both members' details and private notes. A broker approves there, by text
(``INTRO <ref>``) or at the command line, and only then are numbers exchanged, with the same
texts as a direct introduction. A broker may decline instead: the need is open again for
other helpers, and both members are told kindly. Every decision is audited, and no broker
decides an introduction in which they are one of the two members (``ledger.own_hours``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click
from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from app import caps, outbound
from app.care import duty
from conversations.machine import for_others, shorten
from ledger import audit, members, own_hours, posts
from ledger.errors import LedgerError, OwnHours
from ledger.models import Ask, Bank, Introduction, Member, Post, utcnow

BROKER = "broker"
DIRECT = "direct"
CHOICES = (BROKER, DIRECT)


class NotTheirs(OwnHours):
    """A broker deciding an introduction in which they are one of the two members."""


def through_broker(bank: Bank, requester: Member, helper: Member) -> bool:
    """Whether two members are introduced by a broker rather than on the helper's YES."""
    return bank.introductions == BROKER or requester.intro_via_broker or helper.intro_via_broker


def brokers_on_duty(session: Session, bank: Bank) -> list[Member]:
    """The brokers told that an introduction waits: those on duty (``app.care.duty``)."""
    return duty.brokers_on_duty(session, bank)


# --- on the helper's YES --------------------------------------------------------------------


def refused(session: Session, bank_id: int, ref: int, helper_id: int) -> bool:
    """Whether a broker declined to introduce this helper for need ``ref``: their YES to it
    again does not take the need back."""
    return session.scalar(
        select(Introduction.id).join(Post, Post.id == Introduction.post_id).where(
            Post.bank_id == bank_id, Post.ref == ref, Introduction.helper_member_id == helper_id,
            Introduction.status == "declined",
        ).limit(1)
    ) is not None


def latest(session: Session, need: Post, helper_id: int) -> Introduction | None:
    """The last introduction of ``helper_id`` for ``need``, if any."""
    return session.scalars(
        select(Introduction).where(Introduction.post_id == need.id,
                                   Introduction.helper_member_id == helper_id)
        .order_by(Introduction.id.desc()).limit(1)
    ).first()


@dataclass
class Started:
    """An introduction waiting for a broker, and the texts to enqueue about it."""

    introduction: Introduction
    queued: list[int] = field(default_factory=list)


def start(session: Session, bank: Bank, need: Post, requester: Member, helper: Member
          ) -> Started:
    """The helper's YES won ``need``: record the introduction (once, however often the YES
    comes), tell the member who asked that a broker will introduce them, and tell the
    brokers. Nobody is given a number here."""
    existing = latest(session, need, helper.id)
    if existing is not None and existing.status == "waiting":
        return Started(existing)
    introduction = Introduction(bank_id=bank.id, post_id=need.id,
                                requester_member_id=requester.id, helper_member_id=helper.id)
    session.add(introduction)
    session.flush()
    queued: list[int] = []
    told = outbound.queue_text(
        session, requester, kind="intro_requester_waiting", key="intro_requester_waiting",
        idempotency_key=f"intro-waiting:{introduction.id}",
        values={"name": helper.name, "what": shorten(need.text), "ref": need.ref,
                "bank": bank.name},
    )
    queued += [told] if told else []
    for broker in brokers_on_duty(session, bank):
        if broker.id in (requester.id, helper.id):
            continue  # another broker introduces them
        # Unasked, because of the helper's YES: counted by the caps. A text held back
        # holds back nothing else: the introduction waits on the dashboard all the same.
        message_id, _ = caps.queue_caused(
            session, bank, broker, helper, key="intro_broker",
            idempotency_key=f"intro:{introduction.id}:to:{broker.id}",
            values={"bank": bank.name, "other": helper.name, "name": requester.name,
                    "what": for_others(need.text, most=30), "ref": need.ref},
        )
        queued += [message_id] if message_id else []
    return Started(introduction, queued)


def cancel_for(session: Session, need: Post) -> None:
    """The helper can't after all (NO after their YES): nothing is left to introduce."""
    session.execute(
        update(Introduction).where(Introduction.post_id == need.id,
                                   Introduction.status == "waiting")
        .values(status="canceled", decided_at=utcnow())
    )


# --- a broker's decision --------------------------------------------------------------------


@dataclass
class Decision:
    """``approved``, ``declined``, ``already`` (decided before), ``closed`` (the need was
    withdrawn, or a member left or stopped texts) or ``unknown``."""

    outcome: str
    introduction: Introduction | None = None
    need: Post | None = None
    requester: Member | None = None
    helper: Member | None = None
    queued: list[int] = field(default_factory=list)
    # A need open again after a decline: ask the next helpers (``app.jobs.ask_helpers``).
    ask_again: int | None = None


def waiting_by_ref(session: Session, bank_id: int, ref: int) -> Introduction | None:
    """The introduction for need ``ref`` of this bank: the waiting one, else the latest."""
    return session.scalars(
        select(Introduction).join(Post, Post.id == Introduction.post_id)
        .where(Post.bank_id == bank_id, Post.ref == ref)
        .order_by((Introduction.status == "waiting").desc(), Introduction.id.desc()).limit(1)
    ).first()


def decide(session: Session, bank: Bank, introduction_id: int, *, approve: bool,
           broker: Member | None, via: str) -> Decision:
    """Approve (numbers exchanged, with the texts of a direct introduction) or decline (the
    need is open again; both told kindly) a waiting introduction, audited.

    Raises ``NotTheirs`` when ``broker`` is one of the two members (or, at the command line
    with no broker named, when either member is a broker); the bank's only broker may act
    at the command line, audited as an override, as for their own hours.
    """
    found = session.get(Introduction, introduction_id)
    if found is None or found.bank_id != bank.id:
        return Decision("unknown")
    if broker is not None and (broker.bank_id != bank.id or broker.role != "broker"
                               or broker.status != "active"):
        raise LedgerError("only an active broker of this bank decides its introductions")
    # The need first, as a YES or NO to it locks it: the two never cross.
    need = session.scalars(
        select(Post).where(Post.id == found.post_id).with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    introduction = session.scalars(
        select(Introduction).where(Introduction.id == introduction_id).with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    requester = members.get_member(session, introduction.requester_member_id)
    helper = members.get_member(session, introduction.helper_member_id)
    decision = Decision("unknown", introduction, need, requester, helper)
    try:
        override = own_hours.check(session, bank.id, broker, {requester.id, helper.id},
                                   via=via)
    except OwnHours:
        raise NotTheirs("a broker can't decide an introduction in which they are one of the "
                        "two members: another broker must") from None
    if introduction.status != "waiting":
        decision.outcome = "already" if introduction.status in ("approved", "declined") \
            else "closed"
        return decision
    still = (need.status == "matched" and need.helper_member_id == helper.id
             and all(m.status == "active" and members.can_be_texted(session, m)
                     for m in (requester, helper)))
    now = utcnow()
    introduction.decided_at = now
    introduction.decided_by_member_id = broker.id if broker else None
    if not still:
        introduction.status = "canceled"
        decision.outcome = "closed"
        return decision
    detail = f"member {helper.id} to help member {requester.id}"
    if override:
        detail += f"; a member of it, as {override}"
    if approve:
        introduction.status = "approved"
        need.matched_at = now  # the reminder to report hours counts from the introduction
        decision.outcome = "approved"
        decision.queued = _introduce(session, introduction, need, requester, helper)
    else:
        introduction.status = "declined"
        need.status = "open"
        need.helper_member_id = None
        need.matched_at = None
        session.execute(update(Ask).where(Ask.post_id == need.id,
                                          Ask.member_id == helper.id).values(status="declined"))
        # Those asked with the helper, passed by when the helper's YES came first, may say
        # YES again; the next helpers are asked when none is left waiting.
        session.execute(update(Ask).where(Ask.post_id == need.id, Ask.status == "too_late")
                        .values(status="asked"))
        decision.outcome = "declined"
        decision.queued = _tell_declined(session, bank, introduction, need, requester, helper)
        if posts.waiting_for_answers(session, need.id) == 0:
            decision.ask_again = need.id
    audit.record(session, bank.id, f"introduction.{decision.outcome}",
                 broker_id=broker.id if broker else None, subject=f"ref {need.ref}",
                 detail=detail, via=via)
    return decision


def _introduce(session: Session, introduction: Introduction, need: Post, requester: Member,
               helper: Member) -> list[int]:
    """The texts of a direct introduction, each with the other's number."""
    queued = []
    texts: tuple[tuple[Member, str, dict[str, object]], ...] = (
        (helper, "match_helper", {"name": requester.name,
                                  "what": for_others(need.text),
                                  "phone": requester.phone or "-", "ref": need.ref}),
        (requester, "match_requester", {"name": helper.name, "what": shorten(need.text),
                                        "phone": helper.phone or "-", "ref": need.ref}),
    )
    for member, key, values in texts:
        message_id = outbound.queue_text(
            session, member, kind=key, key=key,
            idempotency_key=f"intro-made:{introduction.id}:{member.id}", values=values)
        queued += [message_id] if message_id else []
    return queued


def _tell_declined(session: Session, bank: Bank, introduction: Introduction, need: Post,
                   requester: Member, helper: Member) -> list[int]:
    queued = []
    told: tuple[tuple[Member, str, dict[str, object]], ...] = (
        (helper, "intro_declined_helper", {"name": requester.name,
                                           "what": for_others(need.text, most=30)}),
        (requester, "intro_declined_requester", {"what": shorten(need.text, 30),
                                                 "ref": need.ref}),
    )
    for member, key, values in told:
        message_id = outbound.queue_text(
            session, member, kind=key, key=key,
            idempotency_key=f"intro-declined:{introduction.id}:{member.id}", values=values)
        queued += [message_id] if message_id else []
    return queued


# --- the dashboard's list and a member's flag ------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    introduction: Introduction
    need: Post
    requester: Member
    helper: Member


def waiting(session: Session, bank_id: int) -> list[Waiting]:
    """Introductions waiting for a broker, oldest first; not those whose need has gone (the
    helper said NO after all, the member withdrew it, left or stopped texts)."""
    requester, helper = aliased(Member), aliased(Member)
    rows = session.execute(
        select(Introduction, Post, requester, helper)
        .join(Post, Post.id == Introduction.post_id)
        .join(requester, requester.id == Introduction.requester_member_id)
        .join(helper, helper.id == Introduction.helper_member_id)
        .where(Introduction.bank_id == bank_id, Introduction.status == "waiting",
               Post.status == "matched", Post.helper_member_id == Introduction.helper_member_id)
        .order_by(Introduction.id)
    ).all()
    return [Waiting(*row) for row in rows]


def flag(session: Session, bank: Bank, member: Member, via_broker: bool, *,
         broker: Member | None, via: str) -> bool:
    """Set whether ``member`` is always introduced through a broker; whether it changed.
    Audited."""
    if member.intro_via_broker == via_broker:
        return False
    member.intro_via_broker = via_broker
    audit.record(session, bank.id, "member.introductions", broker_id=broker.id if broker else None,
                 subject=f"member {member.id}",
                 detail="through a broker" if via_broker else "as the bank chooses", via=via)
    return True


# --- the command line -----------------------------------------------------------------------


@click.command("introductions")
@click.argument("who")
@click.argument("how", type=click.Choice(["broker", "bank"], case_sensitive=False))
@click.option("--bank", "bank_name", default=None)
def member_introductions(who: str, how: str, bank_name: str | None) -> None:
    """Introduce WHO only through a broker (broker), or as the bank chooses (bank)."""
    from app.cli import _app, _member_by, prepare

    with _app() as (_, shared):
        prepare(shared)
        with shared.db.writing() as session:
            bank, member = _member_by(session, bank_name, who, shared.config)
            flag(session, bank, member, how.lower() == "broker", broker=None, via="cli")
            name = member.name
    click.echo(f"{name} is introduced through a broker." if how.lower() == "broker"
               else f"{name} is introduced as the bank chooses.")


@click.group("intro")
def intro_group() -> None:
    """Introductions waiting for a broker (banks with --introductions broker)."""


@intro_group.command("list")
@click.option("--bank", "bank_name", default=None)
def intro_list(bank_name: str | None) -> None:
    """Introductions waiting, with both members (numbers stay on the dashboard)."""
    from app.cli import _app, prepare
    from ledger import banks

    with _app() as (_, shared):
        prepare(shared)
        with shared.db.reading() as session:
            bank = banks.bank_by_name(session, bank_name)
            lines = [f"ref {w.need.ref}: {w.helper.name} (#{w.helper.id}) to help "
                     f"{w.requester.name} (#{w.requester.id}): {w.need.text}"
                     for w in waiting(session, bank.id)]
    click.echo("\n".join(lines) if lines else "No introductions waiting.")


def _decide_command(ref: int, bank_name: str | None, by: str | None, approve: bool) -> None:
    from app.cli import _acting_broker, _app, prepare
    from ledger import banks

    with _app() as (_, shared):
        prepare(shared)
        try:
            with shared.db.writing() as session:
                bank = banks.bank_by_name(session, bank_name)
                found = waiting_by_ref(session, bank.id, ref)
                if found is None:
                    raise click.ClickException(f"no introduction with ref {ref} in {bank.name}")
                decision = decide(session, bank, found.id, approve=approve,
                                  broker=_acting_broker(session, bank, by, shared.config),
                                  via="cli")
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
        outbound.enqueue(shared, decision.queued)
        if decision.ask_again is not None:
            shared.queue.enqueue("app.jobs.ask_helpers", decision.ask_again)
    messages = {"approved": f"Ref {ref}: introduced; both members have each other's number.",
                "declined": f"Ref {ref}: declined; the need is open to other helpers again.",
                "already": f"Ref {ref} was already decided.",
                "closed": f"Ref {ref} no longer needs an introduction."}
    click.echo(messages[decision.outcome])


_BY = ("The broker acting (PHONE or #member id); no broker decides an introduction they are "
       "one of the two members of.")


@intro_group.command("approve")
@click.argument("ref", type=int)
@click.option("--bank", "bank_name", default=None)
@click.option("--by", default=None, help=_BY)
def intro_approve(ref: int, bank_name: str | None, by: str | None) -> None:
    """Introduce the two members of need REF: each is texted the other's number."""
    _decide_command(ref, bank_name, by, approve=True)


@intro_group.command("decline")
@click.argument("ref", type=int)
@click.option("--bank", "bank_name", default=None)
@click.option("--by", default=None, help=_BY)
def intro_decline(ref: int, bank_name: str | None, by: str | None) -> None:
    """Don't introduce them: need REF is open to other helpers again; both are told."""
    _decide_command(ref, bank_name, by, approve=False)

