"""``timebank member add|phone|post|accept|confirm|give|statement``: members who cannot text.

Registered on the ``member`` group by ``app/cli.py``. WHO is a phone number or a member number
``#12``; ``--by`` names the broker acting (needed on a broker's own hours, which only another
broker may touch, as everywhere).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from app.care import offline
from ledger import members
from ledger.errors import LedgerError

BY_HELP = "The broker acting (PHONE or #member number)."
BANK_HELP = "The bank's name (default bank if absent)."


@contextmanager
def _writing(bank_name: str | None) -> Iterator[tuple[Any, Any, Any]]:
    """(services, session, bank) in one transaction; refusals become a clear message."""
    from app import cli
    from ledger import banks

    with cli._app() as (_, shared):
        cli.prepare(shared)
        try:
            with shared.db.writing() as session:
                yield shared, session, banks.bank_by_name(session, bank_name)
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None


def _who(session: Any, bank: Any, who: str, config: Any) -> Any:
    """The member of ``bank`` that WHO names (never another bank's)."""
    try:
        found = members.resolve_who(session, bank.id, who, config.default_region)
    except members.SharedPhone as exc:
        raise click.ClickException(str(exc)) from None
    if found is None:
        raise click.ClickException(f"{who}: no member of {bank.name} is that")
    return found


def _by(session: Any, bank: Any, by: str | None, config: Any) -> Any:
    from app import cli

    return cli._acting_broker(session, bank, by, config)


def _enqueue(shared: Any, queued: list[int], jobs: list[tuple[str, int]] | None = None
             ) -> None:
    from app import outbound

    outbound.enqueue(shared, queued)
    for path, item_id in jobs or []:
        name = path.rsplit(".", 1)[-1]
        shared.queue.enqueue(path, item_id, job_id=f"{name}-{item_id}-cli-{uuid.uuid4().hex[:8]}")


def _phone(value: str, config: Any) -> str:
    from app import cli

    return cli._phone(value, config)


@click.command("add")
@click.argument("name")
@click.option("--phone", default=None, help="Their phone number, if they have one.")
@click.option("--shared", is_flag=True,
              help="The phone is shared with a member who has it already (a couple, a carer).")
@click.option("--area", default=None)
@click.option("--skills", default=None, help="What they could help with.")
@click.option("--notes", default=None, help="Private notes (support needs), for brokers only.")
@click.option("--bank", "bank_name", default=None, help=BANK_HELP)
@click.option("--by", default=None, help=BY_HELP)
def member_add(name: str, phone: str | None, shared: bool, area: str | None,
               skills: str | None, notes: str | None, bank_name: str | None,
               by: str | None) -> None:
    """Register NAME as a member, with or without a phone; prints their member number."""
    queued: list[int] = []
    with _writing(bank_name) as (services, session, bank):
        number = _phone(phone, services.config) if phone else None
        member, queued = offline.add_member(
            session, bank, name, phone=number, shared=shared, area=area, skills=skills,
            notes=notes, broker=_by(session, bank, by, services.config), via="cli")
        line = (f"#{member.id} {member.name} is now a member of {bank.name}"
                + ("." if number else ", without a phone."))
    _enqueue(services, queued)
    click.echo(line)


@click.command("phone")
@click.argument("who")
@click.argument("new_phone")
@click.option("--shared", is_flag=True,
              help="The number also belongs to another member: they share the phone.")
@click.option("--bank", "bank_name", default=None, help=BANK_HELP)
@click.option("--by", default=None, help=BY_HELP)
def member_phone(who: str, new_phone: str, shared: bool, bank_name: str | None,
                 by: str | None) -> None:
    """Give WHO a (new) phone number; their hours and history stay."""
    with _writing(bank_name) as (services, session, bank):
        number = _phone(new_phone, services.config)
        member = _who(session, bank, who, services.config)
        changed, queued = offline.give_phone(
            session, bank, member, number, shared=shared,
            broker=_by(session, bank, by, services.config), via="cli")
        line = (f"#{member.id} {member.name} now has that number; their hours and history "
                "stay." if changed else f"#{member.id} {member.name} already has that number.")
    _enqueue(services, queued)
    click.echo(line)


@click.command("post")
@click.argument("who")
@click.argument("kind", type=click.Choice(["need", "offer"], case_sensitive=False))
@click.argument("what", nargs=-1, required=True)
@click.option("--bank", "bank_name", default=None, help=BANK_HELP)
@click.option("--by", default=None, help=BY_HELP)
def member_post(who: str, kind: str, what: tuple[str, ...], bank_name: str | None,
                by: str | None) -> None:
    """Post a need or an offer for WHO, a member without a phone (helpers are asked)."""
    with _writing(bank_name) as (services, session, bank):
        member = _who(session, bank, who, services.config)
        acted = offline.post_for(session, bank, member, kind.lower(), " ".join(what),
                                 request_key=f"cli-post:{uuid.uuid4().hex}",
                                 broker=_by(session, bank, by, services.config), via="cli")
        line = f"Posted {kind.lower()} ref {acted.ref} for {member.name}."
    _enqueue(services, acted.queued, acted.jobs)
    click.echo(line)


@click.command("accept")
@click.argument("who")
@click.argument("ref", type=int)
@click.option("--bank", "bank_name", default=None, help=BANK_HELP)
@click.option("--by", default=None, help=BY_HELP)
def member_accept(who: str, ref: int, bank_name: str | None, by: str | None) -> None:
    """WHO (without a phone) will help with need REF: say YES for them."""
    with _writing(bank_name) as (services, session, bank):
        member = _who(session, bank, who, services.config)
        acted = offline.accept_for(session, bank, member, ref,
                                   broker=_by(session, bank, by, services.config), via="cli")
        name = member.name
    _enqueue(services, acted.queued)
    if acted.outcome != "matched":
        raise click.ClickException(f"ref {ref} is no longer open: {name} was not matched")
    click.echo(f"{name} will help with ref {ref}; the member who asked has been told.")


def _settled(ref: int, outcome: str, name: str) -> str:
    lines: dict[str, Callable[[], str]] = {
        "confirmed": lambda: f"Ref {ref} confirmed for {name}; the hours are recorded.",
        "already_confirmed": lambda: f"Ref {ref} was already confirmed.",
        "disputed": lambda: f"Ref {ref}: {name} says no; it waits for a broker.",
        "canceled": lambda: f"Ref {ref} canceled.",
        "limit": lambda: f"Ref {ref} would take {name} below their balance floor: held for "
                         "a broker (timebank ledger settle).",
    }
    return lines.get(outcome, lambda: f"Ref {ref} is closed; nothing changed.")()


@click.command("confirm")
@click.argument("who")
@click.argument("ref", type=int)
@click.option("--no", "say_no", is_flag=True, help="They say it is not right.")
@click.option("--bank", "bank_name", default=None, help=BANK_HELP)
@click.option("--by", default=None, help=BY_HELP)
def member_confirm(who: str, ref: int, say_no: bool, bank_name: str | None,
                   by: str | None) -> None:
    """Answer request REF for WHO, a member without a phone, after checking with them."""
    with _writing(bank_name) as (services, session, bank):
        member = _who(session, bank, who, services.config)
        result, queued = offline.confirm_for(
            session, bank, member, ref, yes=not say_no,
            broker=_by(session, bank, by, services.config), via="cli")
        line = _settled(ref, result.outcome, member.name)
    _enqueue(services, queued)
    click.echo(line)


@click.command("give")
@click.argument("who")
@click.argument("hours")
@click.argument("to")
@click.option("--bank", "bank_name", default=None, help=BANK_HELP)
@click.option("--by", default=None, help=BY_HELP)
def member_give(who: str, hours: str, to: str, bank_name: str | None, by: str | None) -> None:
    """Give HOURS of WHO's hours (a member without a phone) TO a member, or FUND."""
    from app import cli

    minutes = cli._parse_hours(hours)
    with _writing(bank_name) as (services, session, bank):
        member = _who(session, bank, who, services.config)
        receiver = None if to.strip().upper() == "FUND" else _who(session, bank, to,
                                                                   services.config)
        result, queued = offline.give_for(
            session, bank, member, minutes, receiver,
            request_key=f"cli-give:{uuid.uuid4().hex}",
            broker=_by(session, bank, by, services.config), via="cli")
        line = _settled(result.confirmation.ref if result.confirmation else 0, result.outcome,
                        member.name)
        balance = members.member_account(session, member).balance_minutes
    _enqueue(services, queued)
    from ledger.hours import format_hours

    click.echo(f"{line} Balance: {format_hours(balance)} hours.")


@click.command("statement")
@click.argument("who")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the page to this file (default: print it).")
@click.option("--bank", "bank_name", default=None, help=BANK_HELP)
def member_statement(who: str, out: Path | None, bank_name: str | None) -> None:
    """A one-page printable statement (HTML) of WHO's balance and recent exchanges."""
    from flask import render_template

    from app import cli
    from ledger import audit, banks

    with cli._app() as (_, shared):
        cli.prepare(shared)
        with shared.db.writing() as session:
            bank = banks.bank_by_name(session, bank_name)
            member = _who(session, bank, who, shared.config)
            page = render_template("care/statement.html",
                                   **offline.statement(session, bank, member))
            audit.record(session, bank.id, "member.statement", broker_id=None,
                         subject=f"member {member.id}", detail="printed", via="cli")
    if out is None:
        click.echo(page)
    else:
        out.write_text(page, encoding="utf-8")
        click.echo(f"Statement written to {out}.")


COMMANDS = [member_add, member_phone, member_post, member_accept, member_confirm, member_give,
            member_statement]
