"""Run the RQ worker inside the app's context, with RQ's scheduler for delayed jobs, and a
timer that enqueues the periodic sweep (reminders, escalations, lost jobs)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

from redis import ConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, SimpleWorker, Worker

from app import create_app, delivery, jobs, services
from ledger.phones import MaskNumbers

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 300
# An idle RQ worker beats its heart each time its wait for a job times out: every
# ``worker_ttl - 15`` seconds, 405 by RQ's default. `timebank doctor` looks for a heartbeat
# in the last minute (app.doctor.HEARTBEAT_WITHIN), so an idle worker here beats every 30 s.
HEARTBEAT_SECONDS = 30
WORKER_TTL = HEARTBEAT_SECONDS + 15


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
    for handler in logging.getLogger().handlers:  # RQ logs failed jobs' tracebacks itself
        handler.addFilter(MaskNumbers())
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
            worker_class = _stoppable(
                Worker if os.environ.get("TIMEBANK_WORKER_FORK") == "1" else SimpleWorker)
            while True:
                worker = make_worker(worker_class, queue, redis)
                try:
                    worked = bool(worker.work(burst=burst, with_scheduler=True))
                except RedisConnectionError:
                    worked = False
                if burst or worker.stop_requested:
                    return worked
                # RQ gives up when Redis goes away in the middle of a job (a restart): a
                # fresh worker as soon as Redis is back, so texts go out without anyone
                # restarting this process. Jobs lost with Redis are the sweep's to re-send.
                log.warning("the worker lost its connection to Redis; starting again when "
                            "Redis answers")
                _wait_for(redis)
        finally:
            stop.set()


def make_worker(worker_class: type[Any], queue: Queue, redis: Redis) -> Any:
    """The bank's worker on ``queue``: idle, it beats its heart every HEARTBEAT_SECONDS."""
    return worker_class([queue], connection=redis, worker_ttl=WORKER_TTL)


def _stoppable(base: type[Any]) -> type[Any]:
    """``base`` noting whether a stop was asked for (SIGTERM, Ctrl-C), as against RQ giving
    up on a lost connection."""

    class BankWorker(base):
        stop_requested = False

        def request_stop(self, signum: int, frame: FrameType | None) -> None:
            self.stop_requested = True
            super().request_stop(signum, frame)

    return BankWorker


def _wait_for(redis: Redis) -> None:
    # RQ's handlers need Redis to stop gracefully; with no job running, a plain exit will do.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    while True:
        try:
            redis.ping()
            return
        except RedisConnectionError:
            time.sleep(1)


if __name__ == "__main__":  # python -m app.worker (as `timebank run` starts it)
    main()
