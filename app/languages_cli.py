"""``timebank member language WHO CODE``: a broker sets the language a member reads the bank's
texts in (``app.languages``). Audited. Registered on the ``member`` group in ``app/cli.py``."""

from __future__ import annotations

import click


@click.command("language")
@click.argument("who")
@click.argument("code")
@click.option("--bank", "bank_name", default=None)
def member_language(who: str, code: str, bank_name: str | None) -> None:
    """Set the language a member reads (WHO: a phone number or #12; CODE: en, bn, so, …, or
    the language's name)."""
    from app import languages
    from app.cli import _app, _member_by, prepare
    from conversations import languages as choices
    from ledger import banks

    with _app() as (_, shared):
        prepare(shared)
        with shared.db.writing() as session:
            bank, member = _member_by(session, bank_name, who, shared.config)
            offered = banks.offered_languages(bank)
            wanted = choices.named(code) or code.strip().lower()
            if wanted not in offered:
                raise click.BadParameter(
                    f"{bank.name} offers {', '.join(offered)}; {code!r} is not one of them "
                    "(timebank bank set --languages … adds one)", param_hint="CODE")
            changed = languages.set_member_language(session, bank, member, wanted,
                                                    broker=None, via="cli")
            line = (f"{member.name} reads texts in {choices.own_name(wanted)} ({wanted})"
                    + ("." if changed else ", as before."))
    click.echo(line)
