"""``timebank jobs failed`` and ``timebank jobs retry ID``, over RQ's failed-job registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rq import get_current_job
from rq.job import Job, JobStatus

NUMBER = "+447700900123"


def reach_member(member_id: int) -> str:
    """A job that fails the first time, quoting a number as an error from Twilio would."""
    job = get_current_job()
    assert job is not None
    if job.connection.incr(f"test:reach:{member_id}") == 1:
        raise RuntimeError(f"could not reach {NUMBER}\nsecond line")
    return "reached"


def failed_job(services, outbox) -> Job:  # type: ignore[no-untyped-def]
    job = services.queue.enqueue("tests.test_failed_jobs.reach_member", 7)
    outbox.run_jobs()
    assert job.get_status(refresh=True) == JobStatus.FAILED
    return job  # type: ignore[no-any-return]


def test_a_failed_job_is_listed_with_its_error_and_no_number(cli, services, outbox):
    assert cli("jobs", "failed").output == "No failed jobs.\n"
    job = failed_job(services, outbox)

    shown = cli("jobs", "failed")

    assert shown.exit_code == 0
    assert job.id in shown.output
    assert "tests.test_failed_jobs.reach_member(7)" in shown.output
    assert "RuntimeError: could not reach +44******0123" in shown.output
    assert NUMBER not in shown.output
    assert "Traceback" not in shown.output
    assert "1 failed. `timebank jobs retry ID` tries one again." in shown.output


def test_retry_requeues_a_failed_job_which_then_succeeds(cli, services, outbox):
    job = failed_job(services, outbox)

    retried = cli("jobs", "retry", job.id)

    assert retried.exit_code == 0, retried.output
    assert f"Queued {job.id} again" in retried.output
    assert job.get_status(refresh=True) == JobStatus.QUEUED
    outbox.run_jobs()
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert job.return_value() == "reached"
    assert cli("jobs", "failed").output == "No failed jobs.\n"


def test_retry_refuses_an_unknown_id_or_a_job_that_did_not_fail(cli, services, outbox):
    unknown = cli("jobs", "retry", "no-such-job")
    assert unknown.exit_code != 0
    assert "No failed job 'no-such-job'. `timebank jobs failed` lists them." in unknown.output

    job = failed_job(services, outbox)
    assert cli("jobs", "retry", job.id).exit_code == 0
    outbox.run_jobs()
    again = cli("jobs", "retry", job.id)  # it succeeded: nothing to retry, nothing run twice
    assert again.exit_code != 0
    assert f"No failed job {job.id!r}" in again.output
    assert job.get_status(refresh=True) == JobStatus.FINISHED


def test_the_worker_log_masks_a_number_in_a_failed_jobs_traceback(backend, services):
    """RQ logs a failed job's traceback itself: the worker process masks numbers in it."""
    job = services.queue.enqueue("tests.test_failed_jobs.reach_member", 8)
    root = Path(__file__).resolve().parent.parent
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TWILIO_", "TIMEBANK_"))
           and key not in ("DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL")}
    env.update({"DATABASE_URL": backend.database_url, "REDIS_URL": backend.redis_url,
                "TIMEBANK_INSTANCE_PATH": str(backend.instance), "PYTHONPATH": str(root),
                "TIMEBANK_NAME": "Lambeth Time Bank", "TIMEBANK_QUIET_HOURS": "off"})
    worker = subprocess.run(
        [sys.executable, "-c", "from app.worker import main; main(burst=True)"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120)
    output = worker.stdout + worker.stderr
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert "Traceback" in output and "could not reach +44******0123" in output
    assert NUMBER not in output and NUMBER[1:] not in output
