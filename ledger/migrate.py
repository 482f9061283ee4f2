"""Schema migrations (Alembic), applied by ``timebank db upgrade``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

from ledger.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to the newest revision. Running it again changes nothing."""
    _migrate(db, command.upgrade, revision)


def downgrade(db: Database, revision: str) -> None:
    """Step the schema back to ``revision`` (e.g. ``-1``)."""
    _migrate(db, command.downgrade, revision)


def _migrate(db: Database, step: Callable[[Config, str], None], revision: str) -> None:
    config = alembic_config(db.url)
    with db.engine.connect() as connection:
        sqlite = connection.connection.driver_connection if db.is_sqlite else None
        if sqlite is not None:
            # On SQLite, altering a table copies it and drops the old one, which rows in other
            # tables refer to: foreign keys stay off meanwhile (it only takes effect outside a
            # transaction) and are checked once, before the migration commits.
            sqlite.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                step(config, revision)
                if sqlite is not None:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite is not None:
                sqlite.execute("PRAGMA foreign_keys=ON")
