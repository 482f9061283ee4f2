"""What one scrape of ``/metrics`` costs as the messages table grows.

    .venv/bin/python bench/metrics_scrape.py                      # SQLite, 200,000 texts
    .venv/bin/python bench/metrics_scrape.py --messages 1000000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/timebank_bench_metrics \\
        --redis-url redis://127.0.0.1:6379/12

The figures that belong to other processes are read when scraped (``app.metrics.Figures``):
one pipelined Redis round trip and one grouped statement over the messages table. This loads
N message rows (not measured), then times ``app.metrics.exposition`` five times and reports
the best and the median. A PostgreSQL database named here is emptied before and after, so
its name must contain "bench"; so is the Redis database.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, text  # noqa: E402

from app import create_app, metrics  # noqa: E402
from app.cli import prepare  # noqa: E402
from app.config import Config  # noqa: E402
from ledger.models import Bank, Base, Message, utcnow  # noqa: E402

STATUSES = ["sent"] * 7 + ["delivered"] * 2 + ["failed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    args = parser.parse_args()
    if args.database_url and "bench" not in args.database_url.rsplit("/", 1)[-1]:
        parser.error("the database is emptied: its name must contain 'bench'")

    with tempfile.TemporaryDirectory() as folder:
        config = Config.from_env(env={}, instance_path=Path(folder), quiet_hours="off",
                                 database_url=args.database_url, redis_url=args.redis_url)
        app = create_app(config)
        shared = app.extensions["timebank"]
        with app.app_context():
            from ledger.migrate import upgrade

            upgrade(shared.db)
            empty(shared)
            prepare(shared)
            load(shared, args.messages)
            times = []
            for _ in range(5):
                started = time.perf_counter()
                metrics.exposition(shared)
                times.append(time.perf_counter() - started)
            backend = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
            print(f"{args.messages:,} messages on {backend}: one scrape takes "
                  f"{min(times) * 1000:.0f} ms at best, {statistics.median(times) * 1000:.0f} ms "
                  "median")
            empty(shared)
            shared.close()
            if not args.redis_url:
                shared.redis.shutdown(nosave=True)


def empty(shared) -> None:  # type: ignore[no-untyped-def]
    with shared.db.writing() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())
    shared.redis.flushdb()


def load(shared, count: int) -> None:  # type: ignore[no-untyped-def]
    with shared.db.reading() as session:
        bank_id = session.scalars(select(Bank.id)).first()
    now = utcnow()
    with shared.db.engine.begin() as connection:
        for start in range(0, count, 20_000):
            connection.execute(insert(Message), [
                {"bank_id": bank_id, "to_address": "+447700900001", "channel": "sms",
                 "kind": "ask_helper", "body": "x" * 60, "idempotency_key": f"bench:{i}",
                 "status": STATUSES[i % len(STATUSES)], "created_at": now, "updated_at": now}
                for i in range(start, min(count, start + 20_000))])
        if not shared.db.is_sqlite:
            connection.execute(text("ANALYZE messages"))


if __name__ == "__main__":
    main()
