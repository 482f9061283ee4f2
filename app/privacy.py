"""Data protection: what the bank holds about a member (export), erasing who they were
(forget), and keeping texts and sign-in records no longer than the bank's retention period.

Everything is organised as a list of *sources*, one per kind of data the bank keeps about a
member (``SOURCES``). Each source says, in one place, how to export it, how to forget it and
how long it is kept; a new table that holds personal data is covered by adding one
``Source`` to that list (its export, its forget and, if it expires, its expire).

Forgetting keeps every row the ledger needs: the member becomes "Former member 12" (status
``left``, ``forgotten_at`` set), their account keeps its transfers and balance, so the bank
still sums to zero, other members' statements name "a former member", and reports count the
same hours. What named them (name, number, WhatsApp address, notes, profile, opt-outs, the
texts to them, their posts' words, dialog state in Redis) is erased, and their name and
number are scrubbed from every other text the bank keeps (descriptions, audit entries, texts
to others).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import phonenumbers
from sqlalchemy import (
    String,
    cast,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.orm import Session

from app.services import Services
from conversations.gsm import nearest_gsm, to_gsm
from ledger import audit, members
from ledger.models import (
    Account,
    Activity,
    Ask,
    AuditEntry,
    Bank,
    BrokerDuty,
    Confirmation,
    InboundText,
    Introduction,
    Member,
    Message,
    OptOut,
    Post,
    Rsvp,
    Transfer,
    utcnow,
)

# Login-code texts count towards today's caps: never deleted younger than this, whatever
# the bank's retention period.
SIGN_IN_ROWS_KEPT_AT_LEAST = timedelta(days=2)
SIGN_IN_ACTIONS = ("signed_in", "signed_out")
# At most this many rows of each kind a sweep, so one sweep stays short after a long pause.
EXPIRE_BATCH = 5000
ERASED_NUMBER = "(number erased)"
FORMER = "a former member"


def placeholder_name(member_id: int) -> str:
    return f"Former member {member_id}"


# --- scrubbing a member's name and number out of other text ---------------------------------


class Scrub:
    """Replaces a forgotten member's name and number (in any of the forms texts write it)
    in a piece of text, and finds the rows whose column may hold them (``like``)."""

    def __init__(self, name: str, numbers: Iterable[str], region: str = "GB") -> None:
        self.name = name.strip()
        forms: set[str] = set()
        for number in numbers:
            if not number:
                continue
            forms.add(number)
            bare = number.removeprefix("whatsapp:")
            forms.update({bare, bare.lstrip("+")})
            try:
                parsed = phonenumbers.parse(bare, region)
                national = phonenumbers.format_number(
                    parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
                forms.update({national, national.replace(" ", "")})
            except phonenumbers.NumberParseException:
                pass
        # Longest first: "whatsapp:+44…" before "+44…" before "44…".
        self.numbers = sorted((f for f in forms if len(f) >= 6), key=len, reverse=True)
        parts = [re.escape(n) for n in self.numbers]
        self._numbers = re.compile("|".join(parts)) if parts else None
        # As texts write it: typographic quotes and dashes become plain ones (GSM-7), and a
        # text may have gone with its letters in their nearest GSM-7 form (Łucja → Lucja).
        self.names = sorted({self.name, to_gsm(self.name), nearest_gsm(self.name)} - {""},
                            key=len, reverse=True)
        self._name = (re.compile(
            "|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in self.names), re.IGNORECASE)
            if self.names else None)

    def needles(self) -> list[str]:
        """Lower-case strings a row must contain (any of them) to need scrubbing: the
        number's forms, the name's, and the name as JSON writes it (``\\u0141ucja``)."""
        found = {n.lower() for n in self.numbers}
        for name in self.names:
            found.update({name.lower(), json.dumps(name)[1:-1].lower()})
        return sorted(found)

    def text(self, value: str | None) -> str | None:
        if not value:
            return value
        if self._numbers is not None:
            value = self._numbers.sub(ERASED_NUMBER, value)
        if self._name is not None:
            value = self._name.sub(FORMER, value)
        return value

    def json_text(self, value: str | None) -> str | None:
        """Scrub the strings inside a JSON document (template values), keeping it JSON."""
        if not value:
            return value
        try:
            data = json.loads(value)
        except ValueError:
            return self.text(value)
        walked = self._walk(data)
        return value if walked == data else json.dumps(walked)

    def _walk(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, list):
            return [self._walk(item) for item in data]
        if isinstance(data, dict):
            return {key: self._walk(item) for key, item in data.items()}
        return data

    def rows(self, session: Session, model: Any, columns: list[Any], *where: Any,
             json_columns: tuple[str, ...] = ()) -> int:
        """Scrub ``columns`` of the rows of ``model`` matching ``where`` that may hold the
        name or number (found by a LIKE in SQL, changed in Python). Returns rows changed."""
        needles = self.needles()
        if not needles:
            return 0
        matches = [func.lower(column).like(f"%{_like(needle)}%", escape="\\")
                   for column in columns for needle in needles]
        # SQLite's lower() knows only ASCII: "Łucja" as members type it, in its usual cases.
        cased = {form for name in self.names
                 for form in (name, name.upper(), name.title(), name.lower())} - set(needles)
        matches += [column.like(f"%{_like(form)}%", escape="\\")
                    for column in columns for form in cased]
        changed = 0
        for row in session.scalars(select(model).where(*where, or_(*matches))):
            touched = False
            for column in columns:
                before = getattr(row, column.key)
                after = (self.json_text(before) if column.key in json_columns
                         else self.text(before))
                if after != before:
                    setattr(row, column.key, after)
                    touched = True
            changed += touched
        return changed


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- sources ---------------------------------------------------------------------------------

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Source:
    """One kind of data the bank keeps about a member.

    ``export``: the member's rows, as plain values. ``forget``: erase what names the member
    in this kind of data (and scrub their name and number from others' rows of it).
    ``expire``: delete or erase what is older than ``cutoff`` in ``bank``; returns how many
    rows it changed, reported by the sweep as ``expired_as``.
    """

    name: str
    title: str
    export: Callable[[Session, Member], Rows]
    forget: Callable[[Session, Member, Scrub], None] | None = None
    expire: Callable[[Session, Bank, datetime], int] | None = None
    expired_as: str = ""


def _when(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def _hours(minutes: int) -> float:
    return minutes / 60


def _account(session: Session, member: Member) -> Account | None:
    return session.scalars(select(Account).where(Account.member_id == member.id)).one_or_none()


def _label(session: Session, account_id: int) -> str:
    from app.effects import account_label

    account = session.get(Account, account_id)
    return account_label(session, account) if account is not None else "-"


# profile


def _export_profile(session: Session, member: Member) -> Rows:
    return [{
        "member": member.id, "name": member.name, "phone": member.phone,
        "whatsapp": member.whatsapp, "area": member.area, "skills": member.skills,
        "availability": member.availability, "language": member.language,
        "status": member.status, "role": member.role, "notes": member.notes,
        "last_channel": member.last_channel, "last_text_at": _when(member.last_inbound_at),
        "joined_at": _when(member.joined_at), "left_at": _when(member.left_at),
        "held_at": _when(member.held_at), "has_dashboard_password": bool(member.password_hash),
        "forgotten_at": _when(member.forgotten_at),
    }]


def _forget_profile(session: Session, member: Member, scrub: Scrub) -> None:
    now = utcnow()
    member.name = placeholder_name(member.id)
    member.phone = None
    member.whatsapp = None
    member.notes = None
    member.area = None
    member.skills = None
    member.availability = None
    member.password_hash = None
    member.last_inbound_at = None
    member.role = "member"
    member.status = "left"
    member.left_at = member.left_at or now
    member.forgotten_at = now
    members.end_sessions(member)
    # Other members' private notes may name them too.
    scrub.rows(session, Member, [Member.notes], Member.bank_id == member.bank_id,
               Member.id != member.id)


# opt-outs


def _export_opt_outs(session: Session, member: Member) -> Rows:
    if not member.phone:
        return []
    return [{"reason": row.reason, "at": _when(row.created_at)} for row in session.scalars(
        select(OptOut).where(OptOut.bank_id == member.bank_id, OptOut.phone == member.phone))]


def _forget_opt_outs(session: Session, member: Member, scrub: Scrub) -> None:
    if member.phone:
        session.execute(delete(OptOut).where(OptOut.bank_id == member.bank_id,
                                             OptOut.phone == member.phone))


# accounts and transfers


def _export_accounts(session: Session, member: Member) -> Rows:
    account = _account(session, member)
    if account is None:
        return []
    return [{"account": account.id, "name": account.name,
             "balance_hours": _hours(account.balance_minutes),
             "lowest_balance_hours": (None if account.min_balance_minutes is None
                                      else _hours(account.min_balance_minutes)),
             "opened_at": _when(account.created_at)}]


def _forget_accounts(session: Session, member: Member, scrub: Scrub) -> None:
    account = _account(session, member)
    if account is not None:
        account.name = placeholder_name(member.id)
    scrub.rows(session, Account, [Account.name], Account.bank_id == member.bank_id,
               Account.kind != "member")


def _export_transfers(session: Session, member: Member) -> Rows:
    account = _account(session, member)
    if account is None:
        return []
    rows = []
    for transfer in session.scalars(
            select(Transfer).where(or_(Transfer.from_account_id == account.id,
                                       Transfer.to_account_id == account.id))
            .order_by(Transfer.id)):
        incoming = transfer.to_account_id == account.id
        rows.append({
            "transfer": transfer.id, "at": _when(transfer.created_at),
            "direction": "in" if incoming else "out", "hours": _hours(transfer.minutes),
            "with": _label(session, transfer.from_account_id if incoming
                           else transfer.to_account_id),
            "kind": transfer.kind, "what": transfer.description,
            "entered_by": transfer.entered_by, "reverses": transfer.reverses_id,
        })
    return rows


def _forget_transfers(session: Session, member: Member, scrub: Scrub) -> None:
    # The hours stay exactly as they are; only words naming the member change.
    scrub.rows(session, Transfer, [Transfer.description], Transfer.bank_id == member.bank_id)


# confirmations


def _theirs(member: Member, account: Account | None) -> Any:
    conditions = [Confirmation.requested_by_member_id == member.id,
                  Confirmation.confirmer_member_id == member.id]
    if account is not None:
        conditions += [Confirmation.payer_account_id == account.id,
                       Confirmation.payee_account_id == account.id]
    return or_(*conditions)


def _export_confirmations(session: Session, member: Member) -> Rows:
    account = _account(session, member)
    return [{
        "ref": row.ref, "kind": row.kind, "status": row.status,
        "hours": _hours(row.minutes), "from": _label(session, row.payer_account_id),
        "to": _label(session, row.payee_account_id), "what": row.description,
        "note": row.note, "asked_at": _when(row.created_at), "settled_at": _when(row.settled_at),
    } for row in session.scalars(
        select(Confirmation).where(Confirmation.bank_id == member.bank_id,
                                   _theirs(member, account)).order_by(Confirmation.id))]


def _forget_confirmations(session: Session, member: Member, scrub: Scrub) -> None:
    scrub.rows(session, Confirmation, [Confirmation.description, Confirmation.note],
               Confirmation.bank_id == member.bank_id)


# offers, needs, asks


def _export_posts(session: Session, member: Member) -> Rows:
    return [{
        "ref": post.ref, "kind": post.kind, "text": post.text, "status": post.status,
        "helper": (None if post.helper_member_id is None
                   else "you" if post.helper_member_id == member.id else "another member"),
        "posted_at": _when(post.created_at), "closed_at": _when(post.closed_at),
    } for post in session.scalars(
        select(Post).where(Post.bank_id == member.bank_id,
                           or_(Post.member_id == member.id,
                               Post.helper_member_id == member.id)).order_by(Post.id))]


def _forget_posts(session: Session, member: Member, scrub: Scrub) -> None:
    now = utcnow()
    session.execute(update(Post).where(Post.member_id == member.id).values(text=""))
    session.execute(update(Post).where(Post.member_id == member.id,
                                       Post.status.in_(("open", "matched")))
                    .values(status="closed", closed_at=now))
    scrub.rows(session, Post, [Post.text], Post.bank_id == member.bank_id)


def _export_asks(session: Session, member: Member) -> Rows:
    return [{
        "need_ref": ref, "wave": ask.wave, "why_you": ask.reasons, "status": ask.status,
        "asked_at": _when(ask.created_at), "answered_at": _when(ask.answered_at),
    } for ask, ref in session.execute(
        select(Ask, Post.ref).join(Post, Post.id == Ask.post_id)
        .where(Ask.member_id == member.id).order_by(Ask.id))]


def _forget_asks(session: Session, member: Member, scrub: Scrub) -> None:
    # Why they were chosen speaks of their skills, area and times.
    session.execute(update(Ask).where(Ask.member_id == member.id).values(reasons=""))
    scrub.rows(session, Ask, [Ask.reasons],
               Ask.post_id.in_(select(Post.id).where(Post.bank_id == member.bank_id)))


# introductions through a broker (app.care.introductions)


def _export_introductions(session: Session, member: Member) -> Rows:
    return [{
        "need_ref": ref,
        "you": ("asked for the help" if intro.requester_member_id == member.id
                else "offered to help"),
        "with": "another member", "status": intro.status,
        "asked_at": _when(intro.created_at), "decided_at": _when(intro.decided_at),
    } for intro, ref in session.execute(
        select(Introduction, Post.ref).join(Post, Post.id == Introduction.post_id)
        .where(or_(Introduction.requester_member_id == member.id,
                   Introduction.helper_member_id == member.id))
        .order_by(Introduction.id))]


def _forget_introductions(_session: Session, _member: Member, _scrub: Scrub) -> None:
    """Nothing to erase: a row names members by id only, and the need's words go with the
    posts. A waiting one stands in the way of forgetting (``blockers``)."""


# group activities


def _export_rsvps(session: Session, member: Member) -> Rows:
    return [{
        "activity_ref": activity.ref, "activity": activity.text,
        "coming": rsvp.coming, "answered_at": _when(rsvp.answered_at),
    } for rsvp, activity in session.execute(
        select(Rsvp, Activity).join(Activity, Activity.id == Rsvp.activity_id)
        .where(Rsvp.member_id == member.id).order_by(Rsvp.id))]


def _forget_rsvps(session: Session, member: Member, scrub: Scrub) -> None:
    # Who came stays (they were credited); a broadcast's words may name them.
    scrub.rows(session, Activity, [Activity.text], Activity.bank_id == member.bank_id)


# texts the bank sent


def _export_messages(session: Session, member: Member) -> Rows:
    return [{
        "at": _when(message.created_at), "to": message.to_address, "by": message.channel,
        "kind": message.kind, "status": message.status,
        "text": message.body or "(erased after the bank's retention period)",
    } for message in session.scalars(
        select(Message).where(Message.member_id == member.id).order_by(Message.id))]


def _forget_messages(session: Session, member: Member, scrub: Scrub) -> None:
    addresses = [a for a in (member.phone, member.whatsapp,
                             f"whatsapp:{member.phone}" if member.phone else None) if a]
    to_them = or_(Message.member_id == member.id, Message.to_address.in_(addresses))
    # Nothing more goes to them: a text still waiting is dropped.
    session.execute(update(Message).where(Message.bank_id == member.bank_id, to_them,
                                          Message.status == "queued")
                    .values(status="canceled"))
    # The row stays (status, segments, the caps' counts); its words and address go.
    session.execute(update(Message).where(Message.bank_id == member.bank_id, to_them)
                    .values(body="", values_json=None, to_address=""))
    scrub.rows(session, Message, [Message.body, Message.values_json],
               Message.bank_id == member.bank_id, json_columns=("values_json",))


def _expire_messages(session: Session, bank: Bank, cutoff: datetime) -> int:
    """Erase the words of texts older than ``cutoff`` (the row, its status and its counts
    stay: the caps and delivery reports use them); delete old sign-in code texts."""
    sign_in_cutoff = min(cutoff, utcnow() - SIGN_IN_ROWS_KEPT_AT_LEAST)
    codes = list(session.scalars(
        select(Message.id).where(Message.bank_id == bank.id, Message.kind == "login_code",
                                 Message.created_at < sign_in_cutoff)
        .limit(EXPIRE_BATCH)))
    if codes:
        session.execute(delete(Message).where(Message.id.in_(codes)))
    old = list(session.scalars(
        select(Message.id).where(
            # a literal, as in the partial index's predicate, so the index serves it
            Message.bank_id == bank.id, Message.body != literal_column("''"),
            Message.created_at < cutoff,
            # a text still waiting to go keeps its words until it has gone
            Message.status.not_in(("queued", "sending")))
        .limit(EXPIRE_BATCH)))
    if old:
        session.execute(update(Message).where(Message.id.in_(old))
                        .values(body="", values_json=None))
    return len(codes) + len(old)


# the audit log


def _naming(member: Member) -> Any:
    """Entries that name the member: what they did as a broker, what was done to them
    (``member 12``), and what was done about their own things: their needs and offers, the
    hours asked of them or by them (``ref 17``), their transfers (``transfer 40``) and their
    texts (``text 9``); and entries whose detail names them (``for member 12: …``)."""
    account = select(Account.id).where(Account.member_id == member.id).scalar_subquery()

    def labelled(prefix: str, column: Any) -> Any:
        return literal(prefix, String) + cast(column, String)

    refs = union(
        # Their own needs and offers (a need they helped with is someone else's: what was
        # done about it comes only where the entry's detail names them).
        select(labelled("ref ", Post.ref)).where(
            Post.bank_id == member.bank_id, Post.member_id == member.id),
        select(labelled("ref ", Confirmation.ref)).where(
            Confirmation.bank_id == member.bank_id,
            or_(Confirmation.payer_account_id == account,
                Confirmation.payee_account_id == account)),
        select(labelled("transfer ", Transfer.id)).where(
            Transfer.bank_id == member.bank_id,
            or_(Transfer.from_account_id == account, Transfer.to_account_id == account)),
        select(labelled("text ", InboundText.id)).where(
            InboundText.bank_id == member.bank_id, InboundText.member_id == member.id),
    )
    named = f"member {member.id}"
    return or_(AuditEntry.broker_member_id == member.id,
               AuditEntry.subject == named,
               AuditEntry.subject.in_(refs),
               AuditEntry.detail == named,
               AuditEntry.detail.like(f"{named} %"), AuditEntry.detail.like(f"% {named}"),
               AuditEntry.detail.like(f"% {named} %"), AuditEntry.detail.like(f"% {named}:%"),
               AuditEntry.detail.like(f"{named}:%"))


_MEMBER_NUMBER = re.compile(r"\bmember (\d+)\b")


def _others_unnamed(text: str, member: Member) -> str:
    """An entry's words with every other member's number taken out ("asked member 31" is
    "asked another member"): a member's export is theirs, not who else was asked."""
    return _MEMBER_NUMBER.sub(
        lambda found: found.group(0) if int(found.group(1)) == member.id else "another member",
        text)


def _export_audit(session: Session, member: Member) -> Rows:
    return [{
        "at": _when(entry.created_at), "action": entry.action,
        "by": ("you" if entry.broker_member_id == member.id
               else "a broker" if entry.broker_member_id else "the command line"),
        "subject": _others_unnamed(entry.subject, member),
        "detail": _others_unnamed(entry.detail, member), "via": entry.via,
    } for entry in session.scalars(
        select(AuditEntry).where(AuditEntry.bank_id == member.bank_id, _naming(member))
        .order_by(AuditEntry.id))]


def _forget_audit(session: Session, member: Member, scrub: Scrub) -> None:
    # Entries stay (what brokers did, and to whom by number); names and numbers go.
    scrub.rows(session, AuditEntry, [AuditEntry.subject, AuditEntry.detail],
               AuditEntry.bank_id == member.bank_id)


def _expire_sign_ins(session: Session, bank: Bank, cutoff: datetime) -> int:
    old = list(session.scalars(
        select(AuditEntry.id).where(AuditEntry.bank_id == bank.id,
                                    AuditEntry.action.in_(SIGN_IN_ACTIONS),
                                    AuditEntry.created_at < cutoff).limit(EXPIRE_BATCH)))
    if old:
        session.execute(delete(AuditEntry).where(AuditEntry.id.in_(old)))
    return len(old)


def _export_inbound(session: Session, member: Member) -> Rows:
    return [{
        "at": _when(text.received_at), "text": text.body, "answer": text.answer,
        "read_as": text.route, "inbox": text.inbox,
    } for text in session.scalars(
        select(InboundText).where(InboundText.member_id == member.id).order_by(InboundText.id))]


def _forget_inbound(session: Session, member: Member, scrub: Scrub) -> None:
    """Their texts go; brokers' handling of others' texts stays, without naming them."""
    session.execute(delete(InboundText).where(InboundText.member_id == member.id))
    session.execute(update(InboundText).where(InboundText.handled_by_member_id == member.id)
                    .values(handled_by_member_id=None))
    scrub.rows(session, InboundText, [InboundText.body, InboundText.answer],
               InboundText.bank_id == member.bank_id)
    # Others write a first name alone ("DONE 1 Łucja shopping"): erased too from what they
    # wrote, unless another member of the bank goes by it.
    words = scrub.name.split()
    first = words[0] if len(words) > 1 else ""
    if len(first) >= 3 and not any(
            (other.split() or [""])[0].lower() == first.lower()
            for other in session.scalars(select(Member.name).where(
                Member.bank_id == member.bank_id, Member.id != member.id))):
        Scrub(first, []).rows(session, InboundText, [InboundText.body, InboundText.answer],
                              InboundText.bank_id == member.bank_id)


def _export_duty(session: Session, member: Member) -> Rows:
    return [{"days": duty.days, "from_minute": duty.start_minute, "to_minute": duty.end_minute}
            for duty in session.scalars(
                select(BrokerDuty).where(BrokerDuty.member_id == member.id)
                .order_by(BrokerDuty.id))]


def _forget_duty(session: Session, member: Member, _scrub: Scrub) -> None:
    session.execute(delete(BrokerDuty).where(BrokerDuty.member_id == member.id))


# Every kind of personal data the bank keeps. Forgetting runs each source's ``forget`` in
# this order, but the profile last, so the member's name and number are still there to
# find their rows by. A new table holding personal data needs its functions and one line
# here. (Kept inbound texts expire in the sweep through ``app.care.inbox.forget_old``.)
SOURCES: list[Source] = [
    Source("profile", "Profile", _export_profile, _forget_profile),
    Source("opt_outs", "Texts stopped (STOP)", _export_opt_outs, _forget_opt_outs),
    Source("accounts", "Account", _export_accounts, _forget_accounts),
    Source("transfers", "Hours in and out", _export_transfers, _forget_transfers),
    Source("confirmations", "Hours waiting for a reply, and answered",
           _export_confirmations, _forget_confirmations),
    Source("posts", "Offers and needs", _export_posts, _forget_posts),
    Source("asks", "Needs you were asked to help with", _export_asks, _forget_asks),
    Source("rsvps", "Group activities you answered", _export_rsvps, _forget_rsvps),
    Source("messages", "Texts the bank sent you", _export_messages, _forget_messages,
           _expire_messages, "texts erased"),
    Source("audit", "What brokers did that names you", _export_audit, _forget_audit,
           _expire_sign_ins, "sign-ins deleted"),
    Source("inbound_texts", "Texts you sent the bank, and its answers", _export_inbound,
           _forget_inbound),
    Source("duty", "Times on duty (brokers)", _export_duty, _forget_duty),
    Source("introductions", "Introductions to another member through a broker",
           _export_introductions, _forget_introductions),
]

# Every table, and the source that exports and forgets what it holds about a member; or why
# none does. A new table must be named here (tests/test_privacy.py fails until it is).
COVERED_BY: dict[str, str] = {
    "members": "profile", "opt_outs": "opt_outs", "accounts": "accounts",
    "transfers": "transfers", "confirmations": "confirmations", "posts": "posts",
    "asks": "asks", "activities": "rsvps", "rsvps": "rsvps", "messages": "messages",
    "audit_log": "audit", "inbound_texts": "inbound_texts", "broker_duty": "duty",
    "introductions": "introductions",
}
NOT_A_SOURCE: dict[str, str] = {
    "banks": "the bank's own settings",
    "bank_numbers": "the bank's own phone numbers",
    "member_pairs": "when two members first helped each other or met: worked out from the "
                    "transfers and activities, for the reports' counts; names nobody",
    "member_months": "each member's hours a month, summed from the transfers for the "
                     "reports; names nobody",
}


# --- export ----------------------------------------------------------------------------------


def export(session: Session, member: Member) -> dict[str, Any]:
    bank = session.get(Bank, member.bank_id)
    return {
        "bank": bank.name if bank else None,
        "member": member.id,
        "exported_at": _when(utcnow()),
        "sources": {source.name: source.export(session, member) for source in SOURCES},
    }


def titles() -> dict[str, str]:
    return {source.name: source.title for source in SOURCES}


def export_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def export_html(data: dict[str, Any]) -> str:
    """A page that reads on its own: no scripts, no links, its style inline."""
    from flask import render_template

    return render_template("privacy/export.html", data=data, titles=titles())


def record_export(session: Session, member: Member, *, broker_id: int | None, via: str
                  ) -> None:
    audit.record(session, member.bank_id, "member.exported", broker_id=broker_id,
                 subject=f"member {member.id}", via=via)


def write_export(data: dict[str, Any], folder: Path) -> list[Path]:
    """Write the JSON file and the HTML page into ``folder``, readable by their owner only."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"member-{data['member']}-export"
    written = []
    for suffix, text in (("json", export_json(data)), ("html", export_html(data))):
        path = folder / f"{stem}.{suffix}"
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# --- forget ----------------------------------------------------------------------------------


class CannotForget(Exception):
    """What stands in the way, one line each, with what to do."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def blockers(session: Session, member: Member) -> list[str]:
    """Why ``member`` cannot be forgotten now (empty when they can), each with the fix."""
    found: list[str] = []
    if member.forgotten_at is not None:
        return [f"member {member.id} is already forgotten"]
    account = _account(session, member)
    for request in session.scalars(
            select(Confirmation).where(
                Confirmation.bank_id == member.bank_id, _theirs(member, account),
                Confirmation.status.in_(("pending", "disputed", "held")))
            .order_by(Confirmation.ref)):
        if request.status == "pending":
            found.append(
                f"ref {request.ref} ({request.kind}, {_hours(request.minutes):g} h) is waiting "
                f"for a reply: it is answered YES {request.ref} or NO {request.ref}, or once "
                f"it reaches the brokers' queue, closed with `timebank ledger settle "
                f"{request.ref} --cancel`")
        else:
            found.append(
                f"ref {request.ref} ({request.kind}, {_hours(request.minutes):g} h) is "
                f"{request.status} in the brokers' queue: settle it first with `timebank "
                f"ledger settle {request.ref} --record` or `--cancel`")
    for need in session.scalars(
            select(Post).where(Post.member_id == member.id, Post.kind == "need",
                               Post.status.in_(("open", "matched"))).order_by(Post.ref)):
        found.append(f"their need ref {need.ref} is {need.status}: they text CLOSE {need.ref} "
                     "(or LEAVE), or wait until it expires")
    for need in session.scalars(
            select(Post).where(Post.helper_member_id == member.id,
                               Post.status == "matched").order_by(Post.ref)):
        found.append(f"they are the helper matched to need ref {need.ref}: its owner texts "
                     f"CLOSE {need.ref} once done (or the need expires)")
    for ref in session.scalars(
            select(Post.ref).join(Introduction, Introduction.post_id == Post.id)
            .where(Introduction.status == "waiting",
                   or_(Introduction.requester_member_id == member.id,
                       Introduction.helper_member_id == member.id))
            .order_by(Post.ref)):
        found.append(f"an introduction for need ref {ref} waits for a broker: approve or "
                     "decline it on the dashboard's Introductions page")
    for ref in session.scalars(
            select(Post.ref).join(Ask, Ask.post_id == Post.id)
            .where(Ask.member_id == member.id, Ask.status == "asked", Post.status == "open")
            .order_by(Post.ref)):
        found.append(f"they were asked to help with need ref {ref} and have not answered: "
                     f"they text NO {ref}, or wait until it is matched, closed or expired")
    if member.role == "broker" and member.status == "active":
        others = [b for b in members.brokers(session, member.bank_id) if b.id != member.id]
        if not others:
            found.append("they are the bank's only broker: add another first with "
                         "`timebank broker add PHONE NAME`")
    return found


@dataclass
class Forgotten:
    member_id: int
    bank_id: int
    # What Redis may key by (numbers, hashed there) or hold (names, in dialog state).
    numbers: list[str] = field(default_factory=list)
    name: str = ""
    login_messages: list[int] = field(default_factory=list)
    # Their name is a word the bank itself uses (or part of another member's name): it was
    # erased from their own rows but left in others' texts, where it means something else.
    name_kept_in_texts: bool = False


def name_is_common(session: Session, member: Member) -> bool:
    """Whether ``member``'s name is found in the bank's own words (its name, the texts it
    sends) or in another member's name: then a member who called themselves "Bank" or
    "hours", or "Okoro" beside a Sam Okoro, cannot have their forgetting rewrite every
    other text the bank keeps. Their own rows are erased whatever the name."""
    from conversations.texts import CATALOGUE, DEFAULT_LANGUAGE

    name = member.name.strip()
    if not name:
        return True
    pattern = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)
    bank = session.get(Bank, member.bank_id)
    own_words = [bank.name if bank else "", *CATALOGUE[DEFAULT_LANGUAGE].values()]
    if any(pattern.search(text) for text in own_words):
        return True
    others = session.scalars(select(Member.name).where(
        Member.bank_id == member.bank_id, Member.id != member.id,
        func.lower(Member.name).like(f"%{_like(name.lower())}%", escape="\\")))
    return any(pattern.search(other) for other in others)


