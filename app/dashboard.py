"""The brokers' dashboard: server-rendered pages that work without JavaScript.

Every page is for the signed-in broker's own bank only. Every POST carries a CSRF token and
a request id (so a form sent twice acts once), and every action is written to the audit log
in the same transaction as the action itself.
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
from datetime import date, timedelta
from typing import Any, cast

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from sqlalchemy import func, or_, select, union_all
from sqlalchemy.orm import Session
from werkzeug.routing import IntegerConverter, Map
from werkzeug.wrappers import Response as BaseResponse

from app import auth, broadcasts, charts, effects, origin, outbound, privacy
from app import services as current_services
from app.care import duty, inbox, introductions
from app.config import DEVELOPMENT_KEY
from conversations.texts import render
from ledger import (
    accounts,
    activities,
    audit,
    confirmations,
    exports,
    members,
    own_hours,
    posts,
    reports,
)
from ledger.errors import InvalidHours, LedgerError, OwnHours
from ledger.hours import format_hours, parse_hours
from ledger.matching import Candidate, MatchIndex
from ledger.matching import Need as MatchNeed
from ledger.models import (
    Account,
    Activity,
    Ask,
    Bank,
    Confirmation,
    InboundText,
    Introduction,
    Member,
    Post,
    Rsvp,
    Transfer,
    utcnow,
)
from ledger.phones import InvalidNumber, normalise

log = logging.getLogger(__name__)

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

# --- signing in ------------------------------------------------------------------------------


@bp.before_request
def _guard() -> BaseResponse | None:
    config = current_services().config
    if config.secret_key == DEVELOPMENT_KEY and not config.testing and (
            config.public or not origin.from_this_machine()):
        # Anyone could sign a session cookie with the key everyone knows.
        abort(503, "The dashboard is off until TIMEBANK_SECRET_KEY is set to a long random "
                   "string (see README.md).")
    if request.method == "POST":
        auth.check_csrf()
    if request.endpoint in _OPEN:
        return None
    who = auth.signed_in()
    if who is None:
        return redirect(url_for("dashboard.login", next=request.full_path))
    with current_services().db.reading() as db:
        broker = db.get(Member, who.broker_id)
        bank = db.get(Bank, who.bank_id)
        if (broker is None or bank is None or broker.role != "broker"
                or broker.status != "active" or broker.bank_id != bank.id
                or broker.session_generation != who.generation):
            session.clear()
            return redirect(url_for("dashboard.login"))
        db.expunge_all()
    g.broker, g.bank = broker, bank
    return None


_OPEN = {"dashboard.login", "dashboard.send_code", "dashboard.verify_code"}
# Ids are 32-bit in SQL: a larger one names nothing (and PostgreSQL would refuse it).
MAX_ID = 2**31 - 1
# The longest report period: ten years of monthly rows keeps every page small.
MAX_REPORT_DAYS = 3653
# Reports count in whole months and years: a period keeps a year clear of the calendar's end.
_LAST_DAY = date(9999, 1, 1)


class _Id(IntegerConverter):
    """``<id:name>`` in a route: a positive id that fits the database, else 404."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


@bp.record_once
def _add_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["id"] = _Id


def _id(raw: str) -> int | None:
    """An id written in a form, if it can name a row."""
    if raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_ID:
        return int(raw)
    return None


@bp.errorhandler(400)
@bp.errorhandler(404)
@bp.errorhandler(503)
def _error_page(error: Any) -> tuple[str, int]:
    titles = {400: "Something went wrong with that form", 404: "That page isn't here",
              503: "The dashboard is off"}
    code = int(getattr(error, "code", 500) or 500)
    return render_template("dashboard/error.html", title=titles.get(code, "Sorry"),
                           description=getattr(error, "description", "")), code


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    return response


@bp.app_context_processor
def _template_values() -> dict[str, Any]:
    return {"csrf_token": auth.csrf_token, "request_id": lambda: secrets.token_hex(12),
            "hours": format_hours, "number": _number}


