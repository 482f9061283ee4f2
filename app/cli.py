"""The ``timebank`` command: run the bank, text it from a terminal, manage banks and brokers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import click
from flask import Flask
from twilio.request_validator import RequestValidator

from app import create_app, languages
from app.backup import backup_command, claim_instance, restore_command
from app.care import introductions
from app.care.away_cli import away_command, back_command
from app.care.duty import duty_command
from app.care.offline_cli import COMMANDS as offline_commands
from app.config import Config, keep_secret_key
from app.doctor import doctor_command
from app.failed_jobs import jobs_group
from app.languages_cli import member_language
from app.privacy import member_export, member_forget
from app.services import Services, embedded_redis
from app.texts_cli import texts_group
from app.twilio_setup import twilio_group
from conversations.languages import UnknownLanguage
from ledger import audit, banks, members
from ledger.errors import LedgerError
from ledger.migrate import upgrade
from ledger.models import DEFAULT_CRISIS_TEXT
from ledger.phones import InvalidNumber, member_number, normalise


@contextmanager
def _app() -> Iterator[tuple[Flask, Services]]:
    app = create_app()
    with app.app_context():
        yield app, app.extensions["timebank"]


def prepare(shared: Services) -> None:
    """Migrate the schema and make sure the default bank exists and owns the configured numbers."""
    config = shared.config
    upgrade(shared.db)
    with shared.db.writing() as session:
        banks.ensure_default_bank(
            session, name=config.bank_name, timezone=config.timezone,
            require_approval=config.require_approval, addresses=config.bank_numbers,
            region=config.default_region,
        )


def _phone(value: str, config: Config) -> str:
    try:
        return normalise(value, config.default_region)
    except InvalidNumber:
        raise click.BadParameter(f"{value!r} is not a phone number") from None


@click.group(help=__doc__)
def main() -> None:
    pass


# --- database -------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations and create the default bank. Safe to run again (Procfile's release)."""
    with _app() as (_, shared):
        prepare(shared)
    click.echo("Database is up to date.")


# --- running --------------------------------------------------------------------------------

# gunicorn's access log with the path but not the query: a search for a phone number on the
# dashboard stays out of the log (the Procfile uses the same format).
ACCESS_LOG = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)s'


@main.command()
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")),
              show_default="$PORT or 5000")
@click.option("--host", default="127.0.0.1", show_default=True)
def run(port: int, host: str) -> None:
    """Run the web process and the worker together, on the embedded defaults if nothing is set."""
    if not os.environ.get("TIMEBANK_SECRET_KEY") and keep_secret_key(
            Config.from_env().instance_path):
        click.echo("Made a random secret key for the dashboard in the instance folder.",
                   err=True)
    config = Config.from_env()
    # Before anything is started or stopped: a bank already running here is left alone.
    running = _claim(config, host, port)
    env = dict(os.environ)
    # Every process reads the same folder, whatever its working directory.
    env["TIMEBANK_INSTANCE_PATH"] = str(config.instance_path)
    embedded: Any = None
    if not config.redis_url:
        embedded = embedded_redis(config.embedded_redis_path)
        env["REDIS_URL"] = f"unix://{embedded.socket_file}"
    with _app() as (_, shared):
        prepare(shared)
        bank_name = config.bank_name
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "app:create_app()", "--bind", f"{host}:{port}",
         "--config", "python:app.gunicorn_conf",  # its workers share one metrics folder
         "--workers", env.get("WEB_CONCURRENCY", "2"), "--access-logfile", "-",
         "--access-logformat", ACCESS_LOG],
        env=env,
    )
    worker = subprocess.Popen([sys.executable, "-m", "app.worker"], env=env)
    where = ("your database" if config.database_url
             else f"SQLite and embedded Redis in {config.instance_path}")
    click.echo(f"""
{bank_name} is running on http://{host}:{port} ({where}).

  Text the bank from this machine, in another terminal:
      .venv/bin/timebank chat +447700900123

  Brokers' dashboard: http://{host}:{port}/dashboard/ — first make yourself a broker:
      .venv/bin/timebank broker add +447700900100 YourName
      .venv/bin/timebank broker password +447700900100

  On a real number: restart with TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SMS_FROM
  and PUBLIC_BASE_URL (your public https:// address) set, then point the number here with
      .venv/bin/timebank twilio connect
  and check everything with .venv/bin/timebank doctor (README.md, "Going live").
  Without an auth token only this machine may post to the webhook.

Press Ctrl-C to stop.
""", err=True)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    # Explicitly: a shell starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping and web.poll() is None and worker.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    for proc in (web, worker):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in (web, worker):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    if embedded is not None:
        embedded.shutdown(nosave=True)
    running.close()
    click.echo("Stopped.", err=True)


def _claim(config: Config, host: str, port: int) -> IO[str]:
    """Hold the instance folder for this run (a lock the system drops when the process
    ends), and check that the port is free; else stop, saying a bank is already there."""
    lock = claim_instance(config.instance_path)
    if lock is None:
        raise click.ClickException(
            f"A bank is already running in {config.instance_path}. Stop it first (Ctrl-C "
            "where it runs), or set TIMEBANK_INSTANCE_PATH to run another.")
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
    try:
        probe.bind((host, port))
    except OSError:
        lock.close()
        raise click.ClickException(
            f"A bank (or another program) is already running on port {port}. Stop it "
            "first, or choose another port with --port or PORT.") from None
    finally:
        probe.close()
    return lock


# --- texting from the terminal --------------------------------------------------------------


