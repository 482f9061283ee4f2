"""The dashboard's pages for members who cannot text (routes on ``app.dashboard.bp``).

Every form acts for a member of the signed-in broker's own bank only (``_own``: 404 for any
other), through the services in ``app.care.offline``, which audit each action and refuse a
broker's own hours.
"""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from werkzeug.wrappers import Response as BaseResponse

from app import outbound
from app import services as current_services
from app.care import offline
from app.dashboard import _bank_row, _broker, _done, _error, _id, _member_named, _minutes, _own, bp
from ledger import audit
from ledger.errors import LedgerError, OwnHours
from ledger.hours import format_hours
from ledger.models import Member
from ledger.phones import InvalidNumber, normalise


def _page(member_id: int) -> dict[str, Any]:
    return {"endpoint": "dashboard.member_page", "member_id": member_id}


def _number(raw: str) -> str | None:
    try:
        return normalise(raw.strip(), current_services().config.default_region)
    except InvalidNumber:
        return None


def _key(prefix: str) -> str:
    return f"{prefix}:{request.form.get('request_id', '')[:40] or 'web'}"


def _enqueue(queued: list[int], jobs: list[tuple[str, int]] | None = None) -> None:
    services = current_services()
    outbound.enqueue(services, queued)
    for path, item_id in jobs or []:
        name = path.rsplit(".", 1)[-1]
        services.queue.enqueue(path, item_id, job_id=f"{name}-{item_id}-web")


@bp.post("/members/add")
def member_add() -> BaseResponse:
    name = request.form.get("name", "").strip()[:80]
    raw_phone = request.form.get("phone", "").strip()
    phone = _number(raw_phone) if raw_phone else None
    if raw_phone and phone is None:
        return _error(f"{raw_phone[:20]} isn't a phone number we can read.",
                      "dashboard.member_list")
    try:
        with current_services().db.writing() as db:
            member, queued = offline.add_member(
                db, _bank_row(db), name, phone=phone, shared=bool(request.form.get("shared")),
                area=request.form.get("area"), skills=request.form.get("skills"),
                notes=request.form.get("notes"), broker=db.get(Member, _broker().id), via="web")
            member_id, label = member.id, f"#{member.id} {member.name}"
    except LedgerError as exc:
        return _error(f"Not added: {exc}.", "dashboard.member_list")
    _enqueue(queued)
    return _done(f"{label} is now a member" + ("." if phone else ", without a phone."),
                 "dashboard.member_page", member_id=member_id)


@bp.post("/members/<id:member_id>/phone")
def member_phone(member_id: int) -> BaseResponse:
    phone = _number(request.form.get("phone", ""))
    if phone is None:
        return _error("That isn't a phone number we can read.", **_page(member_id))
    try:
        with current_services().db.writing() as db:
            member = _own(db, Member, member_id)
            changed, queued = offline.give_phone(
                db, _bank_row(db), member, phone, shared=bool(request.form.get("shared")),
                broker=db.get(Member, _broker().id), via="web")
            name = member.name
    except LedgerError as exc:
        return _error(f"Not changed: {exc}.", **_page(member_id))
    _enqueue(queued)
    return _done(f"{name} has that number now; their hours and history stay." if changed
                 else f"{name} already has that number.", **_page(member_id))


@bp.post("/members/<id:member_id>/post")
def member_post(member_id: int) -> BaseResponse:
    kind = request.form.get("kind", "")
    try:
        with current_services().db.writing() as db:
            member = _own(db, Member, member_id)
            acted = offline.post_for(db, _bank_row(db), member, kind,
                                     request.form.get("what", ""),
                                     request_key=_key("web-post"),
                                     broker=db.get(Member, _broker().id), via="web")
            name = member.name
    except LedgerError as exc:
        return _error(f"Not posted: {exc}.", **_page(member_id))
    _enqueue(acted.queued, acted.jobs)
    asking = " Helpers are being asked; a helper's yes comes to the brokers." if (
        kind == "need") else ""
    return _done(f"Posted {kind} ref {acted.ref} for {name}.{asking}", **_page(member_id))


