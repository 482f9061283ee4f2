"""Privacy over every process: a journey through gunicorn and ``python worker.py`` run as the
Procfile runs them, then every line they printed and every key and value in Redis searched
for the members' numbers, in every way a number can be written.

An introduction legitimately carries a member's number: in the TwiML reply (to the member
only) and in the text the worker sends. The console transport prints that text with the
number masked and keeps only the message's id in Redis; the database keeps the text.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import select

from app.services import Services
from ledger.models import Message
from tests.conftest import Backend
from tests.faults import free_port, wait_until
from tests.helpers import ref_in
from tests.test_outbound import redis_contents

ROOT = Path(__file__).resolve().parent.parent

ANA, BOB, CAT, DEE = "+447700900801", "+447700900802", "+447700900803", "+447700900804"
STRANGER = "+447700900809"


def written_as(number: str) -> list[str]:
    """``+447700900801`` as people and programs write it: E.164, digits only, national
    (with and without its space), international with spaces, and the national number."""
    national = "0" + number[3:]
    return [number, number[1:], national, f"{national[:5]} {national[5:]}",
            f"+44 {number[3:7]} {number[7:]}", number[3:]]


def leaks(text: str, numbers: list[str]) -> list[str]:
    squeezed = re.sub(r"[\s\-().]", "", text)
    found = []
    for number in numbers:
        for form in written_as(number):
            if form in text or form.replace(" ", "") in squeezed:
                found.append(form)
    return found


class Bank:
    """gunicorn and the worker, started as the Procfile starts them (console transport)."""

    def __init__(self, backend: Backend, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("TWILIO_", "TIMEBANK_"))
               and key not in ("DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL")}
        env.update({
            "DATABASE_URL": backend.database_url,
            "REDIS_URL": backend.redis_url,
            "TIMEBANK_INSTANCE_PATH": str(backend.instance),
            "TIMEBANK_NAME": "Lambeth Time Bank",
            "TIMEBANK_QUIET_HOURS": "off",
            "TIMEBANK_SEND_RATE": "off",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "PORT": str(self.port),
        })
        procfile = dict(line.split(": ", 1) for line in
                        (ROOT / "Procfile").read_text().splitlines() if ": " in line)
        web = procfile["web"].replace("0.0.0.0", "127.0.0.1")  # loopback: unsigned webhooks
        self.processes = {
            "web": self._start(["sh", "-c", f"exec {web}"], env),
            "worker": self._start(["sh", "-c", f"exec {procfile['worker']}"], env),
        }
        wait_until(self._answers, 30, "gunicorn to answer")

    def _start(self, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        bin_dir = str(Path(sys.executable).parent)
        env = {**env, "PATH": bin_dir + os.pathsep + env.get("PATH", "")}
        name = "web" if "gunicorn" in command[-1] else "worker"
        with (self.folder / f"{name}.out").open("wb") as out, \
                (self.folder / f"{name}.err").open("wb") as err:
            return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err,
                                    start_new_session=True)

    def _answers(self) -> bool:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited: " + self.output())
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    def text(self, number: str, body: str) -> list[str]:
        form = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32,
                "From": number, "To": "", "Body": body, "NumMedia": "0"}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/twilio/messages",
            data=urllib.parse.urlencode(form).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            root = ET.fromstring(response.read())
        return ["".join(m.itertext()) for m in root.iter("Message")]

    def stop(self) -> None:
        """Each process, with those it forked (gunicorn's workers, RQ's scheduler), told to
        stop as a platform does, so that what they print on the way out is searched too."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def output(self) -> str:
        return "\n".join(path.read_text(errors="replace")
                         for path in sorted(self.folder.glob("*.out")) +
                         sorted(self.folder.glob("*.err")))


def all_sent(services: Services) -> bool:
    with services.db.reading() as session:
        statuses = set(session.scalars(select(Message.status)))
    return not statuses & {"queued", "sending"}


def bodies_to(services: Services, number: str) -> list[str]:
    with services.db.reading() as session:
        return list(session.scalars(select(Message.body).where(Message.to_address == number)
                                    .order_by(Message.id)))


@pytest.mark.slow
def test_no_process_prints_or_keeps_a_number_in_redis(
        backend: Backend, services: Services, tmp_path: Path) -> None:
    bank = Bank(backend, tmp_path)
    try:
        for number, name, skills in ((ANA, "Ana", "driving"), (CAT, "Cat", "lifts in my car"),
                                     (BOB, "Bob", "SKIP"), (DEE, "Dee", "SKIP")):
            # A new bank offers every language: asked which first (SKIP keeps English).
            assert "Which language?" in bank.text(number, f"JOIN {name}")[0]
            assert bank.text(number, "SKIP")[0].startswith("Welcome to")
            bank.text(number, skills)
            bank.text(number, "Lambeth")
            bank.text(number, "SKIP")
        bank.text(STRANGER, "hello, is this the time bank? my number is 07700 900809")
        bank.text(BOB, "NEED a lift to the clinic on Tuesday")
        wait_until(lambda: bool(bodies_to(services, ANA)) and all_sent(services), 30,
                   "the asks to go out")
        ref = ref_in(bodies_to(services, ANA)[0])
        [intro] = bank.text(ANA, f"YES {ref}")
        assert BOB in intro  # the helper's copy of the introduction carries the number
        assert "I've asked Bob to confirm 2 hours" in bank.text(ANA, f"DONE {ref} 2")[0]
        # Numbers written by members themselves, in national form.
        assert "I've asked Dee" in bank.text(CAT, "DONE 1 07700 900804 gardening")[0]
        bank.text(DEE, "GIVE 1 07700900803")
        wait_until(lambda: len(bodies_to(services, BOB)) >= 2 and all_sent(services), 30,
                   "the introduction and the request to confirm")
        assert any(ANA in body for body in bodies_to(services, BOB))  # the requester's copy
        confirm = bodies_to(services, BOB)[-1]
        assert "Recorded" in bank.text(BOB, f"YES {ref_in(confirm)}")[0]
        dee_confirm = next(b for b in bodies_to(services, DEE) if "YES " in b)
        bank.text(DEE, f"YES {ref_in(dee_confirm)}")
        bank.text(CAT, "STOP")
        bank.text(CAT, "START")
        assert bank.text(BOB, "BALANCE")[0].startswith("Balance: -2 hours")
        wait_until(lambda: all_sent(services), 30, "the receipts to go out")
    finally:
        bank.stop()

    output = bank.output()
    assert "[to +44******0801 by sms]" in output  # the console transport did print texts
    assert "send message 1" in output  # and the worker logged its jobs
    numbers = [ANA, BOB, CAT, DEE, STRANGER]
    assert leaks(output, numbers) == [], output
    contents = redis_contents(services.redis)
    assert b"tb:inbound:" in contents and b"tb:outbox:" in contents  # Redis was searched
    assert leaks(contents.decode(errors="replace"), numbers) == [], [
        line for line in contents.split(b"\n") if leaks(line.decode(errors="replace"), numbers)]
