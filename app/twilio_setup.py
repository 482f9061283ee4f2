"""Pointing Twilio at this deployment: ``timebank twilio connect [NUMBER]``.

The number's incoming-message URL (or, with ``TWILIO_MESSAGING_SERVICE_SID``, the Messaging
Service's inbound request URL) becomes ``PUBLIC_BASE_URL/twilio/messages`` (POST), and the bank
owns the number. ``--check`` only compares. Status callbacks are not touched: each text asks
for ``/twilio/status`` as it is sent (``app.transports``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
import requests
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from app.config import Config
from app.transports import twilio_client
from ledger import audit, banks
from ledger.errors import LedgerError
from ledger.models import Bank
from ledger.phones import InvalidNumber, mask, normalise

MESSAGES_PATH = "/twilio/messages"


class SetupError(Exception):
    """Something the operator must put right before Twilio can be pointed here."""


@dataclass(frozen=True)
class Setting:
    """One thing that must agree: where it is, what it is now, what it should be."""

    what: str
    now: str
    wanted: str
    fix: str
    # Held by Twilio (else by the bank).
    at_twilio: bool = True
    # Not something connect may change: it refuses instead (another bank's number).
    blocking: bool = False
    # The number in the Messaging Service's sender pool (else a URL, a method, an owner).
    pool: bool = False

    @property
    def agrees(self) -> bool:
        return self.now == self.wanted


def messages_url(config: Config, allow_http: bool = False) -> str:
    """Where Twilio should send incoming texts; refused without a public HTTPS address."""
    base = config.public_base_url
    if not base:
        raise SetupError("set PUBLIC_BASE_URL to this deployment's public HTTPS address, "
                         "e.g. PUBLIC_BASE_URL=https://timebank.example.org")
    if not base.startswith("https://") and not (allow_http and base.startswith("http://")):
        raise SetupError(f"PUBLIC_BASE_URL must start with https:// (it is {base}); "
                         "for a tunnel while testing, add --allow-http")
    return base + MESSAGES_PATH


def _shown(value: Any) -> str:
    return "none" if value in (None, "") else str(value)


def _status(exc: TwilioException) -> int | None:
    """The HTTP status of a Twilio error: a REST error's, or a list page's response's."""
    if isinstance(exc, TwilioRestException):
        return exc.status
    response = exc.args[1] if len(exc.args) > 1 else None
    return getattr(response, "status_code", None)


def _find_number(client: Client, address: str, account_sid: str) -> Any:
    found = [n for n in client.incoming_phone_numbers.list(phone_number=address, limit=20)
             if n.phone_number == address]
    if not found:
        raise SetupError(f"{address} is not a number in the Twilio account {account_sid}: "
                         "buy it there, or check TWILIO_ACCOUNT_SID and the number")
    return found[0]


def survey(config: Config, client: Client, session: Session, bank: Bank, address: str | None,
           url: str, command: str) -> tuple[list[Setting], Any, Any]:
    """The settings that must agree, and the Twilio number and service they were read from."""
    fix = f"run `{command}`"
    settings: list[Setting] = []
    number = service = None
    if address:
        number = _find_number(client, address, config.twilio_account_sid)
        current = banks.owner(session, address)
        theirs = current if current is not None and current.id != bank.id else None
        settings.append(Setting(
            f"{address} belongs to the bank", current.name if current else "no bank", bank.name,
            fix if theirs is None else (f"connect it with --bank {theirs.name!r}, or give "
                                        f"{bank.name!r} another number"),
            at_twilio=False, blocking=theirs is not None,
        ))
    sid = config.twilio_messaging_service_sid
    if sid:
        try:
            service = client.messaging.v1.services(sid).fetch()
        except TwilioRestException as exc:
            if exc.status == 404:
                raise SetupError(f"no Messaging Service {sid} in the Twilio account "
                                 f"{config.twilio_account_sid}: check "
                                 "TWILIO_MESSAGING_SERVICE_SID") from None
            raise
        where = f"Messaging Service {sid}"
        if number is not None:
            # Only the numbers in its sender pool take texts through the service: any other
            # number's texts still go to that number's own URL.
            pooled = any(n.phone_number == address for n in service.phone_numbers.list())
            settings.append(Setting(f"{address} in the sender pool of {where}",
                                    "yes" if pooled else "no", "yes", fix, pool=True))
        settings += [
            Setting(f"{where} inbound request URL", _shown(service.inbound_request_url), url,
                    fix),
            Setting(f"{where} inbound method", _shown(service.inbound_method), "POST", fix),
            Setting(f"{where} uses each number's own URL",
                    "yes" if service.use_inbound_webhook_on_number else "no", "no", fix),
        ]
    elif number is not None:
        settings += [
            Setting(f"{address} incoming-message URL", _shown(number.sms_url), url, fix),
            Setting(f"{address} incoming-message method", _shown(number.sms_method), "POST",
                    fix),
            # A TwiML App on the number would take its texts instead of the URL.
            Setting(f"{address} TwiML App for texts", _shown(number.sms_application_sid),
                    "none", fix),
        ]
    return settings, number, service


