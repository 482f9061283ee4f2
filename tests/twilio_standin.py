"""A stand-in for Twilio's Messages API on loopback, for sending through the real twilio client.

It answers ``POST /2010-04-01/Accounts/<AccountSid>/Messages.json`` as Twilio does: HTTP basic
auth with the account SID and auth token, Twilio's validation errors for a missing ``To``,
``Body`` or sender, ``201`` with a message resource (``sid`` ``SM…``, ``status`` ``queued``)
otherwise; ``GET`` of the Messages list, of the account (``…/Accounts/<AccountSid>.json``,
always active) and of its numbers (``IncomingPhoneNumbers.json``, added by ``add_number``).
Every request is recorded. Responses can be scripted one at a time::

    standin.fail_next(status=500)
    standin.fail_next(status=429, code=20429)
    standin.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient")
    standin.stall_next(2.0)                  # answers 503 after 2 s; no message was created
    standin.stall_next(2.0, accepted=True)   # creates the message, answers 201 after 2 s
    standin.drop_next()                      # closes the connection without answering

It also stands in for setting a deployment up (``timebank twilio connect``): the account's
numbers (``GET …/IncomingPhoneNumbers.json?PhoneNumber=…``, ``POST
…/IncomingPhoneNumbers/<PN…>.json``) and Messaging Services (``GET``/``POST
/v1/Services/<MG…>``, Twilio's messaging.twilio.com host) and their sender pools (``GET``/
``POST /v1/Services/<MG…>/PhoneNumbers``)::

    sid = standin.add_number("+447700900100", sms_url="https://old.example/sms")
    standin.add_service("MG…", senders=[sid])   # the number in the service's pool
    standin.number("+447700900100")["sms_url"]   # as Twilio now holds it

Use it as a context manager, or ``start()`` and ``stop()``; ``base_url`` is what
``TWILIO_API_BASE_URL`` should be.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

API_VERSION = "2010-04-01"
_MESSAGES = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json$")
_NUMBERS = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/IncomingPhoneNumbers"
    r"(?:/(?P<sid>PN[0-9a-f]+))?\.json$"
)
_SERVICE = re.compile(r"^/v1/Services/(?P<sid>MG[0-9A-Za-z]+)$")
# The numbers a Messaging Service sends from and takes texts for (its sender pool).
_SENDERS = re.compile(r"^/v1/Services/(?P<sid>MG[0-9A-Za-z]+)/PhoneNumbers$")
_ACCOUNT = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)\.json$")


@dataclass
class Recorded:
    """One request the stand-in received."""

    method: str
    path: str
    account_sid: str | None
    authorised: bool
    form: dict[str, str]
    status: int = 0  # the HTTP status answered (or about to be); 0 when the connection dropped
    sid: str | None = None  # the message's sid, when one was created
    error_code: int | None = None
    resource: dict[str, Any] | None = None  # the message as Twilio would list it

    @property
    def accepted(self) -> bool:
        """Twilio created the message: it will be delivered, whether or not the client heard."""
        return self.sid is not None

    @property
    def to(self) -> str | None:
        return self.form.get("To")

    @property
    def from_(self) -> str | None:
        return self.form.get("From")

    @property
    def body(self) -> str | None:
        return self.form.get("Body")


@dataclass
class _Script:
    """What to do with the next Messages request instead of creating the message."""

    status: int = 500
    code: int | None = None
    message: str | None = None
    delay: float = 0.0
    accept: bool = False  # create the message (answer 201), only late
    drop: bool = False


@dataclass
class _State:
    account_sid: str
    auth_token: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Recorded] = field(default_factory=list)
    script: deque[_Script] = field(default_factory=deque)
    stopping: threading.Event = field(default_factory=threading.Event)
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)  # by sid
    services: dict[str, dict[str, Any]] = field(default_factory=dict)  # by sid


def _now() -> str:
    return format_datetime(datetime.now(UTC), usegmt=True).replace("GMT", "+0000")


def error_payload(status: int, code: int | None, message: str) -> dict[str, Any]:
    """Twilio's (legacy, non-RFC 9457) error body, as the 2010 API answers."""
    code = code or status
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


