"""``timebank twilio connect``: a Twilio number (or Messaging Service) pointed at this
deployment through the real twilio client, against the stand-in on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from click.testing import Result
from sqlalchemy import select

from app.services import Services
from ledger import banks
from ledger.models import AuditEntry, Bank
from tests.twilio_standin import TwilioStandIn

ACCOUNT_SID = "AC" + "7c" * 16
AUTH_TOKEN = "fedcba9876543210fedcba9876543210"
NUMBER = "+447700900100"
SERVICE = "MG" + "3e" * 16
PUBLIC = "https://bank.example.org"
URL = PUBLIC + "/twilio/messages"
OLD = "https://demo.twilio.com/welcome/sms/reply"

Cli = Callable[..., Result]


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as running:
        yield running


@pytest.fixture
def twilio(cli: Cli, standin: TwilioStandIn) -> Callable[..., Result]:
    """``timebank twilio …`` with Twilio's credentials and the stand-in's address."""

    def run(*args: str, **env: str) -> Result:
        settings = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                    "TWILIO_API_BASE_URL": standin.base_url, "PUBLIC_BASE_URL": PUBLIC}
        settings.update(env)
        return cli("twilio", *args, env_={k: v for k, v in settings.items()})

    return run


def owner_name(services: Services, number: str) -> str | None:
    with services.db.reading() as session:
        bank = banks.owner(session, number)
        return bank.name if bank else None


def test_connect_points_the_number_here_and_gives_it_to_the_bank(
        twilio: Callable[..., Result], standin: TwilioStandIn, services: Services) -> None:
    standin.add_number(NUMBER, sms_url=OLD, sms_method="GET")
    result = twilio("connect", NUMBER)
    assert result.exit_code == 0, result.output
    assert standin.number(NUMBER)["sms_url"] == URL
    assert standin.number(NUMBER)["sms_method"] == "POST"
    assert f"{NUMBER} incoming-message URL: {OLD} → {URL}" in result.output
    assert f"{NUMBER} incoming-message method: GET → POST" in result.output
    assert f"{NUMBER} belongs to the bank: no bank → Lambeth Time Bank" in result.output
    assert owner_name(services, NUMBER) == "Lambeth Time Bank"
    with services.db.reading() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry))]
        assert "twilio.connect" in actions and "bank.number" in actions

    # Once connected, again changes nothing at Twilio.
    changes = len(standin.changes)
    again = twilio("connect", NUMBER)
    assert again.exit_code == 0, again.output
    assert len(standin.changes) == changes
    assert "(unchanged)" in again.output


def test_the_number_defaults_to_twilio_sms_from_and_a_twiml_app_is_taken_off(
        twilio: Callable[..., Result], standin: TwilioStandIn) -> None:
    standin.add_number(NUMBER, sms_url=URL, sms_application_sid="AP" + "1" * 32)
    result = twilio("connect", TWILIO_SMS_FROM=NUMBER)
    assert result.exit_code == 0, result.output
    assert standin.number(NUMBER)["sms_application_sid"] == ""
    assert "TwiML App for texts: AP" in result.output


def test_check_agrees_after_connect_and_names_the_fix_for_a_wrong_url(
        twilio: Callable[..., Result], standin: TwilioStandIn) -> None:
    standin.add_number(NUMBER, sms_url=OLD)
    before = twilio("connect", NUMBER, "--check")
    assert before.exit_code != 0
    assert (f"fix  {NUMBER} incoming-message URL: {OLD}, should be {URL}: "
            f"run `timebank twilio connect {NUMBER}`") in before.output
    assert standin.number(NUMBER)["sms_url"] == OLD  # --check changed nothing
    assert standin.changes == []

    assert twilio("connect", NUMBER).exit_code == 0
    after = twilio("connect", NUMBER, "--check")
    assert after.exit_code == 0, after.output
    assert "agree" in after.output

    # Someone changes it in Twilio's console: --check notices.
    standin.add_number("+447700900101")  # an unrelated number stays out of it
    twilio_changed = twilio("connect", NUMBER, "--check", PUBLIC_BASE_URL="https://new.example")
    assert twilio_changed.exit_code != 0
    assert "should be https://new.example/twilio/messages" in twilio_changed.output


@pytest.mark.parametrize("public", ["", "http://abc.tunnel.example"])
def test_refused_without_a_public_https_address(
        twilio: Callable[..., Result], standin: TwilioStandIn, public: str) -> None:
    standin.add_number(NUMBER, sms_url=OLD)
    for args in (("connect", NUMBER), ("connect", NUMBER, "--check")):
        result = twilio(*args, PUBLIC_BASE_URL=public)
        assert result.exit_code != 0
        assert "PUBLIC_BASE_URL" in result.output
    assert standin.number(NUMBER)["sms_url"] == OLD


def test_allow_http_for_a_tunnel(twilio: Callable[..., Result], standin: TwilioStandIn) -> None:
    standin.add_number(NUMBER, sms_url=OLD)
    result = twilio("connect", NUMBER, "--allow-http",
                    PUBLIC_BASE_URL="http://abc.tunnel.example")
    assert result.exit_code == 0, result.output
    assert standin.number(NUMBER)["sms_url"] == "http://abc.tunnel.example/twilio/messages"


def test_a_number_not_in_the_account_is_a_clear_error(
        twilio: Callable[..., Result], standin: TwilioStandIn, services: Services) -> None:
    standin.add_number("+447700900101")
    result = twilio("connect", NUMBER)
    assert result.exit_code != 0
    assert f"{NUMBER} is not a number in the Twilio account {ACCOUNT_SID}" in result.output
    assert owner_name(services, NUMBER) is None


def test_wrong_credentials_are_named(twilio: Callable[..., Result],
                                     standin: TwilioStandIn) -> None:
    standin.add_number(NUMBER)
    result = twilio("connect", NUMBER, TWILIO_AUTH_TOKEN="0" * 32)
    assert result.exit_code != 0
    assert "Twilio refused the credentials" in result.output


def test_a_number_another_bank_owns_is_refused_and_left_alone(
        twilio: Callable[..., Result], cli: Cli, standin: TwilioStandIn,
        services: Services) -> None:
    standin.add_number(NUMBER, sms_url=OLD)
    assert cli("bank", "add", "Brixton", "--sms", NUMBER).exit_code == 0
    result = twilio("connect", NUMBER)  # for the default bank
    assert result.exit_code != 0
    assert (f"{NUMBER} belongs to the bank: Brixton, not Lambeth Time Bank: connect it with "
            "--bank 'Brixton'") in result.output
    assert standin.number(NUMBER)["sms_url"] == OLD  # Twilio untouched
    assert owner_name(services, NUMBER) == "Brixton"

    check = twilio("connect", NUMBER, "--check")
    assert check.exit_code != 0
    assert "connect it with --bank 'Brixton'" in check.output

    right = twilio("connect", NUMBER, "--bank", "Brixton")
    assert right.exit_code == 0, right.output
    assert standin.number(NUMBER)["sms_url"] == URL


def test_another_banks_number_is_registered_with_it(
        twilio: Callable[..., Result], cli: Cli, standin: TwilioStandIn,
        services: Services) -> None:
    standin.add_number(NUMBER, sms_url=URL)  # Twilio already points here: only the bank lags
    assert cli("bank", "add", "Brixton", "--sms", "+447700900555").exit_code == 0
    result = twilio("connect", NUMBER, "--bank", "Brixton")
    assert result.exit_code == 0, result.output
    assert standin.changes == []
    assert f"{NUMBER} belongs to the bank: no bank → Brixton" in result.output
    assert owner_name(services, NUMBER) == "Brixton"
    with services.db.reading() as session:
        brixton = session.scalars(select(Bank).where(Bank.name == "Brixton")).one()
        assert sorted(n.address for n in brixton.numbers) == [NUMBER, "+447700900555"]


def test_messaging_service(twilio: Callable[..., Result], standin: TwilioStandIn,
                           services: Services) -> None:
    standin.add_number(NUMBER, sms_url=OLD)
    standin.add_service(SERVICE, inbound_request_url=OLD)
    env = {"TWILIO_MESSAGING_SERVICE_SID": SERVICE}
    assert twilio("connect", NUMBER, "--check", **env).exit_code != 0

    result = twilio("connect", NUMBER, **env)
    assert result.exit_code == 0, result.output
    service = standin.service(SERVICE)
    assert service["inbound_request_url"] == URL
    assert service["inbound_method"] == "POST"
    assert service["use_inbound_webhook_on_number"] is False
    assert f"Messaging Service {SERVICE} inbound request URL: {OLD} → {URL}" in result.output
    assert standin.number(NUMBER)["sms_url"] == OLD  # the service answers for it now
    # ... because the number is now in the service's sender pool.
    assert standin.service(SERVICE)["senders"] == [standin.number(NUMBER)["sid"]]
    assert f"{NUMBER} in the sender pool of Messaging Service {SERVICE}: no → yes" \
        in result.output
    assert owner_name(services, NUMBER) == "Lambeth Time Bank"
    assert twilio("connect", NUMBER, "--check", **env).exit_code == 0
    assert twilio("connect", NUMBER, **env).exit_code == 0  # again: nothing added twice
    assert len(standin.service(SERVICE)["senders"]) == 1

    # A service alone, no number configured, is enough.
    assert twilio("connect", "--check", **env).exit_code == 0

    missing = twilio("connect", NUMBER, TWILIO_MESSAGING_SERVICE_SID="MG" + "0" * 32)
    assert missing.exit_code != 0
    assert "no Messaging Service MG" in missing.output


def test_a_service_pointed_here_is_not_enough_if_the_number_is_outside_its_pool(
        twilio: Callable[..., Result], standin: TwilioStandIn, services: Services) -> None:
    """Texts to a number outside the service's sender pool go to the number's own URL:
    --check must not say everything agrees."""
    standin.add_number(NUMBER, sms_url=OLD)
    standin.add_service(SERVICE, inbound_request_url=URL, use_inbound_webhook_on_number=False)
    env = {"TWILIO_MESSAGING_SERVICE_SID": SERVICE}
    assert twilio("connect", NUMBER, **env).exit_code == 0
    # Pooled now; taken out again, as someone might in the console.
    standin.add_service(SERVICE, inbound_request_url=URL, use_inbound_webhook_on_number=False)

    check = twilio("connect", NUMBER, "--check", **env)
    assert check.exit_code != 0
    assert (f"fix  {NUMBER} in the sender pool of Messaging Service {SERVICE}: no, should be "
            "yes") in check.output
    assert "1 setting(s) to fix" in check.output
    fixed = twilio("connect", NUMBER, **env)
    assert fixed.exit_code == 0, fixed.output
    assert [r.status for r in standin.requests
            if r.method == "POST" and r.path.endswith(f"{SERVICE}/PhoneNumbers")] == [201, 201]
    assert twilio("connect", NUMBER, "--check", **env).exit_code == 0
