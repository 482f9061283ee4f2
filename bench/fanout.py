"""Broadcast fan-out: a worker's memory and texts a second as the audience grows.

    .venv/bin/python bench/fanout.py                          # 1,000, 10,000, 100,000 members
    .venv/bin/python bench/fanout.py --sizes 1000,10000       # quicker
    .venv/bin/python bench/fanout.py --markdown OUT           # a section for PERFORMANCE.md

For each audience size, on PostgreSQL + Redis (``--database-url``, created fresh and dropped
afterwards, so its name must contain "bench"; ``--redis-url`` is flushed before and after):

1. N active members are bulk-loaded (not measured), and the bank's daily cap on texts is
   raised above N (at the default 2,000 a day, a broadcast to more waits for tomorrow);
2. a process of its own plans the broadcast and confirms it (``app.broadcasts.confirm``:
   one message row per member, in one transaction) and enqueues its first batch: its time
   and its peak RSS (its own ``VmHWM``, ``bench/memory.py``);
3. one worker (``app.worker.main(burst=True)``, as ``worker.py`` runs it) sends the
   broadcast through the console transport, with throttling and quiet hours off, for at most
   ``--send-seconds`` (then RQ's warm shutdown: the batch in hand finishes): its peak RSS,
   and texts a second from the first ``sent_at`` to the last. The console transport
   costs almost nothing, so this is the worker's own ceiling: the SQL and Redis work per text
   (claim, send, record). Against Twilio each text also waits for one HTTPS request
   (``bench/broadcast.py`` measures that against a loopback stand-in of Twilio's API).

Every member must get exactly one message row, each ``sent`` or still ``queued`` (all
``sent`` when the worker finished in time), or the run fails.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, make_url, select  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/wt_benchscale_fanout"
DEFAULT_REDIS = "redis://127.0.0.1:6379/4"
WORKER = "from app.worker import main; main(burst=True)"
# Twilio's sending rates, in message segments a second (its support pages).
TWILIO_LIMITS = (
    ("US/Canada long code", "1 per number"),
    ("US toll-free number", "3 per number"),
    ("long code or alphanumeric sender, other countries (UK)", "10 per number"),
    ("US A2P 10DLC campaign", "up to 75 (by brand and campaign trust score)"),
    ("short code", "100 (30 for UK/Canadian ones provisioned before Dec 2016)"),
    ("Messaging Service", "the sum of its senders' rates"),
)


def _env(database_url: str, redis_url: str, instance: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TWILIO_", "TIMEBANK_"))
           and key not in ("DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL")}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url,
                "TIMEBANK_INSTANCE_PATH": str(instance), "TIMEBANK_QUIET_HOURS": "off",
                "TIMEBANK_SEND_RATE": "off", "TIMEBANK_NAME": "Bench Time Bank",
                "PYTHONPATH": str(ROOT)})
    return env


def _run(command: list[str], env: dict[str, str], log: Path, stop_after: float = 0.0
         ) -> tuple[float, float, str]:
    """Run a process to its end (or, after ``stop_after`` seconds, ask it to stop as RQ's
    warm shutdown does: the job in hand finishes): (wall seconds, peak RSS in MB, stdout).
    The peak is the process's own ``VmHWM``, read as it runs (``bench/memory.py``)."""
    from bench.memory import peak_mb

    started = time.perf_counter()
    peak = 0.0
    with log.open("ab") as errors, tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=errors)
        stopped = False
        while True:
            peak = max(peak, peak_mb(process.pid) or 0.0)  # a high-water mark: the last counts
            pid, status, _ = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if stop_after and not stopped and time.perf_counter() - started > stop_after:
                process.send_signal(signal.SIGTERM)
                stopped = True
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    wall = time.perf_counter() - started
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"{command[-1][:60]} exited with {process.returncode}:\n{tail}")
    return wall, peak, output


def _confirm_only() -> None:
    """Step 2, in its own process: plan, confirm, enqueue; prints its timings as JSON."""
    from app import broadcasts, create_app
    from app.config import Config
    from ledger import banks

    app = create_app(Config.from_env())
    shared = app.extensions["timebank"]
    with app.app_context():
        started = time.perf_counter()
        with shared.db.writing() as session:
            bank = banks.bank_for_address(session, None)
            planned, _ = broadcasts.plan(session, bank, broker=None,
                                         text="Street party on Saturday at 2pm",
                                         area=None, skill=None, request_key="fanout",
                                         via="cli")
            planned_id = planned.id
        plan_s = time.perf_counter() - started
        started = time.perf_counter()
        with shared.db.writing() as session:
            bank = banks.bank_for_address(session, None)
            activity, _ = broadcasts.confirm(session, bank, planned_id, broker=None, via="cli")
            recipients = activity.recipients
        confirm_s = time.perf_counter() - started
        broadcasts.enqueue(shared, planned_id)
    shared.close()
    print(json.dumps({"plan_s": plan_s, "confirm_s": confirm_s, "recipients": recipients,
                      "activity_id": planned_id}))


