"""``GET /metrics``: the bank's figures in Prometheus' text format (``prometheus_client``).

Two kinds of figure, kept apart on purpose:

- **Per web process**, counted where they happen: inbound texts by outcome and the webhook
  latency histogram. Under gunicorn each worker counts its own; with
  ``PROMETHEUS_MULTIPROC_DIR`` set (``app/gunicorn_conf.py`` sets it up for the ``web``
  process) every worker writes them to memory-mapped files there and a scrape answered by
  any worker sums them all. Counting costs no round trip: nothing is added to Redis or SQL
  on a text's path.
- **Belonging to other processes** (the RQ workers, the ledger), read when scraped: queue
  depth and failed jobs from RQ's keys in Redis, outbound texts by status, the oldest text
  waiting and the texts the caps held back from SQL (one grouped statement), and the send
  latency histograms that every worker adds to one Redis hash as it sends (``record_send``),
  so they are right however many workers run on however many machines.

Served to a request straight from this machine (``app.origin.from_this_machine``: loopback,
through no proxy), or with ``Authorization: Bearer $TIMEBANK_METRICS_TOKEN``.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from typing import Any

from flask import Blueprint, Response, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from redis import Redis
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from sqlalchemy import case, func, select

from app import caps, origin, services
from app.services import Services
from ledger.models import Message, utcnow

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# What became of an incoming text (app.webhook, app.inbound).
OUTCOMES = (
    "answered",     # handled, and answered (possibly with nothing to say)
    "silenced",     # too many texts from that number (app.caps): no answer
    "repeat",       # the same MessageSid again: the first answer sent back
    "invalid",      # no valid MessageSid
    "unsupported",  # a sender that is not a phone number
    "refused",      # a missing or wrong signature (403)
    "error",        # a fault of ours: the member was asked to send it again
)

INBOUND = Counter("timebank_inbound_texts", "Incoming texts by what became of them",
                  ["outcome"])
WEBHOOK_SECONDS = Histogram(
    "timebank_webhook_seconds", "Time to answer a Twilio webhook, by endpoint", ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


@cache
def _children() -> dict[str, Any]:
    """Every outcome and endpoint made at a process's first request, so each shows (as 0)
    before it first happens. Not at import: the worker and the CLI import this module too,
    and must not leave files in the multiprocess folder."""
    for endpoint in ("messages", "status"):
        WEBHOOK_SECONDS.labels(endpoint)
    return {outcome: INBOUND.labels(outcome) for outcome in OUTCOMES}


def inbound(outcome: str) -> None:
    """Count one incoming text's outcome (one of ``OUTCOMES``)."""
    _children()[outcome].inc()


def observe_webhook(endpoint: str, started: float) -> None:
    """Note a webhook's time, from ``started`` (``time.perf_counter()``) until now."""
    _children()
    WEBHOOK_SECONDS.labels(endpoint).observe(time.perf_counter() - started)


# --- send latency, added to by every worker --------------------------------------------------

SEND_KEY = "tb:metrics:send"
# From when a text was due (recorded, or the end of quiet hours) until it was handed to
# Twilio: the queue, the throttle and the worker's own pace.
WAIT_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
# The call to Twilio's API (or the console transport) itself.
CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_HISTOGRAMS = {
    "wait": ("timebank_send_wait_seconds",
             "Time from when a text was due until a worker handed it to Twilio", WAIT_BUCKETS),
    "call": ("timebank_send_seconds", "Time of the call that hands a text to Twilio",
             CALL_BUCKETS),
}


def _bucket(seconds: float, buckets: tuple[float, ...]) -> str:
    return next((repr(b) for b in buckets if seconds <= b), "+Inf")


def record_send(redis: Redis, waited: float, took: float) -> None:
    """Add one sent text to the send histograms (one pipelined round trip, in the worker;
    a Redis fault here never fails the send)."""
    try:
        pipe = redis.pipeline(transaction=False)
        for part, seconds in (("wait", max(0.0, waited)), ("call", max(0.0, took))):
            pipe.hincrby(SEND_KEY, f"{part}:{_bucket(seconds, _HISTOGRAMS[part][2])}", 1)
            pipe.hincrbyfloat(SEND_KEY, f"{part}:sum", seconds)
        pipe.execute()
    except Exception:
        log.warning("send latency not recorded (Redis)", exc_info=True)


def _send_histograms(raw: dict[bytes, bytes]) -> Iterator[Metric]:
    values = {k.decode(): float(v) for k, v in raw.items()}
    for part, (name, documentation, buckets) in _HISTOGRAMS.items():
        cumulative, total = [], 0.0
        for le in [*(repr(b) for b in buckets), "+Inf"]:
            total += values.get(f"{part}:{le}", 0.0)
            cumulative.append((le, total))
        yield HistogramMetricFamily(name, documentation, buckets=cumulative,
                                    sum_value=values.get(f"{part}:sum", 0.0))


# --- figures read when scraped -----------------------------------------------------------------

# Statuses always shown (as 0 too), so that alerts on them have a series to read.
STATUSES = ("queued", "sending", "sent", "delivered", "read", "undelivered", "failed",
            "canceled")