def _number(value: float) -> str:
    """301.0 → "301", 12.345 → "12.35", 12500 → "12,500"."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")


def _phone(raw: str) -> str | None:
    try:
        return normalise(raw, current_services().config.default_region)
    except InvalidNumber:
        return None


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse | tuple[str, int]:
    if request.method == "GET":
        return render_template("dashboard/login.html", phone=request.args.get("phone", ""))
    services = current_services()
    raw = request.form.get("phone", "")
    phone = _phone(raw)
    try:
        counted = auth.count_try(services, phone)
    except auth.TooManyTries:
        return _too_many(raw)
    with services.db.writing() as db:
        broker = auth.check_password(db, phone, request.form.get("password", "")) if phone else None
        if broker is not None:
            auth.sign_in(db, broker, "password")
    if broker is not None:
        auth.forgive(services, counted)
    else:
        log.info("dashboard: a password sign-in failed")
        return render_template("dashboard/login.html", phone=raw,
                               error="That number and password don't match a broker."), 401
    return redirect(_next_page())


def _too_many(phone: str) -> tuple[str, int]:
    return render_template(
        "dashboard/login.html", phone=phone,
        error="Too many tries. Please wait 15 minutes and try again."), 429


def _next_page() -> str:
    wanted = request.args.get("next", "")
    # Only a page of this dashboard, never an address elsewhere, and nothing that could
    # break out of the Location header (a line break, a control character, a space).
    if (wanted.startswith("/dashboard/") and wanted.isascii() and wanted.isprintable()
            and " " not in wanted and "\\" not in wanted):
        return wanted
    return url_for("dashboard.home")


@bp.post("/login/code")
def send_code() -> str | tuple[str, int]:
    services = current_services()
    raw = request.form.get("phone", "")
    phone = _phone(raw)
    if phone is None:
        return render_template("dashboard/login.html", phone=raw,
                               error="Please write the number you text the bank from."), 400
    try:
        # Asking is not guessing: counted per address only (codes a day cap the number).
        auth.count_try(services, None)
    except auth.TooManyTries:
        return _too_many(raw)
    with services.db.writing() as db:
        queued = auth.send_code(services, db, phone)
    outbound.enqueue(services, queued)
    return render_template("dashboard/code.html", phone=raw)


@bp.post("/login/verify")
def verify_code() -> str | BaseResponse | tuple[str, int]:
    services = current_services()
    raw = request.form.get("phone", "")
    phone = _phone(raw)
    try:
        counted = auth.count_try(services, phone)
    except auth.TooManyTries:
        return _too_many(raw)
    with services.db.writing() as db:
        broker = auth.check_code(services, db, phone, request.form.get("code", "")) if phone \
            else None
        if broker is not None:
            auth.sign_in(db, broker, "code by text")
    if broker is not None:
        auth.forgive(services, counted)
    else:
        return render_template("dashboard/code.html", phone=raw,
                               error="That code isn't right or has run out. "
                                     "Ask for a new one below."), 401
    return redirect(url_for("dashboard.home"))


@bp.post("/logout")
def logout() -> BaseResponse:
    with current_services().db.writing() as db:
        broker = db.get(Member, _broker().id)
        assert broker is not None
        auth.sign_out(db, broker)
    flash("You have signed out.")
    return redirect(url_for("dashboard.login"))


# --- helpers ---------------------------------------------------------------------------------


def _broker() -> Member:
    return cast(Member, g.broker)


def _bank() -> Bank:
    return cast(Bank, g.bank)


def _own(db: Session, model: Any, item_id: int) -> Any:
    """A row of the signed-in broker's bank, or 404 (never another bank's)."""
    item = db.get(model, item_id) if 0 < item_id <= MAX_ID else None
    if item is None or getattr(item, "bank_id", None) != _bank().id:
        abort(404)
    return item


def _log(db: Session, action: str, subject: str = "", detail: str = "") -> None:
    audit.record(db, _bank().id, action, broker_id=_broker().id, subject=subject,
                 detail=detail, via="web")


def _member_named(db: Session, who: str) -> Member | None:
    """The one active member of this bank with that phone number or name."""
    found = members.find_by_words(db, _bank().id, who.strip(),
                                  current_services().config.default_region, numbers=True)
    if len(found.members) != 1 or found.rest:
        return None
    return found.members[0]


def _minutes(raw: str) -> int | None:
    try:
        return parse_hours(raw.strip())
    except InvalidHours:
        return None


def _done(message: str, endpoint: str, **values: Any) -> BaseResponse:
    flash(message)
    return redirect(url_for(endpoint, **values))


def _error(message: str, endpoint: str, **values: Any) -> BaseResponse:
    flash(message, "error")
    return redirect(url_for(endpoint, **values))


def _day(raw: str | None, default: date) -> date:
    try:
        return date.fromisoformat(raw) if raw else default
    except ValueError:
        return default


# --- home ------------------------------------------------------------------------------------


@bp.get("/")
def home() -> str:
    bank = _bank()
    with current_services().db.reading() as db:
        counts = {
            "members": _count(db, select(Member.id).where(
                Member.bank_id == bank.id, Member.status == "active")),
            "waiting": _count(db, select(Member.id).where(
                Member.bank_id == bank.id, Member.status == "pending")),
            "needs": _count(db, select(Post.id).where(
                Post.bank_id == bank.id, Post.kind == "need", Post.status == "open")),
            "queue": len(confirmations.broker_queue(db, bank.id)),
            "inbox": inbox.open_count(db, bank.id),
        }
        waiting = list(db.scalars(select(Member).where(
            Member.bank_id == bank.id, Member.status == "pending").order_by(Member.id)
            .limit(20)))
        recent = activities.recent(db, bank.id, 5)
        return render_template("dashboard/home.html", counts=counts, waiting=waiting,
                               recent=recent)


def _count(db: Session, query: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(query.subquery())) or 0)


# --- members ---------------------------------------------------------------------------------


# A page of the members list, and of the ledger.
MEMBERS_PER_PAGE = 50
LEDGER_PER_PAGE = 100
# Beyond this a page number names nothing (and would overflow an OFFSET).
MAX_PAGE = 100_000


def _page_number(raw: str | None) -> int:
    """``?page=N`` as a page number from 1; anything else is the first page."""
    raw = raw or ""
    if raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_PAGE:
        return int(raw)
    return 1


@bp.get("/members")
def member_list() -> str:
    bank = _bank()
    q = request.args.get("q", "").strip()[:80]
    status = request.args.get("status", "")
    page = _page_number(request.args.get("page"))
    with current_services().db.reading() as db:
        conditions: list[Any] = [Member.bank_id == bank.id]
        if status in ("active", "pending", "left"):
            conditions.append(Member.status == status)
        if q:
            digits = "".join(ch for ch in q if ch.isdigit())
            like = f"%{_escape_like(q.lower())}%"
            matches = [func.lower(Member.name).like(like, escape="\\"),
                       func.lower(Member.area).like(like, escape="\\"),
                       func.lower(Member.skills).like(like, escape="\\")]
            if len(digits) >= 4:
                matches.append(Member.phone.like(f"%{digits[-9:]}%"))
            conditions.append(or_(*matches))
        total = int(db.scalar(select(func.count(Member.id)).where(*conditions)) or 0)
        pages = max(1, -(-total // MEMBERS_PER_PAGE))
        page = min(page, pages)
        # One statement for the page and its balances, in a stable order (name, then id);
        # the page's ids are found first, so a page far in skips index entries, not rows.
        ids = (select(Member.id).where(*conditions).order_by(Member.name, Member.id)
               .offset((page - 1) * MEMBERS_PER_PAGE).limit(MEMBERS_PER_PAGE).subquery())
        found = list(db.execute(
            select(Member, Account.balance_minutes)
            .join(ids, ids.c.id == Member.id)
            .outerjoin(Account, Account.member_id == Member.id)
            .order_by(Member.name, Member.id)))
        here: dict[str, Any] = {"q": q or None, "status": status or None}
        return render_template(
            "dashboard/members.html", found=found, q=q, status=status, total=total,
            page=page, pages=pages, first=(page - 1) * MEMBERS_PER_PAGE + 1,
            previous=url_for("dashboard.member_list", page=page - 1, **here) if page > 1
            else None,
            next=url_for("dashboard.member_list", page=page + 1, **here) if page < pages
            else None)


def _escape_like(text: str) -> str:
    """Words searched for as they are: ``%`` and ``_`` are not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@bp.get("/members/<id:member_id>")
