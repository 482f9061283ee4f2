"""How outbound texts leave: printed to the console, or through Twilio's REST API.

``send`` returns the provider's message id. It raises ``TransientSendError`` when trying
again later may work (5xx, 429, timeouts) and ``PermanentSendError`` when it will not
(other 4xx, such as 21610: the number has opted out with the carrier).
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import requests
from redis import Redis
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from app.config import Config
from app.services import address_key
from ledger.phones import mask, mask_all

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
# Any of Twilio's API hosts (api., messaging., …): all reach a stand-in.
_TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]*\.twilio\.com(?=/|$)")
OUTBOX_LENGTH = 200


class TransientSendError(Exception):
    """Sending failed in a way that may succeed later; the job should be retried."""


class AmbiguousSendError(TransientSendError):
    """The request may have reached Twilio (a read timeout, a connection dropped mid-answer):
    before sending again, ask Twilio whether the message exists (``find_sent``)."""


class PermanentSendError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class OutboundText:
    message_id: int
    to: str
    body: str
    sender: str | None
    channel: str
    # Send through this Messaging Service instead of from ``sender``.
    messaging_service_sid: str | None = None
    # A WhatsApp template (outside the 24-hour window) instead of the body.
    content_sid: str | None = None
    content_variables: str | None = None
    # The body as logs may show it: the stored one, where a sign-in code is hidden.
    shown: str | None = None


class Transport(Protocol):
    def send(self, text: OutboundText) -> str: ...

    def find_sent(self, text: OutboundText, since: datetime) -> str | None:
        """The provider's id of ``text`` if an earlier, ambiguous attempt created it."""


def outbox_key(address: str, secret: str) -> str:
    return f"tb:outbox:{address_key(address, secret)}"


class ConsoleTransport:
    """Prints each text (numbers masked) and notes it in a Redis stream per number, which
    ``timebank chat`` reads, so the bank can be tried without Twilio.

    The stream holds only the message's id: the text itself (an introduction carries a
    member's number) stays in the database, where ``timebank chat`` reads it, so neither the
    log nor Redis ever holds a raw number."""

    def __init__(self, redis: Redis, secret: str) -> None:
        self.redis = redis
        self.secret = secret

    def send(self, text: OutboundText) -> str:
        sid = f"CONSOLE{uuid.uuid4().hex}"
        # The body may carry a number (an introduction): masked here too, as in every log;
        # and never a sign-in code. The stream below is the phone's inbox (timebank chat):
        # it names the message, whose text is in the database; only a text whose row hides
        # a secret (a sign-in code, good for 10 minutes) is kept whole: the phone's copy.
        shown = mask_all(text.shown or text.body)
        print(f"[to {mask(text.to)} by {text.channel}] {shown}", flush=True)
        fields = {"sid": sid, "message_id": str(text.message_id)}
        if text.shown is not None and text.shown != text.body:
            fields["copy"] = text.body
        self.redis.xadd(outbox_key(text.to, self.secret), fields,  # type: ignore[arg-type]
                        maxlen=OUTBOX_LENGTH, approximate=True)
        return sid

    def find_sent(self, text: OutboundText, since: datetime) -> str | None:
        return None  # printing never half-succeeds


