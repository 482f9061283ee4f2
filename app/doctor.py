"""``timebank doctor``: is this deployment set up to run? Each check says ok, warning or
problem, and for anything not ok what to do. A problem makes the command exit non-zero.

Each check is a small function of the configuration (and the connections it needs)
returning a :class:`Finding`; none of them changes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from twilio.base.exceptions import TwilioException, TwilioRestException

from app.config import DEVELOPMENT_KEY, Config
from app.delivery import BadSetting, parse_quiet_hours
from app.delivery import templates as parse_templates
from app.services import connect_redis
from ledger import banks
from ledger.db import Database
from ledger.migrate import alembic_config
from ledger.models import Bank

OK, WARNING, PROBLEM = "ok", "warning", "problem"
HEARTBEAT_WITHIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Finding:
    status: str
    message: str
    fix: str = ""


def database(config: Config, db: Database) -> Finding:
    """Reachable, and migrated to the newest revision."""
    try:
        with db.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        return Finding(PROBLEM, f"database unreachable: {type(exc).__name__}",
                       "check DATABASE_URL and that the database server is running")
    head = ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()
    if current != head:
        return Finding(PROBLEM, f"database not migrated (at {current or 'nothing'}, "
                                f"newest is {head})", "run `timebank db upgrade`")
    return Finding(OK, f"database reachable and migrated ({head})")


def redis_memory(config: Config, redis: Redis) -> Finding:
    """Reachable, and never evicting keys (queued jobs would vanish)."""
    try:
        policy = _config_get(redis, "maxmemory-policy")
    except RedisError as exc:
        return Finding(PROBLEM, f"Redis unreachable: {type(exc).__name__}",
                       "check REDIS_URL and that Redis is running")
    if policy is None:
        return Finding(WARNING, "Redis reachable; its maxmemory-policy cannot be read",
                       "make sure your Redis provider sets maxmemory-policy noeviction")
    if policy != "noeviction":
        return Finding(PROBLEM, f"Redis evicts keys (maxmemory-policy {policy}): queued "
                                "texts can vanish", "set maxmemory-policy noeviction")
    return Finding(OK, "Redis reachable, maxmemory-policy noeviction")


def redis_persistence(config: Config, redis: Redis) -> Finding:
    """Persistence on, so a restart keeps the queue (the sweep re-sends what is lost)."""
    if not config.redis_url:
        return Finding(OK, "embedded Redis: fine for a laptop",
                       "for a deployment, set REDIS_URL to a Redis server")
    try:
        aof, save = _config_get(redis, "appendonly"), _config_get(redis, "save")
    except RedisError:
        return Finding(WARNING, "Redis persistence unknown (Redis unreachable)")
    if aof is None:
        return Finding(WARNING, "Redis persistence cannot be read",
                       "make sure your Redis provider keeps data (AOF) across restarts")
    if aof == "yes":
        try:
            fsync = _config_get(redis, "appendfsync")
        except RedisError:
            fsync = None
        if fsync == "no":
            return Finding(WARNING, "Redis appendfsync no: a crash can lose the last half "
                                    "minute of jobs", "set appendfsync everysec")
        return Finding(OK, f"Redis persistence on (appendonly, appendfsync {fsync or '?'})")
    fix = "set appendonly yes and appendfsync everysec"
    if save:
        return Finding(WARNING, "Redis keeps only snapshots: a restart loses recent jobs", fix)
    return Finding(WARNING, "Redis persistence off: a restart loses the queue", fix)


def worker(config: Config, redis: Redis) -> Finding:
    """A worker on the bank's queue has beaten its heart in the last minute."""
    try:
        workers = Worker.all(connection=redis)
    except RedisError:
        return Finding(PROBLEM, "workers unknown (Redis unreachable)")
    since = datetime.now(UTC) - HEARTBEAT_WITHIN
    alive = [w for w in workers if config.queue_name in w.queue_names()
             and w.last_heartbeat is not None and _utc(w.last_heartbeat) >= since]
    if not alive:
        return Finding(PROBLEM, "no worker seen in the last minute: texts wait in the queue",
                       "start the worker (`python worker.py`, the Procfile's worker, or "
                       "`timebank run`)")
    return Finding(OK, f"{len(alive)} worker(s) seen in the last minute")


