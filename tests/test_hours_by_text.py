"""Recording hours by text, as members and brokers see it, through the webhook."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app import jobs
from ledger import accounts, banks, members
from ledger.models import Bank, Confirmation, Transfer
from tests.helpers import ref_in


@pytest.fixture
def sam(make_phone):
    phone = make_phone("+447700900601")
    phone.text("JOIN Sam")
    return phone


@pytest.fixture
def ana(make_phone):
    phone = make_phone("+447700900602")
    phone.text("JOIN Ana")
    return phone


@pytest.fixture
def bea(make_phone, services):
    phone = make_phone("+447700900603")
    with services.db.writing() as session:
        members.make_broker(session, banks.bank_for_address(session, None), phone.number, "Bea")
    return phone


def balance(phone) -> str:  # type: ignore[no-untyped-def]
    return phone.reply("BALANCE").split(". Every")[0]


def transfers(services) -> int:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return int(session.scalar(select(func.count(Transfer.id))) or 0)


def test_done_asks_the_other_member_and_yes_records_with_receipts(sam, ana, outbox, services):
    reply = sam.reply("DONE 2 Ana gardening")
    assert "asked Ana to confirm 2 hours (gardening)" in reply
    [ask] = outbox.to(ana.number)
    assert ask.startswith("Sam says they helped you for 2 hours (gardening). To give them 2 hours "
                       "from your balance, reply YES ")
    assert ask.endswith(f"If not, NO {ref_in(ask)}")
    ref = ref_in(ask)
    receipt = ana.reply(f"YES {ref}")
    assert "Recorded: Sam gave you 2 hours (gardening)" in receipt
    assert receipt.endswith("Your balance: -2 hours")
    [sam_receipt] = outbox.to(sam.number)
    assert sam_receipt.startswith("Ana confirmed the 2 hours you gave (gardening)")
    assert sam_receipt.endswith("Your balance: 2 hours")
    assert balance(sam) == "Balance: 2 hours"
    assert balance(ana) == "Balance: -2 hours"
    # YES again, or the same webhook again, records nothing more.
    assert f"Number {ref} is already recorded" in ana.reply(f"YES {ref}")
    assert transfers(services) == 1
    assert len(outbox.to(sam.number)) == 1


def test_a_repeated_done_webhook_opens_one_request(sam, ana, outbox, services):
    first = sam.send("DONE 1 Ana", sid="SM" + "d" * 32)
    again = sam.send("DONE 1 Ana", sid="SM" + "d" * 32)
    assert first.data == again.data
    assert len(outbox.to(ana.number)) == 1
    with services.db.reading() as session:
        assert session.scalar(select(func.count(Confirmation.id))) == 1


def test_no_disputes_tells_both_and_the_brokers(sam, ana, bea, outbox, services):
    sam.text("DONE 3 Ana shopping")
    ref = ref_in(outbox.to(ana.number)[0])
    assert "is not recorded, and someone from Lambeth Time Bank will be in touch" in ana.reply(
        f"NO {ref}"
    )
    [told] = outbox.to(sam.number)
    assert f"Ana says 3 hours (shopping, no. {ref}) isn't right" in told
    [broker] = outbox.to(bea.number)
    assert f"Number {ref} disputed" in broker and "+44" not in broker
    assert transfers(services) == 0
    assert balance(sam) == "Balance: 0 hours"
    # A YES after the dispute does not record it.
    assert "already closed" in ana.reply(f"YES {ref}")
    assert transfers(services) == 0


def test_only_the_member_asked_can_confirm(sam, ana, make_phone, outbox, services):
    sam.text("DONE 1 Ana")
    ref = ref_in(outbox.to(ana.number)[0])
    assert "can't find number" in sam.reply(f"YES {ref}")
    stranger = make_phone("+447700900699")
    stranger.text("JOIN Zed")
    assert "can't find number" in stranger.reply(f"YES {ref}")
    assert transfers(services) == 0


def test_yes_alone_answers_the_one_waiting_request(sam, ana, outbox):
    assert "nothing waiting" in ana.reply("YES")
    sam.text("DONE 1.5 Ana")
    assert "Sam gave you 1.5 hours" in ana.reply("yes")
    assert balance(sam) == "Balance: 1.5 hours"


def test_done_explains_what_it_needs(sam, ana):
    assert "DONE 2 Ana gardening" in sam.reply("DONE")
    assert "quarter hours" in sam.reply("DONE 1.1 Ana")
    assert "more than 24 hours" in sam.reply("DONE 30 Ana")
    assert "can't find Bob" in sam.reply("DONE 2 Bob")
    assert sam.reply("DONE 2 Sam").startswith("That's you! Reply DONE, the hours and another")


def test_done_by_phone_number_in_any_format(sam, ana, outbox):
    assert "asked Ana" in sam.reply("DONE 1 07700 900602 ironing")
    assert "(ironing)" in outbox.to(ana.number)[0]


def test_a_name_shared_by_two_members_asks_for_the_number(sam, make_phone):
    make_phone("+447700900611").text("JOIN Jo")
    make_phone("+447700900612").text("JOIN Jo")
    assert "more than one Jo" in sam.reply("DONE 1 Jo")


def test_give_previews_then_moves_on_yes(sam, ana, outbox):
    preview = sam.reply("GIVE 2 Ana")
    assert preview.startswith("To give Ana 2 hours from your balance, reply YES ")
    ref = ref_in(preview)
    assert "Done: 2 hours given to Ana. Your balance: -2 hours" in sam.reply(f"YES {ref}")
    [told] = outbox.to(ana.number)
    assert told == "Sam gave you 2 hours of time credit. Your balance: 2 hours"
    assert balance(ana) == "Balance: 2 hours"


def test_give_to_the_fund_and_cancel(sam, services):
    preview = sam.reply("GIVE 1 FUND")
    assert "community fund" in preview
    ref = ref_in(preview)
    assert "nothing was given" in sam.reply(f"NO {ref}")
    assert balance(sam) == "Balance: 0 hours"
    ref = ref_in(sam.reply("GIVE 1 fund"))
    sam.text(f"YES {ref}")
    assert balance(sam) == "Balance: -1 hour"
    with services.db.reading() as session:
        assert accounts.verify(session) == []


def test_the_limit_holds_hours_for_a_broker(sam, ana, bea, outbox, services):
    for hours in ("8", "8.25", "5"):
        sam.text(f"DONE {hours} Ana cleaning")
    asks = outbox.to(ana.number)
    for ask in asks[:2]:
        ana.text(f"YES {ref_in(ask)}")
    reply = ana.reply(f"YES {ref_in(asks[2])}")
    assert "below -20 hours" in reply and "not recorded yet" in reply
    assert balance(ana) == "Balance: -16.25 hours"
    assert any("held" in text for text in outbox.to(bea.number))


def test_statement_pages_with_more(sam, ana, outbox):
    for hours in (1, 2, 3, 4):
        sam.text(f"DONE {hours} Ana task{hours}")
    for ask in outbox.to(ana.number):
        ana.text(f"YES {ref_in(ask)}")
    first = sam.reply("STATEMENT")
    lines = first.split("\n")
    assert len(lines) == 4 and lines[-1] == "Reply MORE for earlier ones"
    assert "+4 hours from Ana: task4" in lines[0]
    second = sam.reply("MORE")
    assert "+1 hour from Ana: task1" in second
    assert second.endswith("Balance: 10 hours")
    assert sam.reply("MORE") == "That's all. Balance: 10 hours"
    assert sam.reply("MORE") == "That's all. Balance: 10 hours"
    # After another command, MORE has nothing to continue.
    sam.text("BALANCE")
    assert sam.reply("MORE") == "Reply STATEMENT to see your latest hours"


def test_a_new_member_has_an_empty_statement(sam):
    assert sam.reply("STATEMENT") == "No hours recorded yet. Balance: 0 hours"


def test_brokers_record_hours_by_text(sam, bea, outbox, services):
    reply = bea.reply("RECORD 07700 900601 1.5 gardening club")
    assert reply.startswith("Recorded 1.5 hours for Sam (gardening club)")
    assert "community fund" in reply
    assert outbox.to(sam.number) == [
        "Lambeth Time Bank recorded 1.5 hours for you (gardening club). Thank you! "
        "Your balance: 1.5 hours"
    ]
    # The same webhook again records nothing more.
    again = bea.send("RECORD +447700900601 1 x", sid="SM" + "e" * 32)
    bea.send("RECORD +447700900601 1 x", sid="SM" + "e" * 32)
    assert again.status_code == 200
    assert balance(sam) == "Balance: 2.5 hours"
    with services.db.reading() as session:
        record = session.scalars(select(Transfer).order_by(Transfer.id)).first()
        assert record is not None and record.entered_by == "broker"


def test_record_is_for_brokers_only(sam, ana, services):
    assert "only Lambeth Time Bank's brokers" in ana.reply("RECORD 07700900601 2 gardening")
    assert transfers(services) == 0


def test_a_confirmation_survives_losing_redis(sam, ana, outbox, redis):
    sam.text("DONE 2 Ana")
    ref = ref_in(outbox.to(ana.number)[0])
    redis.flushdb()
    assert "Recorded: Sam gave you" in ana.reply(f"YES {ref}")


def _age(services, hours: int) -> None:  # type: ignore[no-untyped-def]
    with services.db.writing() as session:
        for request in session.scalars(select(Confirmation)):
            request.created_at = request.created_at - timedelta(hours=hours)


def test_unanswered_requests_are_reminded_once_then_go_to_brokers(sam, ana, bea, outbox,
                                                                    services):
    sam.text("DONE 2 Ana")
    assert len(outbox.to(ana.number)) == 1
    _age(services, 49)
    assert jobs.sweep()["reminded"] == 1
    assert jobs.sweep()["reminded"] == 0
    texts = outbox.to(ana.number)
    assert len(texts) == 2 and texts[1].startswith("Reminder: Sam helped you")
    _age(services, 24 * 6)
    assert jobs.sweep()["escalated"] == 1
    assert jobs.sweep()["escalated"] == 0
    assert any("unanswered" in text for text in outbox.to(bea.number))
    assert transfers(services) == 0  # never credited silently
    # YES still works after escalation.
    assert "Recorded: Sam gave you" in ana.reply("YES")


def test_a_bank_may_choose_to_credit_unanswered_requests(sam, ana, outbox, services):
    with services.db.writing() as session:
        session.execute(update(Bank).values(auto_confirm=True))
    sam.text("DONE 2 Ana")
    _age(services, 24 * 8)
    assert jobs.sweep()["auto_confirmed"] == 1
    assert balance(sam) == "Balance: 2 hours"
    assert outbox.to(sam.number)[-1].startswith("Ana confirmed the 2 hours")
    assert transfers(services) == 1


def test_members_waiting_for_approval_cannot_move_hours_yet(backend):
    from app import create_app
    from app.cli import prepare
    from tests.conftest import make_config, wipe
    from tests.helpers import Phone

    app = create_app(make_config(backend, require_approval=True))
    shared = app.extensions["timebank"]
    wipe(shared)
    with app.app_context():
        prepare(shared)
        sam, ana = Phone(app, "+447700900801"), Phone(app, "+447700900802")
        sam.text("JOIN Sam")
        ana.text("JOIN Ana")
        for text in ("DONE 2 Ana", "GIVE 1 FUND", "YES 1", "STATEMENT"):
            assert "will welcome you soon" in sam.reply(text), text
        assert sam.reply("BALANCE").startswith("Balance: 0 hours")
        with shared.db.reading() as session:
            assert session.scalar(select(func.count(Confirmation.id))) == 0
    shared.close()


def test_a_failure_after_the_commit_still_gives_the_real_answer(sam, ana, services, outbox,
                                                                monkeypatch):
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("Redis went away")

    monkeypatch.setattr(services.queue, "enqueue", broken)
    reply = sam.reply("DONE 2 Ana gardening")
    assert "I've asked Ana to confirm 2 hours" in reply  # not "please text again"
    monkeypatch.undo()
    # The text to Ana was recorded; the sweep hands it to the worker later.
    with services.db.writing() as session:
        from ledger.models import Message

        for message in session.scalars(select(Message)):
            message.updated_at = message.updated_at - timedelta(minutes=11)
    assert jobs.sweep()["requeued"] == 1
    assert len(outbox.to(ana.number)) == 1
    # Sending the same DONE again points to the open request.
    assert "already asked Ana" in sam.reply("DONE 2 Ana gardening")


def test_a_retried_bare_yes_settles_the_same_request(sam, ana, outbox, services, redis):
    sam.text("DONE 1 Ana first")
    first = ana.send("YES", sid="SM" + "f" * 32)
    sam.text("DONE 2 Ana second")
    redis.flushdb()  # the webhook's memory of the first YES is gone
    again = ana.send("YES", sid="SM" + "f" * 32)
    assert b"Number 1 is already recorded" in again.data
    assert b"Sam gave you 1 hour" in first.data
    assert transfers(services) == 1


def test_a_lowered_maximum_does_not_strand_agreed_requests(sam, ana, outbox, services):
    sam.text("DONE 10 Ana decorating")
    with services.db.writing() as session:
        session.execute(update(Bank).values(max_exchange_minutes=300))
    assert "Sam gave you 10 hours" in ana.reply("YES")


def test_an_unconfirmed_gift_preview_lapses_quietly(sam, bea, outbox, services):
    sam.text("GIVE 1 FUND")
    _age(services, 49)
    assert jobs.sweep()["expired"] == 1
    assert outbox.to(bea.number) == []
    assert "nothing waiting" in sam.reply("YES")


def test_two_different_reports_within_the_hour_are_two_requests(sam, ana, outbox):
    sam.text("DONE 1 Ana gardening")
    assert "I've asked Ana" in sam.reply("DONE 1 Ana shopping")
    assert len(outbox.to(ana.number)) == 2
