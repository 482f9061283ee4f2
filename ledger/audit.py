"""The audit log: every broker action, by text, on the dashboard or at the command line."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import AuditEntry


def record(session: Session, bank_id: int, action: str, *, broker_id: int | None,
           subject: str = "", detail: str = "", via: str = "web") -> AuditEntry:
    """Write one entry in the caller's transaction, so it stands or falls with the action."""
    entry = AuditEntry(bank_id=bank_id, broker_member_id=broker_id, action=action[:40],
                       subject=subject[:120], detail=detail[:400], via=via[:16])
    session.add(entry)
    return entry


def recent(session: Session, bank_id: int, limit: int = 100) -> list[AuditEntry]:
    return list(session.scalars(
        select(AuditEntry).where(AuditEntry.bank_id == bank_id)
        .order_by(AuditEntry.id.desc()).limit(limit)))
