"""Members who cannot text, and phones shared by two members.

A broker registers a member without a phone (``add_member``), later gives them one
(``give_phone``; their member id, account and history stay), and acts for them while they have
none: posts a need or an offer (``post_for``), accepts a need for them (``accept_for``),
confirms hours in their place (``confirm_for``), gives their hours (``give_for``) and prints a
statement (``statement``). Every action is audited, whichever way it came (dashboard,
command line), and none lets a broker act on hours they give or receive (``ledger.own_hours``).

A member is named everywhere by a phone number or a member number ``#12``
(``ledger.members.resolve_who``); a member number names only a member of the broker's own bank.

A phone may belong to two members of one bank (a couple, a carer and the person they care for):
``Member.phone_slot`` is 0 for the first (and for everyone who joins by text, so two JOINs at
once still meet the unique key (bank, phone, slot)), 1 for the second, whom only a broker adds.
When a shared phone texts, ``conversations.machine`` asks who is texting and the dialog state
remembers the answer (``State.speaker``) until the dialog expires; texts the bank sends on its
own to a shared phone start "For Sam:" (``for_whom``). Choosing is a convenience, not a security
boundary: whoever holds the phone can choose either member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import caps, outbound
from app.ledger_words import transfer_what
from conversations.machine import for_others, profile_value, shorten, valid_name
from conversations.texts import Hours, render
from ledger import audit, banks, confirmations, members, own_hours, posts
from ledger.errors import InvalidHours, LedgerError, NotFound
from ledger.hours import format_hours
from ledger.matching import Candidate
from ledger.models import Account, Bank, Confirmation, Member, Post, Transfer

# The shortest name that starts a text for one member of a shared phone ("For Christabel: ").
FOR_NAME_MOST = 12


class PhoneTaken(LedgerError):
    """A number that already belongs to a member (or two) of the bank."""


class NotForThem(LedgerError):
    """An action a broker may not take for this member (they text for themselves, they left,
    the request is not theirs to answer)."""


@dataclass
class Acted:
    """What a broker's action did: a short outcome and the texts to hand to the worker."""

    outcome: str
    queued: list[int] = field(default_factory=list)
    jobs: list[tuple[str, int]] = field(default_factory=list)
    ref: int | None = None


# --- registering and phones -----------------------------------------------------------------


def _slot(session: Session, bank_id: int, phone: str, *, shared: bool,
          member_id: int | None = None) -> int:
    """The phone slot a member may take on ``phone``: refused if the number is another
    member's (unless ``shared``), a broker's, or already shared by two."""
    holders = [m for m in members.find_members(session, bank_id, phone) if m.id != member_id]
    if not holders:
        return 0
    names = " and ".join(f"{m.name} (#{m.id})" for m in holders)
    if any(m.role == "broker" for m in holders):
        raise PhoneTaken(f"that number belongs to {names}, a broker: a broker's phone "
                         "can't be shared")
    if not shared:
        raise PhoneTaken(f"that number belongs to {names}; if they share the phone, say so "
                         "(shared)")
    taken = {m.phone_slot for m in holders}
    if len(holders) >= 2 or taken >= {0, 1}:
        raise PhoneTaken(f"that number is already shared by {names}: at most two members "
                         "share a phone")
    return 1 if 0 in taken else 0


def add_member(session: Session, bank: Bank, name: str, *, phone: str | None = None,
               shared: bool = False, area: str | None = None, skills: str | None = None,
               notes: str | None = None, broker: Member | None, via: str
               ) -> tuple[Member, list[int]]:
    """A broker registers a member (with or without a phone): active at once, audited, and
    texted a welcome when they have a phone that has not stopped texts."""
    clean_name = valid_name(name)
    if clean_name is None:
        raise LedgerError("a name needs letters, e.g. Sam")
    slot = _slot(session, bank.id, phone, shared=shared) if phone else 0
    try:
        with session.begin_nested():
            member = Member(
                bank_id=bank.id, phone=phone, phone_slot=slot, name=clean_name,
                status="active", area=profile_value(area or "", "area"),
                skills=profile_value(skills or "", "skills"),
                notes=(notes or "").strip()[:2000] or None,
            )
            session.add(member)
            session.flush()
            session.add(Account(bank_id=bank.id, kind="member", member_id=member.id,
                                name=clean_name))
            session.flush()
    except IntegrityError:
        # Someone joined by text from that number a moment ago.
        raise PhoneTaken("that number has just joined the bank; try again") from None
    _forget_shared(session)
    sharing = _sharing_detail(session, member)
    audit.record(session, bank.id, "member.added", broker_id=broker.id if broker else None,
                 subject=f"member {member.id}",
                 detail=f"{clean_name}, {sharing if phone else 'without a phone'}", via=via)
    queued = []
    if phone:
        message_id = outbound.queue_text(
            session, member, kind="added_welcome", key="added_welcome",
            idempotency_key=f"added-welcome:{member.id}",
            values={"name": member.name, "bank": bank.name},
        )
        queued = [message_id] if message_id else []
    return member, queued


