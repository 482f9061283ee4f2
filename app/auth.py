"""Brokers signing in to the dashboard: a password (hashed) or a one-time code by SMS.

Sessions are Flask's signed cookies (``TIMEBANK_SECRET_KEY``), holding only the broker's
member id, their bank and a CSRF token; every POST must carry that token. Sign-in attempts are
counted in Redis per address and per number, so guessing is slow; one-time codes live in
Redis (hashed, ten minutes, five tries) and losing them only means asking for a new one.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import abort, request, session
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app import outbound
from app.services import Services
from ledger import audit
from ledger.models import Bank, Member

SESSION_HOURS = 12
LIMIT_WINDOW_SECONDS = 15 * 60
TRIES_PER_ADDRESS = 20
TRIES_PER_NUMBER = 8
CODE_SECONDS = 10 * 60
CODE_TRIES = 5
CODES_PER_DAY = 10
MIN_PASSWORD = 10
# Checked when nobody has that number, so a wrong number takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password of anyone's")


class TooManyTries(Exception):
    pass


@dataclass(frozen=True)
class SignedIn:
    broker_id: int
    bank_id: int


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return generate_password_hash(password)


def brokers_with(session: Session, phone: str) -> list[Member]:
    return list(session.scalars(
        select(Member).where(Member.phone == phone, Member.role == "broker",
                             Member.status == "active").order_by(Member.id)))


def count_try(services: Services, phone: str | None) -> None:
    """Count a sign-in attempt; ``TooManyTries`` once this address or number has had its
    share in the window."""
    pipe = services.redis.pipeline(transaction=False)
    address = services.address_key(f"ip:{request.remote_addr or '-'}")
    keys = [(f"tb:login:ip:{address}", TRIES_PER_ADDRESS)]
    if phone:
        keys.append((f"tb:login:who:{services.address_key(phone)}", TRIES_PER_NUMBER))
    for key, _ in keys:
        # The window starts with the first try (SET NX: the embedded Redis has no EXPIRE NX).
        pipe.set(key, 0, nx=True, ex=LIMIT_WINDOW_SECONDS)
        pipe.incr(key)
    counts = pipe.execute()[1::2]
    if any(int(count) > limit for count, (_, limit) in zip(counts, keys, strict=True)):
        raise TooManyTries


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
    code = f"{secrets.randbelow(10**6):06d}"
    record = {"digest": _digest(services, phone, code), "tries": 0}
    services.redis.set(_code_key(services, phone), json.dumps(record), ex=CODE_SECONDS)
    broker = brokers[0]
    bank = session_.get(Bank, broker.bank_id)
    assert bank is not None
    message_id = outbound.queue_text(
        session_, broker, kind="login_code", key="login_code", urgent=True,
        idempotency_key=f"login-code:{broker.id}:{secrets.token_hex(8)}",
        values={"code": code, "bank": bank.name},
    )
    return [message_id] if message_id else []


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


def _digest(services: Services, phone: str, code: str) -> str:
    return hmac.new(services.config.secret_key.encode(), f"{phone}:{code}".encode(),
                    "sha256").hexdigest()


def sign_in(session_: Session, broker: Member, how: str) -> None:
    session.clear()  # a fresh session: nothing carried over from before signing in
    session.permanent = True
    session["broker_id"] = broker.id
    session["bank_id"] = broker.bank_id
    session["csrf"] = secrets.token_urlsafe(32)
    audit.record(session_, broker.bank_id, "signed_in", broker_id=broker.id, detail=how)


def signed_in() -> SignedIn | None:
    broker_id, bank_id = session.get("broker_id"), session.get("bank_id")
    if isinstance(broker_id, int) and isinstance(bank_id, int):
        return SignedIn(broker_id, bank_id)
    return None


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
