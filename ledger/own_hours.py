"""No one pays themselves: a broker never settles, records, credits or reverses hours they
give or receive; another broker must.

The parties to an entry are the members behind its two accounts and, for a request, the
members who asked and who must answer. The command line has no signed-in broker, so it names
the one acting (``--by``); an unnamed operator may touch no broker's hours at all. One
exception: the only broker of a bank may act on their own hours at the command line, and the
action is audited as an override (``own_hours.override``, subject ``transfer <id>``), which
``timebank ledger verify`` looks for beside every transfer a broker recorded to or from
themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from ledger import audit
from ledger.errors import OwnHours
from ledger.models import Account, AuditEntry, Member, Transfer

OVERRIDE = "own_hours.override"
SOLE_BROKER = "the bank's only broker, at the command line"


def parties(session: Session, account_ids: Iterable[int],
            member_ids: Iterable[int | None] = ()) -> set[int]:
    """Ids of the members behind ``account_ids``, with ``member_ids`` added."""
    found = {member_id for member_id in member_ids if member_id is not None}
    found.update(session.scalars(select(Account.member_id).where(
        Account.id.in_(list(account_ids)), Account.member_id.is_not(None))))
    return found


def check(session: Session, bank_id: int, broker: Member | None, party_ids: set[int], *,
          via: str) -> str | None:
    """Refuse (``OwnHours``) a broker acting on their own hours; the override to audit when
    the bank's only broker does so at the command line, else None."""
    if broker is None:
        if session.scalar(select(func.count(Member.id)).where(
                Member.id.in_(party_ids), Member.role == "broker")):
            raise OwnHours("these hours are a broker's own: name the broker acting with --by "
                           "(another broker)")
        return None
    if broker.id not in party_ids:
        return None
    if via == "cli" and brokers(session, bank_id) == 1:
        return SOLE_BROKER
    raise OwnHours("a broker can't act on hours they give or receive: another broker must")


def brokers(session: Session, bank_id: int) -> int:
    """How many active brokers the bank has."""
    return session.scalar(select(func.count(Member.id)).where(
        Member.bank_id == bank_id, Member.role == "broker", Member.status == "active")) or 0


def audit_override(session: Session, bank_id: int, broker: Member, transfer: Transfer,
                   note: str, *, via: str) -> None:
    audit.record(session, bank_id, OVERRIDE, broker_id=broker.id,
                 subject=f"transfer {transfer.id}", detail=note, via=via)


def breaches(session: Session, bank_id: int) -> list[str]:
    """Transfers a broker recorded to or from themselves without an audited override."""
    payer, payee = aliased(Account), aliased(Account)
    own = session.scalars(
        select(Transfer.id)
        .join(payer, payer.id == Transfer.from_account_id)
        .join(payee, payee.id == Transfer.to_account_id)
        .where(Transfer.bank_id == bank_id, Transfer.entered_by == "broker",
               Transfer.entered_by_member_id.is_not(None),
               or_(payer.member_id == Transfer.entered_by_member_id,
                   payee.member_id == Transfer.entered_by_member_id))
        .order_by(Transfer.id)
    ).all()
    if not own:
        return []
    overridden = set(session.scalars(select(AuditEntry.subject).where(
        AuditEntry.bank_id == bank_id, AuditEntry.action == OVERRIDE)))
    return [f"transfer {transfer_id}: its broker is its giver or receiver, and no override "
            "is audited" for transfer_id in own if f"transfer {transfer_id}" not in overridden]
