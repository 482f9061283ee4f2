"""``timebank member away WHO [--for "3 weeks" | --until DATE]`` and ``timebank member back
WHO``: a broker pauses a member (a hospital stay) and resumes them. Audited; the member is
told by text. Registered on the ``member`` group in ``app/cli.py``."""

from __future__ import annotations

import click

from ledger.errors import LedgerError


@click.command("away")
@click.argument("who")
@click.option("--for", "length", default=None, metavar="LENGTH",
              help='How long, e.g. "3 weeks" or "10 days".')
@click.option("--until", "until", default=None, metavar="DATE",
              help="The day they are back, e.g. 2026-12-24 or \"24 Dec\".")
@click.option("--bank", "bank_name", default=None)
def away_command(who: str, length: str | None, until: str | None, bank_name: str | None
                 ) -> None:
    """Pause a member (WHO: a phone number or #12): no asks, broadcasts or reminders until
    they are back (by themselves on the day given, or when they text BACK)."""
    from app import outbound
    from app.care import away
    from app.cli import _app, _member_by, prepare

    if length and until:
        raise click.UsageError("give --for or --until, not both")
    words = length or (f"until {until}" if until else "")
    with _app() as (_, shared):
        prepare(shared)
        try:
            with shared.db.writing() as session:
                bank, member = _member_by(session, bank_name, who, shared.config)
                if member.status == "left":
                    raise click.ClickException(f"{member.name} has left {bank.name}")
                try:
                    back = away.read_until(words, bank)
                except away.AwayWords:
                    raise click.BadParameter(
                        f"{words!r}: give a length (\"3 weeks\") or a date within a year "
                        "(2026-12-24)") from None
                queued = away.set_away(session, bank, member, back, via="cli")
                line = (f"{member.name} is away until {away.return_date(bank, back)}."
                        if back is not None else f"{member.name} is away until they say BACK.")
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
        outbound.enqueue(shared, queued)
    click.echo(line)


@click.command("back")
@click.argument("who")
@click.option("--bank", "bank_name", default=None)
def back_command(who: str, bank_name: str | None) -> None:
    """End a member's pause (WHO: a phone number or #12)."""
    from app import outbound
    from app.care import away
    from app.cli import _app, _member_by, prepare

    with _app() as (_, shared):
        prepare(shared)
        with shared.db.writing() as session:
            bank, member = _member_by(session, bank_name, who, shared.config)
            queued = away.come_back(session, bank, member, via="cli")
            name = member.name
        if queued is None:
            click.echo(f"{name} was not away.")
            return
        outbound.enqueue(shared, queued)
    click.echo(f"{name} is back.")
