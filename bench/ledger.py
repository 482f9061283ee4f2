"""Ledger benchmarks: the cost of BALANCE as history grows, and transfers recorded per second.

    .venv/bin/python bench/ledger.py            # SQLite, and PostgreSQL if it answers
    .venv/bin/python bench/ledger.py --quick    # 100,000 transfers instead of 1,000,000

BALANCE is measured through the webhook (Flask's test client: parse, dedupe, facts, step,
TwiML) with 1,000 and with 1,000,000 transfers in the bank; the ratio should stay near 1,
because a balance is one cached row, whatever the history. Transfers per second are recorded
through ``ledger.accounts.transfer`` (row locks, idempotency check, cached balances).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, text, update  # noqa: E402

from app import create_app  # noqa: E402
from app.cli import prepare  # noqa: E402
from app.config import Config  # noqa: E402
from ledger import accounts, banks, members  # noqa: E402
from ledger.models import Account, Transfer  # noqa: E402
from ledger.phones import Address  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql+psycopg://postgres@127.0.0.1:5432/timebank_bench_ledger"
REDIS_BENCH = "redis://127.0.0.1:6379/13"
MEMBERS = 100


def pg_available() -> bool:
    from sqlalchemy import create_engine

    try:
        engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS timebank_bench_ledger"))
            conn.execute(text("CREATE DATABASE timebank_bench_ledger"))
        engine.dispose()
        return True
    except Exception as exc:  # no server: SQLite only
        print(f"PostgreSQL not available ({type(exc).__name__}); SQLite only")
        return False


def build(backend: str, tmp: Path):  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        config = Config.from_env(env={}, instance_path=tmp, bank_name="Bench")
    else:
        config = Config.from_env(env={}, instance_path=tmp, database_url=PG_BENCH,
                                 redis_url=REDIS_BENCH, bank_name="Bench")
    app = create_app(config)
    shared = app.extensions["timebank"]
    shared.redis.flushdb()
    prepare(shared)
    with shared.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        ids = []
        for i in range(MEMBERS):
            member, _ = members.join(session, bank, Address(f"+4477009{i:05d}", "sms"), f"M{i}")
            ids.append(members.member_account(session, member).id)
    return app, shared, bank.id, ids


def fill(shared, bank_id: int, ids: list[int], target: int) -> None:  # type: ignore[no-untyped-def]
    """Bulk-load transfers up to ``target``, then set cached balances to match."""
    with shared.db.reading() as session:
        have = session.scalar(select(text("count(*)")).select_from(Transfer)) or 0
    batch = 20_000
    n = have
    start = time.perf_counter()
    while n < target:
        rows = []
        for i in range(n, min(target, n + batch)):
            a, b = ids[i % MEMBERS], ids[(i * 7 + 1) % MEMBERS]
            if a == b:
                b = ids[(i + 1) % MEMBERS]
            rows.append({
                "bank_id": bank_id, "from_account_id": a, "to_account_id": b, "minutes": 15,
                "kind": "exchange", "description": "bench", "entered_by": "system",
                "idempotency_key": f"bulk:{i}",
            })
        with shared.db.writing() as session:
            session.execute(insert(Transfer), rows)
        n += len(rows)
    with shared.db.writing() as session:
        fund = banks.ensure_fund(session, banks.bank_for_address(session, None))
        for account_id in [*ids, fund.id]:
            incoming = session.scalar(text(
                "select coalesce(sum(minutes), 0) from transfers where to_account_id = :a"
            ), {"a": account_id})
            outgoing = session.scalar(text(
                "select coalesce(sum(minutes), 0) from transfers where from_account_id = :a"
            ), {"a": account_id})
            session.execute(update(Account).where(Account.id == account_id)
                            .values(balance_minutes=int(incoming) - int(outgoing)))
    print(f"  loaded {target:,} transfers in {time.perf_counter() - start:.1f} s")


def time_balance(app, rounds: int = 400) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    client = app.test_client()
    samples = []
    for _ in range(rounds):
        form = {"MessageSid": "SM" + uuid.uuid4().hex, "From": "+447700900001", "To": "",
                "Body": "BALANCE"}
        start = time.perf_counter()
        response = client.post("/twilio/messages", data=form,
                               environ_base={"REMOTE_ADDR": "127.0.0.1"})
        samples.append(time.perf_counter() - start)
        assert b"Balance:" in response.data, response.data
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(len(samples) * 0.95)] * 1e6


def transfers_per_second(shared, bank_id: int, ids: list[int], threads: int,  # type: ignore[no-untyped-def]
                         seconds: float = 3.0) -> float:
    done = [0] * threads
    deadline = time.perf_counter() + seconds

    def work(t: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            a, b = ids[(t * 13 + i) % MEMBERS], ids[(t * 13 + i + 1) % MEMBERS]
            with shared.db.writing() as session:
                accounts.transfer(
                    session, bank_id=bank_id, from_account_id=a, to_account_id=b, minutes=15,
                    kind="exchange", idempotency_key=f"tps:{uuid.uuid4().hex}",
                    entered_by="system", enforce_limit=False,
                )
            i += 1
            done[t] += 1

    start = time.perf_counter()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - start)


def run(backend: str, big: int) -> list[str]:
    tmp = Path(tempfile.mkdtemp(prefix=f"tb-bench-{backend}-"))
    lines = []
    try:
        app, shared, bank_id, ids = build(backend, tmp)
        client = app.test_client()
        client.post("/twilio/messages", data={"MessageSid": "SM" + uuid.uuid4().hex,
                    "From": "+447700900001", "Body": "JOIN Bench"},
                    environ_base={"REMOTE_ADDR": "127.0.0.1"})
        with app.app_context():
            print(f"{backend}:")
            fill(shared, bank_id, ids, 1_000)
            small = time_balance(app)
            fill(shared, bank_id, ids, big)
            large = time_balance(app)
            with shared.db.reading() as session:
                assert accounts.verify(session) == [], "ledger invariants broken by the bench"
            one = transfers_per_second(shared, bank_id, ids, 1)
            four = transfers_per_second(shared, bank_id, ids, 4)
        lines.append(
            f"| {backend} | {small[0]:.0f} / {small[1]:.0f} | {large[0]:.0f} / {large[1]:.0f} "
            f"| {large[0] / small[0]:.2f} | {one:.0f} | {four:.0f} |"
        )
        shared.redis.flushdb()
        shared.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100,000 transfers, not 1,000,000")
    args = parser.parse_args()
    big = 100_000 if args.quick else 1_000_000
    rows = run("sqlite", big)
    if pg_available():
        rows += run("postgresql", big)
    table = [
        f"BALANCE through the webhook, median / p95 in microseconds, with 1,000 and "
        f"{big:,} transfers in the bank; transfers recorded per second (1 and 4 threads).",
        "",
        f"| backend | BALANCE, 1,000 | BALANCE, {big:,} | ratio | transfers/s, 1 thread "
        "| transfers/s, 4 threads |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ledger.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    os.environ.setdefault("TIMEBANK_NAME", "Bench")
    main()
