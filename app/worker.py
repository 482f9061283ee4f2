"""Run the RQ worker inside the app's context, with RQ's scheduler for delayed jobs, and a
timer that enqueues the periodic sweep (reminders, escalations, lost jobs)."""

from __future__ import annotations

import logging
import os
import threading
import time

from redis import ConnectionPool, Redis
from rq import Queue, SimpleWorker, Worker

from app import create_app, delivery, jobs, services

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 300


def enqueue_sweep(redis: Redis, queue: Queue, now: float | None = None) -> bool:
    """Enqueue one sweep per period, however many workers are running."""
    bucket = int((now or time.time()) // SWEEP_EVERY_SECONDS)
    if not redis.set(f"tb:sweep:{bucket}", b"1", nx=True, ex=SWEEP_EVERY_SECONDS * 2):
        return False
    queue.enqueue("app.jobs.sweep", job_id=f"sweep-{bucket}", description="periodic sweep")
    return True


def _sweep_timer(redis: Redis, queue: Queue, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            enqueue_sweep(redis, queue)
        except Exception:  # Redis briefly away: try again next period
            log.exception("could not enqueue the sweep")
        stop.wait(min(60, SWEEP_EVERY_SECONDS))


def waiting_connection(redis: Redis) -> Redis:
    """A client on the same server as ``redis``, without a socket timeout."""
    pool = redis.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": None}
    return Redis(connection_pool=ConnectionPool(connection_class=pool.connection_class, **kwargs))


def main(burst: bool = False) -> bool:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app()
    with app.app_context():
        shared = services()
        if delivery.parse_quiet_hours(shared.config.quiet_hours) is None:
            jobs.release_held()  # quiet hours are off now: nothing waits for the morning
        stop = threading.Event()
        if not burst:
            threading.Thread(
                target=_sweep_timer, args=(shared.redis, shared.queue, stop), daemon=True
            ).start()
        try:
            # The worker blocks on Redis for minutes at a time waiting for jobs; a client
            # with a short socket timeout (redis-py's default) would time out and back off.
            redis = waiting_connection(shared.redis)
            queue = Queue(shared.queue.name, connection=redis)
            # Jobs run in this process by default: they are short, idempotent and send at
            # most once, and forking a child per job cost ten times the throughput (see
            # bench/notifications.py). TIMEBANK_WORKER_FORK=1 isolates each job instead.
            worker_class = Worker if os.environ.get("TIMEBANK_WORKER_FORK") == "1" else (
                SimpleWorker
            )
            worker = worker_class([queue], connection=redis)
            return bool(worker.work(burst=burst, with_scheduler=True))
        finally:
            stop.set()


if __name__ == "__main__":  # python -m app.worker (as `timebank run` starts it)
    main()