def member_page(member_id: int) -> str:
    with current_services().db.reading() as db:
        member = _own(db, Member, member_id)
        account = members.member_account(db, member)
        opted_out = bool(member.phone) and members.is_opted_out(db, member.bank_id,
                                                                member.phone or "")
        statement = _statement(db, account)
        own_posts = list(db.scalars(select(Post).where(Post.member_id == member.id)
                                    .order_by(Post.id.desc()).limit(20)))
        waiting = confirmations.waiting_for(db, member.bank_id, member.id)
        lines = inbox.conversation(db, member)
        return render_template("dashboard/member.html", member=member, account=account,
                               opted_out=opted_out, statement=statement, posts=own_posts,
                               waiting=waiting, lines=lines, routes=ROUTE_LABELS,
                               most=inbox.REPLY_MOST)


def _statement(db: Session, account: Account, limit: int = 50) -> list[dict[str, Any]]:
    """The account's latest transfers, each with who was on the other side: one statement
    for the transfers (each side read from its own index), one for the names."""
    sides = [select(Transfer.id).where(side == account.id)
             .order_by(Transfer.id.desc()).limit(limit).subquery()
             for side in (Transfer.from_account_id, Transfer.to_account_id)]
    latest = union_all(*(select(side.c.id) for side in sides)).subquery()
    found = list(db.scalars(select(Transfer).where(Transfer.id.in_(select(latest.c.id)))
                            .order_by(Transfer.id.desc()).limit(limit)))
    labels = _labels(db, {t.from_account_id if t.to_account_id == account.id
                          else t.to_account_id for t in found})
    return [{"transfer": t, "incoming": t.to_account_id == account.id,
             "other": labels.get(t.from_account_id if t.to_account_id == account.id
                                 else t.to_account_id, "-"),
             "when": t.created_at} for t in found]


def _labels(db: Session, account_ids: set[int]) -> dict[int, str]:
    """What each account is called on a page (as ``effects.account_label``), in one
    statement however many there are."""
    if not account_ids:
        return {}
    fund = render("community_fund")
    return {row.id: fund if row.kind == "fund" else row.member_name or row.name
            for row in db.execute(
                select(Account.id, Account.kind, Account.name,
                       Member.name.label("member_name"))
                .outerjoin(Member, Member.id == Account.member_id)
                .where(Account.id.in_(account_ids)))}


@bp.post("/members/<id:member_id>/note")
def member_note(member_id: int) -> BaseResponse:
    note = request.form.get("notes", "").strip()[:2000]
    with current_services().db.writing() as db:
        member = _own(db, Member, member_id)
        member.notes = note or None
        _log(db, "member.note", f"member {member.id}", "notes changed")
    return _done("Notes saved.", "dashboard.member_page", member_id=member_id)


@bp.post("/members/<id:member_id>/<any(approve, hold):action>")
def member_status(member_id: int, action: str) -> BaseResponse:
    services = current_services()
    with services.db.writing() as db:
        member = _own(db, Member, member_id)
        if member.status == "left":
            return _error(f"{member.name} has left the bank.", "dashboard.member_page",
                          member_id=member_id)
        if action == "hold" and member.role == "broker":
            return _error("Brokers can't be put on hold.", "dashboard.member_page",
                          member_id=member_id)
        bank = db.get(Bank, member.bank_id)
        assert bank is not None
        broker = db.get(Member, _broker().id)
        change = effects.set_status(db, bank, member, approve=action == "approve",
                                    broker=broker, via="web")
        name = member.name
    outbound.enqueue(services, change.queued)
    if action == "approve":
        message = f"{name} is now an active member." if change.changed else \
            f"{name} was already active."
    else:
        message = f"{name} is on hold." if change.changed else f"{name} was already on hold."
    return _done(message, "dashboard.member_page", member_id=member_id)


# --- a member's data: export and forget (app.privacy) ---------------------------------------


@bp.post("/members/<id:member_id>/export.<any(json, html):kind>")
def member_export(member_id: int, kind: str) -> Response:
    """Everything the bank holds about the member, as a download; audited."""
    with current_services().db.writing() as db:
        member = _own(db, Member, member_id)
        data = privacy.export(db, member)
        privacy.record_export(db, member, broker_id=_broker().id, via="web")
    body = privacy.export_json(data) if kind == "json" else privacy.export_html(data)
    mimetype = "application/json" if kind == "json" else "text/html"
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="member-{member_id}-export.{kind}"'})


@bp.get("/members/<id:member_id>/forget")
def member_forget_page(member_id: int) -> str:
    with current_services().db.reading() as db:
        member = _own(db, Member, member_id)
        found = privacy.blockers(db, member)
        if member.id == _broker().id:
            found.append("you cannot forget yourself: another broker can")
        return render_template("dashboard/forget.html", member=member, blockers=found,
                               placeholder=privacy.placeholder_name(member.id))


