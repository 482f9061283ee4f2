"""The words a ledger row shows back to a member, made at send time in their language.

The ledger stores what happened as codes and data (its ``kind``, the activity in its key, the
transfer it reverses, a member's or broker's own words), never sentences: "gift", "group
activity 7: …" and "correction: …" come from the message catalogue (``ledger_*`` entries), so
each language writes them its own way. Rows written before this (whose description holds the
English words: "gift", "Group activity 7: …", "reverses #4: …") are shown as they are.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from conversations.machine import for_others
from conversations.texts import in_language, render
from ledger.models import Activity, Transfer

ACTIVITY_KEY = "activity:"


def activity_of(session: Session, transfer: Transfer) -> Activity | None:
    """The group activity a credit was for, from its key (``activity:<id>:<member id>``)."""
    if transfer.kind != "activity" or not transfer.idempotency_key.startswith(ACTIVITY_KEY):
        return None
    activity_id = transfer.idempotency_key.removeprefix(ACTIVITY_KEY).split(":", 1)[0]
    return session.get(Activity, int(activity_id)) if activity_id.isdigit() else None


def transfer_what(session: Session, transfer: Transfer, language: str, most: int = 40) -> str:
    """What ``transfer`` was for, in ``language``, cut to ``most`` characters."""
    description = transfer.description or ""
    if transfer.kind == "gift" and not description:
        return render("ledger_gift", language)
    if transfer.kind == "activity" and not description:
        activity = activity_of(session, transfer)
        if activity is not None:
            words = render("ledger_activity", language, ref=activity.ref, what="")
            return render("ledger_activity", language, ref=activity.ref,
                          what=for_others(activity.text, language, max(most - len(words), 10)))
    if transfer.kind == "reversal" and transfer.reverses_id is not None and not (
            description.startswith(f"reverses #{transfer.reverses_id}: ")):
        words = render("ledger_reversal", language, what="")
        return render("ledger_reversal", language,
                      what=for_others(description, language, max(most - len(words), 10)))
    return str(in_language(for_others(description, language, most), language))
