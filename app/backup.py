"""Backups of the embedded SQLite database: ``timebank backup PATH`` and ``timebank restore PATH``.

A backup is SQLite's online backup: one consistent copy while the bank keeps writing (WAL mode
lets writers carry on). A restore checks the copy first (an SQLite database of this schema, at
the current migration or an older one, whose ledger verifies), never while a bank runs on the
instance folder, and keeps the file it replaces. On PostgreSQL both commands explain
``pg_dump`` and ``pg_restore`` instead.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import click
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app.config import Config
from ledger import accounts
from ledger.db import Database, normalise_url
from ledger.migrate import alembic_config, upgrade
from ledger.models import Transfer

POSTGRESQL = """\
This bank's database is PostgreSQL: back it up and restore it with PostgreSQL's own tools.
  Back up:  pg_dump -Fc "$DATABASE_URL" > timebank.dump
  Restore:  stop the web and worker processes, then
            pg_restore --clean --if-exists --no-owner -d "$DATABASE_URL" timebank.dump
            timebank db upgrade && timebank ledger verify
pg_dump and pg_restore take a postgresql:// URL (without "+psycopg"). For point-in-time
recovery use your provider's backups or WAL archiving."""

SQLITE_HEADER = b"SQLite format 3\x00"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Checked:
    """What a checked copy holds: its migration before and after upgrading, its transfers."""

    revision: str
    upgraded_to: str
    transfers: int


def database_file(config: Config) -> Path:
    """The SQLite file this configuration uses; on PostgreSQL, the explanation."""
    url = make_url(normalise_url(config.effective_database_url))
    if url.get_backend_name() != "sqlite":
        raise BackupError(POSTGRESQL)
    if not url.database or url.database == ":memory:":
        raise BackupError("This bank's SQLite database is in memory: there is nothing to copy.")
    return Path(url.database).absolute()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _copy(source: Path, target: Path, *, read_only: bool = False) -> None:
    """SQLite's online backup of ``source`` into a new self-contained file ``target``."""
    uri = source.as_uri() + ("?mode=ro" if read_only else "")
    src = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # one step: a snapshot, while writers carry on in the WAL
            dst.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
        finally:
            dst.close()
    finally:
        src.close()


def check(path: Path) -> Checked:
    """Bring an SQLite copy of this bank's database to the newest migration and verify its
    ledger; raise BackupError saying what is wrong with it otherwise. Changes ``path``."""
    with path.open("rb") as f:
        if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise BackupError(f"{path} is not an SQLite database.")
    connection = sqlite3.connect(path)
    try:
        ok = connection.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"{path} is damaged: {ok}")
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:
            row = None
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from None
    finally:
        connection.close()
    url = f"sqlite:///{path}"
    script = ScriptDirectory.from_config(alembic_config(url))
    known = {s.revision for s in script.walk_revisions()}
    if row is None or row[0] not in known:
        found = f"migration {row[0]}" if row else "no migration record"
        raise BackupError(f"{path} is not a time bank database this version knows ({found}).")
    db = Database(url)
    try:
        upgrade(db)
        with db.reading() as session:
            breaches = accounts.verify(session)
            count = session.scalar(select(func.count(Transfer.id))) or 0
    finally:
        db.dispose()
    if breaches:
        raise BackupError(f"{path} fails ledger verify:\n" + "\n".join(
            f"BREACH {breach}" for breach in breaches))
    return Checked(row[0], script.get_current_head() or row[0], count)


def backup(config: Config, target: Path) -> tuple[Path, Checked]:
    """Copy the running bank's database to ``target`` (a new file, or a folder to put a
    dated one in), then check the copy. Refuses to overwrite a file."""
    source = database_file(config)
    if not source.exists():
        raise BackupError(f"There is no database at {source} yet: nothing to back up.")
    if target.is_dir():
        target = target / f"timebank-{_stamp()}.sqlite3"
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new name.")
    partial = target.with_name(target.name + ".partial")
    try:
        _copy(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    # Verify a scratch copy: the backup stays exactly as the bank was.
    scratch = target.with_name(target.name + ".checking")
    try:
        _copy(target, scratch, read_only=True)
        return target, check(scratch)
    except BackupError as exc:
        raise BackupError(f"Backed up to {target}, but the copy does not check out, so "
                          f"neither does the bank: {exc}") from None
    finally:
        scratch.unlink(missing_ok=True)


def claim_instance(instance: Path) -> IO[str] | None:
    """Hold the instance folder (``run.lock``, dropped when the process ends) as ``timebank
    run`` does; None when a bank already holds it."""
    instance.mkdir(parents=True, exist_ok=True)
    lock = (instance / "run.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def restore(config: Config, source: Path) -> tuple[Path | None, Checked]:
    """Put the backup ``source`` in place of the bank's database once it checks out, keeping
    the replaced file beside it; return where that was kept and what was restored."""
    target = database_file(config)
    if not source.is_file():
        raise BackupError(f"There is no file {source}.")
    lock = claim_instance(config.instance_path)
    if lock is None:
        raise BackupError(
            f"A bank is running in {config.instance_path}. Stop it first (Ctrl-C where it "
            "runs), then restore.")
    try:
        stamp = _stamp()
        staging = target.with_name(f"{target.name}.restoring-{stamp}")
        try:
            try:
                _copy(source, staging, read_only=True)
            except sqlite3.DatabaseError:
                raise BackupError(f"{source} is not an SQLite database.") from None
            checked = check(staging)
            with sqlite3.connect(staging) as connection:
                connection.execute("PRAGMA journal_mode=DELETE")
            connection.close()
            kept = None
            if target.exists():
                kept = target.with_name(f"{target.name}.before-restore-{stamp}")
                _copy(target, kept)
            os.replace(staging, target)
            for leftover in ("-wal", "-shm"):  # the old file's; never to be replayed
                target.with_name(target.name + leftover).unlink(missing_ok=True)
        finally:
            staging.unlink(missing_ok=True)
        return kept, checked
    finally:
        lock.close()


@click.command("backup")
@click.argument("path", type=click.Path(path_type=Path))
def backup_command(path: Path) -> None:
    """Copy the SQLite database to PATH (a new file or a folder) while the bank runs."""
    try:
        written, checked = backup(Config.from_env(), path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Backed up to {written}: {checked.transfers} transfers, migration "
               f"{checked.revision}; the copy's ledger verifies.")


@click.command("restore")
@click.argument("path", type=click.Path(path_type=Path))
def restore_command(path: Path) -> None:
    """Replace the SQLite database with the backup PATH, after checking it; the bank must
    be stopped. The replaced file is kept beside it."""
    config = Config.from_env()
    try:
        kept, checked = restore(config, path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    upgraded = (f", upgraded from migration {checked.revision} to {checked.upgraded_to}"
                if checked.revision != checked.upgraded_to else "")
    click.echo(f"Restored {path} ({checked.transfers} transfers{upgraded}; its ledger "
               f"verifies) into {database_file(config)}.")
    click.echo(f"The database it replaced is kept as {kept}." if kept
               else "There was no database there before.")