@bp.post("/members/<id:member_id>/accept")
def member_accept(member_id: int) -> BaseResponse:
    ref = _id(request.form.get("ref", "").strip().lstrip("#"))
    if ref is None:
        return _error("Give the ref of the need, e.g. 42.", **_page(member_id))
    try:
        with current_services().db.writing() as db:
            member = _own(db, Member, member_id)
            acted = offline.accept_for(db, _bank_row(db), member, ref,
                                       broker=db.get(Member, _broker().id), via="web")
            name = member.name
    except LedgerError as exc:
        return _error(f"Not accepted: {exc}.", **_page(member_id))
    _enqueue(acted.queued)
    if acted.outcome != "matched":
        return _error(f"Ref {ref} is no longer open, so {name} wasn't matched.",
                      **_page(member_id))
    return _done(f"{name} will help with ref {ref}; the member who asked has been told.",
                 **_page(member_id))


@bp.post("/members/<id:member_id>/confirm")
def member_confirm(member_id: int) -> BaseResponse:
    ref = _id(request.form.get("ref", ""))
    if ref is None:
        return _error("Which ref?", **_page(member_id))
    yes = request.form.get("answer") != "no"
    try:
        with current_services().db.writing() as db:
            member = _own(db, Member, member_id)
            result, queued = offline.confirm_for(db, _bank_row(db), member, ref, yes=yes,
                                                 broker=db.get(Member, _broker().id), via="web")
            name = member.name
    except OwnHours:
        return _error(f"Ref {ref} is your own hours (you give, receive or reported them): "
                      "another broker must confirm it.", **_page(member_id))
    except LedgerError as exc:
        return _error(f"Not answered: {exc}.", **_page(member_id))
    _enqueue(queued)
    return _answered(ref, result.outcome, name, member_id)


def _answered(ref: int, outcome: str, name: str, member_id: int) -> BaseResponse:
    texts = {"confirmed": f"Ref {ref} confirmed for {name}; the hours are recorded.",
             "disputed": f"Ref {ref}: {name} says it isn't right; it's in the brokers' queue.",
             "canceled": f"Ref {ref} canceled.",
             "already_confirmed": f"Ref {ref} was already confirmed."}
    if outcome == "limit":
        return _error(f"Ref {ref} would take {name} below their balance floor: held in the "
                      "brokers' queue.", **_page(member_id))
    return _done(texts.get(outcome, f"Ref {ref} was already settled."), **_page(member_id))


@bp.post("/members/<id:member_id>/give")
def member_give(member_id: int) -> BaseResponse:
    minutes = _minutes(request.form.get("hours", ""))
    if minutes is None:
        return _error("Hours must be a number in quarter hours, e.g. 2 or 1.5.",
                      **_page(member_id))
    to = request.form.get("to", "").strip()
    try:
        with current_services().db.writing() as db:
            member = _own(db, Member, member_id)
            receiver = None
            if to.upper() != "FUND":
                receiver = _member_named(db, to)
                if receiver is None:
                    return _error("No active member has that number or name (or several "
                                  "share it: use their member number, e.g. #12).",
                                  **_page(member_id))
            result, queued = offline.give_for(db, _bank_row(db), member, minutes, receiver,
                                              request_key=_key("web-give"),
                                              broker=db.get(Member, _broker().id), via="web")
            name = member.name
            ref = result.confirmation.ref if result.confirmation else 0
    except OwnHours:
        return _error("Those hours would be your own: another broker must give them.",
                      **_page(member_id))
    except LedgerError as exc:
        return _error(f"Not given: {exc}.", **_page(member_id))
    _enqueue(queued)
    if result.outcome == "confirmed":
        return _done(f"{name} gave {format_hours(minutes)} hours (ref {ref}).",
                     **_page(member_id))
    return _answered(ref, result.outcome, name, member_id)


@bp.get("/members/<id:member_id>/statement")
def member_statement(member_id: int) -> str:
    with current_services().db.reading() as db:
        member = _own(db, Member, member_id)
        page = render_template("care/statement.html",
                               **offline.statement(db, _bank_row(db), member))
        bank_id = member.bank_id
    with current_services().db.writing() as db:
        audit.record(db, bank_id, "member.statement", broker_id=_broker().id,
                     subject=f"member {member_id}", detail="printed", via="web")
    return page