class _BaseUrlHttpClient(TwilioHttpClient):
    """Sends every request to ``base_url`` instead of Twilio's hosts (api.twilio.com,
    messaging.twilio.com, …), keeping the path: for a local stand-in."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        url = _TWILIO_HOST.sub(lambda _: self.base_url, url, count=1)
        return super().request(method, url, *args, **kwargs)


def twilio_client(config: Config, timeout: float = 10.0) -> Client:
    """Twilio's REST client with the configured credentials, reaching ``TWILIO_API_BASE_URL``
    (a stand-in in tests) for every Twilio host when it is not api.twilio.com."""
    http = (
        _BaseUrlHttpClient(config.twilio_api_base_url, timeout=timeout)
        if config.twilio_api_base_url.rstrip("/") != TWILIO_API
        else TwilioHttpClient(timeout=timeout)
    )
    return Client(config.twilio_account_sid, config.twilio_auth_token, http_client=http)


class TwilioTransport:
    def __init__(self, config: Config, timeout: float = 10.0) -> None:
        self.config = config
        self.client = twilio_client(config, timeout)

    def send(self, text: OutboundText) -> str:
        params: dict[str, Any] = {"to": text.to}
        if text.content_sid:
            params["content_sid"] = text.content_sid
            params["content_variables"] = text.content_variables or "{}"
        else:
            params["body"] = text.body
        if text.messaging_service_sid:
            params["messaging_service_sid"] = text.messaging_service_sid
        elif text.sender:
            params["from_"] = text.sender
        else:
            raise PermanentSendError("no-sender", f"no {text.channel} number configured")
        if self.config.public_base_url:
            params["status_callback"] = self.config.public_base_url + "/twilio/status"
        try:
            message = self.client.messages.create(**params)
        except TwilioRestException as exc:
            # 5xx and 429 may pass; so may 401 (credentials being fixed): try again later.
            if exc.status >= 500 or exc.status in (429, 401):
                raise TransientSendError(f"Twilio answered {exc.status}") from exc
            raise PermanentSendError(str(exc.code or exc.status), exc.msg or "") from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            if _never_sent(exc):
                raise TransientSendError(type(exc).__name__) from exc
            raise AmbiguousSendError(type(exc).__name__) from exc
        return str(message.sid)

    def find_sent(self, text: OutboundText, since: datetime) -> str | None:
        """Look for ``text`` among the latest messages to its number created since ``since``."""
        filters: dict[str, Any] = {"to": text.to, "limit": 20}
        if text.sender and not text.messaging_service_sid:
            filters["from_"] = text.sender
        try:
            recent = self.client.messages.list(**filters)
        except TwilioRestException as exc:
            raise TransientSendError(f"Twilio answered {exc.status} to a look-up") from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientSendError(type(exc).__name__) from exc
        earliest = since - timedelta(minutes=5)  # clocks differ
        for message in recent:
            created = message.date_created
            if created is not None and created < earliest:
                continue
            # A template's body is Twilio's rendering of it: match it by number and time.
            if text.content_sid or message.body == text.body:
                return str(message.sid)
        return None


def _never_sent(exc: Exception) -> bool:
    """Whether the request certainly never reached Twilio (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ReadTimeout):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def make_transport(config: Config, redis: Redis) -> Transport:
    if config.uses_twilio:
        return TwilioTransport(config)
    return ConsoleTransport(redis, config.secret_key)


OutboxEntry = tuple[int, str | None]


def read_outbox(redis: Redis, key: str, last_id: str = "$", block_ms: int = 1000
                ) -> tuple[str, list[OutboxEntry]]:
    """New texts in the outbox ``key`` after ``last_id``: (the id to read from next, for
    each text its message's id and the phone's copy if the row hides a secret)."""
    found: Any = redis.xread({key: last_id}, block=block_ms, count=50)
    entries: list[OutboxEntry] = []
    for _stream, items in found or []:
        for entry_id, fields in items:
            last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            entry = outbox_entry(fields)
            if entry is not None:
                entries.append(entry)
    return last_id, entries


def outbox_entry(fields: dict[Any, Any]) -> OutboxEntry | None:
    """The message an outbox stream entry (its fields) stands for, and the phone's copy of
    its text where the database hides a secret."""
    value = fields.get(b"message_id") or fields.get("message_id") or b""
    text = value.decode() if isinstance(value, bytes) else str(value)
    if not text.isdecimal():
        return None
    copy = fields.get(b"copy") or fields.get("copy")
    return int(text), copy.decode() if isinstance(copy, bytes) else copy
