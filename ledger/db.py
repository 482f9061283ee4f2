"""Engines and transactions.

Two kinds of transaction:

- ``reading()``: a plain transaction for lookups.
- ``writing()``: a transaction that will write. On SQLite it begins with ``BEGIN IMMEDIATE``,
  so concurrent writers queue on the busy timeout instead of failing when a read lock would
  have to be upgraded; on PostgreSQL services take row locks (``SELECT … FOR UPDATE``) in a
  consistent order.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_S = 30


def normalise_url(url: str) -> str:
    """Accept the URLs hosting platforms hand out and pick the psycopg 3 driver for PostgreSQL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    # Errors never carry the statement's values (phone numbers) into logs or RQ's records.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    # No ping before each use: it is a round trip on every request. A connection the server
    # dropped fails once, SQLAlchemy then refreshes the whole pool, and the member is asked
    # to text again; connections are also renewed every half hour.
    kwargs.setdefault("pool_recycle", 1800)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()
        # SQLite's own lower() knows only A-Z: "Łukasz" and "Ömer" must match as on PostgreSQL.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode != "NONE":  # NONE: each statement on its own (``Database.peek``)
            conn.exec_driver_sql(f"BEGIN {mode}")


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class Database:
    """The ledger database: an engine and the two kinds of transaction."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        # Their session hooks move a bank's match version on with what matching reads, and
        # keep who first met whom (member_pairs) and what each member gave and received each
        # month (member_months) in step with the transfers.
        import ledger.match_cache
        import ledger.months
        import ledger.pairs  # noqa: F401
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        write_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite
            else self.engine
        )
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._peek_engine = (
            self.engine.execution_options(sqlite_begin="NONE") if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        # RQ forks a child per job: the child must open its own connections, never share ours.
        engine_ref = weakref.ref(self.engine)
        os.register_at_fork(after_in_child=lambda: _dispose_in_child(engine_ref))
        self._write = sessionmaker(write_engine, expire_on_commit=False)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    @contextmanager
    def peek(self) -> Iterator[Connection]:
        """A connection without a transaction, for a statement or two that only read: the
        webhook's hot path, where BEGIN and COMMIT would be round trips for nothing."""
        with self._peek_engine.connect() as connection:
            yield connection

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A transaction that commits when the block ends and rolls back on an exception."""
        with self._write() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _dispose_in_child(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.dispose(close=False)