def _sharing_detail(session: Session, member: Member) -> str:
    if not member.phone:
        return "no phone"
    others = [m for m in members.find_members(session, member.bank_id, member.phone)
              if m.id != member.id]
    if others:
        return "a phone shared with " + ", ".join(f"#{m.id}" for m in others)
    return "with a phone"


def give_phone(session: Session, bank: Bank, member: Member, phone: str, *, shared: bool,
               broker: Member | None, via: str) -> tuple[bool, list[int]]:
    """Give ``member`` a (new) phone number; everything else about them stays. Refused when
    the number is another member's, unless the phone is ``shared``. Audited; the member is
    texted on the new number."""
    _own(bank, member)
    if member.status == "left":
        raise NotForThem(f"{member.name} has left the bank")
    if member.phone == phone:
        return False, []
    slot = _slot(session, bank.id, phone, shared=shared, member_id=member.id)
    had_phone = bool(member.phone)
    try:
        with session.begin_nested():
            member.phone = phone
            member.phone_slot = slot
            member.whatsapp = None
            member.last_channel = "sms"
            session.flush()
    except IntegrityError:
        raise PhoneTaken("that number has just joined the bank; try again") from None
    _forget_shared(session)
    if member.role == "broker":
        members.end_sessions(member)  # sign-in codes go to the new number from now on
    audit.record(session, bank.id, "member.phone", broker_id=broker.id if broker else None,
                 subject=f"member {member.id}",
                 detail=("number changed, " if had_phone else "number given, ")
                 + _sharing_detail(session, member), via=via)
    message_id = outbound.queue_text(
        session, member, kind="phone_given", key="phone_given",
        idempotency_key=f"phone-given:{member.id}:{datetime.now(UTC).isoformat()}",
        values={"name": member.name, "bank": bank.name},
    )
    return True, [message_id] if message_id else []


# --- acting for a member without a phone ----------------------------------------------------


def _own(bank: Bank, member: Member) -> None:
    if member.bank_id != bank.id:
        raise NotFound(f"member {member.id} is not in {bank.name}")


def _for_offline(bank: Bank, member: Member) -> None:
    """Only a member of this bank without a phone, still a member, is acted for."""
    _own(bank, member)
    if member.phone:
        raise NotForThem(f"{member.name} has a phone and answers for themselves")
    if member.status != "active":
        raise NotForThem(f"{member.name} is not an active member")


def post_for(session: Session, bank: Bank, member: Member, kind: str, text: str, *,
             request_key: str, broker: Member | None, via: str) -> Acted:
    """Post a need (helpers are asked as usual) or an offer for ``member``."""
    _for_offline(bank, member)
    if kind not in ("need", "offer"):
        raise LedgerError("post a need or an offer")
    what = profile_value(text, "skills")
    if not what:
        raise LedgerError(f"say what the {kind} is")
    item, created = posts.post(session, bank_id=bank.id, member=member, kind=kind, text=what,
                               request_key=request_key)
    acted = Acted("posted" if created else "already", ref=item.ref)
    if created:
        audit.record(session, bank.id, f"{kind}.posted_for",
                     broker_id=broker.id if broker else None, subject=f"ref {item.ref}",
                     detail=f"for member {member.id}: {shorten(what, 60)}", via=via)
        if kind == "need":
            acted.jobs.append(("app.jobs.ask_helpers", item.id))
    return acted


def accept_for(session: Session, bank: Bank, member: Member, ref: int, *,
               broker: Member | None, via: str) -> Acted:
    """``member`` will help with need ``ref``: the broker says YES for them. The first YES
    still wins; the member who asked is told a broker will arrange it (no number to give)."""
    _for_offline(bank, member)
    need = posts.by_ref(session, bank.id, ref)
    if need is None or need.kind != "need":
        raise NotFound(f"no need has ref {ref}")
    if need.member_id == member.id:
        raise NotForThem(f"ref {ref} is {member.name}'s own need")
    if need.status != "open":
        return Acted("closed", ref=ref)
    if member.id not in posts.asked_ids(session, need.id):
        posts.record_asks(session, need, [Candidate(member.id, 0.0, ("accepted by a broker",))])
    result = posts.answer(session, bank_id=bank.id, member_id=member.id, ref=ref, yes=True)
    acted = Acted(result.outcome, ref=ref)
    if result.outcome != "matched":
        return acted
    audit.record(session, bank.id, "need.accepted_for", broker_id=broker.id if broker else None,
                 subject=f"ref {ref}", detail=f"member {member.id} will help", via=via)
    requester = members.get_member(session, need.member_id)
    message_id = outbound.queue_text(
        session, requester, kind="match_requester_by_broker", key="match_requester_by_broker",
        idempotency_key=f"match:{need.id}",
        values={"name": member.name, "what": shorten(need.text), "ref": need.ref,
                "bank": bank.name},
    )
    acted.queued = [message_id] if message_id else []
    return acted


