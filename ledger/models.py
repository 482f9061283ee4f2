"""The tables. Every row that belongs to a community belongs to exactly one bank.

Hours are stored as whole minutes (quarter-hour steps are enforced by the services), so sums
are exact in every database.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

DEFAULT_MIN_BALANCE_MINUTES = -20 * 60
DEFAULT_MAX_EXCHANGE_MINUTES = 24 * 60
# The national crisis line a bank gives to anyone in distress, until it sets its own.
DEFAULT_CRISIS_TEXT = "Samaritans 116 123, free, day or night"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A moment, aware and in UTC on every backend. PostgreSQL keeps the zone; SQLite keeps
    none and hands back naive values: stored as UTC, they are read back as UTC, so no
    caller ever meets a naive time or the host's local zone. A naive value is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime ({value}) cannot be stored: give it a zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect
                             ) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Bank(Base):
    """One time bank: its members, accounts and numbers. One deployment hosts many."""

    __tablename__ = "banks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    require_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    min_balance_minutes: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_MIN_BALANCE_MINUTES
    )
    max_exchange_minutes: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_MAX_EXCHANGE_MINUTES
    )
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # References members reply with ("YES 17"), shared by every kind of request in the bank.
    next_ref: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Unanswered confirmations: reminded once, then passed to brokers (or, if the bank has
    # chosen so, credited without an answer).
    confirm_remind_hours: Mapped[int] = mapped_column(Integer, default=48, server_default="48")
    confirm_escalate_hours: Mapped[int] = mapped_column(
        Integer, default=7 * 24, server_default="168"
    )
    auto_confirm: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A broadcast by text to more members than this waits for the broker's YES <ref>.
    broadcast_confirm_over: Mapped[int] = mapped_column(
        Integer, default=10, server_default="10"
    )
    # No helper is asked about more needs than this in one of the bank's days: a member who
    # lists every skill there is cannot collect every requester's number.
    asks_per_helper_per_day: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    # Caps on what texts cost (app.caps), per day in the bank's time zone: texts to others
    # caused by one member, texts one member receives because of others, all outbound texts;
    # and answers to one number an hour (members, strangers).
    member_daily_texts: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    recipient_daily_texts: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    bank_daily_texts: Mapped[int] = mapped_column(Integer, default=2000, server_default="2000")
    answers_per_hour: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    stranger_answers_per_hour: Mapped[int] = mapped_column(
        Integer, default=10, server_default="10"
    )
    # Days the bank keeps what members wrote, the words of texts it sent, and sign-in
    # records; the sweep deletes older ones. The ledger is kept.
    retention_days: Mapped[int] = mapped_column(Integer, default=90, server_default="90")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # How members who agreed to help are introduced: ``direct`` (numbers on the first YES)
    # or ``broker`` (a broker approves first: app.care.introductions).
    introductions: Mapped[str] = mapped_column(String(16), default="direct",
                                               server_default="direct")
    # Care (app.care.away): a member with no exchange or text for this many weeks has gone
    # quiet; a check-in text after a quiet spell (off by default); the moment up to which the
    # brokers' daily summary has told them of people to check on.
    quiet_after_weeks: Mapped[int] = mapped_column(Integer, default=6, server_default="6")
    check_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    care_summary_through: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Care (app.care.inbox): when a broker is usually there to call back ("weekdays 10am to
    # 4pm"), the bank's own support line, and the crisis line given to anyone in distress.
    contact_hours: Mapped[str | None] = mapped_column(String(60))
    support_line: Mapped[str | None] = mapped_column(String(40))
    crisis_text: Mapped[str] = mapped_column(
        String(80), default=DEFAULT_CRISIS_TEXT, server_default=DEFAULT_CRISIS_TEXT
    )
    # A new random number (in the same transaction) whenever something matching reads
    # changes: a member's status, profile or opt-out, an offer. A worker's cached match index
    # is good only while this is the number it was built at (ledger.match_cache). Random, not
    # counted up: a database restored or wiped and filled again cannot repeat a number with
    # other contents.
    match_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The languages the bank texts in (``conversations.languages``): a comma list of codes,
    # or NULL for every language with a catalogue file; and the one strangers and new
    # members read until they choose (``LANG``).
    languages: Mapped[str | None] = mapped_column(String(120))
    default_language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")

    numbers: Mapped[list[BankNumber]] = relationship(
        back_populates="bank", order_by="BankNumber.id"
    )

    __table_args__ = (
        # At most one default bank, enforced by the database so two first runs cannot race.
        Index(
            "uq_banks_default", "is_default", unique=True,
            postgresql_where=text("is_default"), sqlite_where=text("is_default"),
        ),
    )


class BankNumber(Base):
    """A number a bank texts from and is texted on: ``+44…`` (SMS) or ``whatsapp:+44…``."""

    __tablename__ = "bank_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"), index=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))

    bank: Mapped[Bank] = relationship(back_populates="numbers")


class Member(Base):
    """A person in one bank. The same person in two banks is two members with two balances."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    phone: Mapped[str | None] = mapped_column(String(32))
    whatsapp: Mapped[str | None] = mapped_column(String(48))
    name: Mapped[str] = mapped_column(String(80))
    area: Mapped[str | None] = mapped_column(String(80))
    skills: Mapped[str | None] = mapped_column(String(300))
    availability: Mapped[str | None] = mapped_column(String(160))
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default="active")
    role: Mapped[str] = mapped_column(String(16), default="member")
    notes: Mapped[str | None] = mapped_column(Text)
    last_channel: Mapped[str] = mapped_column(String(16), default="sms")
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A broker put the member on hold (status back to ``pending``): no hours, matches or
    # broadcasts until a broker approves them again.
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Brokers only: the dashboard password (a salted hash; never the password itself).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # Brokers only: a dashboard session is good only while this matches the one it was
    # signed in under; signing out, a new password or a hold moves it on (app.auth).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A broker's choice (private notes): this member is introduced only through a broker,
    # whatever the bank's setting (app.care.introductions).
    intro_via_broker: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=false())
    # When the bank erased who this was (``timebank member forget``): the row stays, as
    # "Former member 12", so the ledger and others' statements stay true (app.privacy).
    forgotten_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Care (app.care.away). Paused (AWAY, or a broker for a hospital stay) since then: no
    # asks, broadcasts or reminders; back by itself at ``away_until`` (the start of that day
    # in the bank's zone) if set, told the day before (``away_warned_at``). ``away_by``: the
    # broker who set it (None: the member). ``back_at``: the last pause's end (counts as
    # contact for going quiet). ``leave_asked_at``: LEAVE sent, waiting for LEAVE NOW.
    # ``check_in_sent_at``: the last check-in text after a quiet spell.
    away_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    away_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    away_by_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", name="fk_members_away_by"))
    away_warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leave_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_in_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A phone shared by two members of a bank (a couple, a carer and the person cared for):
    # 0 for the first (everyone who joins by text), 1 for the second, whom a broker added.
    # ``phone`` is empty for a member without one (a broker registered them).
    phone_slot: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        UniqueConstraint("bank_id", "phone", "phone_slot", name="uq_members_bank_phone_slot"),
        CheckConstraint("status in ('pending', 'active', 'left')", name="ck_members_status"),
        CheckConstraint("role in ('member', 'broker')", name="ck_members_role"),
        CheckConstraint("phone_slot in (0, 1)", name="ck_members_phone_slot"),
        Index("ix_members_bank_name", "bank_id", "name", "id"),
    )