@bp.post("/members/<id:member_id>/forget")
def member_forget(member_id: int) -> BaseResponse:
    """The second confirmation: the member's number typed, and a reason for the audit log."""
    services = current_services()
    reason = request.form.get("reason", "").strip()[:300]
    typed = request.form.get("confirm", "").strip()
    if typed != f"#{member_id}" or not reason:
        return _error(f"Nothing was changed: give a reason and type #{member_id} to confirm.",
                      "dashboard.member_forget_page", member_id=member_id)
    if member_id == _broker().id:
        return _error("You cannot forget yourself: another broker can.",
                      "dashboard.member_forget_page", member_id=member_id)
    try:
        with services.db.writing() as db:
            member = _own(db, Member, member_id)
            forgotten = privacy.forget(db, member, reason=reason, broker_id=_broker().id,
                                       via="web", region=services.config.default_region)
    except privacy.CannotForget:
        return _error("Not yet: see what is still waiting below.",
                      "dashboard.member_forget_page", member_id=member_id)
    privacy.forget_in_redis(services, forgotten)
    return _done(f"Member {member_id} is forgotten: now "
                 f"{privacy.placeholder_name(member_id)}.", "dashboard.member_page",
                 member_id=member_id)


# --- needs and matches -----------------------------------------------------------------------


@bp.get("/needs")
def needs() -> str:
    bank = _bank()
    with current_services().db.reading() as db:
        open_needs = list(db.scalars(select(Post).where(
            Post.bank_id == bank.id, Post.kind == "need", Post.status.in_(("open", "matched")))
            .order_by(Post.status, Post.id.desc()).limit(100)))
        index = MatchIndex.build(posts.helpers(db, bank.id)) if open_needs else None
        # A few queries for the whole page, not a few per need.
        asks: dict[int, list[tuple[Ask, str]]] = {}
        for ask, name in db.execute(
            select(Ask, Member.name).join(Member, Member.id == Ask.member_id)
            .where(Ask.post_id.in_([n.id for n in open_needs])).order_by(Ask.wave, Ask.id)
        ):
            asks.setdefault(ask.post_id, []).append((ask, name))
        people = {m.id: m for m in db.scalars(select(Member).where(Member.id.in_(
            {n.member_id for n in open_needs}
            | {n.helper_member_id for n in open_needs if n.helper_member_id})))}
        rows = []
        for need in open_needs:
            owner = people.get(need.member_id)
            candidates: list[Candidate] = []
            if index is not None and need.status == "open" and owner is not None:
                asked = {ask.member_id for ask, _ in asks.get(need.id, [])}
                candidates = index.rank(MatchNeed(owner.id, need.text, owner.area), limit=5,
                                        exclude=asked)
            rows.append({
                "need": need, "owner": owner, "asks": asks.get(need.id, []),
                "helper": people.get(need.helper_member_id or 0),
                "candidates": [(c, index.helpers[c.member_id].name if index else "?")
                               for c in candidates],
            })
        return render_template("dashboard/needs.html", rows=rows)


@bp.post("/needs/<id:post_id>/ask")
def ask_by_hand(post_id: int) -> BaseResponse:
    """A broker asks a member of their choosing; the first YES still wins."""
    services = current_services()
    with services.db.writing() as db:
        need = _own(db, Post, post_id)
        member_id = _id(request.form.get("member_id", ""))
        if member_id is not None:
            helper = _own(db, Member, member_id)
        else:
            found = _member_named(db, request.form.get("who", ""))
            if found is None:
                return _error("No active member has that number or name (or several "
                              "share the name: use their number).", "dashboard.needs")
            helper = found
        if need.kind != "need" or need.status != "open":
            return _error(f"Ref {need.ref} is no longer open.", "dashboard.needs")
        if helper.id == need.member_id or helper.status != "active":
            return _error(f"{helper.name} can't be asked about ref {need.ref}.",
                          "dashboard.needs")
        if not helper.phone and not helper.whatsapp:
            return _error(f"{helper.name} has no phone to be asked on: if they will help, "
                          f"accept ref {need.ref} for them on their page.", "dashboard.needs")
        if helper.id in posts.asked_ids(db, need.id):
            return _error(f"{helper.name} was already asked about ref {need.ref}.",
                          "dashboard.needs")
        owner = members.get_member(db, need.member_id)
        [ask] = posts.record_asks(db, need, [Candidate(helper.id, 0.0, ("asked by a broker",))])
        message_id = outbound.queue_ask(db, need, owner, helper, ask.id)
        _log(db, "need.asked", f"ref {need.ref}", f"asked member {helper.id}")
        name, ref = helper.name, need.ref
    outbound.enqueue(services, [message_id] if message_id else [])
    return _done(f"{name} has been asked about ref {ref}.", "dashboard.needs")


# --- confirmations, disputes, corrections ----------------------------------------------------


@bp.get("/confirmations")
def confirmation_queue() -> str:
    bank = _bank()
    with current_services().db.reading() as db:
        waiting = list(db.scalars(select(Confirmation).where(
            Confirmation.bank_id == bank.id,
            Confirmation.status.in_(("pending", "disputed", "held")))
            .order_by(Confirmation.status.desc(), Confirmation.id)))
        labels = {}
        own = set()  # the signed-in broker's own hours: another broker settles them
        for request_ in waiting:
            for account_id in (request_.payer_account_id, request_.payee_account_id):
                account = db.get(Account, account_id)
                labels[account_id] = effects.account_label(db, account) if account else "-"
            if _broker().id in own_hours.parties(
                    db, [request_.payer_account_id, request_.payee_account_id],
                    [request_.requested_by_member_id, request_.confirmer_member_id]):
                own.add(request_.id)
        return render_template("dashboard/confirmations.html", waiting=waiting, labels=labels,
                               own=own)


