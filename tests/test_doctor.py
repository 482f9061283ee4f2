"""``timebank doctor``: each check prints ok, warning or problem with its fix; a problem
makes it exit non-zero."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.exceptions import ResponseError
from rq import SimpleWorker

from app import doctor
from app.config import Config
from ledger import banks
from tests.twilio_standin import TwilioStandIn

ACCOUNT_SID = "AC" + "d0" * 16
AUTH_TOKEN = "fedcba9876543210fedcba9876543210"
SECRET = {"TIMEBANK_SECRET_KEY": "a-long-random-secret-for-the-doctor-tests"}


@pytest.fixture
def worker(services) -> Iterator[SimpleWorker]:  # type: ignore[no-untyped-def]
    """A worker on the bank's queue that has just beaten its heart (as a running one does)."""
    running = SimpleWorker([services.queue], connection=services.redis)
    running.register_birth()
    yield running
    running.register_death()


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as running:
        yield running


def twilio(standin: TwilioStandIn, token: str = AUTH_TOKEN) -> dict[str, str | None]:
    return {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": token,
            "TWILIO_API_BASE_URL": standin.base_url}


def test_a_healthy_setup_prints_ok_lines_and_exits_zero(cli, worker):
    result = cli("doctor", env_=SECRET)

    assert result.exit_code == 0, result.output
    for line in ("ok       database: database reachable and migrated",
                 "ok       redis: Redis reachable, maxmemory-policy noeviction",
                 "ok       worker: 1 worker(s) seen in the last minute",
                 "ok       secret key: secret key set",
                 "ok       numbers: Lambeth Time Bank (default) answers every number",
                 "ok       quiet hours: time zones Europe/London"):
        assert line in result.output
    # Not problems, but said, each with what to do.
    assert "warning  twilio: Twilio not configured: texts are printed, not sent\n" \
           "         fix: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in result.output
    assert "warning  quiet hours: quiet hours off" in result.output
    assert "problem " not in result.output
    assert result.output.endswith("No problems found.\n")


def test_no_worker_is_a_problem_with_its_fix(cli):
    result = cli("doctor", env_=SECRET)

    assert result.exit_code == 1
    assert "problem  worker: no worker seen in the last minute: texts wait in the queue\n" \
           "         fix: start the worker" in result.output
    assert "1 problem(s) to fix before going live." in result.output


def _idle_since(worker: SimpleWorker, seconds: float) -> None:
    """``worker`` as it is when it last beat its heart ``seconds`` ago, waiting for a job."""
    from datetime import UTC, datetime, timedelta

    from rq.utils import utcformat

    worker.register_birth()
    worker.connection.hset(worker.key, "last_heartbeat",
                           utcformat(datetime.now(UTC) - timedelta(seconds=seconds)))


def test_an_idle_worker_is_seen_between_its_heartbeats(cli, services):
    """An idle worker beats its heart only when its wait for a job times out: the bank's
    worker waits at most 30 s, so doctor (which looks back a minute) always sees it."""
    from app.worker import _stoppable, make_worker

    idle = make_worker(_stoppable(SimpleWorker), services.queue, services.redis)
    assert idle.dequeue_timeout <= 30
    _idle_since(idle, idle.dequeue_timeout + 5)  # the longest gap, and a little late
    try:
        assert "ok       worker: 1 worker(s) seen in the last minute" in cli(
            "doctor", env_=SECRET).output
    finally:
        idle.register_death()
    # RQ's own default waits 405 s between heartbeats: most of the time doctor would call
    # a healthy idle worker missing.
    default = SimpleWorker([services.queue], connection=services.redis)
    assert default.dequeue_timeout > doctor.HEARTBEAT_WITHIN.total_seconds()
    _idle_since(default, default.dequeue_timeout / 2)
    try:
        assert "problem  worker" in cli("doctor", env_=SECRET).output
    finally:
        default.register_death()


def test_a_worker_for_another_queue_does_not_count(cli, services):
    from rq import Queue

    other = SimpleWorker([Queue("elsewhere", connection=services.redis)],
                         connection=services.redis)
    other.register_birth()
    try:
        assert "problem  worker" in cli("doctor", env_=SECRET).output
    finally:
        other.register_death()


def test_the_development_key_on_a_public_deployment_is_a_problem(cli, worker, tmp_path):
    # An instance folder without a kept key, and no TIMEBANK_SECRET_KEY: the development key.
    laptop = {"TIMEBANK_INSTANCE_PATH": str(tmp_path), "TIMEBANK_SECRET_KEY": None}
    quiet = cli("doctor", env_=laptop)
    assert "warning  secret key: the development secret key (fine on a laptop only)" \
        in quiet.output
    assert quiet.exit_code == 0, quiet.output

    public = cli("doctor", env_={**laptop, "PUBLIC_BASE_URL": "https://bank.example.org"})

    assert public.exit_code == 1
    assert "problem  secret key: the development secret key, on a public deployment" \
        in public.output
    assert "fix: set TIMEBANK_SECRET_KEY to a long random string" in public.output


