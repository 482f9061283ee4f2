"""Languages: which a bank offers, and each member's own (``LANG`` by text, a broker from the
command line or the dashboard). One service per action, whichever door it came through.

Every text the bank sends is rendered in its recipient's language: replies in the sender's
(``app.inbound``), texts to others in theirs (``app.outbound.queue_text``). Values that are
the bank's own words ("the community fund", "help") go into texts as ``conversations.texts.Term``
and are written in each recipient's language; a member's own words (a need, a name) go as
they wrote them.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from conversations import languages
from conversations.machine import SetLanguage
from ledger import audit, banks
from ledger.errors import LedgerError
from ledger.models import Bank, Member


class NotOffered(LedgerError):
    """A language the member's bank does not offer."""


def describe(bank: Bank) -> str:
    """``"English, বাংলা (en, bn), default en"``, for the command line."""
    offered = banks.offered_languages(bank)
    every = "" if bank.languages else "every language: "
    return (f"{every}{', '.join(languages.own_name(c) for c in offered)} "
            f"({', '.join(offered)}), default {banks.default_language(bank)}")


def set_bank_languages(session: Session, bank: Bank, codes: str | None, default: str | None,
                       *, via: str) -> int:
    """Choose the languages ``bank`` offers (a comma list of codes; "all" for every one with a
    catalogue file) and its default. Members whose language is no longer offered read the
    default from now on; how many they were is returned. Raises ``UnknownLanguage``."""
    if codes is not None and codes.strip().lower() == "all":
        setting: str | None = None
        offered = languages.every()
    elif codes is not None:
        offered, _ = languages.parse_setting(codes, None)
        setting = ",".join(offered)
    else:
        setting, offered = bank.languages, banks.offered_languages(bank)
    if default is not None:
        default = default.strip().lower()
        if default not in languages.every():
            raise languages.UnknownLanguage(
                f"no catalogue file for {default!r}: the languages are "
                f"{', '.join(languages.every())}")
    chosen_default = default if default is not None else bank.default_language
    if chosen_default not in offered:
        if default is not None:
            raise languages.UnknownLanguage(
                f"the default language {default!r} must be one the bank offers "
                f"({', '.join(offered)}); add it to --languages")
        raise languages.UnknownLanguage(
            f"the bank's default language {chosen_default!r} would no longer be offered: "
            "give --default-language too")
    bank.languages = setting
    bank.default_language = chosen_default
    moved = list(session.scalars(
        update(Member).where(Member.bank_id == bank.id, Member.language.not_in(offered))
        .values(language=chosen_default).returning(Member.id)
        .execution_options(synchronize_session="fetch")))
    audit.record(session, bank.id, "bank.languages", broker_id=None, subject=f"bank {bank.id}",
                 detail=f"{setting or 'all'}; default {chosen_default}; {len(moved)} members moved",
                 via=via)
    return len(moved)


def set_member_language(session: Session, bank: Bank, member: Member, code: str, *,
                        broker: Member | None, via: str) -> bool:
    """``member`` reads the bank's texts in ``code`` from now on; whether it changed. A
    change made for them (the command line, a broker on the dashboard) is audited; the
    language must be one the bank offers."""
    if member.bank_id != bank.id:
        raise NotOffered("that member is in another bank")
    offered = banks.offered_languages(bank)
    if code not in offered:
        raise NotOffered(f"{bank.name} does not offer {code!r}: it offers {', '.join(offered)}")
    if member.language == code:
        return False
    member.language = code
    if via != "sms":
        audit.record(session, bank.id, "member.language",
                     broker_id=broker.id if broker is not None else None,
                     subject=f"member {member.id}", detail=code, via=via)
    return True


def carry_out(session: Session, bank: Bank, member: Member | None, effect: SetLanguage) -> None:
    """``LANG 3`` from the member themself (``app.effects``)."""
    if member is None:
        return
    try:
        set_member_language(session, bank, member, effect.code, broker=None, via="sms")
    except NotOffered:  # the bank stopped offering it between the read and now: keep theirs
        return