def apply(session: Session, bank: Bank, address: str | None, url: str, settings: list[Setting],
          number: Any, service: Any, region: str) -> None:
    """Make every setting agree: the bank owns the number, then Twilio points here. Called in
    the caller's transaction, so a refusal from Twilio leaves the bank as it was."""
    for s in settings:
        if s.blocking:
            raise SetupError(f"{s.what}: {s.now}, not {s.wanted}: {s.fix}")
    if address and banks.register_number(session, bank, address, region):
        audit.record(session, bank.id, "bank.number", broker_id=None, subject=mask(address),
                     detail="added by twilio connect", via="cli")
    if all(s.agrees for s in settings if s.at_twilio):
        return
    if service is not None:
        if not all(s.agrees for s in settings if s.at_twilio and not s.pool):
            service.update(inbound_request_url=url, inbound_method="POST",
                           use_inbound_webhook_on_number=False)
        if not all(s.agrees for s in settings if s.pool):
            service.phone_numbers.create(phone_number_sid=number.sid)
    elif number is not None:
        changes: dict[str, str] = {"sms_url": url, "sms_method": "POST"}
        if number.sms_application_sid:
            changes["sms_application_sid"] = ""
        number.update(**changes)
    audit.record(session, bank.id, "twilio.connect", broker_id=None,
                 subject=mask(address) if address else service.sid,
                 detail=f"incoming texts to {url}", via="cli")


@click.group("twilio")
def twilio_group() -> None:
    """Twilio, pointed at this deployment."""


@twilio_group.command("connect")
@click.argument("number", required=False)
@click.option("--bank", "bank_name", default=None, help="The bank that owns the number "
              "(default: the default bank).")
@click.option("--check", is_flag=True, help="Only report whether Twilio, the bank and "
              "PUBLIC_BASE_URL agree, and what to fix.")
@click.option("--allow-http", is_flag=True, help="Accept an http:// PUBLIC_BASE_URL (a tunnel "
              "while testing).")
def connect(number: str | None, bank_name: str | None, check: bool, allow_http: bool) -> None:
    """Point a Twilio number (default TWILIO_SMS_FROM), or the Messaging Service in
    TWILIO_MESSAGING_SERVICE_SID, at PUBLIC_BASE_URL/twilio/messages, and give the number to
    the bank."""
    from app.cli import _app, prepare

    with _app() as (_, shared):
        config = shared.config
        try:
            url = messages_url(config, allow_http)
        except SetupError as exc:
            raise click.ClickException(str(exc)) from None
        if not config.uses_twilio:
            raise click.ClickException("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN first "
                                       "(Twilio console, Account info)")
        address = number or config.twilio_sms_from or None
        if address is None and not config.twilio_messaging_service_sid:
            raise click.UsageError("give the number, e.g. `timebank twilio connect "
                                   "+447700900001`, or set TWILIO_SMS_FROM")
        if address is not None:
            try:
                address = normalise(address, config.default_region)
            except InvalidNumber:
                raise click.BadParameter(f"{address!r} is not a phone number") from None
        command = " ".join(
            ["timebank twilio connect"] + ([address] if number and address else [])
            + ([f"--bank {bank_name!r}"] if bank_name else [])
            + (["--allow-http"] if allow_http else [])
        )
        prepare(shared)
        client = twilio_client(config)
        try:
            with (shared.db.reading() if check else shared.db.writing()) as session:
                bank = banks.bank_by_name(session, bank_name)
                settings, found, service = survey(config, client, session, bank, address, url,
                                                  command)
                if not check:
                    apply(session, bank, address, url, settings, found, service,
                          config.default_region)
        except (SetupError, LedgerError) as exc:
            raise click.ClickException(str(exc)) from None
        except TwilioException as exc:
            status = _status(exc)
            if status == 401:
                raise click.ClickException(
                    "Twilio refused the credentials: check TWILIO_ACCOUNT_SID and "
                    "TWILIO_AUTH_TOKEN") from None
            raise click.ClickException(f"Twilio answered {status}: {exc}") from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise click.ClickException(f"could not reach Twilio ({type(exc).__name__}): "
                                       "try again") from None
    if check:
        wrong = [s for s in settings if not s.agrees]
        for s in settings:
            click.echo(f"ok   {s.what}: {s.now}" if s.agrees
                       else f"fix  {s.what}: {s.now}, should be {s.wanted}: {s.fix}")
        if wrong:
            raise click.ClickException(f"{len(wrong)} setting(s) to fix (above)")
        click.echo("Twilio, the bank and PUBLIC_BASE_URL agree.")
        return
    click.echo(f"Incoming texts now go to {url}:")
    for s in settings:
        click.echo(f"  {s.what}: {s.now} → {s.wanted}" if not s.agrees
                   else f"  {s.what}: {s.now} (unchanged)")