def forget(session: Session, member: Member, *, reason: str, broker_id: int | None, via: str,
           region: str = "GB") -> Forgotten:
    """Erase who ``member`` was, in the caller's transaction; ``CannotForget`` first if
    something is still waiting on them. Audited with the reason (scrubbed of the name)."""
    reasons = blockers(session, member)
    if reasons:
        raise CannotForget(reasons)
    numbers = [n for n in {member.phone, member.whatsapp,
                           f"whatsapp:{member.phone}" if member.phone else None} if n]
    common = name_is_common(session, member)
    result = Forgotten(member.id, member.bank_id, sorted(numbers),
                       "" if common else member.name,
                       list(session.scalars(select(Message.id).where(
                           Message.member_id == member.id, Message.kind == "login_code"))),
                       name_kept_in_texts=common)
    scrub = Scrub(result.name, numbers, region)
    # Sources that look the member up by number run before the profile erases it.
    for source in sorted(SOURCES, key=lambda s: s.name == "profile"):
        if source.forget is not None:
            source.forget(session, member, scrub)
    session.flush()
    entry = audit.record(session, member.bank_id, "member.forgotten", broker_id=broker_id,
                         subject=f"member {member.id}", detail=reason, via=via)
    entry.detail = scrub.text(entry.detail) or ""
    return result


