"""Who is on duty: the brokers the bank texts at once when a member asks for a person or is
in distress.

A bank with no rota has every active broker on duty, always. Once it names who is on duty
and when (``timebank broker duty WHO --days mon-fri --hours 09:00-17:00``), those brokers
are, at those times in the bank's time zone; when nobody is, every active broker is, so
that an alert never goes to no one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import click
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger import audit, banks, members
from ledger.errors import LedgerError
from ledger.models import Bank, BrokerDuty, Member, utcnow

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS = 0b1111111
_DAY_WORDS = {"weekdays": 0b0011111, "weekends": 0b1100000, "daily": ALL_DAYS,
              "everyday": ALL_DAYS, "all": ALL_DAYS}
WHOLE_DAY = (0, 1440)


class BadDuty(ValueError):
    """Days or hours that cannot be read."""


def parse_days(spec: str) -> int:
    """``"mon-fri"``, ``"sat,sun"``, ``"weekdays"``, ``"daily"`` → a bit per day (Monday 1)."""
    found = 0
    for part in spec.lower().replace(" ", "").split(","):
        if not part:
            continue
        if part in _DAY_WORDS:
            found |= _DAY_WORDS[part]
            continue
        first, _, last = part.partition("-")
        try:
            start = DAY_NAMES.index(first[:3])
            end = DAY_NAMES.index(last[:3]) if last else start
        except ValueError:
            raise BadDuty(f"{part!r} is not a day: write mon-fri, sat,sun or daily") from None
        day = start
        while True:
            found |= 1 << day
            if day == end:
                break
            day = (day + 1) % 7
    if not found:
        raise BadDuty("say which days, e.g. mon-fri")
    return found


def _minute(text: str) -> int:
    hours, _, minutes = text.strip().partition(":")
    if not hours.isdigit() or (minutes and not minutes.isdigit()):
        raise BadDuty(f"{text!r} is not a time: write 09:00")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 1440 or (minutes and int(minutes) > 59):
        raise BadDuty(f"{text!r} is not a time: write 09:00")
    return value


def parse_hours(spec: str) -> tuple[int, int]:
    """``"09:00-17:00"`` → (540, 1020); ``"22:00-08:00"`` runs overnight; ``"all day"``."""
    spec = spec.strip().lower()
    if spec in ("all day", "allday", "24h", "always", "00:00-24:00"):
        return WHOLE_DAY
    start_text, dash, end_text = spec.partition("-")
    if not dash:
        raise BadDuty("write the hours as 09:00-17:00")
    start, end = _minute(start_text), _minute(end_text)
    if start == 1440:
        start = 0
    if start == end:
        return WHOLE_DAY
    return start, end


def describe(duty: BrokerDuty) -> str:
    """``"mon-fri 09:00-17:00"``."""
    days = [DAY_NAMES[d] for d in range(7) if duty.days & (1 << d)]
    if duty.days == ALL_DAYS:
        named = "daily"
    elif duty.days == _DAY_WORDS["weekdays"]:
        named = "mon-fri"
    else:
        named = ",".join(days)
    if (duty.start_minute, duty.end_minute) == WHOLE_DAY:
        return f"{named} all day"
    return f"{named} {_clock(duty.start_minute)}-{_clock(duty.end_minute)}"


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def covers(duty: BrokerDuty, local: datetime) -> bool:
    """Whether ``duty`` covers ``local`` (a time in the bank's zone)."""
    minute = local.hour * 60 + local.minute
    today = bool(duty.days & (1 << local.weekday()))
    start, end = duty.start_minute, duty.end_minute
    if start < end:
        return today and start <= minute < end
    # Overnight: from the start on a duty day until the end the next morning.
    yesterday = bool(duty.days & (1 << (local - timedelta(days=1)).weekday()))
    return (today and minute >= start) or (yesterday and minute < end)


def _zone(bank: Bank) -> ZoneInfo:
    try:
        return ZoneInfo(bank.timezone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def brokers_on_duty(session: Session, bank: Bank, at: datetime | None = None) -> list[Member]:
    """The active brokers of ``bank`` on duty at ``at`` (now): those the rota names for that
    time, else (no rota, or nobody on duty then) every active broker. A broker who is away
    (``AWAY``) is left out, unless every broker is."""
    active = members.brokers(session, bank.id)
    everyone = [broker for broker in active if broker.away_since is None] or active
    rota = list(session.scalars(select(BrokerDuty).where(BrokerDuty.bank_id == bank.id)))
    if not rota:
        return everyone
    local = (at or utcnow()).astimezone(_zone(bank))
    on = {duty.member_id for duty in rota if covers(duty, local)}
    named = [broker for broker in everyone if broker.id in on]
    return named or everyone


def rota(session: Session, bank: Bank) -> list[tuple[Member, BrokerDuty]]:
    rows = session.execute(
        select(Member, BrokerDuty).join(BrokerDuty, BrokerDuty.member_id == Member.id)
        .where(BrokerDuty.bank_id == bank.id).order_by(Member.name, BrokerDuty.id))
    return [(row[0], row[1]) for row in rows]


def add_duty(session: Session, bank: Bank, broker: Member, days: int, hours: tuple[int, int],
             *, via: str = "cli", by: Member | None = None) -> BrokerDuty:
    if broker.bank_id != bank.id or broker.role != "broker" or broker.status != "active":
        raise LedgerError(f"{broker.name} is not an active broker of {bank.name}")
    duty = BrokerDuty(bank_id=bank.id, member_id=broker.id, days=days,
                      start_minute=hours[0], end_minute=hours[1])
    session.add(duty)
    session.flush()
    audit.record(session, bank.id, "duty.added", broker_id=by.id if by else None,
                 subject=f"member {broker.id}", detail=describe(duty), via=via)
    return duty


def clear_duty(session: Session, bank: Bank, broker: Member, *, via: str = "cli",
               by: Member | None = None) -> int:
    result = session.execute(delete(BrokerDuty).where(
        BrokerDuty.bank_id == bank.id, BrokerDuty.member_id == broker.id))
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        audit.record(session, bank.id, "duty.cleared", broker_id=by.id if by else None,
                     subject=f"member {broker.id}", detail=f"{count} times", via=via)
    return count


# --- command line: timebank broker duty ------------------------------------------------------


@click.command("duty")
@click.argument("who", required=False)
@click.option("--days", default=None, help="Days on duty: mon-fri, sat,sun, weekdays, daily.")
@click.option("--hours", default=None, help="Hours on duty, e.g. 09:00-17:00 (or 'all day').")
@click.option("--clear", is_flag=True, help="Take WHO off the rota.")
@click.option("--bank", "bank_name", default=None, help="The bank's name (default bank if absent).")
def duty_command(who: str | None, days: str | None, hours: str | None, clear: bool,
                 bank_name: str | None) -> None:
    """Who is on duty for texts asking for a person and for distress alerts. WHO is a
    broker's phone number or #12. Without WHO, shows the rota. Without a rota, every broker
    is on duty."""
    from app.cli import _app, prepare

    with _app() as (_, shared):
        prepare(shared)
        region = shared.config.default_region
        with shared.db.writing() as session:
            bank = banks.bank_by_name(session, bank_name)
            if who is None:
                lines = [f"{m.name} (#{m.id}): {describe(d)}" for m, d in rota(session, bank)]
                on = ", ".join(f"{b.name} (#{b.id})" for b in brokers_on_duty(session, bank))
                lines.append(f"On duty now: {on or 'nobody (no active brokers)'}"
                             + ("" if lines else " (no rota: every broker)"))
                click.echo("\n".join(lines))
                return
            broker = members.resolve_who(session, bank.id, who, region)
            if broker is None or broker.role != "broker" or broker.status != "active":
                raise click.ClickException(f"no active broker of {bank.name} is {who}")
            if clear:
                count = clear_duty(session, bank, broker)
                click.echo(f"{broker.name} is off the rota ({count} times removed).")
                return
            if days is None and hours is None:
                raise click.UsageError("give --days and --hours (or --clear)")
            try:
                duty = add_duty(session, bank, broker, parse_days(days or "daily"),
                                parse_hours(hours or "all day"))
            except BadDuty as exc:
                raise click.BadParameter(str(exc)) from None
            click.echo(f"{broker.name} is on duty {describe(duty)} ({bank.timezone}).")
