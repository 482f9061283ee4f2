"""Brokers signing in to the dashboard: a password (hashed) or a one-time code by SMS.

Sessions are Flask's signed cookies (``TIMEBANK_SECRET_KEY``), holding the broker's member
id, their bank, the broker's session generation, when they signed in and a CSRF token; every
POST must carry that token. A session ends after ``SESSION_HOURS`` whatever happens, and at
once everywhere when the broker signs out, gets a new password or is put on hold (the
generation in SQL moves on, so a copied cookie is worth nothing).

Failed sign-ins are counted in Redis per address, and per number from that address, so
guessing is slow while the broker, from anywhere else, still gets in. The address is the
socket's, or the one ``TIMEBANK_TRUSTED_PROXIES`` hops in (see ``create_app``).

One-time codes: Redis keeps only an HMAC of the code (ten minutes, five tries). The message
row keeps the text with the code hidden; the code itself is derived at send time from a
random seed Redis keeps for those ten minutes, so the broker's phone holds the only copy.
Losing Redis only means asking for a new code.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import abort, request, session
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app import outbound
from app.services import Services
from ledger import audit, members
from ledger.models import Bank, Member, Message

SESSION_HOURS = 12
LIMIT_WINDOW_SECONDS = 15 * 60
TRIES_PER_ADDRESS = 20
TRIES_PER_NUMBER = 8
CODE_SECONDS = 10 * 60
CODE_TRIES = 5
CODES_PER_DAY = 10
MIN_PASSWORD = 10
CODE_KIND = "login_code"
# What the message row and every log show in place of the code (as long as a code).
HIDDEN_CODE = "******"
# Checked when nobody has that number, so a wrong number takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password of anyone's")


class TooManyTries(Exception):
    pass


@dataclass(frozen=True)
class SignedIn:
    broker_id: int
    bank_id: int
    generation: int
    since: float


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return generate_password_hash(password)


def brokers_with(session: Session, phone: str) -> list[Member]:
    return list(session.scalars(
        select(Member).where(Member.phone == phone, Member.role == "broker",
                             Member.status == "active").order_by(Member.id)))


# --- limits on tries -------------------------------------------------------------------------


def count_try(services: Services, phone: str | None) -> list[str]:
    """Count a sign-in attempt from this address (and for this number from this address);
    ``TooManyTries`` once either has had its share in the window. Returns the counters, for
    ``forgive`` when the attempt succeeds: only failures count. Counting before checking
    keeps many tries sent at once from all slipping in under the limit."""
    address = services.address_key(f"ip:{request.remote_addr or '-'}")
    keys = [(f"tb:login:ip:{address}", TRIES_PER_ADDRESS)]
    if phone:
        # Per number *and* address: someone guessing at a broker's number from one place
        # never locks the broker out everywhere else.
        who = services.address_key(f"{phone}\0{request.remote_addr or '-'}")
        keys.append((f"tb:login:who:{who}", TRIES_PER_NUMBER))
    pipe = services.redis.pipeline(transaction=False)
    for key, _ in keys:
        # The window starts with the first try (SET NX: the embedded Redis has no EXPIRE NX).
        pipe.set(key, 0, nx=True, ex=LIMIT_WINDOW_SECONDS)
        pipe.incr(key)
    counts = pipe.execute()[1::2]
    if any(int(count) > limit for count, (_, limit) in zip(counts, keys, strict=True)):
        raise TooManyTries
    return [key for key, _ in keys]


def forgive(services: Services, counted: list[str]) -> None:
    """A try that succeeded is not held against the address or the number."""
    pipe = services.redis.pipeline(transaction=False)
    for key in counted:
        pipe.decr(key)
    pipe.execute()


def check_password(session_: Session, phone: str, password: str) -> Member | None:
    found, checked = None, False
    for broker in brokers_with(session_, phone):
        if broker.password_hash:
            checked = True
            if check_password_hash(broker.password_hash, password):
                found = found or broker
    if not checked:  # as long as a wrong password: no telling which numbers are brokers'
        check_password_hash(_DUMMY_HASH, password)
    return found


# --- one-time codes by text ------------------------------------------------------------------


def send_code(services: Services, session_: Session, phone: str) -> list[int]:
    """Text a one-time code to the broker with ``phone``; the texts to enqueue (none when no
    broker has that number: the page says the same either way)."""
    brokers = brokers_with(session_, phone)
    if not brokers:
        return []
    # However many sign-ins are tried, a broker's phone gets only so many codes a day.
    day_key = f"tb:login-codes:{services.address_key(phone)}"
    pipe = services.redis.pipeline(transaction=False)
    pipe.set(day_key, 0, nx=True, ex=24 * 3600)
    pipe.incr(day_key)
    if int(pipe.execute()[1]) > CODES_PER_DAY:
        return []
    seed = secrets.token_hex(16)
    record = {"digest": _digest(services, phone, _code(services, seed)), "tries": 0}
    services.redis.set(_code_key(services, phone), json.dumps(record), ex=CODE_SECONDS)
    broker = brokers[0]
    bank = session_.get(Bank, broker.bank_id)
    assert bank is not None
    message_id = outbound.queue_text(
        session_, broker, kind=CODE_KIND, key="login_code", urgent=True,
        idempotency_key=f"login-code:{broker.id}:{secrets.token_hex(8)}",
        values={"code": HIDDEN_CODE, "bank": bank.name},
    )
    if message_id is None:
        return []
    services.redis.set(_seed_key(message_id), seed, ex=CODE_SECONDS)
    return [message_id]


def reveal_code(services: Services, message: Message) -> tuple[str, str | None] | None:
    """The body (and template values) of a code text as the broker's phone must get them,
    for the send job only and never stored; None once the code has run out."""
    seed = services.redis.get(_seed_key(message.id))
    if seed is None:
        return None
    code = _code(services, seed.decode() if isinstance(seed, bytes) else str(seed))
    values = json.loads(message.values_json or "{}")
    values["code"] = code
    return message.body.replace(HIDDEN_CODE, code, 1), json.dumps(values)


def check_code(services: Services, session_: Session, phone: str, code: str) -> Member | None:
    key = _code_key(services, phone)
    raw = services.redis.get(key)
    if raw is None:
        return None
    record = json.loads(raw)
    if hmac.compare_digest(record["digest"], _digest(services, phone, code.strip())):
        services.redis.delete(key)  # once only
        brokers = brokers_with(session_, phone)
        return brokers[0] if brokers else None
    record["tries"] += 1
    if record["tries"] >= CODE_TRIES:
        services.redis.delete(key)
    else:
        services.redis.set(key, json.dumps(record), keepttl=True)
    return None


def _code_key(services: Services, phone: str) -> str:
    return f"tb:login-code:{services.address_key(phone)}"


def _seed_key(message_id: int) -> str:
    return f"tb:login-code-seed:{message_id}"


def _code(services: Services, seed: str) -> str:
    """Six digits from the seed, keyed with the secret key: the seed alone reveals nothing."""
    mac = hmac.new(services.config.secret_key.encode(), f"code:{seed}".encode(), "sha256")
    return f"{int.from_bytes(mac.digest()[:8], 'big') % 10**6:06d}"


def _digest(services: Services, phone: str, code: str) -> str:
    return hmac.new(services.config.secret_key.encode(), f"{phone}:{code}".encode(),
                    "sha256").hexdigest()


# --- sessions --------------------------------------------------------------------------------


def sign_in(session_: Session, broker: Member, how: str) -> None:
    session.clear()  # a fresh session: nothing carried over from before signing in
    session.permanent = True
    session["broker_id"] = broker.id
    session["bank_id"] = broker.bank_id
    session["generation"] = broker.session_generation
    session["since"] = time.time()
    session["csrf"] = secrets.token_urlsafe(32)
    audit.record(session_, broker.bank_id, "signed_in", broker_id=broker.id, detail=how)


def signed_in() -> SignedIn | None:
    """Who the cookie says is signed in, if it is well formed and not past its hours; the
    caller still checks the generation against the broker's."""
    values = [session.get(name) for name in ("broker_id", "bank_id", "generation")]
    since = session.get("since")
    if not all(isinstance(v, int) for v in values) or not isinstance(since, int | float):
        return None
    if not 0 <= time.time() - since < SESSION_LIFETIME.total_seconds():
        return None
    broker_id, bank_id, generation = values
    return SignedIn(broker_id, bank_id, generation, since)  # type: ignore[arg-type]


def sign_out(session_: Session, broker: Member) -> None:
    """End this session and every other of ``broker`` (a copied cookie included)."""
    members.end_sessions(broker)
    audit.record(session_, broker.bank_id, "signed_out", broker_id=broker.id)
    session.clear()


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    expected = session.get("csrf")
    sent = request.form.get("csrf_token", "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, sent):
        abort(400, "This form has expired. Go back, reload the page and try again.")


SESSION_LIFETIME = timedelta(hours=SESSION_HOURS)
