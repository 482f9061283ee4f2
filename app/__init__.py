"""timebank-sms: the Flask application (webhooks, health) and the processes around it."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app

from app.config import Config
from app.services import Services, build_services


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    """Build the web application. ``config`` overrides what the environment says."""
    if isinstance(config, dict):
        config = Config.from_env(**config)
    config = config or Config.from_env()
    _check_settings(config)
    app = Flask(__name__, instance_path=str(config.instance_path))
    app.config["TIMEBANK"] = config
    app.config["TESTING"] = config.testing
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    services = build_services(config)
    app.extensions["timebank"] = services
    _quiet_libraries()

    from app import auth

    app.secret_key = config.secret_key
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.public_base_url.startswith("https://"),
        SESSION_COOKIE_NAME="timebank_session",
        PERMANENT_SESSION_LIFETIME=auth.SESSION_LIFETIME,
    )

    if config.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=config.trusted_proxies, x_proto=config.trusted_proxies)

    from app.dashboard import bp as dashboard
    from app.metrics import bp as metrics
    from app.webhook import bp

    app.register_blueprint(bp)
    app.register_blueprint(dashboard)
    app.register_blueprint(metrics)
    return app


def _check_settings(config: Config) -> None:
    """Refuse to start on a setting that cannot be read, rather than fail on every send."""
    from app import delivery

    delivery.parse_quiet_hours(config.quiet_hours)
    delivery.templates(config.twilio_whatsapp_templates)


def services() -> Services:
    """The current app's services (inside a request, a CLI command or a job)."""
    return current_app.extensions["timebank"]


def _quiet_libraries() -> None:
    # The twilio client logs request parameters (numbers, bodies) at INFO.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