def _replies(xml: bytes) -> list[str]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return [xml.decode(errors="replace")]
    return [
        "".join(m.itertext()) if m.find("Body") is None else (m.findtext("Body") or "")
        for m in root.iter("Message")
    ]


@main.command()
@click.argument("phone")
@click.option("--to", "to_number", default=None,
              help="The bank number to text (default: the default bank's).")
@click.option("--whatsapp", is_flag=True, help="Text as a WhatsApp user.")
def chat(phone: str, to_number: str | None, whatsapp: bool) -> None:
    """Text the bank as PHONE (or member #12's phone) from this terminal, and see its
    replies and later texts."""
    with _app() as (app, shared):
        config = shared.config
        prepare(shared)
        if member_number(phone) is not None:  # chat #12: as that member's phone
            with shared.db.reading() as session:
                found = members.resolve_who(session, banks.bank_for_address(session, None).id,
                                            phone, config.default_region)
                if found is None or not found.phone:
                    raise click.ClickException(f"{phone}: no member with a phone is that")
                phone = found.phone
        number = _phone(phone, config)
        sender = f"whatsapp:{number}" if whatsapp else number
        if to_number is None:
            with shared.db.reading() as session:
                bank = banks.bank_for_address(session, None)
                to_number = banks.sender_for(bank, "whatsapp" if whatsapp else "sms") or ""
        client = app.test_client()
        validator = (
            RequestValidator(config.twilio_auth_token) if config.twilio_auth_token else None
        )
        base = config.public_base_url or "http://localhost"

        from app.transports import outbox_key, read_outbox

        stop = threading.Event()
        outbox = outbox_key(sender, config.secret_key)
        seen_key = f"tb:chat-seen:{shared.address_key(sender)}"
        missed = _missed_texts(shared, outbox, seen_key)

        def watch(last: str) -> None:
            while not stop.is_set():
                try:
                    last, entries = read_outbox(shared.redis, outbox, last, 500)
                except Exception:
                    return
                for body in _bodies(shared, entries):
                    click.echo(f"\nbank> {body}")
                if entries:
                    shared.redis.set(seen_key, last, ex=30 * 24 * 3600)

        watcher = threading.Thread(target=watch, args=(missed[0],), daemon=True)
        watcher.start()
        click.echo(f"Texting the bank as {sender}. Type a message and press Enter; "
                   "an empty line or Ctrl-D quits.")
        for body in missed[1]:
            click.echo(f"bank> (sent while you were away) {body}")
        try:
            while True:
                try:
                    line = input("you> ")
                except EOFError:
                    break
                if not line.strip():
                    break
                form = {
                    "MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "ACchat",
                    "From": sender, "To": (f"whatsapp:{to_number.removeprefix('whatsapp:')}"
                                           if whatsapp and to_number else to_number),
                    "Body": line, "NumMedia": "0",
                }
                headers = {}
                if validator is not None:
                    headers["X-Twilio-Signature"] = validator.compute_signature(
                        base + "/twilio/messages", form
                    )
                response = client.post(
                    "/twilio/messages", data=form, headers=headers, base_url=base,
                    environ_base={"REMOTE_ADDR": "127.0.0.1"},
                )
                if response.status_code != 200:
                    click.echo(f"(the bank answered HTTP {response.status_code})")
                    continue
                for reply in _replies(response.data):
                    click.echo(f"bank> {reply}")
            # Give texts queued by the last message a moment to arrive.
            time.sleep(float(os.environ.get("TIMEBANK_CHAT_LINGER", "0.5")))
        finally:
            stop.set()
            watcher.join(2)
            _release_embedded_redis(shared.redis)


def _missed_texts(shared: Services, outbox: str, seen_key: str, most: int = 10
                  ) -> tuple[str, list[str]]:
    """(where to read on from, the last few texts the bank sent to this number since its
    chat last showed one). A first chat shows nothing old."""
    from app.transports import outbox_entry

    redis: Any = shared.redis  # bytes in, bytes out (no decode_responses)
    seen = redis.get(seen_key)
    bodies: list[str] = []
    if seen:
        last = seen.decode()
        entries = redis.xrange(outbox, min=f"({last}", max="+")
        if entries:
            last = entries[-1][0].decode()
            found = [outbox_entry(fields) for _, fields in entries[-most:]]
            bodies = _bodies(shared, [e for e in found if e is not None])
    else:
        newest = redis.xrevrange(outbox, count=1)
        last = newest[0][0].decode() if newest else "0-0"
    redis.set(seen_key, last, ex=30 * 24 * 3600)
    return last, bodies


def _bodies(shared: Services, entries: list[tuple[int, str | None]]) -> list[str]:
    """The texts of these outbox entries, in this order: the phone's copy where there is one,
    else the message's text from the database (the outbox in Redis holds only ids)."""
    wanted = [message_id for message_id, copy in entries if copy is None]
    found: dict[int, str] = {}
    if wanted:
        from sqlalchemy import select

        from ledger.models import Message

        with shared.db.reading() as session:
            found = dict(session.execute(
                select(Message.id, Message.body).where(Message.id.in_(wanted))).all())
    return [copy if copy is not None else found[i] for i, copy in entries
            if copy is not None or i in found]


def _release_embedded_redis(redis: Any) -> None:
    """Stop the embedded Redis server if this process started it and nobody else uses it
    (``timebank chat`` run while the bank is not running)."""
    redis.connection_pool.disconnect()
    cleanup = getattr(redis, "_cleanup", None)
    if callable(cleanup):
        cleanup()


# --- banks, brokers and members -------------------------------------------------------------


@main.group("bank")
def bank_group() -> None:
    """The banks this deployment hosts."""