def confirm_for(session: Session, bank: Bank, member: Member, ref: int, *, yes: bool,
                broker: Member | None, via: str) -> tuple[confirmations.Settlement, list[int]]:
    """The broker's YES (or NO) stands in for ``member``'s own reply to request ``ref``.
    Never on hours the broker gives, receives, asked for or answers (``OwnHours``)."""
    _for_offline(bank, member)
    request = session.scalars(select(Confirmation).where(
        Confirmation.bank_id == bank.id, Confirmation.ref == ref)).one_or_none()
    if request is None or request.confirmer_member_id != member.id:
        raise NotForThem(f"ref {ref} is not waiting for {member.name}'s answer")
    override = own_hours.check(
        session, bank.id, broker,
        own_hours.parties(session, [request.payer_account_id, request.payee_account_id],
                          [request.requested_by_member_id, request.confirmer_member_id]),
        via=via)
    result = confirmations.answer(
        session, bank_id=bank.id, member_id=member.id, ref=ref, yes=yes,
        sid=f"broker:{broker.id if broker else 'cli'}:{ref}",
        broker_id=broker.id if broker else None, by_broker=True,
    )
    queued: list[int] = []
    if result.outcome not in ("confirmed", "disputed", "canceled", "limit"):
        return result, queued
    detail = f"for member {member.id}: {result.outcome}, {format_hours(request.minutes)} hours"
    if override:
        detail += f"; own hours, as {override}"
    audit.record(session, bank.id, "confirmation.answered_for",
                 broker_id=broker.id if broker else None, subject=f"ref {ref}",
                 detail=detail, via=via)
    if override and broker is not None and result.transfer is not None:
        own_hours.audit_override(session, bank.id, broker, result.transfer, override, via=via)
    if result.outcome == "confirmed":
        queued = _tell_other_side(session, bank, request, member)
    return result, queued


def _tell_other_side(session: Session, bank: Bank, request: Confirmation, member: Member
                     ) -> list[int]:
    """The receipt for the member on the other side of a request ``member`` confirmed."""
    payee = session.get(Account, request.payee_account_id)
    if payee is None or payee.member_id is None or payee.member_id == member.id:
        return []
    other = session.get(Member, payee.member_id)
    if other is None:
        return []
    hours = Hours(request.minutes)
    if request.kind == "gift":
        key, values = "gift_received", {"other": member.name, "hours": hours,
                                        "balance": Hours(payee.balance_minutes)}
    else:
        key, values = "receipt_payee", {
            "other": member.name, "hours": hours,
            "what": for_others(request.description),
            "balance": Hours(payee.balance_minutes)}
    idem = f"gift-received:{request.id}" if request.kind == "gift" else f"receipt:{request.id}"
    message_id = outbound.queue_text(session, other, kind=key, key=key, idempotency_key=idem,
                                     values=values)
    return [message_id] if message_id else []


def give_for(session: Session, bank: Bank, member: Member, minutes: int,
             receiver: Member | None, *, request_key: str, broker: Member | None, via: str
             ) -> tuple[confirmations.Settlement, list[int]]:
    """Give ``minutes`` of ``member``'s hours to ``receiver`` (None: the community fund), on
    their word to the broker. Keeps to their balance floor; never to or from the broker."""
    _for_offline(bank, member)
    if minutes <= 0 or minutes % 15:
        raise InvalidHours("hours go in quarter hours, e.g. 1.5")
    if minutes > bank.max_exchange_minutes:
        raise InvalidHours(f"at most {format_hours(bank.max_exchange_minutes)} hours at once")
    if receiver is not None:
        _own(bank, receiver)
        if receiver.id == member.id:
            raise NotForThem("a gift goes to someone else")
        if receiver.status != "active":
            raise NotForThem(f"{receiver.name} is not an active member")
        payee = members.member_account(session, receiver)
    else:
        payee = banks.ensure_fund(session, bank)
    payer = members.member_account(session, member)
    own_hours.check(session, bank.id, broker,
                    own_hours.parties(session, [payer.id, payee.id]), via=via)
    request, _ = confirmations.request(
        session, bank_id=bank.id, kind="gift", payer=payer, payee=payee, minutes=minutes,
        description="", requested_by=member, confirmer=member, request_key=request_key,
    )
    return confirm_for(session, bank, member, request.ref, yes=True, broker=broker, via=via)