class OptOut(Base):
    """A number that asked the bank (by STOP or a carrier's 21610) to send it nothing."""

    __tablename__ = "opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    phone: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32), default="stop")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("bank_id", "phone", name="uq_opt_outs_bank_phone"),)


class Account(Base):
    """Where hours are held: a member's, an organisation's, or the bank's community fund."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    balance_minutes: Mapped[int] = mapped_column(Integer, default=0)
    # None: the bank's limit applies.
    min_balance_minutes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "kind in ('member', 'organisation', 'fund')", name="ck_accounts_kind"
        ),
        Index(
            "uq_accounts_fund", "bank_id", unique=True,
            postgresql_where=text("kind = 'fund'"), sqlite_where=text("kind = 'fund'"),
        ),
    )


class Transfer(Base):
    """An immutable movement of hours between two accounts of one bank."""

    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    from_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    to_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    minutes: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(200), default="")
    entered_by: Mapped[str] = mapped_column(String(16))
    entered_by_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    idempotency_key: Mapped[str] = mapped_column(String(120))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("bank_id", "idempotency_key", name="uq_transfers_idempotency"),
        CheckConstraint("minutes > 0", name="ck_transfers_positive"),
        CheckConstraint("minutes % 15 = 0", name="ck_transfers_quarter_hours"),
        CheckConstraint("from_account_id <> to_account_id", name="ck_transfers_distinct"),
        CheckConstraint(
            "entered_by in ('member', 'broker', 'system')", name="ck_transfers_entered_by"
        ),
        Index("ix_transfers_bank_created", "bank_id", "created_at"),
        Index("ix_transfers_from_id", "from_account_id", "id"),
        Index("ix_transfers_to_id", "to_account_id", "id"),
        Index("ix_transfers_bank_id", "bank_id", "id"),
        Index("ix_transfers_reverses", "reverses_id"),
        # An activity's credits by key prefix (``activity:<id>:``), for ledger.pairs.
        Index("ix_transfers_activity_key", "bank_id", "idempotency_key",
              postgresql_ops={"idempotency_key": "text_pattern_ops"},
              postgresql_where=text("kind = 'activity'"),
              sqlite_where=text("kind = 'activity'")),
    )


class Confirmation(Base):
    """Hours waiting for a member's reply before they become a transfer.

    ``exchange``: a member reported help they gave (``DONE``); the member helped confirms.
    ``gift``: a member asked to give hours (``GIVE``); the giver confirms the preview.
    The payer is always the account the hours leave. It lives in SQL, so ``YES 17`` works days
    later and after any restart.
    """

    __tablename__ = "confirmations"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    ref: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    payer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    payee_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    minutes: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200), default="")
    requested_by_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    confirmer_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    request_key: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    note: Mapped[str | None] = mapped_column(String(200))
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"))
    # The MessageSid of the member's YES or NO, so a retried bare YES settles the same request.
    answered_sid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("bank_id", "ref", name="uq_confirmations_ref"),
        UniqueConstraint("bank_id", "request_key", name="uq_confirmations_request"),
        CheckConstraint("minutes > 0 and minutes % 15 = 0", name="ck_confirmations_minutes"),
        CheckConstraint(
            "status in ('pending', 'confirmed', 'disputed', 'held', 'canceled')",
            name="ck_confirmations_status",
        ),
        CheckConstraint("kind in ('exchange', 'gift')", name="ck_confirmations_kind"),
        Index("ix_confirmations_bank_status", "bank_id", "status"),
        Index("ix_confirmations_answered_sid", "bank_id", "answered_sid"),
    )


class Post(Base):
    """An offer of help, or a need, posted by a member by text. A need is matched to one
    helper; its reference is shared with confirmations (``YES 42``)."""

    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(String(300))
    ref: Mapped[int] = mapped_column(Integer)
    request_key: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="open")
    helper_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    wave: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the member was told the need is about to close, and the helper reminded to report.
    expiry_warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("bank_id", "ref", name="uq_posts_ref"),
        UniqueConstraint("bank_id", "request_key", name="uq_posts_request"),
        CheckConstraint("kind in ('offer', 'need')", name="ck_posts_kind"),
        CheckConstraint(
            "status in ('open', 'matched', 'closed', 'expired')", name="ck_posts_status"
        ),
        Index("ix_posts_bank_status", "bank_id", "kind", "status"),
    )


class Ask(Base):
    """A member asked to help with a need, with why they were chosen."""

    __tablename__ = "asks"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    wave: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="asked")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("post_id", "member_id", name="uq_asks_post_member"),
        CheckConstraint(
            "status in ('asked', 'accepted', 'declined', 'too_late')", name="ck_asks_status"
        ),
    )


class Message(Base):
    """A text the bank sends. The idempotency key makes every send happen at most once."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    to_address: Mapped[str] = mapped_column(String(48))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # SMS segments the body costs (GSM-7: 160 characters, 153 when split; UCS-2: 70, 67).
    segments: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # When an attempt first may have reached Twilio without our hearing back (a read
    # timeout): the next attempt looks for a message created since then before sending.
    possibly_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Held until then (quiet hours in the bank's time zone); None: send now.
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The values the body was rendered with (JSON), for a WhatsApp template's variables.
    values_json: Mapped[str | None] = mapped_column(Text)
    # The broadcast this text belongs to, for progress and for batched delivery.
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id"))
    # The member whose action made the bank text someone else unasked (a DONE, a gift, a
    # need's asks): what the caps in app.caps count. None for replies, brokers' texts, the
    # bank's own notices.
    caused_by_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    # When it was handed to the transport: the bank's daily cap counts these.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        Index("ix_messages_activity_status", "activity_id", "status"),
        Index("ix_messages_caused_by", "caused_by_member_id", "created_at"),
        Index("ix_messages_bank_sent", "bank_id", "sent_at"),
        # The bodies the retention sweep has still to erase (app.privacy.expire).
        Index("ix_messages_kept_bodies", "bank_id", "created_at",
              postgresql_where=text("body <> ''"), sqlite_where=text("body <> ''")),
        Index("ix_messages_activity_status_id", "activity_id", "status", "id"),
    )