_DEFAULT_MESSAGES = {
    400: "Bad Request",
    401: "Authenticate",
    404: "The requested resource was not found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _message_resource(account: str, form: dict[str, str], sid: str) -> dict[str, Any]:
    now = _now()
    service = form.get("MessagingServiceSid") or None
    return {
        "account_sid": account,
        "api_version": API_VERSION,
        "body": form.get("Body", ""),
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From") or None,
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        # Through a Messaging Service without a From, Twilio first answers "accepted".
        "status": "accepted" if service and not form.get("From") else "queued",
        "subresource_uris": {
            "media": f"/{API_VERSION}/Accounts/{account}/Messages/{sid}/Media.json",
            "feedback": f"/{API_VERSION}/Accounts/{account}/Messages/{sid}/Feedback.json",
        },
        "to": form.get("To"),
        "uri": f"/{API_VERSION}/Accounts/{account}/Messages/{sid}.json",
    }


def _account_resource(account: str) -> dict[str, Any]:
    now = _now()
    return {
        "sid": account, "owner_account_sid": account, "friendly_name": "Time bank",
        "status": "active", "type": "Full", "auth_token": "hidden",
        "date_created": now, "date_updated": now,
        "uri": f"/{API_VERSION}/Accounts/{account}.json", "subresource_uris": {},
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests read ``requests`` instead

    def do_GET(self) -> None:
        """The Messages list (``To``/``From`` filters), newest first, as Twilio pages it;
        the account itself (``…/Accounts/<AccountSid>.json``); the account's numbers
        (``…/IncomingPhoneNumbers.json``, ``PhoneNumber`` filter)."""
        state = self.server.state
        path, _, query = self.path.partition("?")
        if _NUMBERS.match(path) or _SERVICE.match(path):
            self._settings("GET", path, {k: v[-1] for k, v in parse_qs(query).items()})
            return
        if _SENDERS.match(path):
            self._senders("GET", path, {})
            return
        match = _MESSAGES.match(path) or _ACCOUNT.match(path)
        account = match["account"] if match else None
        authorised = self._authorised(state, account)
        with state.lock:
            state.requests.append(Recorded("GET", self.path, account, authorised, {}, 200))
            created = [r.resource for r in state.requests if r.resource is not None]
        if match is None:
            self._answer(404, error_payload(404, 20404, _DEFAULT_MESSAGES[404]))
            return
        if not authorised:
            self._answer(401, error_payload(401, 20003, _DEFAULT_MESSAGES[401]))
            return
        if match.re is _ACCOUNT:
            self._answer(200, _account_resource(state.account_sid))
            return
        filters = {k: v[-1] for k, v in parse_qs(query).items()}
        key, found = "messages", [
            m for m in reversed(created)
            if filters.get("To", m["to"]) == m["to"]
            and filters.get("From", m["from"]) == m["from"]]
        size = int(filters.get("PageSize", 50))
        self._answer(200, {
            key: found[:size], "page": 0, "page_size": size, "start": 0,
            "end": max(len(found[:size]) - 1, 0), "uri": self.path,
            "first_page_uri": self.path, "next_page_uri": None, "previous_page_uri": None,
        })

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        if _NUMBERS.match(self.path) or _SERVICE.match(self.path):
            self._settings("POST", self.path, form)
            return
        if _SENDERS.match(self.path):
            self._senders("POST", self.path, form)
            return
        match = _MESSAGES.match(self.path.split("?", 1)[0])
        account = match["account"] if match else None
        authorised = self._authorised(state, account)
        record = Recorded("POST", self.path, account, authorised, form)
        with state.lock:
            state.requests.append(record)
            script = state.script.popleft() if match and authorised and state.script else None

        if match is None:
            record.status = 404
            self._answer(404, error_payload(404, 20404, _DEFAULT_MESSAGES[404]))
            return
        if not authorised:
            record.status, record.error_code = 401, 20003
            self._answer(401, error_payload(401, 20003, _DEFAULT_MESSAGES[401]))
            return
        if script is not None and script.drop:
            self.close_connection = True  # Twilio never answered: the client sees a reset
            return
        if script is not None and not script.accept:
            record.status, record.error_code = script.status, script.code or script.status
            state.stopping.wait(script.delay)
            message = script.message or _DEFAULT_MESSAGES.get(script.status, "Error")
            self._answer(script.status, error_payload(script.status, script.code, message))
            return
        problem = self._invalid(form)
        if problem is not None:
            code, message = problem
            record.status, record.error_code = 400, code
            self._answer(400, error_payload(400, code, message))
            return
        record.sid = "SM" + uuid.uuid4().hex
        record.status = 201
        record.resource = _message_resource(state.account_sid, form, record.sid)
        if script is not None:
            state.stopping.wait(script.delay)
        self._answer(201, record.resource)

    def _senders(self, method: str, path: str, form: dict[str, str]) -> None:
        """A Messaging Service's sender pool: listed (``GET``) or a number added to it
        (``POST`` with ``PhoneNumberSid``, one of the account's numbers)."""
        state = self.server.state
        sid = _SENDERS.match(path)["sid"]  # type: ignore[index]
        authorised = self._authorised(state, state.account_sid)
        record = Recorded(method, self.path, state.account_sid, authorised, form)
        with state.lock:
            state.requests.append(record)
            if not authorised:
                self._refuse(record, 401, 20003)
                return
            service = state.services.get(sid)
            number = state.numbers.get(form.get("PhoneNumberSid", ""))
            if service is None or (method == "POST" and number is None):
                self._refuse(record, 404, 20404)
                return
            pool: list[str] = service.setdefault("senders", [])
            if method == "POST":
                assert number is not None
                if number["sid"] in pool:
                    self._refuse(record, 409, 21710,
                                 "Phone Number is already in the Messaging Service")
                    return
                pool.append(number["sid"])
                record.status, record.sid = 201, number["sid"]
                record.resource = self._sender(state, sid, number)
                self._answer(201, record.resource)
                return
            found = [self._sender(state, sid, state.numbers[n]) for n in pool
                     if n in state.numbers]
            record.status = 200
            url = f"https://messaging.twilio.com{path}"
            self._answer(200, {"phone_numbers": found, "meta": {
                "page": 0, "page_size": 50, "first_page_url": url, "previous_page_url": None,
                "url": url, "next_page_url": None, "key": "phone_numbers"}})

    def _refuse(self, record: Recorded, status: int, code: int,
                message: str | None = None) -> None:
        """Answer ``record``'s request with Twilio's error, and note it."""
        record.status, record.error_code = status, code
        self._answer(status, error_payload(status, code,
                                           message or _DEFAULT_MESSAGES.get(status, "Error")))

    @staticmethod
    def _sender(state: _State, service_sid: str, number: dict[str, Any]) -> dict[str, Any]:
        return {"sid": number["sid"], "account_sid": state.account_sid,
                "service_sid": service_sid, "phone_number": number["phone_number"],
                "country_code": "GB", "capabilities": ["SMS"], "date_created": _now(),
                "date_updated": _now(),
                "url": f"https://messaging.twilio.com/v1/Services/{service_sid}/PhoneNumbers/"
                       f"{number['sid']}"}

    def _settings(self, method: str, path: str, form: dict[str, str]) -> None:
        """A number's or a Messaging Service's settings: read (``GET``) or changed (``POST``)."""
        state = self.server.state
        numbers, service = _NUMBERS.match(path), _SERVICE.match(path)
        account = numbers["account"] if numbers else state.account_sid
        authorised = self._authorised(state, account)
        record = Recorded(method, self.path, account, authorised, form)
        with state.lock:
            state.requests.append(record)
            if not authorised:
                self._refuse(record, 401, 20003)
                return
            if numbers and numbers["sid"] is None and method == "GET":
                wanted = form.get("PhoneNumber")
                found = [dict(n) for n in state.numbers.values()
                         if wanted is None or n["phone_number"] == wanted]
                record.status = 200
                self._answer(200, {
                    "incoming_phone_numbers": found, "page": 0, "page_size": 50, "start": 0,
                    "end": max(len(found) - 1, 0), "uri": self.path,
                    "first_page_uri": self.path, "next_page_uri": None,
                    "previous_page_uri": None,
                })
                return
            table, sid = (
                (state.numbers, numbers["sid"]) if numbers
                else (state.services, service["sid"] if service else None)
            )
            resource = table.get(sid or "")
            if resource is None or (numbers and method == "GET"):
                self._refuse(record, 404, 20404)
                return
            for name, value in form.items():
                key = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()  # SmsUrl → sms_url
                resource[key] = {"true": True, "false": False}.get(value.lower(), value)
            resource["date_updated"] = _now()
            record.status, record.sid = 200, sid
            record.resource = dict(resource)
            self._answer(200, dict(resource))

    @staticmethod
    def _invalid(form: dict[str, str]) -> tuple[int, str] | None:
        if not form.get("To"):
            return 21604, "A 'To' phone number is required."
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 21603, "A 'From' phone number is required."
        if not form.get("Body") and not form.get("MediaUrl") and not form.get("ContentSid"):
            return 21602, "Message body is required."
        return None

    def _authorised(self, state: _State, account: str | None) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == (state.account_sid, state.auth_token) and (
            account == state.account_sid
        )

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Twilio-Request-Id", "RQ" + uuid.uuid4().hex)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout): as with Twilio, the work stands


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: _State


class TwilioStandIn:
    """Twilio's Messages API on ``127.0.0.1`` and a free port, in a thread."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self._state = _State(account_sid, auth_token)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- running --------------------------------------------------------------------------

    def start(self) -> TwilioStandIn:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self._state
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="twilio-standin", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()  # wake any stalled answer
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> TwilioStandIn:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start the stand-in first"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def account_sid(self) -> str:
        return self._state.account_sid

    # --- scripting --------------------------------------------------------------------------

    def fail_next(self, status: int = 500, code: int | None = None, message: str | None = None,
                  *, delay: float = 0.0) -> None:
        """Answer the next Messages request with a Twilio error (after ``delay`` seconds)."""
        with self._state.lock:
            self._state.script.append(_Script(status=status, code=code, message=message,
                                              delay=delay))

    def stall_next(self, seconds: float, *, accepted: bool = False) -> None:
        """Answer the next request only after ``seconds``: with 503 (nothing was created), or
        with ``accepted`` with 201 (the message was created and will be delivered)."""
        with self._state.lock:
            self._state.script.append(
                _Script(status=201 if accepted else 503, accept=accepted, delay=seconds)
            )

    def drop_next(self) -> None:
        """Close the next request's connection without answering (nothing is created)."""
        with self._state.lock:
            self._state.script.append(_Script(drop=True))

    # --- what arrived -----------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        """Every request received, in order."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def posts(self) -> list[Recorded]:
        """The requests to create a message (not the look-ups or settings)."""
        return [r for r in self.requests if r.method == "POST" and "/Messages" in r.path]

    @property
    def accepted(self) -> list[Recorded]:
        """The messages Twilio created (which a member's phone would receive)."""
        return [r for r in self.requests if r.accepted]

    def accepted_to(self, to: str) -> list[Recorded]:
        return [r for r in self.accepted if r.to == to]

    def add_number(self, phone_number: str, *, sms_url: str = "", sms_method: str = "POST",
                   sms_application_sid: str = "") -> str:
        """Give the account a phone number, as if bought (again: replaced); its sid (``PN…``)."""
        sid = "PN" + uuid.uuid4().hex
        account = self._state.account_sid
        with self._state.lock:
            for old_sid, old in list(self._state.numbers.items()):
                if old["phone_number"] == phone_number:
                    del self._state.numbers[old_sid]
            self._state.numbers[sid] = {
                "sid": sid, "account_sid": account, "phone_number": phone_number,
                "friendly_name": phone_number, "sms_url": sms_url, "sms_method": sms_method,
                "sms_application_sid": sms_application_sid, "sms_fallback_url": "",
                "sms_fallback_method": "POST", "status_callback": "",
                "capabilities": {"sms": True, "mms": False, "voice": True},
                "date_created": _now(), "date_updated": _now(), "api_version": API_VERSION,
                "uri": f"/{API_VERSION}/Accounts/{account}/IncomingPhoneNumbers/{sid}.json",
            }
        return sid

    def add_service(self, sid: str, *, inbound_request_url: str | None = None,
                    inbound_method: str = "POST",
                    use_inbound_webhook_on_number: bool = True,
                    senders: list[str] | None = None) -> None:
        """Give the account a Messaging Service (``MG…``), with these numbers (``PN…``)
        in its sender pool."""
        with self._state.lock:
            self._state.services[sid] = {
                "sid": sid, "account_sid": self._state.account_sid,
                "friendly_name": "Time bank", "inbound_request_url": inbound_request_url,
                "inbound_method": inbound_method, "fallback_url": None,
                "use_inbound_webhook_on_number": use_inbound_webhook_on_number,
                "date_created": _now(), "date_updated": _now(),
                "url": f"https://messaging.twilio.com/v1/Services/{sid}", "links": {},
                "senders": list(senders or []),
            }

    def number(self, phone_number: str) -> dict[str, Any]:
        """The account's number as Twilio now holds it."""
        with self._state.lock:
            return next(dict(n) for n in self._state.numbers.values()
                        if n["phone_number"] == phone_number)

    def service(self, sid: str) -> dict[str, Any]:
        with self._state.lock:
            return dict(self._state.services[sid])

    @property
    def changes(self) -> list[Recorded]:
        """The requests that changed a number's or a Messaging Service's settings."""
        return [r for r in self.requests if r.method == "POST" and r.status == 200]

    def reset(self) -> None:
        with self._state.lock:
            self._state.requests.clear()
            self._state.script.clear()