@bp.post("/confirmations/<id:confirmation_id>/settle")
def settle(confirmation_id: int) -> BaseResponse:
    services = current_services()
    confirm = request.form.get("action") == "confirm"
    past_floor = None
    if request.form.get("past_floor"):
        past_floor = " ".join(request.form.get("floor_reason", "").split())[:150]
        if not past_floor:
            return _error("Say why these hours may go past the balance floor.",
                          "dashboard.confirmation_queue")
    try:
        with services.db.writing() as db:
            request_ = _own(db, Confirmation, confirmation_id)
            ref = request_.ref
            result, queued = effects.settle(db, _bank_row(db), request_.id, confirm=confirm,
                                            broker=db.get(Member, _broker().id), via="web",
                                            past_floor=past_floor)
            outcome = result.outcome
    except OwnHours:
        return _error(f"Ref {ref} is your own hours (you give, receive or answer them): "
                      "another broker must settle it.", "dashboard.confirmation_queue")
    outbound.enqueue(services, queued)
    messages = {"confirmed": f"Ref {ref} recorded; both members have been told.",
                "canceled": f"Ref {ref} closed without recording it; both members told.",
                "limit": f"Ref {ref} would take the payer below their limit: not recorded. "
                         "To record it anyway, tick \"past the floor\" and say why.",
                "waiting": f"Ref {ref} is still waiting for the member's own reply: it can be "
                           "settled once it has been disputed, or reminded and left unanswered."}
    text = messages.get(outcome, f"Ref {ref} was already settled.")
    failed = outcome in ("limit", "waiting")
    return (_error if failed else _done)(text, "dashboard.confirmation_queue")


def _bank_row(db: Session) -> Bank:
    bank = db.get(Bank, _bank().id)
    assert bank is not None
    return bank


@bp.post("/transfers/<id:transfer_id>/reverse")
def reverse(transfer_id: int) -> BaseResponse:
    services = current_services()
    reason = request.form.get("reason", "").strip()[:150]
    if not reason:
        return _error("Say why the entry is being corrected.", "dashboard.ledger")
    with services.db.writing() as db:
        transfer = _own(db, Transfer, transfer_id)
        if transfer.kind == "reversal":
            return _error("A correction can't itself be reversed; record a new entry instead.",
                          "dashboard.ledger")
        try:
            recorded, queued = effects.reverse(db, _bank_row(db), transfer.id, reason,
                                               broker=db.get(Member, _broker().id), via="web")
        except LedgerError as exc:
            return _error(f"Not corrected: {exc}.", "dashboard.ledger")
    outbound.enqueue(services, queued)
    if not recorded.created:
        return _done(f"Entry {transfer_id} was already corrected.", "dashboard.ledger")
    return _done(f"Entry {transfer_id} reversed; both sides have been told.", "dashboard.ledger")


# --- introductions through a broker (app.care.introductions) -------------------------------


@bp.get("/introductions")
def introduction_list() -> str:
    with current_services().db.reading() as db:
        rows = introductions.waiting(db, _bank().id)
        return render_template("dashboard/introductions.html", rows=rows, me=_broker().id)


@bp.post("/introductions/<id:introduction_id>/<any(approve, decline):action>")
def introduction_decide(introduction_id: int, action: str) -> BaseResponse:
    """A broker introduces two members (each is texted the other's number) or declines."""
    services = current_services()
    try:
        with services.db.writing() as db:
            introduction = _own(db, Introduction, introduction_id)
            need = db.get(Post, introduction.post_id)
            ref = need.ref if need is not None else 0
            decision = introductions.decide(db, _bank_row(db), introduction.id,
                                            approve=action == "approve",
                                            broker=db.get(Member, _broker().id), via="web")
    except introductions.NotTheirs:
        return _error(f"You are one of the two members of ref {ref}: another broker must "
                      "decide it.", "dashboard.introduction_list")
    outbound.enqueue(services, decision.queued)
    if decision.ask_again is not None:
        services.queue.enqueue("app.jobs.ask_helpers", decision.ask_again)
    messages = {"approved": f"Ref {ref}: introduced. Both members have been texted the "
                            "other's number.",
                "declined": f"Ref {ref}: not introduced. Both members have been told, and "
                            "other helpers will be asked.",
                "already": f"Ref {ref} was already decided.",
                "closed": f"Ref {ref} no longer needs an introduction."}
    return (_done if decision.outcome in ("approved", "declined") else _error)(
        messages.get(decision.outcome, "That introduction isn't here."),
        "dashboard.introduction_list")


@bp.post("/members/<id:member_id>/introductions")
def member_introductions(member_id: int) -> BaseResponse:
    via_broker = request.form.get("introductions") == "broker"
    with current_services().db.writing() as db:
        member = _own(db, Member, member_id)
        introductions.flag(db, _bank_row(db), member, via_broker,
                           broker=db.get(Member, _broker().id), via="web")
        name = member.name
    return _done(f"{name} is introduced through a broker." if via_broker
                 else f"{name} is introduced as the bank chooses.",
                 "dashboard.member_page", member_id=member_id)


# --- group activities ------------------------------------------------------------------------


@bp.get("/activities")
def activity_list() -> str:
    bank = _bank()
    with current_services().db.reading() as db:
        recent = activities.recent(db, bank.id, 50)
        organisations = list(db.scalars(select(Account).where(
            Account.bank_id == bank.id, Account.kind == "organisation").order_by(Account.name)))
        coming = activities.coming_counts(db, [a.id for a in recent])
        return render_template("dashboard/activities.html", recent=recent, coming=coming,
                               organisations=organisations)