@bank_group.command("add")
@click.argument("name")
@click.option("--sms", "sms", default=None, help="The bank's SMS number, e.g. +447700900001.")
@click.option("--whatsapp", "whatsapp", default=None,
              help="The bank's WhatsApp sender, e.g. whatsapp:+447700900001.")
@click.option("--timezone", default=None, help="Default: TIMEBANK_TIMEZONE.")
@click.option("--require-approval/--no-require-approval", default=True, show_default=True,
              help="New members wait for a broker's welcome.")
@click.option("--introductions", type=click.Choice(["broker", "direct"]), default="broker",
              show_default=True,
              help="broker: a broker approves before two members get each other's number; "
                   "direct: numbers on the helper's YES.")
def bank_add(name: str, sms: str | None, whatsapp: str | None, timezone: str | None,
             require_approval: bool, introductions: str) -> None:
    """Add a bank that owns its own numbers (careful by default: a broker welcomes new
    members and introduces members to each other)."""
    if not sms and not whatsapp:
        raise click.UsageError("give the bank at least one number: --sms and/or --whatsapp")
    addresses = [a for a in (sms, whatsapp) if a]
    if whatsapp and not whatsapp.lower().startswith("whatsapp:"):
        addresses[-1] = f"whatsapp:{whatsapp}"
    with _app() as (_, shared):
        prepare(shared)
        try:
            with shared.db.writing() as session:
                bank = banks.add_bank(
                    session, name, addresses=addresses,
                    timezone=timezone or shared.config.timezone,
                    require_approval=require_approval, region=shared.config.default_region,
                    introductions=introductions,
                )
                bank_id = bank.id
        except (LedgerError, InvalidNumber) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Added bank {bank_id}: {name}. New members "
               f"{'wait for a broker' if require_approval else 'are active at once'}; "
               f"introductions {'through a broker' if introductions == 'broker' else 'direct'}.")


@bank_group.command("set")
@click.argument("name", required=False)
@click.option("--require-approval/--no-require-approval", default=None,
              help="New members wait for a broker.")
@click.option("--min-balance", default=None, help="Lowest balance in hours, e.g. -20.")
@click.option("--max-exchange", default=None, help="Most hours in one exchange, e.g. 24.")
@click.option("--remind-after", type=int, default=None,
              help="Hours before an unanswered confirmation is reminded.")
@click.option("--escalate-after", type=int, default=None,
              help="Hours before an unanswered confirmation goes to the brokers.")
@click.option("--auto-confirm/--no-auto-confirm", default=None,
              help="Credit unanswered confirmations instead of passing them to brokers.")
@click.option("--timezone", default=None)
@click.option("--confirm-broadcasts-over", type=click.IntRange(min=0), default=None,
              help="A broadcast by text to more members than this waits for the broker's YES.")
@click.option("--asks-per-helper-per-day", type=click.IntRange(min=0), default=None,
              help="Most needs one helper is asked about in a day (0: brokers ask by hand).")
@click.option("--member-daily-texts", type=click.IntRange(min=0), default=None,
              help="Texts a day the bank sends to others because of one member (20).")
@click.option("--recipient-daily-texts", type=click.IntRange(min=0), default=None,
              help="Texts a day one member receives because of others (10).")
@click.option("--bank-daily-texts", type=click.IntRange(min=0), default=None,
              help="All texts a day; past it, all but replies wait for the next day (2000).")
@click.option("--answers-per-hour", type=click.IntRange(min=1), default=None,
              help="Answers an hour to one member's number; past it, silence (30).")
@click.option("--stranger-answers-per-hour", type=click.IntRange(min=1), default=None,
              help="Answers an hour to a number that is not a member's (10).")
@click.option("--retention-days", type=click.IntRange(min=1), default=None,
              help="Days members' texts, sent texts' words and sign-ins are kept (90).")
@click.option("--introductions", type=click.Choice(["broker", "direct"]), default=None,
              help="broker: a broker approves before two members get each other's number; "
                   "direct: numbers on the helper's YES.")
@click.option("--quiet-after-weeks", type=click.IntRange(min=1, max=520), default=None,
              help="Weeks without an exchange or a text before brokers hear a member has "
                   "gone quiet (6).")
@click.option("--check-in/--no-check-in", default=None,
              help="Text members after a quiet spell: reply OK if all is well (off).")
@click.option("--contact-hours", default=None,
              help="When a broker is usually there to call back, told to members who ask "
                   "for a person, e.g. \"weekdays 10am to 4pm\" ('' for none).")
@click.option("--support-line", default=None,
              help="The bank's own phone line, given to members in distress ('' for none).")
@click.option("--languages", "language_codes", default=None, metavar="CODES",
              help="The languages the bank texts in, e.g. en,bn,so (or all).")
@click.option("--default-language", default=None, metavar="CODE",
              help="The language strangers and new members read until they choose.")
@click.option("--crisis-text", default=None,
              help="The crisis line given to anyone in distress "
                   "(default: \"Samaritans 116 123, free, day or night\").")