def forget_in_redis(services: Services, forgotten: Forgotten) -> int:
    """Delete the dialog state and every other Redis key naming the member's number (by
    its keyed hash), and any dialog or kept answer that holds their name or number."""
    redis: Any = services.redis
    hashes = {services.address_key(number) for number in forgotten.numbers}
    keys: set[bytes | str] = set()
    for digest in hashes:
        keys.update(redis.scan_iter(match=f"*{digest}*", count=1000))
    keys.update(f"tb:login-code-seed:{message_id}" for message_id in forgotten.login_messages)
    scrub = Scrub(forgotten.name, forgotten.numbers)
    needles = scrub.needles()

    def mentions(value: bytes | None) -> bool:
        if not value or not needles:
            return False
        text = value.decode("utf-8", "replace").lower()
        return any(needle in text for needle in needles)

    # Others' dialogs that speak of them (a question about them) just start afresh.
    for key in redis.scan_iter(match=f"tb:session:{forgotten.bank_id}:*", count=1000):
        if mentions(redis.get(key)):
            keys.add(key)
    # Answers kept for a repeated webhook are sealed; unsealed here to look.
    for key in redis.scan_iter(match="tb:inbound:*", count=1000):
        sealed = redis.get(key)
        if sealed and mentions(services.unseal(sealed)):
            keys.add(key)
    return int(redis.delete(*keys)) if keys else 0


