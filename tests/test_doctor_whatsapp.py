"""``timebank doctor`` on WhatsApp: in use without approved templates, texts outside the
24-hour window go by SMS or not at all, so it warns; and it names texts that could not go."""

from __future__ import annotations

import json

from sqlalchemy import select

from ledger import banks
from ledger.models import Bank, BankNumber, Message

WHATSAPP = {"TWILIO_WHATSAPP_FROM": "whatsapp:+447700900001"}
TEMPLATES = {"confirm_ask": {"sid": "HX" + "0" * 32,
                             "variables": ["other", "hours", "what", "ref"]}}


def whatsapp_lines(output: str) -> list[str]:
    lines = output.splitlines()
    found = []
    for i, line in enumerate(lines):
        if " whatsapp: " in line:
            found.append(line)
            if i + 1 < len(lines) and lines[i + 1].startswith("         fix: "):
                found.append(lines[i + 1])
    return found


def test_without_whatsapp_nothing_to_say(cli):
    result = cli("doctor")

    assert whatsapp_lines(result.output) == ["ok       whatsapp: WhatsApp not in use"]


def test_whatsapp_without_templates_is_a_warning_with_the_fix(cli):
    result = cli("doctor", env_=WHATSAPP)

    [line, fix] = whatsapp_lines(result.output)
    assert line.startswith("warning  whatsapp: WhatsApp in use (whatsapp:+447700900001) but "
                           "no templates set: more than 24 hours after a member's last message")
    assert "TWILIO_WHATSAPP_TEMPLATES=" in fix and "Content Template Builder" in fix


def test_a_bank_s_own_whatsapp_number_counts_as_in_use(cli, services):
    """Nothing in the environment says WhatsApp, but a bank texts from a WhatsApp number."""
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        session.add(BankNumber(bank_id=bank.id, address="whatsapp:+447700900777",
                               channel="whatsapp"))

    result = cli("doctor")

    [line, _] = whatsapp_lines(result.output)
    assert line.startswith("warning  whatsapp: WhatsApp in use (whatsapp:+447700900777) but no "
                           "templates set")


def test_templates_set_are_ok(cli):
    result = cli("doctor", env_={**WHATSAPP, "TWILIO_WHATSAPP_TEMPLATES": json.dumps(TEMPLATES)})

    assert whatsapp_lines(result.output) == [
        "ok       whatsapp: WhatsApp in use (whatsapp:+447700900001), templates for 1 kind(s) "
        "of text: confirm_ask"]


def test_a_template_for_a_text_the_bank_does_not_have_is_named(cli):
    misspelt = {**TEMPLATES, "confirm_aks": TEMPLATES["confirm_ask"]}

    result = cli("doctor", env_={**WHATSAPP, "TWILIO_WHATSAPP_TEMPLATES": json.dumps(misspelt)})

    [line, fix] = whatsapp_lines(result.output)
    assert line == ("warning  whatsapp: TWILIO_WHATSAPP_TEMPLATES names texts the bank does not "
                    "have: confirm_aks")
    assert "conversations/texts.py" in fix


def test_unreadable_templates_are_a_problem(cli):
    result = cli("doctor", env_={**WHATSAPP, "TWILIO_WHATSAPP_TEMPLATES": "{not json"})

    assert result.exit_code == 1
    [line, _] = whatsapp_lines(result.output)
    assert line.startswith("problem  whatsapp: TWILIO_WHATSAPP_TEMPLATES should be JSON")


def test_texts_that_could_not_go_for_want_of_a_template_are_counted_by_kind(cli, services):
    with services.db.writing() as session:
        bank_id = session.scalars(select(Bank.id)).first()
        for n, kind in enumerate(["done_reminder", "done_reminder", "ask_helper"]):
            session.add(Message(bank_id=bank_id, to_address=f"whatsapp:+44770090010{n}",
                                channel="whatsapp", kind=kind, body="…",
                                idempotency_key=f"doctor-test:{n}", status="failed",
                                error_code="window-closed"))
        session.add(Message(bank_id=bank_id, to_address="+447700900109", channel="sms",
                            kind="done_reminder", body="…", idempotency_key="doctor-test:sms",
                            status="failed", error_code="21211"))

    result = cli("doctor", env_={**WHATSAPP, "TWILIO_WHATSAPP_TEMPLATES": json.dumps(TEMPLATES)})

    [line, fix] = whatsapp_lines(result.output)
    assert line == ("warning  whatsapp: 3 WhatsApp text(s) in the last 30 days could not go "
                    "for want of a template: ask_helper (1), done_reminder (2)")
    assert "TWILIO_WHATSAPP_TEMPLATES" in fix