def test_a_wrong_twilio_token_is_a_problem(cli, worker, standin):
    wrong = cli("doctor", env_={**SECRET, **twilio(standin, token="0" * 32)})

    assert wrong.exit_code == 1
    assert "problem  twilio: Twilio refused these credentials (401)\n" \
           "         fix: copy TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in wrong.output
    fetched = [r for r in standin.requests if r.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"]
    assert fetched and not fetched[0].authorised

    right = cli("doctor", env_={**SECRET, **twilio(standin)})
    assert "ok       twilio: Twilio credentials valid, account active" in right.output
    assert standin.requests[-1].authorised


def test_half_the_twilio_credentials_is_a_problem(cli, worker):
    result = cli("doctor", env_={**SECRET, "TWILIO_ACCOUNT_SID": ACCOUNT_SID})

    assert result.exit_code == 1
    assert "problem  twilio: only one of TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN is set" \
        in result.output


def test_an_unmigrated_database_is_a_problem_until_upgraded(cli, worker, tmp_path):
    fresh = {**SECRET, "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.sqlite3"}

    result = cli("doctor", env_=fresh)

    assert result.exit_code == 1
    assert "problem  database: database not migrated (at nothing, newest is " in result.output
    assert "         fix: run `timebank db upgrade`" in result.output

    assert cli("db", "upgrade", env_=fresh).exit_code == 0
    after = cli("doctor", env_=fresh)
    assert "ok       database: database reachable and migrated" in after.output
    assert after.exit_code == 0, after.output


def test_an_unreachable_database_is_a_problem(cli, worker):
    gone = {**SECRET, "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/nothing"}

    result = cli("doctor", env_=gone)

    assert result.exit_code == 1
    assert "problem  database: database unreachable: OperationalError\n" \
           "         fix: check DATABASE_URL" in result.output


def test_a_bank_without_a_number_is_a_problem(cli, worker, services):
    with services.db.writing() as session:
        banks.add_bank(session, "Brixton Time Bank", addresses=())

    result = cli("doctor", env_=SECRET)

    assert result.exit_code == 1
    assert "problem  numbers: Brixton Time Bank has no number: its members cannot text it\n" \
           "         fix: `timebank twilio connect NUMBER --bank 'Brixton Time Bank'`" \
        in result.output


def test_unreadable_quiet_hours_and_unknown_time_zones_are_problems(cli, worker, services):
    result = cli("doctor", env_={**SECRET, "TIMEBANK_QUIET_HOURS": "9pm till 8",
                                 "TIMEBANK_TIMEZONE": "Europe/Lambeth"})

    assert result.exit_code == 1
    assert "problem  quiet hours: TIMEBANK_QUIET_HOURS should look like 21:00-08:00" \
        in result.output
    assert "problem  quiet hours: TIMEBANK_TIMEZONE: unknown time zone 'Europe/Lambeth'" \
        in result.output


@pytest.mark.backend("embedded")  # the shared Redis server is not ours to reconfigure
def test_redis_that_evicts_keys_is_a_problem(cli, worker, redis):
    redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        result = cli("doctor", env_=SECRET)
    finally:
        redis.config_set("maxmemory-policy", "noeviction")

    assert result.exit_code == 1
    assert "problem  redis: Redis evicts keys (maxmemory-policy allkeys-lru)" in result.output
    assert "fix: set maxmemory-policy noeviction" in result.output


BANK_SMS = "+447700900999"
PUBLIC = "https://bank.example.org"


def test_each_number_must_be_the_twilio_accounts_and_send_its_texts_here(
        cli, worker, standin, services):
    with services.db.writing() as session:
        banks.ensure_default_bank(session, name="Lambeth Time Bank", addresses=[BANK_SMS])
    live = {**SECRET, **twilio(standin), "PUBLIC_BASE_URL": PUBLIC}
    fix = f"         fix: `timebank twilio connect {BANK_SMS} --bank 'Lambeth Time Bank'`"

    missing = cli("doctor", env_=live)
    assert missing.exit_code == 1
    assert (f"problem  numbers: Lambeth Time Bank: {BANK_SMS} is not a number in the Twilio "
            f"account {ACCOUNT_SID}: buy it there, or check TWILIO_ACCOUNT_SID and the number"
            ) in missing.output

    standin.add_number(BANK_SMS, sms_url="https://old.example.org/sms")
    elsewhere = cli("doctor", env_=live)
    assert elsewhere.exit_code == 1
    assert (f"problem  numbers: Lambeth Time Bank: {BANK_SMS} incoming-message URL is "
            f"https://old.example.org/sms, should be {PUBLIC}/twilio/messages\n{fix}"
            ) in elsewhere.output
    # The URL right but a TwiML App taking its texts: not connected either.
    standin.add_number(BANK_SMS, sms_url=f"{PUBLIC}/twilio/messages",
                       sms_application_sid="AP" + "1" * 32)
    app = cli("doctor", env_=live)
    assert app.exit_code == 1
    assert f"{BANK_SMS} TwiML App for texts is AP{'1' * 32}, should be none" in app.output

    standin.add_number(BANK_SMS, sms_url=f"{PUBLIC}/twilio/messages")
    connected = cli("doctor", env_=live)
    assert f"ok       numbers: Lambeth Time Bank: {BANK_SMS} connected" in connected.output
    assert connected.exit_code == 0, connected.output
    looked_up = [r for r in standin.requests if "IncomingPhoneNumbers" in r.path]
    assert looked_up and all(r.authorised for r in looked_up)
    assert not standin.changes  # doctor only looks


def test_with_a_messaging_service_each_number_must_be_in_its_pool(
        cli, worker, standin, services):
    service = "MG" + "2" * 32
    with services.db.writing() as session:
        banks.ensure_default_bank(session, name="Lambeth Time Bank", addresses=[BANK_SMS])
    live = {**SECRET, **twilio(standin), "PUBLIC_BASE_URL": PUBLIC,
            "TWILIO_MESSAGING_SERVICE_SID": service}
    sid = standin.add_number(BANK_SMS, sms_url="https://old.example.org/sms")
    standin.add_service(service, inbound_request_url=f"{PUBLIC}/twilio/messages",
                        use_inbound_webhook_on_number=False)
    outside = cli("doctor", env_=live)
    assert outside.exit_code == 1
    assert (f"problem  numbers: Lambeth Time Bank: {BANK_SMS} in the sender pool of "
            f"Messaging Service {service} is no, should be yes") in outside.output
    standin.add_service(service, inbound_request_url="https://old.example.org/sms",
                        use_inbound_webhook_on_number=False, senders=[sid])
    elsewhere = cli("doctor", env_=live)
    assert elsewhere.exit_code == 1
    assert f"Messaging Service {service} inbound request URL is https://old.example.org/sms" \
        in elsewhere.output
    standin.add_service(service, inbound_request_url=f"{PUBLIC}/twilio/messages",
                        use_inbound_webhook_on_number=False, senders=[sid])
    connected = cli("doctor", env_=live)
    assert f"ok       numbers: Lambeth Time Bank: {BANK_SMS} connected" in connected.output
    assert connected.exit_code == 0, connected.output


def test_twilio_without_a_public_address_is_a_problem(cli, worker, standin):
    result = cli("doctor", env_={**SECRET, **twilio(standin)})

    assert result.exit_code == 1
    assert "problem  numbers: PUBLIC_BASE_URL not set: Twilio has no address to send texts " \
           "to\n         fix: set PUBLIC_BASE_URL" in result.output


def test_an_unreachable_redis_is_a_problem(cli):
    result = cli("doctor", env_={**SECRET, "REDIS_URL": "redis://127.0.0.1:1/0"})

    assert result.exit_code == 1
    assert "problem  redis: Redis unreachable: ConnectionError\n" \
           "         fix: check REDIS_URL and that Redis is running" in result.output
    assert "problem  worker: workers unknown (Redis unreachable)" in result.output


class _RedisSettings:
    """A Redis server's CONFIG GET answers, as a managed one might give them (or refuse)."""

    def __init__(self, **settings: str | None) -> None:
        self.settings = settings

    def config_get(self, name: str) -> dict[str, str]:
        if self.settings.get("refuse"):
            raise ResponseError("NOPERM this user has no permissions to run 'config|get'")
        value = self.settings.get(name)
        return {} if value is None else {name: value}


@pytest.mark.parametrize(("settings", "level", "said"), [
    ({"appendonly": "yes", "appendfsync": "everysec", "save": ""}, "ok",
     "Redis persistence on (appendonly, appendfsync everysec)"),
    ({"appendonly": "yes", "appendfsync": "no"}, "warning",
     "Redis appendfsync no: a crash can lose the last half minute of jobs"),
    ({"appendonly": "no", "save": "3600 1"}, "warning",
     "Redis keeps only snapshots: a restart loses recent jobs"),
    ({"appendonly": "no", "save": ""}, "warning",
     "Redis persistence off: a restart loses the queue"),
    ({"refuse": "yes"}, "warning", "Redis persistence cannot be read"),
])
def test_redis_persistence_is_read_from_the_servers_settings(settings, level, said):
    config = Config.from_env(env={"REDIS_URL": "redis://127.0.0.1:6379/0"})
    found = doctor.redis_persistence(config, _RedisSettings(**settings))  # type: ignore[arg-type]
    assert (found.status, found.message) == (level, said)
    if level != "ok":
        assert "append" in found.fix or "AOF" in found.fix


def test_the_embedded_redis_needs_no_persistence_on_a_laptop():
    found = doctor.redis_persistence(Config.from_env(env={}), _RedisSettings())  # type: ignore[arg-type]
    assert found.status == "ok" and "REDIS_URL" in found.fix
