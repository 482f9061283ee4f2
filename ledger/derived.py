"""What the tables derived from the transfers (``member_pairs``, ``member_months``) share:
reading a transfer's columns as a flush changes them, and comparing a table with what the
transfers give."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import except_, func, inspect, select
from sqlalchemy.orm import Session

from ledger.models import Transfer


def values(transfer: Transfer, names: Iterable[str], *, before: bool) -> dict[str, Any]:
    """A transfer's columns ``names``, as they are now or as they were before this flush."""
    state = inspect(transfer)
    found = {}
    for name in names:
        history = state.attrs[name].history
        if before and history.deleted:
            found[name] = history.deleted[0]
        else:
            found[name] = getattr(transfer, name)
    return found


def differences(session: Session, computed: Any, kept: Any) -> tuple[int, int]:
    """How many rows of ``computed`` (from the transfers) are missing or differ in ``kept``
    (the table's), and how many of ``kept`` the transfers do not give: two selects of the
    same columns."""
    missing = int(session.scalar(select(func.count()).select_from(
        except_(computed, kept).subquery())) or 0)
    extra = int(session.scalar(select(func.count()).select_from(
        except_(kept, computed).subquery())) or 0)
    return missing, extra
