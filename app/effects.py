"""Carrying out what a conversation step asked for, inside one SQL transaction.

Each effect is idempotent: joining is get-or-create, requests and transfers carry keys made
from the ``MessageSid``, and texts to other people carry keys made from what they report. The
replies that depend on the ledger's answer (a receipt, "already recorded") are decided here,
from catalogue keys, and rendered by the caller in the member's language.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app import broadcasts, caps, languages, outbound
from app.care import away, inbox, introductions, offline
from app.ledger_words import transfer_what
from conversations.machine import (
    Answer,
    Broadcast,
    ClosePost,
    CreditActivity,
    Effect,
    Give,
    Introduce,
    Join,
    OptIn,
    OptOut,
    PostItem,
    ReachPerson,
    RecordHours,
    RenewPost,
    Reply,
    ReportHours,
    ReportOnRef,
    SetLanguage,
    SetMemberStatus,
    SetProfile,
    ShowMine,
    ShowStatement,
    ShowWho,
    for_others,
    shorten,
)
from conversations.texts import DEFAULT_LANGUAGE, Hours, listed, render
from ledger import (
    accounts,
    activities,
    audit,
    banks,
    confirmations,
    members,
    own_hours,
    posts,
)
from ledger.errors import InvalidHours, LedgerError, NotFound
from ledger.hours import format_hours
from ledger.models import Account, Activity, Bank, Confirmation, Member, Transfer, utcnow
from ledger.phones import Address, mask

log = logging.getLogger(__name__)

STATEMENT_PAGE = 3


@dataclass
class Context:
    session: Session
    bank: Bank
    sender: Address
    sid: str
    region: str
    member: Member | None
    replies: list[Reply] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    # Jobs to enqueue once the transaction has committed: (dotted path, id).
    jobs: list[tuple[str, int]] = field(default_factory=list)
    # The words of the text (what a broker reads in an alert).
    words: str = ""

    def reply(self, key: str, **params: object) -> None:
        self.replies.append(Reply(key, dict(params)))


def carry_out(ctx: Context, effects: list[Effect]) -> None:
    for effect in effects:
        _HANDLERS[type(effect)](ctx, effect)
    ctx.queued += caps.notices(ctx.session, ctx.bank)
    if ctx.member is not None:
        members.record_contact(ctx.member, ctx.sender)


# --- membership -----------------------------------------------------------------------------


def _join(ctx: Context, effect: Join) -> None:
    member, changed = members.join(ctx.session, ctx.bank, ctx.sender, effect.name)
    ctx.member = member
    if changed and member.status == "pending":
        # One text an hour at most, however many join: the rest wait on the dashboard.
        ctx.queued += outbound.tell_brokers(
            ctx.session, ctx.bank, "broker_new_member",
            f"new-members:{ctx.bank.id}:{utcnow():%Y-%m-%dT%H}",
            {"bank": ctx.bank.name, "name": member.name, "member_id": member.id},
        )
    log.info("inbound %s: member %s joined bank %s", ctx.sid, member.id, ctx.bank.id)


def _set_language(ctx: Context, effect: SetLanguage) -> None:
    languages.carry_out(ctx.session, ctx.bank, ctx.member, effect)


def _set_profile(ctx: Context, effect: SetProfile) -> None:
    if ctx.member is not None:
        members.update_profile(ctx.session, ctx.member.id, effect.field, effect.value)


def _opt_out(ctx: Context, _effect: OptOut) -> None:
    members.opt_out(ctx.session, ctx.bank.id, ctx.sender.phone)
    # Everyone on the number (both members of a shared phone) can no longer be texted.
    for member in members.find_members(ctx.session, ctx.bank.id, ctx.sender.phone):
        posts.close_all(ctx.session, ctx.bank.id, member.id)
    log.info("inbound %s: %s opted out of bank %s", ctx.sid, mask(ctx.sender.phone), ctx.bank.id)


def _opt_in(ctx: Context, _effect: OptIn) -> None:
    members.opt_in(ctx.session, ctx.bank.id, ctx.sender.phone)
    log.info("inbound %s: %s opted in to bank %s", ctx.sid, mask(ctx.sender.phone), ctx.bank.id)


# --- care: a person, at once ------------------------------------------------------------------


def _reach_person(ctx: Context, effect: ReachPerson) -> None:
    """TALK or distress: the sender is answered with the bank's own words, and the brokers
    on duty are texted (``app.care.inbox``)."""
    reached = inbox.reach_person(ctx.session, ctx.bank, ctx.member, ctx.sender.phone,
                                 ctx.words, distress=effect.distress, sid=ctx.sid,
                                 answer=effect.answer)
    if reached.reply is not None:
        ctx.replies.append(reached.reply)
    ctx.queued += reached.queued
    log.info("inbound %s: %s for a person in bank %s (%s alerts)", ctx.sid,
             "distress" if effect.distress else "a wish to talk", ctx.bank.id,
             len(reached.queued))


# --- hours ----------------------------------------------------------------------------------


def _member(ctx: Context) -> Member:
    assert ctx.member is not None, "the conversation only asks this of members"
    return ctx.member


def _within_maximum(ctx: Context, minutes: int) -> bool:
    if minutes > ctx.bank.max_exchange_minutes:
        ctx.reply("hours_too_many", hours=Hours(ctx.bank.max_exchange_minutes))
        return False
    return True


def _one_member(ctx: Context, text: str, command: str) -> tuple[Member, str] | None:
    """The member named at the start of ``text`` and the rest, or None after replying why."""
    found = members.find_by_words(ctx.session, ctx.bank.id, text, ctx.region)
    if not found.members:
        if not found.label:
            ctx.reply("done_usage" if command == "DONE" else "give_usage")
        else:
            ctx.reply("who_unknown", who=found.label[:30], bank=ctx.bank.name, command=command)
        return None
    if len(found.members) > 1:
        ctx.reply("who_ambiguous", who=found.label[:30], bank=ctx.bank.name, command=command)
        return None
    other = found.members[0]
    if other.id == _member(ctx).id:
        ctx.reply("who_self", command=command)
        return None
    return other, found.rest


def _report_hours(ctx: Context, effect: ReportHours) -> None:
    helper = _member(ctx)
    if not _within_maximum(ctx, effect.minutes):
        return
    resolved = _one_member(ctx, effect.who, "DONE")
    if resolved is None:
        return
    helped, what = resolved
    what = what[:100] or render("help_given", helper.language)
    repeat = confirmations.recent_repeat(
        ctx.session, bank_id=ctx.bank.id, requested_by=helper.id, confirmer=helped.id,
        minutes=effect.minutes, description=what,
    )
    if repeat is not None:
        # The same report again, sent anew (not a webhook retry): one request is enough.
        ctx.reply("done_already_asked", other=helped.name, hours=Hours(repeat.minutes),
                  ref=repeat.ref)
        return
    request, created = confirmations.request(
        ctx.session, bank_id=ctx.bank.id, kind="exchange",
        payer=members.member_account(ctx.session, helped),
        payee=members.member_account(ctx.session, helper),
        minutes=effect.minutes, description=what, requested_by=helper, confirmer=helped,
        request_key=f"done:{ctx.sid}",
    )
    held = created and _queue(ctx, helped, "confirm_ask", f"confirm-ask:{request.id}",
                              caused=True, other=helper.name, hours=Hours(request.minutes),
                              what=for_others(what), ref=request.ref)
    if created and offline.has_no_phone(helped):
        ctx.queued += offline.tell_brokers_confirm(ctx.session, ctx.bank, request, helped,
                                                   helper)
    ctx.reply("done_held" if held else "done_requested", name=helper.name, other=helped.name,
              hours=Hours(request.minutes), what=shorten(what), ref=request.ref)


def _report_on_ref(ctx: Context, effect: ReportOnRef) -> None:
    """``DONE 42 2``: hours given on a matched need, from the helper or the member helped;
    the other confirms by reply."""
    member = _member(ctx)
    need = posts.by_ref(ctx.session, ctx.bank.id, effect.ref)
    # A need closed after its match (the member tidying up) can still be reported on.
    if (need is None or need.status not in ("matched", "closed")
            or need.helper_member_id is None
            or member.id not in (need.member_id, need.helper_member_id)):
        ctx.reply("done_on_ref_unknown", ref=effect.ref)
        return
    if not _within_maximum(ctx, effect.minutes):
        return
    requester = members.get_member(ctx.session, need.member_id)
    helper = members.get_member(ctx.session, need.helper_member_id)
    other = helper if member.id == requester.id else requester
    what = for_others(need.text)
    request, created = confirmations.request(
        ctx.session, bank_id=ctx.bank.id, kind="exchange",
        payer=members.member_account(ctx.session, requester),
        payee=members.member_account(ctx.session, helper),
        minutes=effect.minutes, description=need.text[:200], requested_by=member,
        # One report per match, whoever sends it and however often: never two transfers.
        confirmer=other, request_key=f"need:{need.id}",
    )
    if not created:
        ctx.reply("done_already_reported", ref=need.ref, hours=Hours(request.minutes),
                  confirmation=request.ref)
        return
    key = "confirm_ask" if other.id == requester.id else "confirm_ask_helper"
    held = _queue(ctx, other, key, f"confirm-ask:{request.id}", caused=True, other=member.name,
                  hours=Hours(request.minutes), what=what, ref=request.ref)
    if offline.has_no_phone(other):
        ctx.queued += offline.tell_brokers_confirm(ctx.session, ctx.bank, request, other,
                                                   member)
    ctx.reply("done_held" if held else "done_requested", name=member.name, other=other.name,
              hours=Hours(request.minutes), what=what, ref=request.ref)


def _post(ctx: Context, effect: PostItem) -> None:
    member = _member(ctx)
    item, created = posts.post(ctx.session, bank_id=ctx.bank.id, member=member,
                               kind=effect.kind, text=effect.text, request_key=f"post:{ctx.sid}")
    if created and item.kind == "need":
        ctx.jobs.append(("app.jobs.ask_helpers", item.id))
    key = "need_posted" if item.kind == "need" else "offer_posted"
    ctx.reply(key, name=member.name, what=shorten(item.text), ref=item.ref)


def _mine(ctx: Context, _effect: ShowMine) -> None:
    member = _member(ctx)
    items = posts.mine(ctx.session, ctx.bank.id, member.id)
    if not items:
        ctx.reply("mine_none")
        return
    entries = listed([
        render(f"mine_entry_{item.kind}", member.language, ref=item.ref,
               what=shorten(item.text, 30))
        for item in items
    ], member.language)
    ctx.reply("mine_list", entries=entries)


def _close(ctx: Context, effect: ClosePost) -> None:
    member = _member(ctx)
    if posts.close(ctx.session, ctx.bank.id, member.id, effect.ref) is None:
        ctx.reply("close_unknown", ref=effect.ref)
    else:
        ctx.reply("post_closed", ref=effect.ref)


def _renew(ctx: Context, effect: RenewPost) -> None:
    member = _member(ctx)
    item = posts.renew(ctx.session, ctx.bank.id, member.id, effect.ref)
    if item is None:
        ctx.reply("renew_unknown", ref=effect.ref)
        return
    ctx.reply("renewed", ref=item.ref)
    if item.helper_member_id is None:
        ctx.jobs.append(("app.jobs.ask_helpers", item.id))


def _answer_need(ctx: Context, member: Member, ref: int, yes: bool) -> bool:
    """YES/NO to a need this member was asked about; False if ``ref`` is not a need."""
    if yes and introductions.refused(ctx.session, ctx.bank.id, ref, member.id):
        # A broker chose not to introduce them for this need: the YES takes nothing back.
        ctx.reply("match_too_late")
        return True
    result = posts.answer(ctx.session, bank_id=ctx.bank.id, member_id=member.id, ref=ref,
                          yes=yes)
    need = result.need
    if need is None or result.outcome == "not_asked":
        return False
    if result.outcome in ("declined", "released"):
        ctx.reply("match_declined")
        if result.outcome == "released":
            introductions.cancel_for(ctx.session, need)
            requester = members.get_member(ctx.session, need.member_id)
            _queue(ctx, requester, "match_released", f"released:{need.id}:{member.id}",
                   name=member.name, what=shorten(need.text))
        if posts.waiting_for_answers(ctx.session, need.id) == 0:
            ctx.jobs.append(("app.jobs.ask_helpers", need.id))  # the next few, now
    elif result.outcome == "too_late":
        ctx.reply("match_too_late")
    elif result.outcome == "closed":
        ctx.reply("match_closed")
    else:
        requester = members.get_member(ctx.session, need.member_id)
        if offline.has_no_phone(requester):
            # A broker posted it for someone without a phone: the brokers arrange it.
            ctx.reply("match_helper_offline", name=requester.name, bank=ctx.bank.name,
                      what=for_others(need.text), ref=need.ref)
            ctx.queued += offline.tell_brokers_match(ctx.session, ctx.bank, need, requester,
                                                     member)
            return True
        earlier = introductions.latest(ctx.session, need, member.id)
        if (earlier is not None and earlier.status == "waiting") or (
                (earlier is None or earlier.status != "approved")
                and introductions.through_broker(ctx.bank, requester, member)):
            # A broker introduces them: nobody is given a number yet.
            started = introductions.start(ctx.session, ctx.bank, need, requester, member)
            ctx.queued += started.queued
            ctx.reply("intro_helper_waiting", name=requester.name,
                      what=for_others(need.text), ref=need.ref,
                      bank=ctx.bank.name)
            return True
        # Introductions with consent: the requester agreed by posting the need, the helper
        # by this YES; both texts say so, and only now does each see the other's number.
        ctx.reply("match_helper", name=requester.name, what=for_others(need.text),
                  phone=requester.phone or "-", ref=need.ref)
        _queue(ctx, requester, "match_requester", f"match:{need.id}", name=member.name,
               what=shorten(need.text), phone=member.phone or "-", ref=need.ref)
    return True


def _introduce(ctx: Context, effect: Introduce) -> None:
    """A broker's ``INTRO 42``: the two members of need 42 are given each other's number."""
    broker = _member(ctx)
    found = introductions.waiting_by_ref(ctx.session, ctx.bank.id, effect.ref)
    if found is None:
        ctx.reply("intro_unknown", ref=effect.ref, bank=ctx.bank.name)
        return
    try:
        decision = introductions.decide(ctx.session, ctx.bank, found.id, approve=True,
                                        broker=broker, via="sms")
    except introductions.NotTheirs:
        ctx.reply("intro_own", ref=effect.ref, bank=ctx.bank.name)
        return
    ctx.queued += decision.queued
    if decision.outcome in ("approved", "already") and decision.introduction is not None \
            and decision.introduction.status == "approved":
        assert decision.helper is not None and decision.requester is not None
        key = "intro_done" if decision.outcome == "approved" else "intro_already"
        ctx.reply(key, other=decision.helper.name, name=decision.requester.name,
                  ref=effect.ref)
    elif decision.outcome == "already":
        ctx.reply("intro_was_declined", ref=effect.ref)
    else:
        ctx.reply("intro_closed", ref=effect.ref)


def _give(ctx: Context, effect: Give) -> None:
    giver = _member(ctx)
    if not _within_maximum(ctx, effect.minutes):
        return
    words = effect.who.split()
    to_fund = (bool(words) and words[0].upper().strip(".!") == "FUND") or (
        len(words) >= 2 and " ".join(w.upper() for w in words[:2]) in ("THE FUND", "COMMUNITY FUND")
    )
    receiver: Member | None = None
    if to_fund:
        payee = banks.ensure_fund(ctx.session, ctx.bank)
    else:
        resolved = _one_member(ctx, effect.who, "GIVE")
        if resolved is None:
            return
        receiver, _ = resolved
        payee = members.member_account(ctx.session, receiver)
    request, _ = confirmations.request(
        ctx.session, bank_id=ctx.bank.id, kind="gift",
        payer=members.member_account(ctx.session, giver), payee=payee,
        minutes=effect.minutes, description="", requested_by=giver, confirmer=giver,
        request_key=f"give:{ctx.sid}",
    )
    if receiver is None:
        ctx.reply("give_preview_fund", hours=Hours(request.minutes), bank=ctx.bank.name,
                  ref=request.ref)
    else:
        ctx.reply("give_preview", hours=Hours(request.minutes), other=receiver.name,
                  ref=request.ref)


def _answer(ctx: Context, effect: Answer) -> None:
    member = _member(ctx)
    ref = effect.ref
    already = confirmations.answered_by(ctx.session, ctx.bank.id, ctx.sid)
    if ref is None and already is not None:
        ref = already.ref  # this very text answered it before (a retried webhook)
    if ref is None:
        # YES alone: fine when exactly one thing waits for this member's answer.
        waiting = [request.ref for request in
                   confirmations.waiting_for(ctx.session, ctx.bank.id, member.id)]
        waiting += posts.open_asks_for(ctx.session, ctx.bank.id, member.id)
        if member.role == "broker":
            waiting += [a.ref for a in activities.recent(ctx.session, ctx.bank.id, 5)
                        if a.status == "planned" and a.broker_member_id == member.id]
        if not waiting:
            # An invitation left unanswered never stands in the way of a request that
            # needs this member's YES; a YES alone answers it only when nothing else waits.
            waiting = activities.invitations_waiting(ctx.session, ctx.bank.id, member.id)
        if not waiting:
            ctx.reply("nothing_to_answer")
            return
        if len(waiting) > 1:
            refs = listed([str(r) for r in sorted(waiting)[-5:]], member.language)
            ctx.reply("several_to_answer", refs=refs, ref=max(waiting))
            return
        ref = waiting[0]
    activity = activities.by_ref(ctx.session, ctx.bank.id, ref)
    if activity is not None:
        _answer_activity(ctx, member, activity, effect.yes)
        return
    if _answer_need(ctx, member, ref, effect.yes):
        return
    result = confirmations.answer(
        ctx.session, bank_id=ctx.bank.id, member_id=member.id, ref=ref, yes=effect.yes,
        sid=ctx.sid,
    )
    request = result.confirmation
    if result.outcome == "unknown" or request is None:
        ctx.reply("ref_unknown", ref=ref)
        return
    payer, payee = _account(ctx, request.payer_account_id), _account(ctx, request.payee_account_id)
    payer_name, payee_name = _account_label(ctx, payer), _account_label(ctx, payee)
    hours = Hours(request.minutes)
    balance = Hours(members.member_account(ctx.session, member).balance_minutes)
    what = for_others(request.description)
    if result.outcome == "confirmed":
        payee_member = _account_member(ctx, payee)
        if request.kind == "gift":
            ctx.reply("give_done", hours=hours, other=payee_name, balance=balance)
            if payee_member is not None:
                _queue(ctx, payee_member, "gift_received", f"gift-received:{request.id}",
                       caused=True, other=member.name, hours=hours,
                       balance=Hours(payee.balance_minutes))
        else:
            ctx.reply("receipt_payer", hours=hours, other=payee_name, what=what, balance=balance)
            if payee_member is not None:
                _queue(ctx, payee_member, "receipt_payee", f"receipt:{request.id}",
                       other=member.name, hours=hours, what=what,
                       balance=Hours(payee.balance_minutes))
        log.info("inbound %s: ref %s confirmed in bank %s", ctx.sid, request.ref, ctx.bank.id)
    elif result.outcome == "already_confirmed":
        ctx.reply("already_confirmed", ref=request.ref, balance=balance)
    elif result.outcome == "canceled":
        ctx.reply("give_canceled", ref=request.ref, balance=balance)
    elif result.outcome == "disputed":
        ctx.reply("disputed_member", ref=request.ref, bank=ctx.bank.name)
        requester = ctx.session.get(Member, request.requested_by_member_id)
        if requester is not None:
            _queue(ctx, requester, "disputed_other", f"disputed:{request.id}", other=member.name,
                   ref=request.ref, hours=hours, what=what, bank=ctx.bank.name)
        ctx.queued += outbound.tell_brokers(
            ctx.session, ctx.bank, "broker_disputed", f"broker-disputed:{request.id}",
            {"ref": request.ref, "payer": payer_name, "payee": payee_name, "hours": hours,
             "what": what},
        )
    elif result.outcome == "limit":
        floor = payer.min_balance_minutes
        if floor is None:
            floor = ctx.bank.min_balance_minutes
        ctx.reply("limit_reached", limit=Hours(floor), ref=request.ref, bank=ctx.bank.name)
        ctx.queued += outbound.tell_brokers(
            ctx.session, ctx.bank, "broker_held", f"broker-held:{request.id}",
            {"ref": request.ref, "payer": payer_name, "payee": payee_name, "hours": hours},
        )
    else:
        ctx.reply("ref_closed", ref=request.ref, bank=ctx.bank.name)


# --- group activities (brokers' broadcasts) --------------------------------------------------


def _broadcast(ctx: Context, effect: Broadcast) -> None:
    broker = _member(ctx)
    activity, created = broadcasts.plan(
        ctx.session, ctx.bank, broker=broker, text=effect.text, area=effect.area,
        skill=effect.skill, request_key=f"broadcast:{ctx.sid}", via="sms",
    )
    if created:
        if activity.recipients == 0:
            activity.status = "canceled"
        elif activity.recipients <= ctx.bank.broadcast_confirm_over:
            _send_broadcast(ctx, broker, activity)
    if activity.status == "canceled" and activity.recipients == 0:
        words = [f"@{activity.audience_area}" if activity.audience_area else "",
                 f"#{activity.audience_skill}" if activity.audience_skill else ""]
        audience = " ".join(w for w in words if w)
        if audience:
            ctx.reply("broadcast_nobody", audience=audience)
        else:
            ctx.reply("broadcast_nobody_all", bank=ctx.bank.name)
    elif activity.status == "planned":
        ctx.reply("broadcast_confirm", ref=activity.ref, count=activity.recipients,
                  segments=activity.segments, total=activity.recipients * activity.segments)
    elif activity.status == "canceled":
        ctx.reply("broadcast_canceled", ref=activity.ref)
    else:
        ctx.reply("broadcast_sending", ref=activity.ref, count=activity.recipients)


def _send_broadcast(ctx: Context, broker: Member, activity: Activity) -> None:
    activity, started = broadcasts.confirm(ctx.session, ctx.bank, activity.id, broker=broker,
                                           via="sms")
    if started:
        ctx.jobs.append(("app.jobs.send_broadcast", activity.id))


def _answer_activity(ctx: Context, member: Member, activity: Activity, yes: bool) -> None:
    ref = activity.ref
    if activity.status == "planned":
        if member.role != "broker":
            ctx.reply("ref_unknown", ref=ref)
        elif yes:
            _send_broadcast(ctx, member, activity)
            ctx.reply("broadcast_sending", ref=ref, count=activity.recipients)
        else:
            broadcasts.cancel(ctx.session, activity.id, broker=member, via="sms")
            ctx.reply("broadcast_canceled", ref=ref)
        return
    if activity.status == "canceled":
        own = member.id == activity.broker_member_id
        ctx.reply("broadcast_canceled" if own else "rsvp_canceled", ref=ref)
        return
    if member.id == activity.broker_member_id:
        if yes:
            ctx.reply("broadcast_already", ref=ref, count=activity.recipients)
        else:
            ctx.reply("broadcast_sent_already", ref=ref)
        return
    activities.answer(ctx.session, activity, member, yes)
    ctx.reply("rsvp_yes" if yes else "rsvp_no", name=member.name, ref=ref)


def _who(ctx: Context, effect: ShowWho) -> None:
    activity = activities.by_ref(ctx.session, ctx.bank.id, effect.ref)
    if activity is None:
        ctx.reply("activity_unknown", ref=effect.ref, bank=ctx.bank.name)
        return
    if activity.status == "planned":
        ctx.reply("broadcast_confirm", ref=activity.ref, count=activity.recipients,
                  segments=activity.segments, total=activity.recipients * activity.segments)
        return
    if activity.status == "canceled":
        ctx.reply("broadcast_canceled", ref=activity.ref)
        return
    people = activities.coming(ctx.session, activity.id)
    language = ctx.member.language if ctx.member is not None else DEFAULT_LANGUAGE
    counts = activities.answers(ctx.session, activity.id)
    sent = activities.handed_over(activities.progress(ctx.session, activity.id))
    values: dict[str, object] = {"ref": activity.ref, "not_coming": counts["not_coming"],
                                 "sent": sent, "count": activity.recipients}
    paid = len(activities.credited_ids(ctx.session, activity.id))
    if not people:
        ctx.reply("who_nobody", **values)
    elif paid:
        ctx.reply("who_credited", coming=len(people), names=_names(people, language),
                  credited=paid, **values)
    else:
        ctx.reply("who_coming", coming=len(people), names=_names(people, language), **values)
    uninvited = activities.coming(ctx.session, activity.id, was_invited=False)
    if uninvited:
        ctx.reply("who_uninvited", ref=activity.ref, names=_names(uninvited, language))


WHO_NAMES = 4


def _names(people: list[Member], language: str) -> str:
    """"Ana, Ben and Kemi", or "Ana, Ben, Kemi, Dee and 20 more": a list in the language."""
    names = [shorten(p.name, 20) for p in people[:WHO_NAMES]]
    if len(people) > WHO_NAMES:
        names.append(render("more_people", language, count=len(people) - WHO_NAMES))
    return listed(names, language)


def _credit(ctx: Context, effect: CreditActivity) -> None:
    broker = _member(ctx)
    activity = activities.by_ref(ctx.session, ctx.bank.id, effect.ref)
    if activity is None or activity.status == "canceled":
        ctx.reply("activity_unknown", ref=effect.ref, bank=ctx.bank.name)
        return
    if activity.status == "planned":
        ctx.reply("credit_planned", ref=activity.ref)
        return
    if not _within_maximum(ctx, effect.minutes):
        return
    if effect.numbers:
        people = []
        for phone in effect.numbers:
            try:
                person = members.resolve_who(ctx.session, ctx.bank.id, phone, ctx.region)
            except members.SharedPhone:
                ctx.reply("record_shared")
                return
            if person is None or person.status != "active":
                ctx.reply("credit_not_member", bank=ctx.bank.name, phone=phone)
                return
            if person.id == broker.id:
                ctx.reply("record_self", bank=ctx.bank.name)
                return
            people.append(person)
    else:
        people = [p for p in activities.coming(ctx.session, activity.id) if p.id != broker.id]
        if not people:
            ctx.reply("credit_nobody", ref=activity.ref)
            return
    result, queued = credit_activity(ctx.session, ctx.bank, activity, people, effect.minutes,
                                     broker=broker, via="sms")
    ctx.queued += queued
    source = result.source
    ctx.reply("credit_done", ref=activity.ref, paid=len(result.paid),
              hours=Hours(effect.minutes), already=len(result.already),
              source=_account_label(ctx, source) if source is not None else "-")


def credit_activity(session: Session, bank: Bank, activity: Activity, people: list[Member],
                    minutes: int, *, broker: Member | None, via: str
                    ) -> tuple[activities.Credited, list[int]]:
    """Credit attendees once each, text the ones newly paid, and log it."""
    result = activities.credit(session, bank, activity, people, minutes, broker=broker)
    queued: list[int] = []
    for person in result.paid:
        account = members.member_account(session, person)
        message_id = outbound.queue_text(
            session, person, kind="activity_credited", key="activity_credited",
            idempotency_key=f"activity-credited:{activity.id}:{person.id}",
            values={"bank": bank.name, "hours": Hours(minutes), "ref": activity.ref,
                    "balance": Hours(account.balance_minutes)},
        )
        if message_id:
            queued.append(message_id)
    if result.paid:
        audit.record(session, bank.id, "activity.credited",
                     broker_id=broker.id if broker else None, subject=f"ref {activity.ref}",
                     detail=f"{len(result.paid)} people, {format_hours(minutes)} hours each",
                     via=via)
    return result, queued


def _set_member_status(ctx: Context, effect: SetMemberStatus) -> None:
    broker = _member(ctx)
    try:
        person = members.resolve_who(ctx.session, ctx.bank.id, effect.phone, ctx.region)
    except members.SharedPhone:
        ctx.reply("record_shared")
        return
    if person is None or person.status == "left":
        ctx.reply("member_number_unknown", bank=ctx.bank.name)
        return
    if effect.approve:
        change = set_status(ctx.session, ctx.bank, person, approve=True, broker=broker,
                            via="sms")
        ctx.queued += change.queued
        ctx.reply("approved_broker" if change.changed else "already_active",
                  name=person.name, bank=ctx.bank.name)
        return
    if person.role == "broker":
        ctx.reply("hold_broker", name=person.name)
        return
    if person.held_at is not None and person.status == "pending":
        ctx.reply("already_held", name=person.name)
        return
    set_status(ctx.session, ctx.bank, person, approve=False, broker=broker, via="sms")
    ctx.reply("held_broker", name=person.name)


@dataclass(frozen=True)
class StatusChange:
    changed: bool
    queued: list[int] = field(default_factory=list)


def set_status(session: Session, bank: Bank, person: Member, *, approve: bool,
               broker: Member | None, via: str) -> StatusChange:
    """Approve (welcome, or take off hold) or hold a member; the member is texted when
    welcomed. Every change is written to the audit log."""
    if approve:
        if person.status != "pending":
            return StatusChange(False)
        person.status = "active"
        person.held_at = None
        audit.record(session, bank.id, "member.approved", broker_id=broker.id if broker else None,
                     subject=f"member {person.id}", detail=person.name, via=via)
        message_id = outbound.queue_text(
            session, person, kind="approved", key="approved",
            idempotency_key=f"approved:{person.id}:{utcnow().isoformat()}",
            values={"name": person.name, "bank": bank.name},
        )
        return StatusChange(True, [message_id] if message_id else [])
    if person.status == "pending" and person.held_at is not None:
        return StatusChange(False)
    person.status = "pending"
    person.held_at = utcnow()
    members.end_sessions(person)  # a broker on hold is signed out everywhere at once
    audit.record(session, bank.id, "member.held", broker_id=broker.id if broker else None,
                 subject=f"member {person.id}", detail=person.name, via=via)
    return StatusChange(True)


def _statement(ctx: Context, effect: ShowStatement) -> None:
    member = _member(ctx)
    account = members.member_account(ctx.session, member)
    balance = Hours(account.balance_minutes)
    rows = list(ctx.session.scalars(
        select(Transfer)
        .where(or_(Transfer.from_account_id == account.id, Transfer.to_account_id == account.id))
        .order_by(Transfer.id.desc())
        .offset(effect.page * STATEMENT_PAGE)
        .limit(STATEMENT_PAGE + 1)
    ))
    if not rows:
        ctx.reply("statement_empty" if effect.page == 0 else "statement_end", balance=balance)
        return
    zone = _zone(ctx.bank.timezone)
    lines = []
    for transfer in rows[:STATEMENT_PAGE]:
        incoming = transfer.to_account_id == account.id
        other = _account(ctx, transfer.from_account_id if incoming else transfer.to_account_id)
        created = transfer.created_at
        if created.tzinfo is None:  # SQLite hands back naive UTC datetimes
            created = created.replace(tzinfo=UTC)
        lines.append(render(
            "statement_in" if incoming else "statement_out", member.language,
            date=created.astimezone(zone).strftime("%d %b").lstrip("0"),
            hours=Hours(transfer.minutes),
            other=account_label(ctx.session, other, member.language),
            what=transfer_what(ctx.session, transfer, member.language),
        ))
    key = "statement_more" if len(rows) > STATEMENT_PAGE else "statement_last"
    ctx.reply(key, entries="\n".join(lines), balance=balance)


def _record(ctx: Context, effect: RecordHours) -> None:
    broker = _member(ctx)
    if not _within_maximum(ctx, effect.minutes):
        return
    found = members.find_by_words(ctx.session, ctx.bank.id, effect.who, ctx.region,
                                  numbers=True)
    if len(found.members) != 1:
        ctx.reply("record_shared" if found.members else "member_not_found", bank=ctx.bank.name)
        return
    receiver = found.members[0]
    if receiver.id == broker.id:
        ctx.reply("record_self", bank=ctx.bank.name)
        return
    what = found.rest[:100] or render("help_given", receiver.language)
    try:
        recorded = record_hours(
            ctx.session, ctx.bank, receiver, effect.minutes, what,
            idempotency_key=f"record:{ctx.sid}", broker=broker, via="sms",
        )
    except InvalidHours:
        ctx.reply("hours_invalid", example="RECORD 07700900123 1.5 gardening")
        return
    ctx.queued += recorded.queued
    payer = ctx.session.get(Account, recorded.transfer.from_account_id)
    ctx.reply("record_done", hours=Hours(effect.minutes), other=receiver.name, what=shorten(what),
              source=_account_label(ctx, payer) if payer is not None else recorded.source,
              balance=Hours(recorded.balance_minutes))


# --- shared with the command line -----------------------------------------------------------


@dataclass(frozen=True)
class RecordedHours:
    transfer: Transfer
    created: bool
    balance_minutes: int
    source: str
    queued: list[int]


def record_hours(
    session: Session, bank: Bank, receiver: Member, minutes: int, what: str, *,
    idempotency_key: str, broker: Member | None = None, source: Account | None = None,
    entered_by: str | None = None, via: str | None = None,
) -> RecordedHours:
    """Credit ``receiver`` with hours a broker recorded (a paper timesheet, a member who
    cannot text), from the community fund or an organisation's account; tell them by text.
    ``via`` (sms, web, cli) writes the audit log. No broker records their own hours."""
    payer = source or banks.ensure_fund(session, bank)
    if payer.bank_id != bank.id:
        raise LedgerError("the source account belongs to another bank")
    override = own_hours.check(session, bank.id, broker,
                               own_hours.parties(session, [payer.id], [receiver.id]),
                               via=via or "")
    account = members.member_account(session, receiver)
    recorded = accounts.transfer(
        session, bank_id=bank.id, from_account_id=payer.id, to_account_id=account.id,
        minutes=minutes, kind="record", description=what, idempotency_key=idempotency_key,
        entered_by=entered_by or ("broker" if broker else "system"),
        entered_by_member_id=broker.id if broker else None,
    )
    queued: list[int] = []
    if recorded.created and via:
        audit.record(session, bank.id, "hours.recorded", broker_id=broker.id if broker else None,
                     subject=f"member {receiver.id}",
                     detail=f"{format_hours(minutes)} hours: {what}", via=via)
        if override and broker is not None:
            own_hours.audit_override(session, bank.id, broker, recorded.transfer, override,
                                     via=via)
    if recorded.created:
        message_id = outbound.queue_text(
            session, receiver, kind="record_received", key="record_received",
            idempotency_key=f"record-received:{recorded.transfer.id}",
            values={"bank": bank.name, "hours": Hours(minutes), "what": shorten(what),
                    "balance": Hours(account.balance_minutes)},
        )
        queued = [message_id] if message_id else []
    label = render("community_fund", receiver.language) if payer.kind == "fund" else payer.name
    return RecordedHours(recorded.transfer, recorded.created, account.balance_minutes, label,
                         queued)


def settle(session: Session, bank: Bank, confirmation_id: int, *, confirm: bool,
           broker: Member | None = None, via: str = "cli", past_floor: str | None = None
           ) -> tuple[confirmations.Settlement, list[int]]:
    """A broker records or closes a request from their queue; both members are told.

    Never a request the broker gives, receives, asked for or must answer (``OwnHours``);
    ``past_floor``, the broker's reason, lets the hours take the payer below their floor.
    """
    request = session.get(Confirmation, confirmation_id)
    if request is None or request.bank_id != bank.id:
        return confirmations.Settlement("unknown"), []
    override = own_hours.check(
        session, bank.id, broker,
        own_hours.parties(session, [request.payer_account_id, request.payee_account_id],
                          [request.requested_by_member_id, request.confirmer_member_id]),
        via=via)
    result = confirmations.settle_by_broker(
        session, confirmation_id, broker_id=broker.id if broker else None, confirm=confirm,
        past_floor=bool(past_floor),
    )
    queued: list[int] = []
    if result.outcome in ("confirmed", "canceled"):
        detail = f"{format_hours(request.minutes)} hours"
        if result.outcome == "confirmed" and past_floor:
            detail += f", past the balance floor: {past_floor}"
        if override:
            detail += f"; own hours, as {override}"
        audit.record(session, bank.id, f"confirmation.{result.outcome}",
                     broker_id=broker.id if broker else None, subject=f"ref {request.ref}",
                     detail=detail, via=via)
        if override and broker is not None and result.transfer is not None:
            own_hours.audit_override(session, bank.id, broker, result.transfer, override,
                                     via=via)
        key = "broker_settled" if result.outcome == "confirmed" else "broker_closed"
        queued = _tell_both(session, bank, request.payer_account_id, request.payee_account_id,
                            key, f"{key}:{request.id}", ref=request.ref,
                            hours=Hours(request.minutes),
                            what=for_others(request.description))
    return result, queued


def reverse(session: Session, bank: Bank, transfer_id: int, reason: str, *,
            broker: Member | None = None, via: str = "cli"
            ) -> tuple[accounts.Recorded, list[int]]:
    """A broker corrects a transfer with one the other way; both members are told.
    Never a transfer the broker gave or received (``OwnHours``)."""
    original = session.get(Transfer, transfer_id)
    if original is None or original.bank_id != bank.id:
        raise NotFound(f"there is no transfer {transfer_id}")
    override = own_hours.check(
        session, bank.id, broker,
        own_hours.parties(session, [original.from_account_id, original.to_account_id]),
        via=via)
    recorded = accounts.reverse(session, transfer_id, reason=reason, entered_by="broker",
                                entered_by_member_id=broker.id if broker else None)
    queued: list[int] = []
    if recorded.created:
        audit.record(session, bank.id, "transfer.reversed",
                     broker_id=broker.id if broker else None, subject=f"transfer {transfer_id}",
                     detail=reason, via=via)
        if override and broker is not None:
            own_hours.audit_override(session, bank.id, broker, recorded.transfer, override,
                                     via=via)
        queued = _tell_both(session, bank, original.from_account_id, original.to_account_id,
                            "reversal_notice", f"reversal:{recorded.transfer.id}",
                            transfer=original, hours=Hours(original.minutes))
    return recorded, queued


def _tell_both(session: Session, bank: Bank, payer_id: int, payee_id: int, key: str,
               idempotency_key: str, transfer: Transfer | None = None,
               **values: object) -> list[int]:
    """Text the members on both sides of an entry, each with their own balance, in their
    own language (what a ``transfer`` was for, too)."""
    queued: list[int] = []
    accounts_ = [session.get(Account, payer_id), session.get(Account, payee_id)]
    for account in accounts_:
        if account is None or account.member_id is None:
            continue
        member = session.get(Member, account.member_id)
        if member is None:
            continue
        names = {a.id: account_label(session, a, member.language)
                 for a in accounts_ if a is not None}
        if transfer is not None:
            values["what"] = transfer_what(session, transfer, member.language)
        message_id = outbound.queue_text(
            session, member, kind=key, key=key, idempotency_key=f"{idempotency_key}:{member.id}",
            values={**values, "bank": bank.name, "payer": names.get(payer_id, "-"),
                    "payee": names.get(payee_id, "-"),
                    "balance": Hours(account.balance_minutes)},
        )
        if message_id:
            queued.append(message_id)
    return queued


def account_label(session: Session, account: Account, language: str = DEFAULT_LANGUAGE) -> str:
    """Who an account is, in ``language``: a member's name, an organisation's, or the
    catalogue's words for the community fund and a former member."""
    if account.kind == "fund":
        return render("community_fund", language)
    member = session.get(Member, account.member_id) if account.member_id else None
    if member is not None and member.forgotten_at is not None:
        return render("former_member", language)
    return member.name if member is not None else account.name


