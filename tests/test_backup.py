"""`timebank backup` and `timebank restore` on the embedded defaults, as an operator runs them."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from app import effects
from app.backup import claim_instance
from app.cli import main
from ledger import banks, members
from ledger.db import Database
from ledger.models import Account


def timebank(*args: str, instance: Path, database_url: str | None = None) -> Result:
    env = {"TIMEBANK_INSTANCE_PATH": str(instance), "DATABASE_URL": database_url}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def balances(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        with db.reading() as session:
            return {a.name: a.balance_minutes for a in session.scalars(select(Account))}
    finally:
        db.dispose()


def file_bytes(path: Path) -> str:
    """What the database at `path` holds, row by row: the same whether or not SQLite has yet
    folded its write-ahead log into the file (which opening it may do, and changes no row)."""
    connection = sqlite3.connect(path)
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


@pytest.fixture
def live(backend, services, make_phone):  # type: ignore[no-untyped-def]
    """The test bank with two members and some hours, and a thread recording more."""
    for number, name in (("+447700900801", "Ana"), ("+447700900802", "Sam")):
        make_phone(number).text(f"JOIN {name}")
    stop = threading.Event()
    recorded: list[int] = []

    def keep_recording() -> None:
        while not stop.is_set():
            with services.db.writing() as session:
                bank = banks.bank_by_name(session, None)
                for number in ("+447700900801", "+447700900802"):
                    member = members.find_member(session, bank.id, number)
                    assert member is not None
                    effects.record_hours(session, bank, member, 15, "timesheet",
                                         idempotency_key=f"load:{uuid.uuid4().hex}",
                                         entered_by="system")
            recorded.append(1)

    writer = threading.Thread(target=keep_recording)
    writer.start()
    try:
        while len(recorded) < 5:
            threading.Event().wait(0.01)
        yield backend
    finally:
        stop.set()
        writer.join()


@pytest.mark.backend("embedded")
def test_backup_under_load_is_a_consistent_ledger_that_restores(live, tmp_path):
    copies = tmp_path / "backups"
    copies.mkdir()
    results = [timebank("backup", str(where), instance=live.instance,
                        database_url=live.database_url)
               for where in (copies / "one.sqlite3", copies / "two.sqlite3", copies)]
    for result in results:
        assert result.exit_code == 0, result.output
        assert "the copy's ledger verifies" in result.output
    backups = sorted(p.name for p in copies.iterdir())
    assert backups[:1] == ["one.sqlite3"] and backups[2] == "two.sqlite3"
    assert backups[1].startswith("timebank-") and backups[1].endswith(".sqlite3")
    copy = copies / "two.sqlite3"
    held = balances(f"sqlite:///{copy}")
    assert held["Ana"] > 0 and held["Ana"] == held["Sam"]
    assert sum(held.values()) == 0

    # Restore it into another instance folder on the embedded defaults.
    instance = tmp_path / "instance"
    restored = timebank("restore", str(copy), instance=instance)
    assert restored.exit_code == 0, restored.output
    assert "There was no database there before." in restored.output
    assert balances(f"sqlite:///{instance / 'timebank.sqlite3'}") == held
    verified = timebank("ledger", "verify", instance=instance)
    assert verified.exit_code == 0, verified.output


@pytest.mark.backend("embedded")
def test_backup_refuses_to_overwrite_a_file(backend, services, tmp_path):
    there = tmp_path / "already.sqlite3"
    there.write_text("mine")
    result = timebank("backup", str(there), instance=backend.instance,
                      database_url=backend.database_url)
    assert result.exit_code != 0
    assert "already exists" in result.output
    assert there.read_text() == "mine"


@pytest.mark.backend("embedded")
def test_backup_of_a_ledger_in_breach_is_kept_and_says_so(backend, services, make_phone,
                                                          tmp_path):
    make_phone("+447700900831").text("JOIN Ana")
    with services.db.writing() as session:  # an hour from nowhere, in the live bank
        session.execute(update(Account).where(Account.name == "Ana")
                        .values(balance_minutes=60))
    copy = tmp_path / "copy.sqlite3"
    result = timebank("backup", str(copy), instance=backend.instance,
                      database_url=backend.database_url)
    assert result.exit_code != 0
    assert f"Backed up to {copy}, but the copy does not check out" in result.output
    assert "BREACH account" in result.output
    assert balances(f"sqlite:///{copy}")["Ana"] == 60


@pytest.mark.backend("embedded")
def test_restore_keeps_the_database_it_replaces(backend, services, make_phone, tmp_path):
    make_phone("+447700900811").text("JOIN Ana")
    copy = tmp_path / "copy.sqlite3"
    assert timebank("backup", str(copy), instance=backend.instance,
                    database_url=backend.database_url).exit_code == 0
    instance = tmp_path / "other"
    assert timebank("db", "upgrade", instance=instance).exit_code == 0
    replaced = balances(f"sqlite:///{instance / 'timebank.sqlite3'}")
    assert "Ana" not in replaced

    result = timebank("restore", str(copy), instance=instance)
    assert result.exit_code == 0, result.output
    kept = list(instance.glob("timebank.sqlite3.before-restore-*"))
    assert len(kept) == 1
    assert f"kept as {kept[0]}" in result.output
    assert balances(f"sqlite:///{kept[0]}") == replaced
    assert balances(f"sqlite:///{instance / 'timebank.sqlite3'}") == balances(
        f"sqlite:///{copy}")


def refused(result: Result, instance: Path, words: str) -> None:
    assert result.exit_code != 0
    assert words in result.output
    assert not list(instance.glob("timebank.sqlite3.*")), "nothing is replaced or left behind"


def test_restore_refuses_a_file_that_is_not_a_database(tmp_path):
    instance = tmp_path / "bank"
    assert timebank("db", "upgrade", instance=instance).exit_code == 0
    before = file_bytes(instance / "timebank.sqlite3")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database\n" * 100)
    refused(timebank("restore", str(junk), instance=instance), instance,
            "is not an SQLite database")
    assert file_bytes(instance / "timebank.sqlite3") == before


def test_restore_refuses_another_programs_database(tmp_path):
    instance = tmp_path / "bank"
    assert timebank("db", "upgrade", instance=instance).exit_code == 0
    before = file_bytes(instance / "timebank.sqlite3")
    foreign = tmp_path / "photos.sqlite3"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT)")
    connection.close()
    refused(timebank("restore", str(foreign), instance=instance), instance,
            "is not a time bank database this version knows (no migration record)")
    assert file_bytes(instance / "timebank.sqlite3") == before


@pytest.mark.backend("embedded")
def test_restore_refuses_a_copy_whose_ledger_fails_verify(backend, services, make_phone,
                                                          tmp_path):
    make_phone("+447700900821").text("JOIN Ana")
    copy = tmp_path / "copy.sqlite3"
    assert timebank("backup", str(copy), instance=backend.instance,
                    database_url=backend.database_url).exit_code == 0
    with sqlite3.connect(copy) as connection:  # an hour from nowhere
        connection.execute("UPDATE accounts SET balance_minutes = balance_minutes + 60 "
                           "WHERE name = 'Ana'")
    connection.close()
    instance = tmp_path / "bank"
    assert timebank("db", "upgrade", instance=instance).exit_code == 0
    before = file_bytes(instance / "timebank.sqlite3")
    result = timebank("restore", str(copy), instance=instance)
    refused(result, instance, "fails ledger verify")
    assert "BREACH" in result.output
    assert file_bytes(instance / "timebank.sqlite3") == before


@pytest.mark.backend("embedded")
def test_restore_refuses_while_a_bank_runs_there(backend, services, tmp_path):
    copy = tmp_path / "copy.sqlite3"
    assert timebank("backup", str(copy), instance=backend.instance,
                    database_url=backend.database_url).exit_code == 0
    instance = tmp_path / "bank"
    assert timebank("db", "upgrade", instance=instance).exit_code == 0
    before = file_bytes(instance / "timebank.sqlite3")
    running = claim_instance(instance)  # as `timebank run` holds it
    assert running is not None
    try:
        refused(timebank("restore", str(copy), instance=instance), instance,
                "A bank is running in")
    finally:
        running.close()
    assert file_bytes(instance / "timebank.sqlite3") == before


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_on_postgresql_both_explain_pg_dump(command, tmp_path):
    somewhere = tmp_path / "copy.dump"
    result = timebank(command, str(somewhere), instance=tmp_path,
                      database_url="postgresql://timebank@db.example/timebank")
    assert result.exit_code != 0
    assert 'pg_dump -Fc "$DATABASE_URL" > timebank.dump' in result.output
    assert "pg_restore" in result.output
    assert not somewhere.exists()