class Figures:
    """A collector of what other processes did, read from Redis and SQL at scrape time."""

    def __init__(self, shared: Services) -> None:
        self.services = shared

    def describe(self) -> list[Metric]:
        return []  # not asked to collect when registered

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("timebank_metrics_source_up",
                               "Whether a scrape could read the figures kept in each source",
                               labels=["source"])
        try:
            found = list(self._from_redis())
        except Exception:
            log.warning("metrics: Redis could not be read", exc_info=True)
            found = []
        up.add_metric(["redis"], 1.0 if found else 0.0)
        yield from found
        try:
            found = list(self._from_sql())
        except Exception:
            log.warning("metrics: the database could not be read", exc_info=True)
            found = []
        up.add_metric(["database"], 1.0 if found else 0.0)
        yield from found
        yield up

    def _from_redis(self) -> Iterator[Metric]:
        queue = self.services.queue
        pipe = self.services.redis.pipeline(transaction=False)
        pipe.llen(queue.key)
        for registry in (ScheduledJobRegistry, StartedJobRegistry, DeferredJobRegistry,
                         FailedJobRegistry):
            pipe.zcard(registry(queue=queue).key)
        pipe.hgetall(SEND_KEY)
        waiting, scheduled, running, deferred, failed, send = pipe.execute()
        depth = GaugeMetricFamily("timebank_queue_depth", "Jobs on the worker's queue, by state",
                                  labels=["state"])
        for state, count in (("waiting", waiting), ("scheduled", scheduled),
                             ("running", running), ("deferred", deferred)):
            depth.add_metric([state], float(count))
        yield depth
        yield GaugeMetricFamily(
            "timebank_jobs_failed", "Jobs in RQ's failed-job registry (`timebank jobs failed`)",
            value=float(failed))
        yield from _send_histograms(send)

    def _from_sql(self) -> Iterator[Metric]:
        now = utcnow()
        with self.services.db.reading() as session:
            rows = session.execute(
                select(Message.status, Message.error_code, func.count(),
                       func.sum(case((Message.kind == caps.BANK_FULL_NOTICE, 1), else_=0)),
                       func.min(func.coalesce(Message.not_before, Message.created_at)))
                .group_by(Message.status, Message.error_code)
            ).all()
        by_status = dict.fromkeys(STATUSES, 0)
        held = {"member": 0, "recipient": 0, "bank": 0}
        oldest = None
        for status, error_code, count, bank_full, due in rows:
            by_status[status] = by_status.get(status, 0) + count
            if error_code == caps.MEMBER_CAP:
                held["member"] += count
            elif error_code == caps.RECIPIENT_CAP:
                held["recipient"] += count
            held["bank"] += int(bank_full or 0)
            if status == "queued" and due is not None and (oldest is None or due < oldest):
                oldest = due
        texts = GaugeMetricFamily("timebank_outbound_texts",
                                  "Texts the bank recorded to send, by status (those kept)",
                                  labels=["status"])
        for status, count in sorted(by_status.items()):
            texts.add_metric([status], float(count))
        yield texts
        capped = GaugeMetricFamily(
            "timebank_caps_reached",
            "Texts a per-member or per-recipient cap held back, and notices to brokers that "
            "a bank reached its daily cap (of those kept); silenced answers are "
            "timebank_inbound_texts_total{outcome=\"silenced\"}", labels=["cap"])
        for cap, count in held.items():
            capped.add_metric([cap], float(count))
        yield capped
        overdue = (now - oldest) if oldest is not None else timedelta(0)
        yield GaugeMetricFamily(
            "timebank_outbound_oldest_due_seconds",
            "How long the oldest text that is due has waited to be sent (0: none waiting)",
            value=max(0.0, overdue.total_seconds()))


# --- the endpoint --------------------------------------------------------------------------


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def exposition(shared: Services) -> bytes:
    """Every figure, in Prometheus' text format."""
    _children()
    registry = CollectorRegistry()
    if multiprocess():
        from prometheus_client import multiprocess as shared_files

        shared_files.MultiProcessCollector(registry)
    else:
        registry.register(INBOUND)
        registry.register(WEBHOOK_SECONDS)
    registry.register(Figures(shared))
    return generate_latest(registry)


def _allowed() -> Response | None:
    """None if the caller may read the figures; else the answer that says why not."""
    if origin.from_this_machine():
        return None
    token = services().config.metrics_token
    if not token:
        return Response(
            "Forbidden: /metrics is served only to this machine. To scrape it from elsewhere, "
            "set TIMEBANK_METRICS_TOKEN and send Authorization: Bearer <token>.\n",
            status=403, mimetype="text/plain")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                          token.encode()):
        return None
    return Response(
        "Unauthorized: send Authorization: Bearer <TIMEBANK_METRICS_TOKEN>.\n", status=401,
        mimetype="text/plain", headers={"WWW-Authenticate": 'Bearer realm="metrics"'})


@bp.get("/metrics")
def metrics() -> Response:
    refused = _allowed()
    if refused is not None:
        log.info("metrics refused: not from this machine, and no valid token")
        return refused
    return Response(exposition(services()), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
