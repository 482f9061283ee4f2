"""Banks and the numbers they are reached on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from conversations import languages
from ledger.errors import LedgerError, NotFound
from ledger.models import Account, Bank, BankNumber, utcnow
from ledger.phones import parse_address


class NumberTaken(LedgerError):
    """A number that another bank already owns."""


def ensure_default_bank(
    session: Session,
    *,
    name: str,
    timezone: str = "Europe/London",
    require_approval: bool = False,
    addresses: Iterable[str] = (),
    region: str = "GB",
) -> Bank:
    """Create the default bank on the first run, and give it any configured number no bank owns.

    Safe to call on every start and from several processes at once.
    """
    bank = default_bank(session)
    if bank is None:
        try:
            with session.begin_nested():
                bank = Bank(
                    name=name, timezone=timezone, require_approval=require_approval,
                    is_default=True, introductions="direct",
                )
                session.add(bank)
        except IntegrityError:
            bank = default_bank(session)
            if bank is None:  # the name is taken by a bank that is not the default
                raise
    for address in addresses:
        parsed = parse_address(address, region)
        if _number(session, parsed.twilio) is None:
            try:
                with session.begin_nested():
                    session.add(
                        BankNumber(bank_id=bank.id, address=parsed.twilio, channel=parsed.channel)
                    )
            except IntegrityError:
                pass  # another process added it first
    ensure_fund(session, bank)
    return bank


def default_bank(session: Session) -> Bank | None:
    return session.scalars(select(Bank).where(Bank.is_default.is_(True))).one_or_none()


def ensure_fund(session: Session, bank: Bank) -> Account:
    """The bank's community fund: the account broker-recorded hours are credited from."""
    fund = session.scalars(
        select(Account).where(Account.bank_id == bank.id, Account.kind == "fund")
    ).one_or_none()
    if fund is not None:
        return fund
    try:
        with session.begin_nested():
            fund = Account(bank_id=bank.id, kind="fund", name="Community fund")
            session.add(fund)
        return fund
    except IntegrityError:
        return session.scalars(
            select(Account).where(Account.bank_id == bank.id, Account.kind == "fund")
        ).one()


def add_bank(
    session: Session,
    name: str,
    *,
    addresses: Iterable[str],
    timezone: str = "Europe/London",
    require_approval: bool = True,
    region: str = "GB",
    introductions: str = "broker",
) -> Bank:
    """Add a bank that owns ``addresses`` (``+44…`` for SMS, ``whatsapp:+44…``).

    A bank added is careful by default: new members wait for a broker's welcome, and members
    are introduced through a broker (``app.care.introductions``). The default bank (made from
    the configuration, ``ensure_default_bank``) is not, so a first run shows a whole exchange.
    """
    if introductions not in ("broker", "direct"):
        raise LedgerError(f"introductions are 'broker' or 'direct', not {introductions!r}")
    parsed = [parse_address(a, region) for a in addresses]
    for address in parsed:
        owner = _number(session, address.twilio)
        if owner is not None:
            raise NumberTaken(f"number already belongs to bank {owner.bank_id}")
    if session.scalars(select(Bank).where(Bank.name == name)).first() is not None:
        raise LedgerError(f"a bank called {name!r} already exists")
    bank = Bank(name=name, timezone=timezone, require_approval=require_approval,
                introductions=introductions)
    session.add(bank)
    session.flush()
    for address in parsed:
        session.add(BankNumber(bank_id=bank.id, address=address.twilio, channel=address.channel))
    ensure_fund(session, bank)
    session.flush()
    return bank


def owner(session: Session, address: str) -> Bank | None:
    """The bank that owns ``address`` (as Twilio writes it), if any."""
    number = _number(session, address)
    return number.bank if number is not None else None


def register_number(session: Session, bank: Bank, address: str, region: str = "GB") -> bool:
    """Give ``bank`` the number ``address``; whether it was new to it. A number another bank
    owns is refused, naming that bank."""
    parsed = parse_address(address, region)
    current = owner(session, parsed.twilio)
    if current is not None and current.id != bank.id:
        raise NumberTaken(f"the number belongs to the bank {current.name!r}")
    if current is not None:
        return False
    session.add(BankNumber(bank_id=bank.id, address=parsed.twilio, channel=parsed.channel))
    session.flush()
    return True


