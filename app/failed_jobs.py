"""Jobs that failed for good (RQ's failed-job registry): list them, and try one again.

``timebank jobs failed`` and ``timebank jobs retry ID``. Jobs carry ids, never numbers; an
error message may still quote one (a Twilio error), so every error shown is masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import click
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

from ledger.phones import mask_all


@dataclass(frozen=True)
class FailedJob:
    id: str
    what: str  # the job's function and arguments (ids only)
    ended_at: datetime | None
    error: str  # the exception's line from the traceback, numbers masked


def failed(queue: Queue) -> Iterator[FailedJob]:
    """The queue's failed jobs, the latest first."""
    registry = FailedJobRegistry(queue=queue)
    for job_id in registry.get_job_ids(desc=True):
        try:
            job = Job.fetch(job_id, connection=queue.connection)
        except NoSuchJobError:  # expired between listing and fetching
            continue
        yield FailedJob(job_id, mask_all(job.description or job.func_name or "?"),
                        job.ended_at, _error_line(job))


def retry(queue: Queue, job_id: str) -> Job:
    """Put a failed job back on its queue. Raises ``LookupError`` for an id not failed."""
    registry = FailedJobRegistry(queue=queue)
    try:
        return registry.requeue(job_id)
    except (NoSuchJobError, InvalidJobOperation):
        raise LookupError(job_id) from None


def _error_line(job: Job) -> str:
    """The first line of the exception that ended the job (``ValueError: …``), from the last
    traceback in its record (a chained exception's own comes last)."""
    result = job.latest_result()
    trace = (result.exc_string if result is not None else None) or ""
    last = trace.rpartition("Traceback (most recent call last):")[2]
    lines = [line for line in last.splitlines() if line.strip() and not line[0].isspace()]
    return mask_all(lines[0].strip()) if lines else "no error recorded"


@click.group("jobs")
def jobs_group() -> None:
    """Jobs that failed: list them and try them again."""


@jobs_group.command("failed")
def jobs_failed() -> None:
    """List the jobs that failed for good, latest first, with their error."""
    from app.cli import _app

    with _app() as (_, shared):
        found = list(failed(shared.queue))
    if not found:
        click.echo("No failed jobs.")
        return
    for job in found:
        when = f"{job.ended_at:%Y-%m-%d %H:%M} UTC" if job.ended_at else "-"
        click.echo(f"{job.id}  {when}  {job.what}\n    {job.error}")
    click.echo(f"{len(found)} failed. `timebank jobs retry ID` tries one again.")


@jobs_group.command("retry")
@click.argument("job_id")
def jobs_retry(job_id: str) -> None:
    """Put the failed job JOB_ID back on the queue; the worker runs it again."""
    from app.cli import _app

    with _app() as (_, shared):
        try:
            job = retry(shared.queue, job_id)
        except LookupError:
            raise click.ClickException(
                f"No failed job {job_id!r}. `timebank jobs failed` lists them.") from None
    click.echo(f"Queued {job.id} again: {mask_all(job.description or '')}")