class Activity(Base):
    """A group activity a broker announced (``BROADCAST``). Members answer ``YES <ref>``;
    the broker credits those who came (``CREDIT <ref> <hours>``), once each."""

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    ref: Mapped[int] = mapped_column(Integer)
    broker_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    text: Mapped[str] = mapped_column(String(480))
    # Who it goes to: everyone, or members in an area (``@Lambeth``) or with a skill
    # or interest (``#gardening``).
    audience_area: Mapped[str | None] = mapped_column(String(80))
    audience_skill: Mapped[str | None] = mapped_column(String(80))
    # Whose hours attendees are credited from: an organisation hosting it, else the fund.
    host_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    request_key: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="planned")
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    segments: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("bank_id", "ref", name="uq_activities_ref"),
        UniqueConstraint("bank_id", "request_key", name="uq_activities_request"),
        CheckConstraint(
            "status in ('planned', 'sending', 'canceled')", name="ck_activities_status"
        ),
    )


class Rsvp(Base):
    """A member's answer to a group activity: coming (``YES 7``) or not (``NO 7``)."""

    __tablename__ = "rsvps"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    coming: Mapped[bool] = mapped_column(Boolean)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("activity_id", "member_id", name="uq_rsvps_member"),)


class AuditEntry(Base):
    """Something a broker did (by text, on the dashboard or at the command line)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    broker_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[str] = mapped_column(String(400), default="")
    via: Mapped[str] = mapped_column(String(16), default="web")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_audit_bank_created", "bank_id", "created_at"),)


class Introduction(Base):
    """Two members waiting for a broker to introduce them: a helper said YES to a need in a
    bank (or with a member) where introductions go through a broker. Numbers are exchanged
    only once a broker approves (``app.care.introductions``)."""

    __tablename__ = "introductions"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    requester_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    helper_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    decided_by_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "status in ('waiting', 'approved', 'declined', 'canceled')",
            name="ck_introductions_status",
        ),
        Index("ix_introductions_bank_status", "bank_id", "status"),
    )


class InboundText(Base):
    """A text someone sent the bank, kept for the bank's retention period: what they wrote,
    what the bank answered, how it was read (``route``) and, when a person should read it,
    its place in the brokers' inbox (``inbox``: open, then handled)."""

    __tablename__ = "inbound_texts"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    # A stranger's number, masked (``ledger.phones.mask``): the bank keeps no more of it.
    masked_from: Mapped[str | None] = mapped_column(String(24))
    body: Mapped[str] = mapped_column(Text)
    # The bank's answer (the replies in its TwiML), one per line.
    answer: Mapped[str | None] = mapped_column(Text)
    route: Mapped[str] = mapped_column(String(16))
    inbox: Mapped[str | None] = mapped_column(String(8))
    handled_by_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "route in ('command', 'not_understood', 'talk', 'distress', 'small_talk')",
            name="ck_inbound_texts_route",
        ),
        CheckConstraint("inbox in ('open', 'handled')", name="ck_inbound_texts_inbox"),
        Index("ix_inbound_texts_bank_received", "bank_id", "received_at"),
        Index("ix_inbound_texts_member_received", "member_id", "received_at"),
        Index("ix_inbound_texts_bank_inbox", "bank_id", "inbox"),
    )