def secret_key(config: Config) -> Finding:
    if config.secret_key != DEVELOPMENT_KEY:
        return Finding(OK, "secret key set")
    fix = "set TIMEBANK_SECRET_KEY to a long random string (python -c " \
          "'import secrets; print(secrets.token_urlsafe(48))')"
    if config.public:
        return Finding(PROBLEM, "the development secret key, on a public deployment: "
                                "dashboard sessions can be forged", fix)
    return Finding(WARNING, "the development secret key (fine on a laptop only)", fix)


def twilio_credentials(config: Config) -> Finding:
    """With Twilio configured, the account can be fetched with these credentials."""
    if not (config.twilio_account_sid or config.twilio_auth_token):
        return Finding(WARNING, "Twilio not configured: texts are printed, not sent",
                       "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    if not config.uses_twilio:
        return Finding(PROBLEM, "only one of TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN is set",
                       "set both, from the Twilio console")
    try:
        account = _twilio(config).api.v2010.accounts(config.twilio_account_sid).fetch()
    except TwilioRestException as exc:
        if exc.status in (401, 403, 404):
            return Finding(PROBLEM, f"Twilio refused these credentials ({exc.status})",
                           "copy TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN from the Twilio "
                           "console again")
        return Finding(WARNING, f"Twilio answered {exc.status}; try again later")
    except (TwilioException, OSError) as exc:
        return Finding(WARNING, f"Twilio unreachable ({type(exc).__name__})",
                       "check this machine reaches TWILIO_API_BASE_URL")
    if account.status != "active":
        return Finding(PROBLEM, f"the Twilio account is {account.status}",
                       "reactivate it in the Twilio console")
    return Finding(OK, "Twilio credentials valid, account active")


def bank_numbers(config: Config, db: Database) -> Iterator[Finding]:
    """Each bank has numbers; with Twilio, each SMS number is the account's and sends its
    texts to this deployment."""
    try:
        with db.reading() as session:
            found = [(b.name, b.is_default, [n.address for n in b.numbers])
                     for b in session.scalars(select(Bank).order_by(Bank.id))]
    except SQLAlchemyError:
        return  # the database check says why
    if config.uses_twilio and not config.public_base_url:
        yield Finding(PROBLEM, "PUBLIC_BASE_URL not set: Twilio has no address to send "
                               "texts to", "set PUBLIC_BASE_URL to this deployment's https "
                                           "address")
    for name, is_default, numbers in found:
        if not numbers:
            if is_default and not config.uses_twilio:
                yield Finding(OK, f"{name} (default) answers every number")
            else:
                yield Finding(PROBLEM, f"{name} has no number: its members cannot text it",
                              f"`timebank twilio connect NUMBER --bank {name!r}`")
        elif not config.uses_twilio:
            yield Finding(OK, f"{name}: {', '.join(numbers)}")
        for number in numbers if config.uses_twilio else []:
            yield _connected(config, db, name, number)


def _connected(config: Config, db: Database, bank_name: str, number: str) -> Finding:
    """Whether the Twilio account has ``number`` and sends its texts here: the same settings
    `timebank twilio connect --check` compares (URL, method, no TwiML App; or, with a
    Messaging Service, its inbound URL and method and the number in its sender pool)."""
    from app.twilio_setup import SetupError, messages_url, survey

    if number.startswith("whatsapp:"):
        return Finding(OK, f"{bank_name}: {number} (WhatsApp senders are not checked)")
    command = f"timebank twilio connect {number} --bank {bank_name!r}"
    fix = f"`{command}`"
    try:
        url = messages_url(config, allow_http=True)
    except SetupError:
        return Finding(WARNING, f"{bank_name}: {number} not checked (no PUBLIC_BASE_URL)")
    try:
        with db.reading() as session:
            bank = banks.bank_by_name(session, bank_name)
            settings, _, _ = survey(config, _twilio(config), session, bank, number, url,
                                    command)
    except SetupError as exc:  # not a number of the account, or no such service: says the fix
        return Finding(PROBLEM, f"{bank_name}: {exc}")
    except TwilioRestException as exc:
        return Finding(WARNING, f"{bank_name}: {number} not checked (Twilio answered "
                                f"{exc.status})")
    except (TwilioException, OSError) as exc:
        return Finding(WARNING, f"{bank_name}: {number} not checked ({type(exc).__name__})")
    except SQLAlchemyError:
        return Finding(WARNING, f"{bank_name}: {number} not checked (database unreachable)")
    wrong = [s for s in settings if not s.agrees]
    if wrong:
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        return Finding(PROBLEM, f"{bank_name}: {wrong[0].what} is {wrong[0].now}, should be "
                                f"{wrong[0].wanted}{more}", fix)
    return Finding(OK, f"{bank_name}: {number} connected")


def quiet_hours(config: Config, db: Database) -> Iterator[Finding]:
    """Quiet hours readable, and every time zone (the default and each bank's) known."""
    try:
        window = parse_quiet_hours(config.quiet_hours)
    except BadSetting as exc:
        yield Finding(PROBLEM, str(exc), "set TIMEBANK_QUIET_HOURS like 21:00-08:00, or off")
    else:
        if window is None:
            yield Finding(WARNING, "quiet hours off: texts may go out at night",
                          "set TIMEBANK_QUIET_HOURS, e.g. 21:00-08:00")
        else:
            yield Finding(OK, f"quiet hours {window[0]:%H:%M}-{window[1]:%H:%M}")
    zones = [("TIMEBANK_TIMEZONE", config.timezone)]
    try:
        with db.reading() as session:
            zones += [(b.name, b.timezone) for b in session.scalars(select(Bank))]
    except SQLAlchemyError:
        pass
    for whose, zone in zones:
        if not _known_zone(zone):
            yield Finding(PROBLEM, f"{whose}: unknown time zone {zone!r}",
                          "use a name like Europe/London (TIMEBANK_TIMEZONE, or "
                          "`timebank bank set --timezone`)")
    if all(_known_zone(zone) for _, zone in zones):
        yield Finding(OK, "time zones " + ", ".join(sorted({z for _, z in zones})))


# How far back `doctor` looks for WhatsApp texts that could not go for want of a template.
WINDOW_CLOSED_DAYS = 30


def whatsapp_templates(config: Config, db: Database) -> Iterator[Finding]:
    """WhatsApp in use (``TWILIO_WHATSAPP_FROM``, or a bank's WhatsApp number) with approved
    templates for the texts the bank sends more than 24 hours after a member's last message;
    and whether any such text could not go lately for want of one."""
    from conversations.texts import CATALOGUE, DEFAULT_LANGUAGE
    from ledger.models import BankNumber, Message, utcnow

    try:
        with db.reading() as session:
            numbers = list(session.scalars(
                select(BankNumber.address).where(BankNumber.channel == "whatsapp")))
            since = utcnow() - timedelta(days=WINDOW_CLOSED_DAYS)
            unsent = {kind: count for kind, count in session.execute(
                select(Message.kind, func.count()).where(
                    Message.channel == "whatsapp", Message.error_code == "window-closed",
                    Message.created_at >= since).group_by(Message.kind))}
    except SQLAlchemyError as exc:
        yield Finding(WARNING, f"WhatsApp templates not checked ({type(exc).__name__})",
                      "fix the database first")
        return
    senders = sorted({*numbers, *([config.twilio_whatsapp_from]
                                  if config.twilio_whatsapp_from else [])})
    if not senders:
        yield Finding(OK, "WhatsApp not in use")
        return
    example = ('TWILIO_WHATSAPP_TEMPLATES=\'{"confirm_ask": {"sid": "HX...", '
               '"variables": ["other", "hours", "what", "ref"]}}\'')
    try:
        templates = parse_templates(config.twilio_whatsapp_templates)
    except BadSetting as exc:
        yield Finding(PROBLEM, str(exc), example)
        return
    where = f"WhatsApp in use ({', '.join(senders)})"
    if not templates:
        yield Finding(
            WARNING, f"{where} but no templates set: more than 24 hours after a member's "
                     "last message, texts to them go by SMS if they have a number, else not "
                     "at all",
            "approve templates in Twilio's Content Template Builder for the texts the bank "
            f"sends on its own (asks, confirmations, reminders, broadcasts), then {example}")
    unknown = sorted(set(templates) - set(CATALOGUE[DEFAULT_LANGUAGE]))
    if unknown:
        yield Finding(WARNING, "TWILIO_WHATSAPP_TEMPLATES names texts the bank does not have: "
                               + ", ".join(unknown),
                      "use the names of texts in conversations/texts.py, e.g. confirm_ask")
    if unsent:
        kinds = ", ".join(f"{kind} ({count})" for kind, count in sorted(unsent.items()))
        yield Finding(
            WARNING, f"{sum(unsent.values())} WhatsApp text(s) in the last "
                     f"{WINDOW_CLOSED_DAYS} days could not go for want of a template: {kinds}",
            "approve a template for each of these and add it to TWILIO_WHATSAPP_TEMPLATES")
    if templates and not unknown and not unsent:
        yield Finding(OK, f"{where}, templates for {len(templates)} kind(s) of text: "
                          + ", ".join(sorted(templates)))


def run_checks(config: Config) -> Iterator[tuple[str, Finding]]:
    """Every check, by name, in the order a deployment needs them."""
    db = Database(config.effective_database_url)
    redis = connect_redis(config)
    checks: list[tuple[str, Callable[[], Finding | Iterator[Finding]]]] = [
        ("database", lambda: database(config, db)),
        ("redis", lambda: redis_memory(config, redis)),
        ("persistence", lambda: redis_persistence(config, redis)),
        ("worker", lambda: worker(config, redis)),
        ("secret key", lambda: secret_key(config)),
        ("twilio", lambda: twilio_credentials(config)),
        ("numbers", lambda: bank_numbers(config, db)),
        ("quiet hours", lambda: quiet_hours(config, db)),
        ("whatsapp", lambda: whatsapp_templates(config, db)),
    ]
    try:
        for name, check in checks:
            result = check()
            for finding in [result] if isinstance(result, Finding) else result:
                yield name, finding
    finally:
        db.dispose()
        redis.connection_pool.disconnect()


def _twilio(config: Config) -> Any:
    """The twilio client, as the transport builds it (``TWILIO_API_BASE_URL`` honoured)."""
    from app.transports import TwilioTransport

    return TwilioTransport(config, timeout=5.0).client


def _config_get(redis: Redis, name: str) -> str | None:
    """A Redis setting, or None where CONFIG is not allowed (managed Redis)."""
    try:
        found = redis.config_get(name)
    except RedisError as exc:
        if "unknown command" in str(exc).lower() or "noperm" in str(exc).lower():
            return None
        raise
    value = found.get(name)
    return value.decode() if isinstance(value, bytes) else value


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        return False
    return True


@click.command("doctor")
def doctor_command() -> None:
    """Check this deployment's configuration; exit non-zero on a problem."""
    try:
        config = Config.from_env()
    except ValueError as exc:
        click.echo(f"problem  settings: {exc}")
        raise SystemExit(1) from None
    problems = 0
    for name, finding in run_checks(config):
        problems += finding.status == PROBLEM
        click.echo(f"{finding.status:<8} {name}: {finding.message}")
        if finding.fix and finding.status != OK:
            click.echo(f"         fix: {finding.fix}")
    if problems:
        click.echo(f"{problems} problem(s) to fix before going live.")
        raise SystemExit(1)
    click.echo("No problems found.")
