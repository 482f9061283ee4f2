"""Counting what one request costs: SQL statements (with BEGIN/COMMIT/SAVEPOINT) and Redis
round trips, by instrumenting SQLAlchemy's engine events and redis-py's connection.

Used by ``bench/profile_need.py`` (the profile written to docs/PERFORMANCE.md) and by
``tests/test_query_counts.py`` (which pins the counts, so a regression shows).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from redis.connection import AbstractConnection as RedisConnection
from sqlalchemy import event

from ledger.db import Database

_VERB = re.compile(r"^\s*(\w+)")


@dataclass
class Counts:
    """What a block of code sent to the database and to Redis."""

    statements: list[str] = field(default_factory=list)  # SQL, including BEGIN and COMMIT
    transactions: int = 0  # BEGIN … COMMIT/ROLLBACK blocks SQLAlchemy opened
    redis_round_trips: int = 0
    redis_commands: list[str] = field(default_factory=list)

    @property
    def sql(self) -> int:
        """Statements sent, BEGIN/COMMIT included (each is a round trip on PostgreSQL)."""
        return len(self.statements)

    def by_verb(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for statement in self.statements:
            match = _VERB.match(statement)
            verb = match.group(1).upper() if match else "?"
            found[verb] = found.get(verb, 0) + 1
        return found


@contextlib.contextmanager
def counting(db: Database) -> Iterator[Counts]:
    """Count SQL statements on ``db`` and Redis round trips in this process while the block
    runs. A pipeline is one round trip, however many commands it carries."""
    counts = Counts()
    engine = db.engine

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counts.statements.append(" ".join(statement.split())[:160])

    real: set[int] = set()  # connections in a transaction the server sees

    def on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        # Database.peek: no transaction (autocommit on PostgreSQL, no BEGIN on SQLite), so
        # its end is no round trip either.
        if options.get("isolation_level") == "AUTOCOMMIT" or options.get(
                "sqlite_begin") == "NONE":
            return
        counts.transactions += 1
        real.add(id(conn))
        if not db.is_sqlite:  # SQLite's BEGIN is sent by ledger.db and seen as a statement
            counts.statements.append("BEGIN")

    def on_commit(conn: Any) -> None:
        if id(conn) in real:
            real.discard(id(conn))
            counts.statements.append("COMMIT")

    def on_rollback(conn: Any) -> None:
        if id(conn) in real:
            real.discard(id(conn))
            counts.statements.append("ROLLBACK")

    original = RedisConnection.send_packed_command

    def send_packed_command(self: RedisConnection, command: Any, check_health: bool = True
                            ) -> None:
        counts.redis_round_trips += 1
        first = command[0] if isinstance(command, list | tuple) and command else command
        counts.redis_commands.append(_redis_verb(first))
        original(self, command, check_health)

    listeners = [("before_cursor_execute", on_execute), ("begin", on_begin),
                 ("commit", on_commit), ("rollback", on_rollback)]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    RedisConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        RedisConnection.send_packed_command = original  # type: ignore[method-assign]
        for name, fn in listeners:
            event.remove(engine, name, fn)


def _redis_verb(packed: Any) -> str:
    """The first command's name in a packed request (``*3\\r\\n$3\\r\\nSET…``)."""
    raw = bytes(packed) if isinstance(packed, bytes | bytearray | memoryview) else b""
    parts = raw.split(b"\r\n")
    return parts[2].decode(errors="replace").upper() if len(parts) > 2 else "?"