def bank_set(name: str | None, require_approval: bool | None, min_balance: str | None,
             max_exchange: str | None, remind_after: int | None, escalate_after: int | None,
             auto_confirm: bool | None, timezone: str | None,
             confirm_broadcasts_over: int | None, asks_per_helper_per_day: int | None,
             member_daily_texts: int | None, recipient_daily_texts: int | None,
             bank_daily_texts: int | None, answers_per_hour: int | None,
             stranger_answers_per_hour: int | None, retention_days: int | None,
             introductions: str | None, quiet_after_weeks: int | None,
             check_in: bool | None, contact_hours: str | None, support_line: str | None,
             language_codes: str | None, default_language: str | None,
             crisis_text: str | None) -> None:
    """Change a bank's settings (the default bank if NAME is not given)."""
    from zoneinfo import ZoneInfo

    from ledger.hours import format_hours

    if timezone:
        try:
            ZoneInfo(timezone)
        except (KeyError, ValueError):
            raise click.BadParameter(f"unknown time zone {timezone!r}") from None
    with _app() as (_, shared):
        prepare(shared)
        with shared.db.writing() as session:
            bank = banks.bank_by_name(session, name)
            if require_approval is not None:
                bank.require_approval = require_approval
            if min_balance is not None:
                bank.min_balance_minutes = -_limit_minutes(min_balance)
            if max_exchange is not None:
                bank.max_exchange_minutes = _parse_hours(max_exchange)
            if remind_after is not None:
                bank.confirm_remind_hours = max(1, remind_after)
            if escalate_after is not None:
                bank.confirm_escalate_hours = max(1, escalate_after)
            if auto_confirm is not None:
                bank.auto_confirm = auto_confirm
            if timezone:
                bank.timezone = timezone
            if confirm_broadcasts_over is not None:
                bank.broadcast_confirm_over = confirm_broadcasts_over
            if asks_per_helper_per_day is not None:
                bank.asks_per_helper_per_day = asks_per_helper_per_day
            if member_daily_texts is not None:
                bank.member_daily_texts = member_daily_texts
            if recipient_daily_texts is not None:
                bank.recipient_daily_texts = recipient_daily_texts
            if bank_daily_texts is not None:
                bank.bank_daily_texts = bank_daily_texts
            if answers_per_hour is not None:
                bank.answers_per_hour = answers_per_hour
            if stranger_answers_per_hour is not None:
                bank.stranger_answers_per_hour = stranger_answers_per_hour
            if retention_days is not None:
                bank.retention_days = retention_days
            if introductions is not None and introductions != bank.introductions:
                bank.introductions = introductions
                audit.record(session, bank.id, "bank.introductions", broker_id=None,
                             subject=f"bank {bank.id}", detail=introductions, via="cli")
            if quiet_after_weeks is not None:
                bank.quiet_after_weeks = quiet_after_weeks
            if check_in is not None:
                bank.check_in = check_in
            care_words = _care_words(contact_hours, support_line, crisis_text)
            if contact_hours is not None:
                bank.contact_hours = care_words["contact_hours"]
            if support_line is not None:
                bank.support_line = care_words["support_line"]
            if crisis_text is not None:
                bank.crisis_text = care_words["crisis_text"] or DEFAULT_CRISIS_TEXT
            if language_codes is not None or default_language is not None:
                try:
                    languages.set_bank_languages(session, bank, language_codes,
                                                 default_language, via="cli")
                except UnknownLanguage as exc:
                    raise click.BadParameter(str(exc), param_hint="--languages") from None
            summary = (
                f"{bank.name}: approval {'on' if bank.require_approval else 'off'}, lowest "
                f"balance {format_hours(bank.min_balance_minutes)} h, at most "
                f"{format_hours(bank.max_exchange_minutes)} h an exchange, remind after "
                f"{bank.confirm_remind_hours} h, brokers after {bank.confirm_escalate_hours} h, "
                f"auto-confirm {'on' if bank.auto_confirm else 'off'}, {bank.timezone}, "
                f"broadcasts to over {bank.broadcast_confirm_over} members wait for a YES, "
                f"at most {bank.asks_per_helper_per_day} asks per helper a day. "
                f"Texts a day: {bank.member_daily_texts} caused by one member, "
                f"{bank.recipient_daily_texts} to one member because of others, "
                f"{bank.bank_daily_texts} in all; answers an hour: {bank.answers_per_hour} "
                f"to a member, {bank.stranger_answers_per_hour} to a stranger. "
                f"Texts and sign-ins kept {bank.retention_days} days. Introductions "
                f"{'through a broker' if bank.introductions == 'broker' else 'direct'}. "
                f"Quiet after {bank.quiet_after_weeks} weeks; check-in texts "
                f"{'on' if bank.check_in else 'off'}. "
                f"Brokers in touch: {bank.contact_hours or 'soon (no hours given)'}; "
                f"support line: {bank.support_line or 'none'}; crisis line: {bank.crisis_text}. "
                f"Languages: {languages.describe(bank)}."
            )
    click.echo(summary)


# The most each of the bank's care words may be: they go into one text with others.
_CARE_WORDS_MOST = {"contact_hours": 40, "support_line": 20, "crisis_text": 60}


def _care_words(contact_hours: str | None, support_line: str | None,
                crisis_text: str | None) -> dict[str, str | None]:
    """The bank's words for texts about care, checked: GSM-7 (one character outside it
    would double a text's cost), short enough, and never asking for a carrier's keyword
    ("text SHOUT to 85258" is fine; STOP or HELP is not)."""
    import re

    from conversations.commands import CARRIER_WORDS
    from conversations.gsm import is_gsm7, to_gsm

    given = {"contact_hours": contact_hours, "support_line": support_line,
             "crisis_text": crisis_text}
    checked: dict[str, str | None] = {}
    for name, value in given.items():
        if value is None:
            continue
        words = to_gsm(" ".join(value.split()))
        option = "--" + name.replace("_", "-")
        if len(words) > _CARE_WORDS_MOST[name]:
            raise click.BadParameter(
                f"at most {_CARE_WORDS_MOST[name]} characters, to fit in one text",
                param_hint=option)
        if not is_gsm7(words):
            raise click.BadParameter("plain letters, digits and punctuation only",
                                     param_hint=option)
        if set(re.findall(r"\b[A-Z]{2,}\b", words)) & CARRIER_WORDS:
            raise click.BadParameter("carriers act on STOP, START, HELP and the like "
                                     "themselves: write it another way", param_hint=option)
        checked[name] = words or None
    return checked


