"""Membership: joining, the profile, leaving, approval, brokers and opt-outs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger import banks
from ledger.errors import LedgerError, NotFound
from ledger.models import Account, Bank, Member, OptOut, utcnow
from ledger.phones import WHATSAPP, Address, InvalidNumber, member_number, normalise

PROFILE_FIELDS = ("name", "area", "skills", "availability")
# Last-contact times are written at most this often: stale by less than this, and never late.
_CONTACT_WRITE_INTERVAL = timedelta(hours=1)


def find_member(session: Session, bank_id: int, phone: str) -> Member | None:
    """The member of ``bank_id`` with ``phone``: the first of them (slot 0) if two share it.
    Where a shared phone must name one person, use ``find_members`` (or ``resolve_who``)."""
    return session.scalars(
        select(Member).where(Member.bank_id == bank_id, Member.phone == phone)
        .order_by(Member.phone_slot).limit(1)
    ).first()


def find_members(session: Session, bank_id: int, phone: str) -> list[Member]:
    """Every member of ``bank_id`` with ``phone`` (two when a phone is shared), by slot."""
    return list(session.scalars(
        select(Member).where(Member.bank_id == bank_id, Member.phone == phone)
        .order_by(Member.phone_slot)
    ))


class SharedPhone(LedgerError):
    """A phone number that names two members: name one by member number (``#12``)."""

    def __init__(self, sharing: list[Member]) -> None:
        self.members = sharing
        names = " and ".join(f"{m.name} (#{m.id})" for m in sharing)
        super().__init__(f"that number is shared by {names}: name one as #<number>")


def bank_and_member(session: Session, bank_id: int, member_id: int | None
                    ) -> tuple[Bank, Member | None]:
    """The bank and its member ``member_id`` (None for a stranger), in one statement: the
    webhook's write path reads both. By id, not by number: a shared phone's member is the
    one chosen in the dialog."""
    bank, member = session.execute(
        _BANK_AND_MEMBER, {"bank_id": bank_id, "member_id": member_id}).one()
    return bank, member


_BANK_AND_MEMBER = (
    select(Bank, Member)
    .outerjoin(Member, (Member.bank_id == Bank.id) & (Member.id == bindparam("member_id")))
    .where(Bank.id == bindparam("bank_id"))
)


def resolve_who(session: Session, bank_id: int, who: str, region: str) -> Member | None:
    """The member of ``bank_id`` that ``who`` names: ``#12`` (a member number) or a phone
    number in any format. None when nobody in this bank is that (or ``who`` is neither).
    A phone two current members share names neither: ``SharedPhone`` says who they are."""
    number = member_number(who)
    if number is not None:
        found = session.get(Member, number)
        return found if found is not None and found.bank_id == bank_id else None
    try:
        phone = normalise(who, region)
    except InvalidNumber:
        return None
    return one_by_phone(session, bank_id, phone)


def one_by_phone(session: Session, bank_id: int, phone: str) -> Member | None:
    """The one member a phone number names; ``SharedPhone`` when two current members share
    it (one who left does not count)."""
    found = find_members(session, bank_id, phone)
    current = [m for m in found if m.status != "left"]
    if len(current) > 1:
        raise SharedPhone(current)
    return current[0] if current else (found[0] if found else None)


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
                    language=banks.default_language(bank),
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
        end_sessions(member)
    return member


def end_sessions(member: Member) -> None:
    """Every dashboard session of ``member`` stops working at their next request."""
    member.session_generation = Member.session_generation + 1


def approve(session: Session, member_id: int) -> tuple[Member, bool]:
    member = get_member(session, member_id)
    if member.status == "pending":
        member.status = "active"
        return member, True
    return member, False


def make_broker(session: Session, bank: Bank, phone: str, name: str) -> tuple[Member, bool]:
    """Register ``phone`` as a broker of ``bank`` (joining them first if needed). A shared
    phone is refused (``SharedPhone``): whoever holds it could choose to be the broker."""
    sharing = find_members(session, bank.id, phone)
    if len(sharing) > 1:
        raise SharedPhone(sharing)
    member = sharing[0] if sharing else None
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


def contact_is_stale(
    last_channel: str | None, whatsapp: str | None, last_inbound_at: datetime | None,
    address: Address, now: datetime | None = None,
) -> bool:
    """Whether ``record_contact`` would change anything (checked on the read-only hot path)."""
    now = now or utcnow()
    if last_channel != address.channel:
        return True
    if address.channel == WHATSAPP and whatsapp != address.twilio:
        return True
    if last_inbound_at is None:
        return True
    if last_inbound_at.tzinfo is None:  # SQLite hands back naive datetimes
        last_inbound_at = last_inbound_at.replace(tzinfo=now.tzinfo)
    return now - last_inbound_at > _CONTACT_WRITE_INTERVAL


def record_contact(member: Member, address: Address, now: datetime | None = None) -> bool:
    """Remember the channel a member last used and when (WhatsApp's 24-hour window).

    Returns whether the row changed. Writes only when the channel changes or the stored time is
    over an hour old, so the hot path stays read-only; the stored time is never later than the
    truth, so a window computed from it closes early rather than late.
    """
    now = now or utcnow()
    if not contact_is_stale(
        member.last_channel, member.whatsapp, member.last_inbound_at, address, now
    ):
        return False
    member.last_channel = address.channel
    if address.channel == WHATSAPP:
        member.whatsapp = address.twilio
    member.last_inbound_at = now
    return True


# Built once: constructing a statement costs more than running it on the hot path.
_OPTED_OUT = (
    select(OptOut.id)
    .where(OptOut.bank_id == bindparam("bank_id"), OptOut.phone == bindparam("phone"))
    .limit(1)
)
_FACTS = (
    select(
        Member.id, Member.name, Member.status, Member.role, Member.area, Member.skills,
        Member.availability, Member.language, Member.last_channel, Member.whatsapp,
        Member.last_inbound_at, Account.balance_minutes, Member.away_since,
        Member.check_in_sent_at,
        select(OptOut.id)
        .where(OptOut.bank_id == bindparam("bank_id"), OptOut.phone == bindparam("phone"))
        .exists().label("opted_out"),
    )
    .outerjoin(Account, Account.member_id == Member.id)
    .where(Member.bank_id == bindparam("bank_id"), Member.phone == bindparam("phone"))
    .order_by(Member.phone_slot)
)


def facts_rows(connection: Connection, bank_id: int, phone: str) -> list[Any]:
    """The facts, balances and opt-out of every member with ``phone`` (one, or two for a
    shared phone), by slot, in one statement (the webhook's hot path)."""
    return list(connection.execute(_FACTS, {"bank_id": bank_id, "phone": phone}).all())


def opted_out_by_connection(connection: Connection, bank_id: int, phone: str) -> bool:
    return connection.execute(
        _OPTED_OUT, {"bank_id": bank_id, "phone": phone}
    ).first() is not None


def account_of(session: Session, member: Member) -> Account:
    """The member's account (every member has one from joining; read-only)."""
    return session.scalars(select(Account).where(Account.member_id == member.id)).one()


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


def can_be_texted(session: Session, member: Member) -> bool:
    """Whether the bank may text this member at all: still a member, and no STOP."""
    if member.status == "left":
        return False
    return not (member.phone and is_opted_out(session, member.bank_id, member.phone))


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


def find_by_words(session: Session, bank_id: int, text: str, region: str = "GB", *,
                  numbers: bool = False) -> Found:
    """Find the member named at the start of ``text``, by phone number or by name, and, with
    ``numbers`` (brokers only: a member number would let anyone look names up), by ``#12``."""
    words = text.split()
    if not words:
        return Found([], "", "")
    number = member_number(words[0]) if numbers else None
    if number is not None:
        by_number = session.get(Member, number)
        found = [by_number] if by_number is not None and by_number.bank_id == bank_id and (
            by_number.status == "active") else []
        return Found(found, words[0], " ".join(words[1:]))
    for count in range(min(4, len(words)), 0, -1):
        chunk = "".join(words[:count])
        if _NUMBER_CHUNK.fullmatch(chunk):
            try:
                phone = normalise(chunk, region)
            except InvalidNumber:
                continue
            # Both members of a shared phone fit: the caller asks for a member number.
            found = [m for m in find_members(session, bank_id, phone) if m.status == "active"]
            return Found(found, chunk, " ".join(words[count:]))
    # Members still waiting for a welcome cannot be named yet.
    candidates = select(Member).where(Member.bank_id == bank_id, Member.status == "active")
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
