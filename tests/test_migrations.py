"""Upgrades: a database made by the first migration, with a bank's data in it, is brought to
the newest schema with every hour intact, and the newest migration steps down and up again.

On SQLite a file of its own; on PostgreSQL a schema of its own in the test database (through
``search_path``), so the session's tables are left alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import select, text

from app.cli import main
from ledger import accounts
from ledger.db import Database
from ledger.migrate import alembic_config, downgrade, upgrade
from ledger.models import Account, Bank, Member, Transfer

HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()

# A bank as the first migration knew it: a default bank with its number, two members, their
# accounts and the fund, one exchange of 1.5 hours from Sam to Ana, and two hours Ana
# recorded for Sam from the fund.
FIRST_ROWS = """
INSERT INTO banks (id, name, timezone, require_approval, min_balance_minutes,
                   max_exchange_minutes, is_default, created_at)
VALUES (1, 'Lambeth Time Bank', 'Europe/London', false, -1200, 1440, true,
        '2026-11-26 10:00:00.000000');
INSERT INTO bank_numbers (id, bank_id, address, channel) VALUES (1, 1, '+447700900000', 'sms');
INSERT INTO members (id, bank_id, phone, whatsapp, name, area, skills, availability, language,
                     status, role, notes, last_channel, last_inbound_at, joined_at, left_at)
VALUES (1, 1, '+447700900701', NULL, 'Sam', 'Brixton', 'gardening', 'weekends', 'en', 'active',
        'member', NULL, 'sms', '2026-11-27 09:00:00.000000', '2026-11-26 11:00:00.000000', NULL),
       (2, 1, '+447700900702', NULL, 'Ana', 'Stockwell', 'shopping', NULL, 'en', 'active',
        'broker', 'Prefers calls', 'sms', NULL, '2026-11-26 12:00:00.000000', NULL);
INSERT INTO accounts (id, bank_id, kind, member_id, name, balance_minutes, min_balance_minutes,
                      created_at)
VALUES (1, 1, 'fund', NULL, 'Community fund', -120, NULL, '2026-11-26 10:00:00.000000'),
       (2, 1, 'member', 1, 'Sam', 30, NULL, '2026-11-26 11:00:00.000000'),
       (3, 1, 'member', 2, 'Ana', 90, -600, '2026-11-26 12:00:00.000000');
INSERT INTO transfers (id, bank_id, from_account_id, to_account_id, minutes, kind, description,
                       entered_by, entered_by_member_id, idempotency_key, reverses_id,
                       created_at)
VALUES (1, 1, 2, 3, 90, 'exchange', 'shopping', 'member', 1, 'sms:SM1', NULL,
        '2026-11-27 09:00:00.000000'),
       (2, 1, 1, 2, 120, 'grant', 'gardening club', 'broker', 2, 'cli:sheet-1', NULL,
        '2026-11-27 10:00:00.000000');
INSERT INTO messages (id, bank_id, member_id, to_address, channel, kind, body, urgent,
                      idempotency_key, status, provider_sid, error_code, attempts, created_at,
                      updated_at)
VALUES (1, 1, 2, '+447700900702', 'sms', 'receipt', 'Sam sent you 1.5 hours', false,
        'receipt:1', 'sent', 'SM0001', NULL, 1, '2026-11-27 09:00:01.000000',
        '2026-11-27 09:00:02.000000');
"""


def revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return connection.scalar(text("SELECT version_num FROM alembic_version"))


@pytest.fixture
def empty(backend, tmp_path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    """An empty database on this backend, apart from the session's."""
    if backend.name == "embedded":
        db = Database(f"sqlite:///{tmp_path / 'old.sqlite3'}")
        yield db
        db.dispose()
        return
    schema = f"migrations_{uuid.uuid4().hex[:8]}"
    admin = Database(backend.database_url)
    with admin.engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    db = Database(backend.database_url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield db
    finally:
        db.dispose()
        with admin.engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def first_migration_with_data(db: Database) -> None:
    upgrade(db, "0001")
    with db.engine.begin() as connection:
        for statement in FIRST_ROWS.split(";"):
            if statement.strip():
                connection.execute(text(statement))
    if not db.is_sqlite:  # rows given their ids: move the sequences past them
        with db.engine.begin() as connection:
            for table in ("banks", "bank_numbers", "members", "accounts", "transfers",
                          "messages"):
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"))


def assert_bank_intact(db: Database) -> None:
    with db.reading() as session:
        assert accounts.verify(session) == []
        bank = session.scalars(select(Bank)).one()
        assert (bank.name, bank.is_default) == ("Lambeth Time Bank", True)
        names = {m.name: (m.phone, m.role, m.notes) for m in session.scalars(select(Member))}
        assert names == {"Sam": ("+447700900701", "member", None),
                         "Ana": ("+447700900702", "broker", "Prefers calls")}
        balances = {a.name: a.balance_minutes for a in session.scalars(select(Account))}
        assert balances == {"Community fund": -120, "Sam": 30, "Ana": 90}
        transfers = session.scalars(select(Transfer).order_by(Transfer.id)).all()
        assert [(t.minutes, t.description) for t in transfers] == [
            (90, "shopping"), (120, "gardening club")]
        assert transfers[0].created_at.isoformat() == "2026-11-27T09:00:00+00:00"


def test_first_migration_with_data_upgrades_to_the_newest_and_steps_back(empty):
    first_migration_with_data(empty)
    upgrade(empty)
    assert revision(empty) == HEAD
    assert_bank_intact(empty)

    downgrade(empty, "-1")
    assert revision(empty) != HEAD
    upgrade(empty)
    assert revision(empty) == HEAD
    assert_bank_intact(empty)

    # The bank works on the upgraded data: a new transfer takes the next id.
    with empty.writing() as session:
        recorded = accounts.transfer(
            session, bank_id=1, from_account_id=3, to_account_id=2, minutes=60,
            kind="exchange", idempotency_key="after-upgrade", entered_by="member",
            entered_by_member_id=2, description="lifts")
        assert recorded.created and recorded.transfer.id == 3
    with empty.reading() as session:
        assert accounts.verify(session) == []


@pytest.mark.backend("embedded")
def test_a_backup_from_the_first_migration_restores_upgraded(empty, tmp_path: Path):
    first_migration_with_data(empty)
    empty.dispose()
    instance = tmp_path / "bank"
    result = CliRunner().invoke(main, ["restore", str(tmp_path / "old.sqlite3")],
                                env={"TIMEBANK_INSTANCE_PATH": str(instance),
                                     "DATABASE_URL": None}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"2 transfers, upgraded from migration 0001 to {HEAD}" in result.output
    restored = Database(f"sqlite:///{instance / 'timebank.sqlite3'}")
    try:
        assert revision(restored) == HEAD
        assert_bank_intact(restored)
    finally:
        restored.dispose()