@bank_group.command("list")
def bank_list() -> None:
    """List the banks and their numbers."""
    with _app() as (_, shared):
        prepare(shared)
        with shared.db.reading() as session:
            from sqlalchemy import select

            from ledger.models import Bank

            for bank in session.scalars(select(Bank).order_by(Bank.id)):
                numbers = ", ".join(n.address for n in bank.numbers) or "no numbers"
                default = " (default)" if bank.is_default else ""
                click.echo(f"{bank.id}  {bank.name}{default}: {numbers}; languages "
                           f"{', '.join(banks.offered_languages(bank))} (default "
                           f"{banks.default_language(bank)})")


@main.group("broker")
def broker_group() -> None:
    """Brokers: the people who run a bank."""


@broker_group.command("add")
@click.argument("phone")
@click.argument("name")
@click.option("--bank", "bank_name", default=None, help="The bank's name (default bank if absent).")
def broker_add(phone: str, name: str, bank_name: str | None) -> None:
    """Make PHONE (or member #12) a broker of the bank, registering them as NAME if new."""
    with _app() as (_, shared):
        by_number = member_number(phone) is not None
        number = "" if by_number else _phone(phone, shared.config)
        prepare(shared)
        try:
            with shared.db.writing() as session:
                bank = banks.bank_by_name(session, bank_name)
                if by_number:
                    found = members.resolve_who(session, bank.id, phone,
                                                shared.config.default_region)
                    if found is None or not found.phone:
                        raise click.ClickException(
                            f"{phone}: no member of {bank.name} with a phone is that")
                    number = found.phone
                member, changed = members.make_broker(session, bank, number, name)
                line = (f"{member.name} is {'now' if changed else 'already'} "
                        f"a broker of {bank.name}.")
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(line)


