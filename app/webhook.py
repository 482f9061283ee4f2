"""HTTP endpoints: Twilio's message webhook and status callback, the health check, and the
site's front door (to the dashboard)."""

from __future__ import annotations

import logging
import re
import time

from flask import Blueprint, Response, current_app, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from app import inbound, metrics, origin, services
from conversations.texts import render
from ledger import members, messages

log = logging.getLogger(__name__)
bp = Blueprint("twilio", __name__)

_SID = re.compile(r"^[A-Za-z0-9]{10,64}$")
def _signature_ok() -> bool:
    """Twilio's signature when an auth token is configured; else loopback callers only."""
    config = services().config
    if config.twilio_auth_token:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            return False
        if config.public_base_url:
            url = config.public_base_url + request.full_path.rstrip("?")
        else:
            url = request.url
        validator = RequestValidator(config.twilio_auth_token)
        return bool(validator.validate(url, request.form, signature))
    # No token: accept only requests made on this machine, not ones relayed by a proxy or a
    # tunnel (which arrive from loopback too, but carry forwarding headers).
    return origin.from_this_machine()


def _xml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/xml")


@bp.post("/twilio/messages")
def messages_webhook() -> Response:
    started = time.perf_counter()
    try:
        return _messages()
    finally:
        metrics.observe_webhook("messages", started)


def _messages() -> Response:
    if not _signature_ok():
        log.warning("webhook refused: missing or wrong signature")
        metrics.inbound("refused")
        return Response("Forbidden", status=403, mimetype="text/plain")
    form = request.form  # read here: a body over the limit is a 413, not a fault of ours
    try:
        return _xml(inbound.handle(services(), form))
    except Exception:
        metrics.inbound("error")
        if current_app.testing:
            raise
        # A fault of ours before anything was committed (a database or Redis outage, a
        # bug): never a 5xx, which Twilio would retry; the member is asked to send it again,
        # and the claim on the MessageSid was released, so the resend is handled once.
        log.exception("inbound message could not be handled")
        return _xml(inbound.twiml([render("try_again")]))


@bp.post("/twilio/status")
def status_callback() -> Response:
    started = time.perf_counter()
    try:
        return _status()
    finally:
        metrics.observe_webhook("status", started)


def _status() -> Response:
    if not _signature_ok():
        return Response("Forbidden", status=403, mimetype="text/plain")
    sid = (request.form.get("MessageSid") or "").strip()
    status = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").strip()
    error = (request.form.get("ErrorCode") or "").strip() or None
    if not (_SID.match(sid) and status.replace("_", "").isalpha() and len(status) <= 24):
        return Response(status=204)  # not a callback we could have asked for
    if error is not None and not (error.isdecimal() and len(error) <= 8):
        error = None
    try:
        with services().db.writing() as session:
            message = messages.update_status(session, sid, status, error)
            if message is not None and error == "21610":
                phone = message.to_address.removeprefix("whatsapp:")
                members.opt_out(session, message.bank_id, phone, reason="carrier-21610")
        if message is None:
            # Twilio may call back before the job has saved the message's sid: keep the
            # status a while; the job applies it just after it records the sid.
            services().redis.set(f"tb:early-status:{sid}", f"{status}|{error or ''}", ex=600)
    except Exception:
        if current_app.testing:
            raise
        log.exception("status callback for %s could not be recorded", sid)
        return Response(status=503)  # Twilio tries a callback again later
    return Response(status=204)


@bp.get("/")
def front_door() -> ResponseReturnValue:
    """The address `timebank run` prints: a person who opens it wants the dashboard (which
    asks them to sign in), not a bare "Not Found"."""
    return redirect(url_for("dashboard.home"))


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    shared = services()
    checks = {"database": "ok", "redis": "ok"}
    try:
        with shared.db.reading() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        shared.redis.ping()
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "error", **checks), 200 if healthy else 503