def _idle_only() -> None:
    """The same start-up as ``_confirm_only``, doing nothing: the baseline RSS."""
    from app import create_app
    from app.config import Config
    from ledger import banks

    app = create_app(Config.from_env())
    shared = app.extensions["timebank"]
    with shared.db.reading() as session:
        banks.bank_for_address(session, None)
    shared.close()


def add_members(database_url: str, redis_url: str, instance: Path, count: int) -> None:
    from app import create_app
    from app.cli import prepare
    from app.config import Config
    from ledger import banks
    from ledger.models import Account, Member

    app = create_app(Config.from_env(env=_env(database_url, redis_url, instance)))
    shared = app.extensions["timebank"]
    prepare(shared)
    shared.redis.flushdb()
    with shared.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        bank.bank_daily_texts = 10 * count
        for start in range(0, count, 5000):
            chunk = range(start, min(count, start + 5000))
            ids = list(session.scalars(
                insert(Member).returning(Member.id, sort_by_parameter_order=True),
                [{"bank_id": bank.id, "phone": f"+4477{n:08d}", "name": f"Member {n}",
                  "status": "active", "last_channel": "sms", "language": "en"}
                 for n in chunk]))
            session.execute(insert(Account), [
                {"bank_id": bank.id, "kind": "member", "member_id": member_id, "name": "M"}
                for member_id in ids])
    shared.close()


def check(database_url: str, activity_id: int, count: int, *, all_sent: bool
          ) -> dict[str, Any]:
    from ledger.db import Database
    from ledger.models import Message

    db = Database(database_url)
    with db.reading() as session:
        statuses = dict(session.execute(
            select(Message.status, func.count()).where(Message.activity_id == activity_id)
            .group_by(Message.status)).all())
        people = session.scalar(select(func.count(func.distinct(Message.member_id)))
                                .where(Message.activity_id == activity_id))
        first, last = session.execute(
            select(func.min(Message.sent_at), func.max(Message.sent_at))
            .where(Message.activity_id == activity_id)).one()
    db.dispose()
    sent = statuses.get("sent", 0)
    # One row a member; each sent or still queued (sent by the next worker), never failed.
    if people != count or sent + statuses.get("queued", 0) != count or (
            all_sent and sent != count):
        raise RuntimeError(f"expected {count} rows, one a member, sent or queued; found "
                           f"{statuses}, {people} members")
    seconds = (last - first).total_seconds() if first and last else 0.0
    return {"sending_s": seconds, "sent": sent,
            "texts_per_s": (sent - 1) / seconds if seconds else 0.0}