@broker_group.command("password")
@click.argument("phone")
@click.option("--bank", "bank_name", default=None, help="The bank's name (default bank if absent).")
@click.password_option(help="The new password (asked for if not given).")
def broker_password(phone: str, bank_name: str | None, password: str) -> None:
    """Set the dashboard password of the broker with PHONE or #12 (at least 10 characters)."""
    from app import auth

    try:
        hashed = auth.hash_password(password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    with _app() as (_, shared):
        if member_number(phone) is None:
            _phone(phone, shared.config)
        prepare(shared)
        with shared.db.writing() as session:
            bank = banks.bank_by_name(session, bank_name)
            try:
                member = members.resolve_who(session, bank.id, phone,
                                             shared.config.default_region)
            except members.SharedPhone:
                member = None  # a broker's phone is never shared
            if member is None or member.role != "broker":
                raise click.ClickException(
                    f"no broker of {bank.name} has that number; add one with "
                    "timebank broker add PHONE NAME")
            member.password_hash = hashed
            members.end_sessions(member)  # a copied cookie stops working with the old password
            audit.record(session, bank.id, "broker.password", broker_id=member.id,
                         subject=f"member {member.id}", via="cli")
            name = member.name
    click.echo(f"{name} can now sign in to the dashboard at /dashboard/login.")


@main.group("member")
def member_group() -> None:
    """Members of a bank."""


def _member_by(session: Any, bank_name: str | None, who: str, config: Config) -> Any:
    """(bank, member) for a member id (in whichever bank it is) or a phone number (in the
    named bank, or the default one)."""
    from ledger.models import Bank

    number = member_number(who)
    if number is not None or (who.isdigit() and len(who) < 9):
        try:
            member = members.get_member(session, number or int(who))
        except LedgerError:
            raise click.ClickException(f"there is no member {who}") from None
        bank = session.get(Bank, member.bank_id)
        if bank_name and bank.name != bank_name:
            raise click.ClickException(f"member {who} is in {bank.name}, not {bank_name}")
        return bank, member
    bank = banks.bank_by_name(session, bank_name)
    try:
        found = members.one_by_phone(session, bank.id, _phone(who, config))
    except members.SharedPhone as exc:
        raise click.ClickException(str(exc)) from None
    if found is None:
        raise click.ClickException(f"no member with that number in {bank.name}")
    return bank, found


@member_group.command("show")
@click.argument("who")
@click.option("--bank", "bank_name", default=None)
def member_show(who: str, bank_name: str | None) -> None:
    """A member's details, balance and private notes (for brokers' eyes only)."""
    from ledger.hours import format_hours

    with _app() as (_, shared):
        prepare(shared)
        with shared.db.reading() as session:
            bank, member = _member_by(session, bank_name, who, shared.config)
            account = members.account_of(session, member)
            opted_out = bool(member.phone) and members.is_opted_out(
                session, bank.id, member.phone
            )
            limit = account.min_balance_minutes
            if limit is None:
                limit = bank.min_balance_minutes
            rows = [
                ("member", f"{member.id} in {bank.name}"),
                ("name", member.name),
                ("phone", (member.phone or "none: a broker acts for them") + "".join(
                    f" (shared with #{other.id} {other.name})" for other in (
                        members.find_members(session, bank.id, member.phone)
                        if member.phone else []) if other.id != member.id)),
                ("whatsapp", "yes" if member.whatsapp else "no"),
                ("status", member.status + (" (texts stopped)" if opted_out else "")),
                ("role", member.role),
                ("away", _away_line(bank, member)),
                ("area", member.area or "-"),
                ("can help with", member.skills or "-"),
                ("free", member.availability or "-"),
                ("balance", f"{format_hours(account.balance_minutes)} hours"),
                ("lowest balance", f"{format_hours(limit)} hours"),
                ("notes", member.notes or "-"),
                ("introductions", "through a broker" if member.intro_via_broker
                 else "as the bank chooses"),
            ]
    for label, value in rows:
        click.echo(f"{label:>15}: {value}")


def _away_line(bank: Any, member: Any) -> str:
    from app.care import away

    if member.away_since is None:
        return "-"
    if member.away_until is None:
        return "yes, until they say BACK"
    return f"yes, back on {away.return_date(bank, member.away_until)}"


@member_group.command("note")
@click.argument("who")
@click.argument("note", nargs=-1, required=True)
@click.option("--bank", "bank_name", default=None)
def member_note(who: str, note: tuple[str, ...], bank_name: str | None) -> None:
    """Set a member's private notes (support needs), which only brokers see."""
    with _app() as (_, shared):
        prepare(shared)
        with shared.db.writing() as session:
            bank, member = _member_by(session, bank_name, who, shared.config)
            member.notes = " ".join(note)[:2000]
            audit.record(session, bank.id, "member.note", broker_id=None,
                         subject=f"member {member.id}", detail="notes changed", via="cli")
            name = member.name
    click.echo(f"Notes saved for {name}.")


@member_group.command("limit")
@click.argument("who")
@click.argument("hours")
@click.option("--bank", "bank_name", default=None)
def member_limit(who: str, hours: str, bank_name: str | None) -> None:
    """Set how far below zero a member's balance may go (e.g. 10, or "bank" for the bank's)."""
    with _app() as (_, shared):
        prepare(shared)
        with shared.db.writing() as session:
            bank, member = _member_by(session, bank_name, who, shared.config)
            account = members.member_account(session, member)
            if hours.lower() == "bank":
                account.min_balance_minutes = None
            else:
                account.min_balance_minutes = -_limit_minutes(hours)
            audit.record(session, bank.id, "member.limit", broker_id=None,
                         subject=f"member {member.id}", detail=f"limit {hours}", via="cli")
            name = member.name
    click.echo(f"Limit saved for {name}.")


def _limit_minutes(text: str) -> int:
    """Hours as a limit: 0 is allowed (no credit at all)."""
    return 0 if text.strip().lstrip("-") in ("0", "0.0") else _parse_hours(text.lstrip("-"))


@member_group.command("approve")
@click.argument("who")
@click.option("--bank", "bank_name", default=None)
def member_approve(who: str, bank_name: str | None) -> None:
    """Approve a new member, or one on hold (by phone number or member id); they are texted."""
    from app import effects, outbound

    with _app() as (_, shared):
        prepare(shared)
        try:
            with shared.db.writing() as session:
                bank, member = _member_by(session, bank_name, who, shared.config)
                if member.status == "left":
                    raise click.ClickException(f"{member.name} has left {bank.name}")
                change = effects.set_status(session, bank, member, approve=True, broker=None,
                                            via="cli")
                queued = change.queued
                line = (f"{member.name} is {'now' if change.changed else 'already'} "
                        f"{member.status}.")
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
        outbound.enqueue(shared, queued)
    click.echo(line)


# --- the ledger -----------------------------------------------------------------------------


@main.group("ledger")
def ledger_group() -> None:
    """The record of hours: record, correct, check and export."""


def _parse_hours(text: str) -> int:
    from ledger.hours import parse_hours

    try:
        return parse_hours(text)
    except LedgerError as exc:
        raise click.BadParameter(str(exc)) from None


BY_HELP = ("The broker acting (PHONE or #member id): needed for a broker's own hours, which "
           "only another broker (or the bank's only broker, audited) may touch.")


def _acting_broker(session: Any, bank: Any, by: str | None, config: Config) -> Any:
    """The broker named by ``--by`` (a phone number or ``#id``), or None when none is."""
    if by is None:
        return None
    if member_number(by) is None:
        _phone(by, config)  # not a number at all: say so
    try:
        broker = members.resolve_who(session, bank.id, by, config.default_region)
    except LedgerError:  # a phone two members share is never a broker's (app.care.offline)
        broker = None
    if broker is None or broker.role != "broker" or broker.status != "active":
        raise click.ClickException(f"--by {by}: no active broker of {bank.name} is that")
    return broker


@ledger_group.command("record")
@click.argument("phone")
@click.argument("hours")
@click.argument("what", nargs=-1, required=True)
@click.option("--from", "source", default=None,
              help="An organisation's account to credit from (default: the community fund).")
@click.option("--bank", "bank_name", default=None)
@click.option("--key", default=None,
              help="An idempotency key: recording again with the same key changes nothing.")
@click.option("--by", default=None, help=BY_HELP)
def ledger_record(phone: str, hours: str, what: tuple[str, ...], source: str | None,
                  bank_name: str | None, key: str | None, by: str | None) -> None:
    """Credit PHONE's member (or #12) with HOURS for WHAT (paper timesheets, members who
    cannot text)."""
    from app import effects, outbound
    from ledger import accounts
    from ledger.hours import format_hours

    minutes = _parse_hours(hours)
    with _app() as (_, shared):
        if member_number(phone) is None:
            _phone(phone, shared.config)  # a clear answer for what is not a number at all
        prepare(shared)
        try:
            with shared.db.writing() as session:
                bank = banks.bank_by_name(session, bank_name)
                member = members.resolve_who(session, bank.id, phone,
                                             shared.config.default_region)
                if member is None:
                    raise click.ClickException(f"no member of {bank.name} is {phone}")
                account = accounts.organisation(session, bank.id, source) if source else None
                result = effects.record_hours(
                    session, bank, member, minutes, " ".join(what)[:100],
                    idempotency_key=f"cli:{key or uuid.uuid4().hex}", source=account,
                    broker=_acting_broker(session, bank, by, shared.config),
                    entered_by="broker", via="cli",
                )
                line = (
                    f"{'Recorded' if result.created else 'Already recorded'} "
                    f"{format_hours(minutes)} hours for {member.name} from {result.source}"
                    f" (transfer {result.transfer.id}). Balance: "
                    f"{format_hours(result.balance_minutes)} hours."
                )
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
        outbound.enqueue(shared, result.queued)
    click.echo(line)


@ledger_group.command("reverse")
@click.argument("transfer_id", type=int)
@click.option("--reason", required=True, help="Why, for the record.")
@click.option("--by", default=None, help=BY_HELP)
def ledger_reverse(transfer_id: int, reason: str, by: str | None) -> None:
    """Correct a transfer with one the other way (transfers are never edited or deleted)."""
    from app import effects, outbound
    from ledger.models import Bank, Transfer

    with _app() as (_, shared):
        prepare(shared)
        try:
            with shared.db.writing() as session:
                original = session.get(Transfer, transfer_id)
                if original is None:
                    raise click.ClickException(f"there is no transfer {transfer_id}")
                bank = session.get(Bank, original.bank_id)
                assert bank is not None
                recorded, queued = effects.reverse(
                    session, bank, transfer_id, reason,
                    broker=_acting_broker(session, bank, by, shared.config))
                done = "reversed" if recorded.created else "was already reversed"
                line = f"Transfer {transfer_id} {done} by transfer {recorded.transfer.id}."
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
        outbound.enqueue(shared, queued)
    click.echo(line)


@ledger_group.command("verify")
@click.option("--bank", "bank_name", default=None, help="One bank (default: all).")
def ledger_verify(bank_name: str | None) -> None:
    """Check every invariant of the ledger; exit non-zero and name each breach."""
    from sqlalchemy import func, select

    from ledger import accounts, months, pairs
    from ledger.models import Bank, Transfer

    with _app() as (_, shared):
        prepare(shared)
        with shared.db.reading() as session:
            bank_id = banks.bank_by_name(session, bank_name).id if bank_name else None
            breaches = accounts.verify(session, bank_id)
            # Who first met whom (member_pairs) and what each member gave and received each
            # month (member_months) are derived from the transfers: they must agree.
            for checked in ([bank_id] if bank_id else session.scalars(select(Bank.id)).all()):
                breaches += pairs.breaches(session, checked)
                breaches += months.breaches(session, checked)
            count = session.scalar(select(func.count(Transfer.id))) or 0
    if breaches:
        for breach in breaches:
            click.echo(f"BREACH {breach}", err=True)
        raise SystemExit(1)
    click.echo(f"Ledger OK: {count} transfers; every balance equals its transfers and each "
               "bank sums to zero.")


@ledger_group.command("rebuild-pairs")
@click.option("--bank", "bank_name", default=None, help="One bank (default: all).")
def ledger_rebuild_pairs(bank_name: str | None) -> None:
    """Work out again from every transfer the tables the reports read: who first met whom
    (member_pairs, the connections) and what each member gave and received each month
    (member_months). After loading transfers round the application, or when ledger verify
    says they differ."""
    from ledger import months, pairs

    with _app() as (_, shared):
        prepare(shared)
        with shared.db.writing() as session:
            bank_id = banks.bank_by_name(session, bank_name).id if bank_name else None
            pairs.rebuild(session, bank_id)
            months.rebuild(session, bank_id)
    click.echo("Who first met whom, and what each member gave and received each month, "
               "worked out again from the transfers.")


@ledger_group.command("export")
@click.option("--bank", "bank_name", default=None)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day (UTC), e.g. 2026-01-01.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Day after the last (UTC).")
@click.option("--balances", is_flag=True, help="Export account balances instead of transfers.")
@click.option("--output", "-o", type=click.File("w"), default="-", show_default=True,
              help="A file to write (default: the terminal).")
def ledger_export(bank_name: str | None, since: Any, until: Any, balances: bool,
                  output: Any) -> None:
    """CSV of a bank's transfers (or balances) for funders and audits."""
    import csv
    from datetime import UTC

    from ledger import exports

    writer = csv.writer(output)
    with _app() as (_, shared):
        prepare(shared)
        with shared.db.reading() as session:
            bank = banks.bank_by_name(session, bank_name)
            if balances:
                exports.write_balances(session, bank, writer)
            else:
                exports.write_transfers(session, bank, writer,
                                        since.replace(tzinfo=UTC) if since else None,
                                        until.replace(tzinfo=UTC) if until else None)


@ledger_group.command("queue")
@click.option("--bank", "bank_name", default=None)
def ledger_queue(bank_name: str | None) -> None:
    """Hours waiting for a broker: disputed, held at a limit, or unanswered."""
    from ledger import confirmations
    from ledger.hours import format_hours
    from ledger.models import Account

    with _app() as (_, shared):
        prepare(shared)
        with shared.db.reading() as session:
            bank = banks.bank_by_name(session, bank_name)
            waiting = confirmations.broker_queue(session, bank.id)
            if not waiting:
                click.echo("Nothing is waiting for a broker.")
            for request in waiting:
                payer = session.get(Account, request.payer_account_id)
                payee = session.get(Account, request.payee_account_id)
                state = "unanswered" if request.status == "pending" else request.status
                click.echo(
                    f"ref {request.ref}  {state:10}  {format_hours(request.minutes)} h from "
                    f"{payer.name if payer else '?'} to {payee.name if payee else '?'}: "
                    f"{request.description}"
                )


@ledger_group.command("settle")
@click.argument("ref", type=int)
@click.option("--record/--cancel", "confirm", required=True,
              help="Record the hours, or close the request without recording them.")
@click.option("--bank", "bank_name", default=None)
@click.option("--by", default=None, help=BY_HELP)
@click.option("--override-floor", "past_floor", default=None, metavar="REASON",
              help="Record the hours even past the payer's balance floor, for this reason "
                   "(audited).")
def ledger_settle(ref: int, confirm: bool, bank_name: str | None, by: str | None,
                  past_floor: str | None) -> None:
    """Settle a request in the brokers' queue (disputed, held, or reminded and unanswered)."""
    from sqlalchemy import select

    from app import effects, outbound
    from ledger.models import Confirmation

    if past_floor is not None and not past_floor.strip():
        raise click.BadParameter("say why", param_hint="--override-floor")
    with _app() as (_, shared):
        prepare(shared)
        try:
            with shared.db.writing() as session:
                bank = banks.bank_by_name(session, bank_name)
                request_id = session.scalar(
                    select(Confirmation.id).where(Confirmation.bank_id == bank.id,
                                                  Confirmation.ref == ref)
                )
                if request_id is None:
                    raise click.ClickException(f"no request with ref {ref} in {bank.name}")
                result, queued = effects.settle(
                    session, bank, request_id, confirm=confirm,
                    broker=_acting_broker(session, bank, by, shared.config),
                    past_floor=past_floor.strip()[:150] if past_floor else None)
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
        outbound.enqueue(shared, queued)
    if result.outcome in SETTLE_REFUSALS:
        raise click.ClickException(f"ref {ref} {SETTLE_REFUSALS[result.outcome]}")
    click.echo(f"Ref {ref}: {result.outcome.replace('_', ' ')}.")


SETTLE_REFUSALS = {
    "limit": "would take the payer past their balance floor: not recorded. To record it "
             "anyway, add --override-floor REASON",
    "waiting": "is still waiting for the member's own reply: a broker settles it once it is "
               "disputed, or reminded and left unanswered",
}


@ledger_group.command("sweep")
def ledger_sweep() -> None:
    """Remind, escalate and re-send now (the worker does this every few minutes)."""
    from app import jobs

    with _app():
        counts = jobs.sweep()
    click.echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))


