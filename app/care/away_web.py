"""The dashboard's part of ``app.care.away``: a broker sets a member away (a hospital stay)
or back from the member's page, and sees the people to check on. Routes on the dashboard's
blueprint (imported at the end of ``app/dashboard.py``); every action is audited by the
shared service in ``app.care.away``."""

from __future__ import annotations

from flask import g, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from app import outbound
from app import services as current_services
from app.care import away
from app.dashboard import _bank, _broker, _done, _error, _own, bp
from ledger.models import Bank, Member


@bp.app_template_global("away_label")
def away_label(member: Member) -> str:
    """"Away until 24 Dec (set by a broker)" for a member who is paused, else ""."""
    if member.away_since is None:
        return ""
    bank = g.get("bank")
    until = (f"until {away.return_date(bank, member.away_until)}"
             if member.away_until is not None and bank is not None else "until they say BACK")
    who = " (set by a broker)" if member.away_by_member_id else ""
    return f"Away {until}{who}"


@bp.post("/members/<id:member_id>/away")
def member_away(member_id: int) -> BaseResponse:
    length = request.form.get("for", "").strip()[:40]
    until = request.form.get("until", "").strip()[:40]
    if length and until:
        return _error("Give how long or the day they are back, not both.",
                      "dashboard.member_page", member_id=member_id)
    words = length or (f"until {until}" if until else "")
    services = current_services()
    with services.db.writing() as db:
        member = _own(db, Member, member_id)
        if member.status == "left":
            return _error(f"{member.name} has left the bank.", "dashboard.member_page",
                          member_id=member_id)
        bank = db.get(Bank, member.bank_id)
        assert bank is not None
        try:
            back = away.read_until(words, bank)
        except away.AwayWords:
            return _error("That isn't a length (3 weeks) or a date within a year.",
                          "dashboard.member_page", member_id=member_id)
        broker = db.get(Member, _broker().id)
        queued = away.set_away(db, bank, member, back, broker=broker, via="web")
        name = member.name
        when = (f"until {away.return_date(bank, back)}" if back is not None
                else "until they say BACK")
    outbound.enqueue(services, queued)
    return _done(f"{name} is away {when}.", "dashboard.member_page", member_id=member_id)


@bp.post("/members/<id:member_id>/back")
def member_back(member_id: int) -> BaseResponse:
    services = current_services()
    with services.db.writing() as db:
        member = _own(db, Member, member_id)
        bank = db.get(Bank, member.bank_id)
        assert bank is not None
        queued = away.come_back(db, bank, member, broker=db.get(Member, _broker().id),
                                via="web")
        name = member.name
    if queued is None:
        return _done(f"{name} was not away.", "dashboard.member_page", member_id=member_id)
    outbound.enqueue(services, queued)
    return _done(f"{name} is back.", "dashboard.member_page", member_id=member_id)


@bp.get("/check-on")
def check_on() -> str:
    """People to check on: who left or stopped texts lately, who is away, who is quiet."""
    with current_services().db.reading() as db:
        bank = db.get(Bank, _bank().id)
        assert bank is not None
        concerns = away.people_to_check_on(db, bank)
        dates = {c.member_id: away.return_date(bank, c.until) for c in concerns if c.until}
        return render_template("dashboard/check_on.html", concerns=concerns, dates=dates,
                               quiet_weeks=bank.quiet_after_weeks, check_in=bank.check_in)