@bp.post("/activities")
def plan_activity() -> BaseResponse:
    text = " ".join(request.form.get("text", "").split())[:480]
    area = request.form.get("area", "").strip()[:80] or None
    skill = request.form.get("skill", "").strip()[:80] or None
    if not text:
        return _error("Write what the activity is, when and where.", "dashboard.activity_list")
    with current_services().db.writing() as db:
        bank = _bank_row(db)
        host = None
        if request.form.get("host"):
            host = _own(db, Account, _id(request.form["host"]) or 0)
            if host.kind != "organisation":
                abort(400)
        activity, _ = broadcasts.plan(
            db, bank, broker=db.get(Member, _broker().id), text=text, area=area, skill=skill,
            request_key=f"web:{request.form.get('request_id', '')[:40] or secrets.token_hex(8)}",
            host=host, via="web",
        )
        activity_id = activity.id
    return redirect(url_for("dashboard.activity_page", activity_id=activity_id))


@bp.get("/activities/<id:activity_id>")
def activity_page(activity_id: int) -> str:
    with current_services().db.reading() as db:
        activity = _own(db, Activity, activity_id)
        answers = list(db.execute(
            select(Rsvp, Member).join(Member, Member.id == Rsvp.member_id)
            .where(Rsvp.activity_id == activity.id).order_by(Rsvp.answered_at)))
        credited = activities.credited_ids(db, activity.id)
        invited = activities.invited_ids(db, activity.id)
        host = db.get(Account, activity.host_account_id) if activity.host_account_id else None
        progress = activities.progress(db, activity.id)
        return render_template(
            "dashboard/activity.html", activity=activity, answers=answers, credited=credited,
            invited=invited,
            host=host, progress=progress, handed_over=activities.handed_over(progress),
            body=broadcasts.body_for(_bank(), activity))


@bp.post("/activities/<id:activity_id>/<any(send, cancel):action>")
def activity_send(activity_id: int, action: str) -> BaseResponse:
    services = current_services()
    with services.db.writing() as db:
        activity = _own(db, Activity, activity_id)
        broker = db.get(Member, _broker().id)
        if action == "send":
            activity, started = broadcasts.confirm(db, _bank_row(db), activity.id,
                                                   broker=broker, via="web")
        else:
            activity, started = broadcasts.cancel(db, activity.id, broker=broker, via="web")
        ref, recipients = activity.ref, activity.recipients
    if started and action == "send":
        broadcasts.enqueue(services, activity_id)
        return _done(f"Ref {ref} is on its way to {recipients} members.",
                     "dashboard.activity_page", activity_id=activity_id)
    if started:
        return _done(f"Ref {ref} canceled: nothing was sent.", "dashboard.activity_page",
                     activity_id=activity_id)
    return _error(f"Ref {ref} was already {activity.status}.", "dashboard.activity_page",
                  activity_id=activity_id)


@bp.post("/activities/<id:activity_id>/credit")
def activity_credit(activity_id: int) -> BaseResponse:
    services = current_services()
    minutes = _minutes(request.form.get("hours", ""))
    back: dict[str, Any] = {"endpoint": "dashboard.activity_page", "activity_id": activity_id}
    if minutes is None:
        return _error("Hours must be a number in quarter hours, e.g. 2 or 1.5.", **back)
    chosen = {i for i in map(_id, request.form.getlist("member_id")) if i is not None}
    extra = [n for n in request.form.get("numbers", "").replace(",", "\n").splitlines()
             if n.strip()]
    with services.db.writing() as db:
        activity = _own(db, Activity, activity_id)
        bank = _bank_row(db)
        if activity.status != "sending":
            return _error(f"Ref {activity.ref} hasn't been sent, so nobody can be credited.",
                          **back)
        if minutes > bank.max_exchange_minutes:
            return _error(f"At most {format_hours(bank.max_exchange_minutes)} hours at once.",
                          **back)
        people = [m for m in (db.get(Member, i) for i in sorted(chosen))
                  if m is not None and m.bank_id == bank.id and m.status == "active"
                  and m.id != _broker().id]
        for number in extra:
            try:
                person = members.resolve_who(db, bank.id, number.strip(),
                                             services.config.default_region)
            except members.SharedPhone:
                return _error(f"{number.strip()[:20]} is a phone two members share: name "
                              "each by member number, e.g. #12; nobody was credited.", **back)
            if person is None or person.status != "active":
                return _error(f"No active member has the number {number.strip()[:20]}; "
                              "nobody was credited.", **back)
            if person.id == _broker().id:
                return _error("Brokers can't credit themselves: another broker can.", **back)
            if person not in people:
                people.append(person)
        if not people:
            return _error("Tick the people who came, or add their numbers.", **back)
        result, queued = effects.credit_activity(db, bank, activity, people, minutes,
                                                 broker=db.get(Member, _broker().id), via="web")
        paid, already = len(result.paid), len(result.already)
    outbound.enqueue(services, queued)
    unit = "hour" if minutes == 60 else "hours"
    return _done(f"{paid} credited {format_hours(minutes)} {unit} each; {already} already had "
                 "theirs.", **back)


# --- the ledger ------------------------------------------------------------------------------