def one_size(database_url: str, redis_url: str, count: int, log: Path, send_seconds: float
             ) -> dict[str, Any]:
    from bench.dashboard_scale import create_database, drop_database

    create_database(database_url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            instance = Path(tmp)
            env = _env(database_url, redis_url, instance)
            add_members(database_url, redis_url, instance, count)
            _, idle_mb, _ = _run([sys.executable, __file__, "--idle-only"], env, log)
            _, confirm_mb, output = _run(
                [sys.executable, __file__, "--confirm-only"], env, log)
            confirmed = json.loads(output.strip().splitlines()[-1])
            if confirmed["recipients"] != count:
                raise RuntimeError(f"{confirmed['recipients']} of {count} members recorded")
            worker_wall, worker_mb, _ = _run([sys.executable, "-c", WORKER], env, log,
                                             stop_after=send_seconds)
            sent = check(database_url, confirmed["activity_id"], count,
                         all_sent=worker_wall < send_seconds)
    finally:
        drop_database(database_url)
        from redis import Redis

        client = Redis.from_url(redis_url)
        client.flushdb()
        client.close()
    return {"members": count, "idle_mb": idle_mb, "confirm_mb": confirm_mb,
            "plan_s": confirmed["plan_s"], "confirm_s": confirmed["confirm_s"],
            "worker_mb": worker_mb, "worker_s": worker_wall, **sent}


def markdown(results: list[dict[str, Any]], command: str) -> str:
    from bench.dashboard_scale import machine

    out = io.StringIO()
    w = out.write
    w("## Broadcast fan-out\n\n")
    w("A broadcast to N members on PostgreSQL + Redis: confirmed (every message row "
      "recorded, in one transaction) in a process of its own, then sent by one worker "
      "through the console transport, throttling and quiet hours off. Peak RSS is the "
      "process's own `VmHWM` (`bench/memory.py`), read every 50 ms while it runs; *idle* is "
      "the same start-up doing nothing.\n\n")
    w("| Members | plan | confirm | confirming process, peak | worker, peak | texts sent "
      "| texts/s per worker |\n|---:|---:|---:|---:|---:|---:|---:|\n")
    for r in results:
        w(f"| {r['members']:,} | {r['plan_s']:.2f} s | {r['confirm_s']:.2f} s | "
          f"{r['confirm_mb']:.0f} MB (idle {r['idle_mb']:.0f}) | {r['worker_mb']:.0f} MB | "
          f"{r['sent']:,} in {r['sending_s']:.0f} s | {r['texts_per_s']:.0f} |\n")
    w("\nA worker is stopped (RQ's warm shutdown) after `--send-seconds`; the texts left "
      "queued are checked to be exactly the members not yet texted, and the next worker "
      "sends them.\n")
    if len(results) > 1:
        small, big = results[0], results[-1]
        w(f"\nFrom {small['members']:,} to {big['members']:,} members "
          f"({big['members'] / small['members']:.0f}× the audience): the confirming "
          f"process's peak went from {small['confirm_mb']:.0f} to {big['confirm_mb']:.0f} MB "
          f"and the worker's from {small['worker_mb']:.0f} to {big['worker_mb']:.0f} MB.\n")
    w("\nTwilio's own sending rates (message segments a second), which a worker's rate is "
      "to be read against; `TIMEBANK_SEND_RATE` throttles each sender to its rate, shared "
      "by all workers:\n\n| Sender | Twilio's rate |\n|---|---|\n")
    for sender, rate in TWILIO_LIMITS:
        w(f"| {sender} | {rate} |\n")
    best = max((r["texts_per_s"] for r in results), default=0)
    w(f"\nOne worker sent at most {best:.0f} texts a second here, before any time waiting "
      "for Twilio's API (each text is its own claim, send and record: about ten SQL "
      "statements in three transactions). ")
    if best >= 10:
        w("A single long code (1 a second in the US, 10 elsewhere) is then limited by "
          "Twilio, not by the worker; ")
    else:
        w("That is below a UK long code's 10 a second on this machine: ")
    w("for a short code (100 a second) or a Messaging Service with many numbers, run more "
      "workers: texts are claimed one by one, so workers never send one twice.\n\n")
    w(f"Machine: {machine()}, shared with other work while it ran.\n\n")
    w(f"Reproduce: `{command}`\n")
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="audience sizes, comma-separated")
    parser.add_argument("--members", type=int, help="one audience size instead of --sizes")
    parser.add_argument("--database-url",
                        default=os.environ.get("BENCH_FANOUT_PG", DEFAULT_PG))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_FANOUT_REDIS",
                                                              DEFAULT_REDIS),
                        help="a Redis database the bench may flush")
    parser.add_argument("--send-seconds", type=float, default=120,
                        help="stop the worker after this long (0: send it all)")
    parser.add_argument("--markdown", metavar="OUT", help="write a markdown section to OUT")
    parser.add_argument("--confirm-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--idle-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.confirm_only:
        _confirm_only()
        return 0
    if args.idle_only:
        _idle_only()
        return 0
    if "bench" not in (make_url(args.database_url).database or ""):
        raise SystemExit("the database name must contain 'bench' (it is dropped)")
    sizes = [args.members] if args.members else [int(s) for s in args.sizes.split(",")]
    log = ROOT / "bench" / "results" / "fanout.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    results = []
    for size in sizes:
        print(f"{size:,} members …", flush=True)
        result = one_size(args.database_url, args.redis_url, size, log, args.send_seconds)
        print(f"  plan {result['plan_s']:.2f} s, confirm {result['confirm_s']:.2f} s, "
              f"confirming process {result['confirm_mb']:.0f} MB (idle "
              f"{result['idle_mb']:.0f}), worker {result['worker_mb']:.0f} MB, "
              f"{result['texts_per_s']:.0f} texts/s", flush=True)
        results.append(result)
    command = (f"python bench/fanout.py --sizes {','.join(str(s) for s in sizes)} "
               f"--send-seconds {args.send_seconds:g}")
    section = markdown(results, command)
    print()
    print(section)
    if args.markdown:
        Path(args.markdown).write_text(section)
        print(f"Written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