@main.command("needs")
@click.option("--bank", "bank_name", default=None)
@click.option("--all", "show_all", is_flag=True, help="Matched and closed needs too.")
def needs_command(bank_name: str | None, show_all: bool) -> None:
    """Open needs, who was asked about each, and why they were chosen."""
    from sqlalchemy import select

    from ledger import posts
    from ledger.models import Ask, Member, Post

    with _app() as (_, shared):
        prepare(shared)
        with shared.db.reading() as session:
            bank = banks.bank_by_name(session, bank_name)
            resting = [h.name for h in posts.helpers(session, bank.id) if h.asked_enough_today]
            if resting:
                click.echo(f"Asked enough today (asked again tomorrow): {', '.join(resting)}")
            query = select(Post).where(Post.bank_id == bank.id, Post.kind == "need")
            if not show_all:
                query = query.where(Post.status == "open")
            found = list(session.scalars(query.order_by(Post.id)))
            if not found:
                click.echo("No open needs." if not show_all else "No needs.")
            for need in found:
                owner = session.get(Member, need.member_id)
                click.echo(f"ref {need.ref}  {need.status:8} {owner.name if owner else '?'}: "
                           f"{need.text}")
                for ask, helper in session.execute(
                    select(Ask, Member).join(Member, Member.id == Ask.member_id)
                    .where(Ask.post_id == need.id).order_by(Ask.wave, Ask.score.desc())
                ):
                    click.echo(f"    wave {ask.wave}  {ask.status:9} {helper.name} "
                               f"(score {ask.score:g}): {ask.reasons}")


@main.group("org")
def org_group() -> None:
    """Organisations (a ward, a community centre) with accounts of their own."""


@org_group.command("add")
@click.argument("name")
@click.option("--bank", "bank_name", default=None)
def org_add(name: str, bank_name: str | None) -> None:
    """Add an organisation's account to a bank."""
    from ledger import accounts

    with _app() as (_, shared):
        prepare(shared)
        with shared.db.writing() as session:
            bank = banks.bank_by_name(session, bank_name)
            account = accounts.add_organisation(session, bank.id, name[:80])
            line = f"Organisation {account.name} has account {account.id} in {bank.name}."
    click.echo(line)


member_group.add_command(away_command)
member_group.add_command(back_command)
main.add_command(twilio_group)
main.add_command(texts_group)
main.add_command(doctor_command)
main.add_command(jobs_group)
main.add_command(backup_command)
main.add_command(restore_command)
main.add_command(introductions.intro_group)
member_group.add_command(introductions.member_introductions)
member_group.add_command(member_export)
member_group.add_command(member_forget)
for _command in offline_commands:  # member add, phone, post, accept, confirm, give, statement
    member_group.add_command(_command)
broker_group.add_command(duty_command)
member_group.add_command(member_language)


if __name__ == "__main__":
    main()