@bp.get("/ledger")
def ledger() -> str:
    """The ledger a page at a time, newest first, by id: ``?before=ID`` pages back and
    ``?after=ID`` forward, so a page shows the same entries however many are added since."""
    bank = _bank()
    before = _id(request.args.get("before", ""))
    after = _id(request.args.get("after", "")) if before is None else None
    check = request.args.get("check") == "1"
    with current_services().db.reading() as db:
        query = select(Transfer).where(Transfer.bank_id == bank.id)
        if after is not None:
            recent = list(reversed(db.scalars(
                query.where(Transfer.id > after).order_by(Transfer.id)
                .limit(LEDGER_PER_PAGE)).all()))
        else:
            if before is not None:
                query = query.where(Transfer.id < before)
            recent = list(db.scalars(query.order_by(Transfer.id.desc())
                                     .limit(LEDGER_PER_PAGE)))
        shown = [t.id for t in recent]
        reversed_ids = set(db.scalars(select(Transfer.reverses_id).where(
            Transfer.bank_id == bank.id, Transfer.reverses_id.in_(shown)))) if shown else set()
        newer = older = None
        if recent:
            ends = db.execute(select(
                select(Transfer.id).where(Transfer.bank_id == bank.id,
                                          Transfer.id > recent[0].id).limit(1)
                .scalar_subquery(),
                select(Transfer.id).where(Transfer.bank_id == bank.id,
                                          Transfer.id < recent[-1].id).limit(1)
                .scalar_subquery())).one()
            newer = url_for("dashboard.ledger", after=recent[0].id) if ends[0] else None
            older = url_for("dashboard.ledger", before=recent[-1].id) if ends[1] else None
        labels = _labels(db, {t.from_account_id for t in recent}
                         | {t.to_account_id for t in recent})
        organisations = list(db.scalars(select(Account).where(
            Account.bank_id == bank.id, Account.kind == "organisation").order_by(Account.name)))
        # Every page checks that the balances sum to zero (one sum over the accounts) and
        # that no broker recorded their own hours; recomputing every balance from every
        # transfer is asked for (it reads them all).
        if check:
            problems = accounts.verify(db, bank.id)
        else:
            total = int(db.scalar(select(func.coalesce(func.sum(Account.balance_minutes), 0))
                                  .where(Account.bank_id == bank.id)) or 0)
            problems = [f"balances sum to {format_hours(total)}, not 0"] if total else []
            problems += own_hours.breaches(db, bank.id)
        return render_template("dashboard/ledger.html", recent=recent, labels=labels,
                               reversed_ids=reversed_ids, organisations=organisations,
                               problems=problems, checked=check, newer=newer, older=older)


@bp.post("/ledger/record")
def record() -> BaseResponse:
    """Hours for a member who cannot text (a paper timesheet, a phone call)."""
    services = current_services()
    minutes = _minutes(request.form.get("hours", ""))
    what = " ".join(request.form.get("what", "").split())[:100]
    if minutes is None:
        return _error("Hours must be a number in quarter hours, e.g. 2 or 1.5.",
                      "dashboard.ledger")
    if not what:
        return _error("Say what the help was, e.g. gardening.", "dashboard.ledger")
    with services.db.writing() as db:
        bank = _bank_row(db)
        receiver = _member_named(db, request.form.get("member", ""))
        if receiver is None:
            return _error("No active member has that number or name (or several share the "
                          "name: use their number).", "dashboard.ledger")
        if receiver.id == _broker().id:
            return _error("Brokers can't record hours for themselves.", "dashboard.ledger")
        source = None
        if request.form.get("source"):
            source = _own(db, Account, _id(request.form["source"]) or 0)
            if source.kind != "organisation":
                abort(400)
        key = f"web-record:{request.form.get('request_id', '')[:40] or secrets.token_hex(8)}"
        try:
            recorded = effects.record_hours(
                db, bank, receiver, minutes, what, idempotency_key=key,
                broker=db.get(Member, _broker().id), source=source, via="web")
        except (InvalidHours, LedgerError) as exc:
            return _error(f"Not recorded: {exc}.", "dashboard.ledger")
        name = receiver.name
    outbound.enqueue(services, recorded.queued)
    if not recorded.created:
        return _done("That entry was already recorded.", "dashboard.ledger")
    return _done(f"Recorded {format_hours(minutes)} hours for {name} ({what}).",
                 "dashboard.ledger")


@bp.get("/ledger/export.csv")
def export() -> Response:
    buffer = io.StringIO()
    with current_services().db.reading() as db:
        bank = _bank_row(db)
        exports.write_transfers(db, bank, csv.writer(buffer))
        _log_read(bank.id, "ledger.exported")
    return _csv(buffer.getvalue(), "ledger.csv")


def _log_read(bank_id: int, action: str, detail: str = "") -> None:
    with current_services().db.writing() as db:
        audit.record(db, bank_id, action, broker_id=_broker().id, detail=detail, via="web")


def _csv(text: str, name: str) -> Response:
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- reports for funders ---------------------------------------------------------------------


def _period() -> tuple[date, date]:
    """The report period asked for (a date that cannot be read means the default); 400 for
    one past the calendar's end or longer than ten years."""
    today = utcnow().date()
    default_start = (today.replace(day=1) - timedelta(days=335)).replace(day=1)
    start = _day(request.args.get("start"), default_start)
    end = _day(request.args.get("end"), today + timedelta(days=1))
    if start >= _LAST_DAY or end > _LAST_DAY:
        abort(400, "A report period has to end by 1 January 9999.")
    if end <= start:
        end = start + timedelta(days=1)
    if (end - start).days > MAX_REPORT_DAYS:
        abort(400, "A report covers at most ten years: choose a shorter period.")
    return start, end


@bp.get("/reports")
def reports_page() -> str:
    return report_page(reports.REPORTS[0])


@bp.get("/reports/<name>")
def report_page(name: str) -> str:
    """One report at a time, with the list of all eight: each is built from the whole
    ledger of the period, so one page answers in well under a second at 100,000 members
    where eight together did not (docs/PERFORMANCE.md)."""
    if name not in reports.TITLES:
        abort(404)
    start, end = _period()
    with current_services().db.reading() as db:
        report = reports.build(db, _bank().id, name, start, end)
    chart = None
    if report.chart in ("bar", "line") and report.rows:
        labels = [str(row[0]) for row in report.rows]
        values = [float(cast(float, row[1])) for row in report.rows]
        draw = charts.line_chart if report.chart == "line" else charts.bar_chart
        chart = draw(labels, values, title=report.title, unit=report.columns[1])
    return render_template("dashboard/reports.html", report=report, chart=chart,
                           titles=reports.TITLES, start=start, end=end)