def bank_for_address(session: Session, address: str | None) -> Bank:
    """The bank that owns the number a text was sent to; the default bank for any other."""
    if address:
        number = _number(session, address)
        if number is not None:
            return number.bank
    bank = default_bank(session)
    if bank is None:
        raise NotFound("no default bank: run `timebank db upgrade` first")
    return bank


@dataclass(frozen=True)
class BankInfo:
    """What the webhook needs of a bank on every text; cheap to cache for a few seconds."""

    id: int
    name: str
    require_approval: bool
    answers_per_hour: int
    stranger_answers_per_hour: int
    # ``conversations.languages``: the codes offered, in the choices' order, and the default.
    languages: tuple[str, ...] = ("en",)
    default_language: str = "en"


_BANK_COLUMNS = (Bank.id, Bank.name, Bank.require_approval, Bank.answers_per_hour,
                 Bank.stranger_answers_per_hour, Bank.languages, Bank.default_language)
_BY_NUMBER = (
    select(*_BANK_COLUMNS).join(BankNumber, BankNumber.bank_id == Bank.id)
    .where(BankNumber.address == bindparam("address"))
)
_DEFAULT = select(*_BANK_COLUMNS).where(Bank.is_default.is_(True))


def lookup(connection: Connection, address: str | None) -> BankInfo:
    """``bank_for_address`` in one Core statement, for the webhook's hot path."""
    row = connection.execute(_BY_NUMBER, {"address": address}).first() if address else None
    if row is None:
        row = connection.execute(_DEFAULT).first()
    if row is None:
        raise NotFound("no default bank: run `timebank db upgrade` first")
    offered = languages.offered(row.languages)
    return BankInfo(id=row.id, name=row.name, require_approval=bool(row.require_approval),
                    answers_per_hour=row.answers_per_hour,
                    stranger_answers_per_hour=row.stranger_answers_per_hour,
                    languages=offered,
                    default_language=languages.effective(
                        row.default_language, offered, offered[0]))


def offered_languages(bank: Bank) -> tuple[str, ...]:
    """The languages ``bank`` texts in (``conversations.languages``)."""
    return languages.offered(bank.languages)


def default_language(bank: Bank) -> str:
    """The language strangers and new members of ``bank`` read until they choose."""
    offered = offered_languages(bank)
    return languages.effective(bank.default_language, offered, offered[0])


def bank_by_name(session: Session, name: str | None) -> Bank:
    if not name:
        bank = default_bank(session)
    else:
        bank = session.scalars(select(Bank).where(Bank.name == name)).one_or_none()
    if bank is None:
        raise NotFound(f"no bank called {name!r}" if name else "no default bank")
    return bank


def sender_for(bank: Bank, channel: str, preferred: str | None = None) -> str | None:
    """The number the bank sends from on ``channel``, if it owns one: ``preferred`` (the
    configured number, for the default bank) when the bank owns it, else its first."""
    owned = [number.address for number in bank.numbers if number.channel == channel]
    if preferred and preferred in owned:
        return preferred
    return owned[0] if owned else None


def day_bounds(bank: Bank, now: datetime | None = None) -> tuple[datetime, datetime, str]:
    """Start and end (UTC) of the bank's current day in its time zone, and its date for keys:
    daily limits count from the start."""
    try:
        zone = ZoneInfo(bank.timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    local = (now or utcnow()).astimezone(zone)
    start = datetime.combine(local.date(), time(0), tzinfo=zone)
    end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC), local.date().isoformat()


def _number(session: Session, address: str) -> BankNumber | None:
    return session.scalars(select(BankNumber).where(BankNumber.address == address)).one_or_none()


__all__ = [
    "NumberTaken",
    "add_bank",
    "bank_by_name",
    "bank_for_address",
    "day_bounds",
    "default_bank",
    "ensure_default_bank",
    "ensure_fund",
    "owner",
    "register_number",
    "sender_for",
]