# --- brokers told what a member without a phone cannot be -----------------------------------


def has_no_phone(member: Member) -> bool:
    return outbound.address_for(member) is None


def tell_brokers_match(session: Session, bank: Bank, need: Post, requester: Member,
                       helper: Member) -> list[int]:
    """A helper said YES to the need of a member without a phone: the brokers get the
    helper's number to arrange it. Caused by the helper (``app.caps``)."""
    return _tell_brokers(session, bank, helper, "broker_match_offline", f"match-offline:{need.id}",
                         {"other": helper.name, "phone": helper.phone or "-",
                          "name": requester.name, "member_id": requester.id,
                          "what": shorten(need.text), "ref": need.ref})


def tell_brokers_confirm(session: Session, bank: Bank, request: Confirmation,
                         confirmer: Member, requester: Member) -> list[int]:
    """Hours wait for the answer of a member without a phone: the brokers are asked to check
    with them and confirm in their place. Caused by the member who reported the hours."""
    return _tell_brokers(session, bank, requester, "broker_confirm_for",
                         f"confirm-for:{request.id}",
                         {"other": requester.name, "name": confirmer.name,
                          "member_id": confirmer.id, "hours": Hours(request.minutes),
                          "what": shorten(request.description, 30), "ref": request.ref})


def _tell_brokers(session: Session, bank: Bank, causer: Member, key: str, idem: str,
                  values: dict[str, object]) -> list[int]:
    queued = []
    for broker in members.brokers(session, bank.id):
        message_id, _ = caps.queue_caused(session, bank, broker, causer, key=key,
                                          idempotency_key=f"{idem}:to:{broker.id}",
                                          values=values)
        if message_id is not None:
            queued.append(message_id)
    return queued


# --- shared phones --------------------------------------------------------------------------


def for_whom(session: Session, member: Member, body: str) -> str:
    """A text the bank sends on its own to one member of a shared phone, naming them:
    "For Sam: …" (their first name, cut to fit); any other text as it is."""
    if not member.phone or member.phone not in shared_phones(session, member.bank_id):
        return body
    first = (member.name.split() or [member.name])[0]
    return render("for_member", member.language, name=shorten(first, FOR_NAME_MOST), text=body)


_SHARED = "tb_shared_phones"


def shared_phones(session: Session, bank_id: int) -> set[str]:
    """The numbers two members of the bank share (one query a transaction: every text the
    bank records asks, a broadcast thousands of times)."""
    cache: dict[int, set[str]] = session.info.setdefault(_SHARED, {})
    if bank_id not in cache:
        cache[bank_id] = {phone for phone in session.scalars(select(Member.phone).where(
            Member.bank_id == bank_id, Member.phone_slot == 1, Member.phone.is_not(None)))
            if phone}
    return cache[bank_id]


def _forget_shared(session: Session) -> None:
    session.info.pop(_SHARED, None)


# --- statements -----------------------------------------------------------------------------


def statement(session: Session, bank: Bank, member: Member, limit: int = 30) -> dict[str, Any]:
    """A member's balance and recent exchanges, for a printed page."""
    _own(bank, member)
    account = members.member_account(session, member)
    try:
        zone = ZoneInfo(bank.timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    rows = []
    for transfer in session.scalars(
        select(Transfer).where(or_(Transfer.from_account_id == account.id,
                                   Transfer.to_account_id == account.id))
        .order_by(Transfer.id.desc()).limit(limit)
    ):
        incoming = transfer.to_account_id == account.id
        other = session.get(Account, transfer.from_account_id if incoming
                            else transfer.to_account_id)
        rows.append({
            "when": transfer.created_at.astimezone(zone),
            "incoming": incoming, "hours": format_hours(transfer.minutes),
            "other": _label(session, other),
            "what": transfer_what(session, transfer, member.language, most=200),
        })
    return {"bank": bank, "member": member, "balance": format_hours(account.balance_minutes),
            "rows": rows, "printed": datetime.now(UTC)}


def _label(session: Session, account: Account | None) -> str:
    if account is None:
        return "-"
    if account.kind == "fund":
        return render("community_fund")
    other = session.get(Member, account.member_id) if account.member_id else None
    return other.name if other is not None else account.name