def _queue(ctx: Context, member: Member, key: str, idempotency_key: str, *,
           caused: bool = False, **values: object) -> bool:
    """Text ``member``; ``caused``: unasked, because of the sender (counted by ``app.caps``).
    Returns whether a cap held the text back."""
    held = False
    if caused and ctx.member is not None:
        message_id, held = caps.queue_caused(ctx.session, ctx.bank, member, ctx.member, key=key,
                                             idempotency_key=idempotency_key, values=values)
    else:
        message_id = outbound.queue_text(ctx.session, member, kind=key, key=key,
                                         idempotency_key=idempotency_key, values=values)
    if message_id is not None:
        ctx.queued.append(message_id)
    return held


def _account(ctx: Context, account_id: int) -> Account:
    account = ctx.session.get(Account, account_id)
    assert account is not None
    return account


def _account_member(ctx: Context, account: Account) -> Member | None:
    return ctx.session.get(Member, account.member_id) if account.member_id else None


def _account_label(ctx: Context, account: Account) -> str:
    language = ctx.member.language if ctx.member is not None else DEFAULT_LANGUAGE
    return account_label(ctx.session, account, language)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


_HANDLERS: dict[type, Callable[[Context, Any], None]] = {
    Join: _join,
    SetProfile: _set_profile,
    SetLanguage: _set_language,
    # LEAVE (confirmed), AWAY, BACK: app.care.away
    **away.HANDLERS,
    OptOut: _opt_out,
    OptIn: _opt_in,
    ReportHours: _report_hours,
    ReportOnRef: _report_on_ref,
    Answer: _answer,
    Give: _give,
    Introduce: _introduce,
    ShowStatement: _statement,
    RecordHours: _record,
    PostItem: _post,
    ShowMine: _mine,
    ClosePost: _close,
    RenewPost: _renew,
    Broadcast: _broadcast,
    ShowWho: _who,
    CreditActivity: _credit,
    SetMemberStatus: _set_member_status,
    ReachPerson: _reach_person,
}
