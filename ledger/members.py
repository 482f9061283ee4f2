"""Membership: joining, the profile, leaving, approval, brokers and opt-outs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.errors import NotFound
from ledger.models import Account, Bank, Member, OptOut, utcnow
from ledger.phones import WHATSAPP, Address, InvalidNumber, normalise

PROFILE_FIELDS = ("name", "area", "skills", "availability")
# Last-contact times are written at most this often: stale by less than this, and never late.
_CONTACT_WRITE_INTERVAL = timedelta(hours=1)


def find_member(session: Session, bank_id: int, phone: str) -> Member | None:
    return session.scalars(
        select(Member).where(Member.bank_id == bank_id, Member.phone == phone)
    ).one_or_none()


def get_member(session: Session, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound(f"member {member_id}")
    return member


def join(session: Session, bank: Bank, address: Address, name: str) -> tuple[Member, bool]:
    """Register the person at ``address`` as a member of ``bank``, or bring a leaver back.

    Returns the member and whether anything changed. Joining twice is harmless.
    """
    member = find_member(session, bank.id, address.phone)
    status = "pending" if bank.require_approval else "active"
    if member is None:
        try:
            with session.begin_nested():
                member = Member(
                    bank_id=bank.id, phone=address.phone, name=name, status=status,
                    last_channel=address.channel, last_inbound_at=utcnow(),
                    whatsapp=address.twilio if address.channel == WHATSAPP else None,
                )
                session.add(member)
                session.flush()
                session.add(
                    Account(bank_id=bank.id, kind="member", member_id=member.id, name=name)
                )
        except IntegrityError:
            # A concurrent JOIN from the same number won; theirs is ours.
            member = find_member(session, bank.id, address.phone)
            if member is None:
                raise
            return member, False
        return member, True
    if member.status == "left":
        member.status = status
        member.name = name
        member.left_at = None
        return member, True
    return member, False


def update_profile(session: Session, member_id: int, field: str, value: str | None) -> Member:
    if field not in PROFILE_FIELDS:
        raise ValueError(f"not a profile field: {field}")
    member = get_member(session, member_id)
    if field == "name" and not value:
        return member
    setattr(member, field, value)
    if field == "name":
        account = member_account(session, member)
        account.name = value or account.name
    return member


def leave(session: Session, member_id: int) -> Member:
    """The member leaves; their account and every transfer stay, for the bank's records."""
    member = get_member(session, member_id)
    if member.status != "left":
        member.status = "left"
        member.left_at = utcnow()
    return member


def approve(session: Session, member_id: int) -> tuple[Member, bool]:
    member = get_member(session, member_id)
    if member.status == "pending":
        member.status = "active"
        return member, True
    return member, False


def make_broker(session: Session, bank: Bank, phone: str, name: str) -> tuple[Member, bool]:
    """Register ``phone`` as a broker of ``bank`` (joining them first if needed)."""
    member = find_member(session, bank.id, phone)
    if member is None:
        member, _ = join(session, bank, Address(phone=phone, channel="sms"), name)
    changed = member.role != "broker" or member.status != "active"
    member.role = "broker"
    member.status = "active"
    return member, changed


def brokers(session: Session, bank_id: int) -> list[Member]:
    return list(
        session.scalars(
            select(Member).where(
                Member.bank_id == bank_id, Member.role == "broker", Member.status == "active"
            ).order_by(Member.id)
        )
    )


def record_contact(member: Member, address: Address, now: datetime | None = None) -> bool:
    """Remember the channel a member last used and when (WhatsApp's 24-hour window).

    Returns whether the row changed. Writes only when the channel changes or the stored time is
    over an hour old, so the hot path stays read-only; the stored time is never later than the
    truth, so a window computed from it closes early rather than late.
    """
    now = now or utcnow()
    changed = False
    if member.last_channel != address.channel:
        member.last_channel = address.channel
        changed = True
    if address.channel == WHATSAPP and member.whatsapp != address.twilio:
        member.whatsapp = address.twilio
        changed = True
    last = member.last_inbound_at
    if last is not None and last.tzinfo is None:  # SQLite hands back naive datetimes
        last = last.replace(tzinfo=now.tzinfo)
    if changed or last is None or now - last > _CONTACT_WRITE_INTERVAL:
        member.last_inbound_at = now
        changed = True
    return changed


def member_account(session: Session, member: Member) -> Account:
    account = session.scalars(select(Account).where(Account.member_id == member.id)).one_or_none()
    if account is None:
        account = Account(bank_id=member.bank_id, kind="member", member_id=member.id,
                          name=member.name)
        session.add(account)
        session.flush()
    return account


def is_opted_out(session: Session, bank_id: int, phone: str) -> bool:
    return session.scalars(
        select(OptOut.id).where(OptOut.bank_id == bank_id, OptOut.phone == phone)
    ).first() is not None


def opt_out(session: Session, bank_id: int, phone: str, reason: str = "stop") -> bool:
    if is_opted_out(session, bank_id, phone):
        return False
    try:
        with session.begin_nested():
            session.add(OptOut(bank_id=bank_id, phone=phone, reason=reason))
    except IntegrityError:
        return False
    return True


def opt_in(session: Session, bank_id: int, phone: str) -> bool:
    result = session.execute(
        delete(OptOut).where(OptOut.bank_id == bank_id, OptOut.phone == phone)
    )
    return bool(getattr(result, "rowcount", 0))


_NUMBER_CHUNK = re.compile(r"\+?[\d()\-.]{6,}")


@dataclass(frozen=True)
class Found:
    """Who a member meant in ``DONE 2 Ana gardening``: the members that fit, the words that
    named them (``label``) and the rest of the text (``rest``, here "gardening")."""

    members: list[Member]
    label: str
    rest: str


def find_by_words(session: Session, bank_id: int, text: str, region: str = "GB") -> Found:
    """Find the member named at the start of ``text``, by number or by name."""
    words = text.split()
    if not words:
        return Found([], "", "")
    for count in range(min(4, len(words)), 0, -1):
        chunk = "".join(words[:count])
        if _NUMBER_CHUNK.fullmatch(chunk):
            try:
                phone = normalise(chunk, region)
            except InvalidNumber:
                continue
            member = find_member(session, bank_id, phone)
            found = [member] if member is not None and member.status != "left" else []
            return Found(found, chunk, " ".join(words[count:]))
    candidates = select(Member).where(Member.bank_id == bank_id, Member.status != "left")
    for count in range(min(3, len(words)), 0, -1):
        name = " ".join(words[:count]).strip(",.:;!")
        if not name:
            continue
        exact = list(session.scalars(
            candidates.where(func.lower(Member.name) == name.lower()).order_by(Member.id)
        ))
        if exact:
            return Found(exact, name, " ".join(words[count:]))
    first = "".join(ch for ch in words[0] if ch.isalnum() or ch in "-'")
    if not first:
        return Found([], words[0], " ".join(words[1:]))
    by_first_name = list(session.scalars(
        candidates.where(func.lower(Member.name).like(first.lower() + " %")).order_by(Member.id)
    ))
    return Found(by_first_name, first, " ".join(words[1:]))