class BrokerDuty(Base):
    """When a broker is on duty: the days of the week (a bit each, Monday = 1) and the hours
    (minutes from midnight in the bank's time zone; an end before the start runs overnight).
    A bank with no rows has every active broker on duty (``app.care.duty``)."""

    __tablename__ = "broker_duty"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    days: Mapped[int] = mapped_column(Integer)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("days > 0 and days < 128", name="ck_broker_duty_days"),
        CheckConstraint("start_minute >= 0 and start_minute < 1440 and end_minute >= 0 "
                        "and end_minute <= 1440", name="ck_broker_duty_minutes"),
    )


class MemberPair(Base):
    """Derived from the transfers (``ledger.pairs`` keeps it in step, in the same
    transaction): when two members of a bank first met, by an exchange or gift between them
    (``exchange_at``) or by being credited for the same group activity (``activity_at``,
    once both were); ``met_at`` is the earlier. Transfers that were reversed, and
    reversals, count as nothing. ``member_a_id < member_b_id``."""

    __tablename__ = "member_pairs"

    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"), primary_key=True)
    member_a_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    member_b_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    met_at: Mapped[datetime] = mapped_column(UTCDateTime)
    exchange_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("member_a_id < member_b_id", name="ck_member_pairs_order"),
        Index("ix_member_pairs_bank_met", "bank_id", "met_at"),
    )


