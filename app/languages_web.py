"""The dashboard's part of ``app.languages``: a broker sets the language a member reads from
the member's page. A route on the dashboard's blueprint (imported at the end of
``app/dashboard.py``); audited by the shared service."""

from __future__ import annotations

from flask import request
from werkzeug.wrappers import Response as BaseResponse

from app import languages
from app import services as current_services
from app.dashboard import _bank, _bank_row, _broker, _done, _error, _own, bp
from conversations import languages as choices
from ledger import banks
from ledger.models import Member


@bp.app_template_global("language_choices")
def language_choices(member: Member) -> list[tuple[str, str, bool]]:
    """(code, own name, chosen) for each language the member's bank offers, and theirs if the
    bank no longer offers it."""
    offered = banks.offered_languages(_bank())
    return [(code, choices.own_name(code), code == member.language) for code in offered]


@bp.post("/members/<id:member_id>/language")
def member_language(member_id: int) -> BaseResponse:
    code = request.form.get("language", "").strip().lower()[:8]
    with current_services().db.writing() as db:
        member = _own(db, Member, member_id)  # never another bank's member
        bank = _bank_row(db)
        try:
            changed = languages.set_member_language(db, bank, member, code,
                                                    broker=db.get(Member, _broker().id),
                                                    via="web")
        except languages.NotOffered:
            return _error("The bank doesn't offer that language.", "dashboard.member_page",
                          member_id=member_id)
        name, chosen = member.name, choices.own_name(code)
    return _done(f"{name} reads texts in {chosen}." if changed
                 else f"{name} already reads texts in {chosen}.",
                 "dashboard.member_page", member_id=member_id)