# --- retention -------------------------------------------------------------------------------


def expire(session: Session, bank: Bank, now: datetime | None = None) -> dict[str, int]:
    """Erase or delete what ``bank`` keeps past its retention period, source by source."""
    cutoff = (now or utcnow()) - timedelta(days=bank.retention_days)
    return {source.expired_as: source.expire(session, bank, cutoff)
            for source in SOURCES if source.expire is not None}


def expire_all(services: Services, now: datetime | None = None) -> dict[str, int]:
    """The sweep's retention step: each bank in its own transaction."""
    totals = {source.expired_as: 0 for source in SOURCES if source.expire is not None}
    with services.db.reading() as session:
        bank_ids = list(session.scalars(select(Bank.id).order_by(Bank.id)))
    for bank_id in bank_ids:
        with services.db.writing() as session:
            bank = session.get(Bank, bank_id)
            if bank is None:
                continue
            for label, count in expire(session, bank, now).items():
                totals[label] += count
    return totals


# --- command line ----------------------------------------------------------------------------


@click.command("export")
@click.argument("who")
@click.option("--bank", "bank_name", default=None)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="The folder to write the two files in.")
def member_export(who: str, bank_name: str | None, out: Path) -> None:
    """Everything the bank holds about a member (WHO: #12 or a phone number), as a JSON
    file and an HTML page anyone can open."""
    from app.cli import _app, _member_by, prepare

    with _app() as (_, shared):
        prepare(shared)
        with shared.db.writing() as session:
            _, member = _member_by(session, bank_name, who, shared.config)
            data = export(session, member)
            record_export(session, member, broker_id=None, via="cli")
        try:
            written = write_export(data, out)
        except OSError as exc:
            raise click.ClickException(f"could not write to {out}: {exc.strerror}") from None
    click.echo(f"Exported member {data['member']} ({sum(map(len, data['sources'].values()))} "
               "records) to:")
    for path in written:
        click.echo(f"  {path.resolve()}")
    click.echo("They hold personal data: hand them to the member, then delete them.")