class MemberMonth(Base):
    """Derived from the transfers (``ledger.months`` keeps it in step, in the same
    transaction): what one member of a bank gave and received in one month (``YYYY-MM`` in
    UTC), counting only the transfers the reports count (``reports.counted_moves``: neither
    reversed nor a reversal). Given: help credited to the member (``reports._given``: an
    exchange, record or activity, the member paid); received: an exchange the member paid
    (``reports._received``). ``first_received_*`` is the month's earliest help received and
    ``last_gave_*`` its latest help given, each by (time, transfer id)."""

    __tablename__ = "member_months"

    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    gave_minutes: Mapped[int] = mapped_column(BigInteger, default=0)
    gave_count: Mapped[int] = mapped_column(Integer, default=0)
    received_minutes: Mapped[int] = mapped_column(BigInteger, default=0)
    received_count: Mapped[int] = mapped_column(Integer, default=0)
    first_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_received_id: Mapped[int | None] = mapped_column(Integer)
    last_gave_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_gave_id: Mapped[int | None] = mapped_column(Integer)
    # Of gave_minutes, those for helping another member and those for group activities (the
    # rest were recorded by a broker): the co-production page's hours by kind of help.
    gave_exchange_minutes: Mapped[int] = mapped_column(BigInteger, default=0)
    gave_activity_minutes: Mapped[int] = mapped_column(BigInteger, default=0)
    # The primary key leads with (bank_id, month): a period's months are one range of it.