@bp.get("/reports/<name>.csv")
def report_csv(name: str) -> Response:
    start, end = _period()
    with current_services().db.reading() as db:
        try:
            report = reports.build(db, _bank().id, name, start, end)
        except KeyError:
            abort(404)
    return _csv(reports.to_csv(report), f"{name}-{start}-{end}.csv")


@bp.get("/coproduction")
def coproduction() -> str:
    start, end = _period()
    with current_services().db.reading() as db:
        indicators = reports.coproduction(db, _bank().id, start, end)
    groups: dict[str, list[reports.Indicator]] = {}
    for indicator in indicators:
        groups.setdefault(indicator.value, []).append(indicator)
    return render_template("dashboard/coproduction.html", groups=groups, start=start, end=end)


@bp.get("/coproduction.csv")
def coproduction_csv() -> Response:
    start, end = _period()
    with current_services().db.reading() as db:
        indicators = reports.coproduction(db, _bank().id, start, end)
    buffer = io.StringIO()
    writer = exports.SafeWriter(csv.writer(buffer))
    writer.writerow(["value", "indicator", "amount", "unit", "explanation"])
    for i in indicators:
        writer.writerow([i.value, i.name, i.amount, i.unit, i.explanation])
    return _csv(buffer.getvalue(), f"coproduction-{start}-{end}.csv")


# --- the audit log ---------------------------------------------------------------------------


@bp.get("/audit")
def audit_log() -> str:
    with current_services().db.reading() as db:
        entries = audit.recent(db, _bank().id, 200)
        names = {m.id: m.name for m in db.scalars(select(Member).where(
            Member.id.in_({e.broker_member_id for e in entries if e.broker_member_id})))}
        return render_template("dashboard/audit.html", entries=entries, names=names)



# Routes on this blueprint kept in their own modules: away and back, people to check on
# (app.care.away); members who cannot text, and shared phones (app.care.offline); the
# language a member reads (app.languages).
from app import languages_web  # noqa: E402, F401
from app.care import away_web, offline_views  # noqa: E402, F401

# --- the inbox: members' words for a person (app.care.inbox) ---------------------------------

ROUTE_LABELS = {"distress": "distress", "talk": "wants to talk", "not_understood":
                "not understood", "small_talk": "small talk", "command": "command"}


@bp.get("/inbox")
def inbox_page() -> str:
    bank = _bank()
    with current_services().db.reading() as db:
        bank_row = _bank_row(db)
        waiting = inbox.open_texts(db, bank.id)
        handled = inbox.handled_texts(db, bank.id)
        people = _people(db, [*waiting, *handled])
        on_duty = duty.brokers_on_duty(db, bank_row)
        return render_template("dashboard/inbox.html", waiting=waiting, handled=handled,
                               people=people, on_duty=on_duty, routes=ROUTE_LABELS)


def _people(db: Session, texts: list[InboundText]) -> dict[int, Member]:
    ids = {t.member_id for t in texts if t.member_id} | {
        t.handled_by_member_id for t in texts if t.handled_by_member_id}
    return {m.id: m for m in db.scalars(select(Member).where(Member.id.in_(ids)))}


@bp.get("/inbox/<id:text_id>")
def inbox_text(text_id: int) -> str:
    with current_services().db.reading() as db:
        text = _own(db, InboundText, text_id)
        member = db.get(Member, text.member_id) if text.member_id else None
        lines = inbox.conversation(db, member) if member is not None else []
        people = _people(db, [text])
        opted_out = bool(member is not None and member.phone
                         and members.is_opted_out(db, _bank().id, member.phone))
        return render_template("dashboard/inbox_text.html", text=text, member=member,
                               lines=lines, people=people, routes=ROUTE_LABELS,
                               opted_out=opted_out, most=inbox.REPLY_MOST)


@bp.post("/inbox/<id:text_id>/handled")
def inbox_handled(text_id: int) -> BaseResponse:
    with current_services().db.writing() as db:
        text = _own(db, InboundText, text_id)
        broker = db.get(Member, _broker().id)
        assert broker is not None
        changed = inbox.mark_handled(db, _bank_row(db), text, broker)
    return _done("Marked handled." if changed else "That text was already handled.",
                 "dashboard.inbox_page")


@bp.post("/members/<id:member_id>/reply")
def member_reply(member_id: int) -> BaseResponse:
    """A broker's reply to a member, sent as a text from the bank."""
    services = current_services()
    text_id = _id(request.form.get("text_id", ""))
    back: dict[str, Any] = ({"endpoint": "dashboard.inbox_text", "text_id": text_id}
                            if text_id else
                            {"endpoint": "dashboard.member_page", "member_id": member_id})
    request_key = request.form.get("request_id", "")[:40] or secrets.token_hex(8)
    with services.db.writing() as db:
        member = _own(db, Member, member_id)
        handled = _own(db, InboundText, text_id) if text_id else None
        if handled is not None and handled.member_id != member.id:
            abort(400)
        if request.form.get("handled") != "1":
            handled = None
        broker = db.get(Member, _broker().id)
        assert broker is not None
        try:
            message_id = inbox.reply(db, _bank_row(db), broker, member,
                                     request.form.get("words", ""), request_key=request_key,
                                     handled=handled)
        except inbox.CannotReply as exc:
            return _error(str(exc), **back)
        name = member.name
    if message_id is None:
        return _done("That reply was already sent.", **back)
    outbound.enqueue(services, [message_id])
    return _done(f"Your reply to {name} is on its way.", **back)