@click.command("forget")
@click.argument("who")
@click.option("--reason", prompt="Why (for the audit log; not their name or number)",
              help="Why, for the audit log (asked for if not given).")
@click.option("--bank", "bank_name", default=None)
def member_forget(who: str, reason: str, bank_name: str | None) -> None:
    """Erase who a member was (WHO: #12 or a phone number), keeping their hours as "Former
    member 12". Asks twice; cannot be undone."""
    from app.cli import _app, _member_by, prepare

    if not reason.strip():
        raise click.BadParameter("say why", param_hint="--reason")
    with _app() as (_, shared):
        prepare(shared)
        with shared.db.reading() as session:
            bank, member = _member_by(session, bank_name, who, shared.config)
            found = blockers(session, member)
            name, member_id, bank_name_ = member.name, member.id, bank.name
        if found:
            raise click.ClickException(
                f"{name} (#{member_id}) cannot be forgotten yet:\n  - " + "\n  - ".join(found))
        click.echo(f"This erases {name} (#{member_id}) from {bank_name_}: name, number, "
                   "notes, profile, the texts sent to them and their dialog. Their hours stay, "
                   f"as {placeholder_name(member_id)}. It cannot be undone.")
        click.confirm("Forget this member?", abort=True)
        typed = click.prompt(f"Type #{member_id} to confirm", default="", show_default=False)
        if typed.strip() != f"#{member_id}":
            raise click.ClickException("Not confirmed: nothing was changed.")
        try:
            with shared.db.writing() as session:
                member = session.get(Member, member_id)
                assert member is not None
                forgotten = forget(session, member, reason=reason.strip()[:300], broker_id=None,
                                   via="cli", region=shared.config.default_region)
        except CannotForget as exc:
            raise click.ClickException(
                "cannot be forgotten yet:\n  - " + "\n  - ".join(exc.reasons)) from None
        forget_in_redis(shared, forgotten)
    click.echo(f"Member {member_id} is forgotten: now {placeholder_name(member_id)}. "
               "The ledger still sums to zero (check with: timebank ledger verify).")
    if forgotten.name_kept_in_texts:
        click.echo("Their name is also a word the bank uses (or part of another member's "
                   "name), so it was left where it appears in others' texts.")
