"""Configuration, read once from the environment. Every variable is optional."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


def instance_folder(env: dict[str, str]) -> Path:
    """``TIMEBANK_INSTANCE_PATH``, else ``instance/`` in the current directory: the same
    folder for every process (release, web, worker, CLI) however the package is installed,
    never one inside ``site-packages``."""
    return Path(env.get("TIMEBANK_INSTANCE_PATH") or "instance").absolute()


DEVELOPMENT_KEY = "timebank-development-key"
# Where ``timebank run`` keeps the random key it made, in the instance folder.
SECRET_KEY_FILE = "secret_key"


def _secret_key(value: str | None, instance: Path) -> str:
    """``TIMEBANK_SECRET_KEY``, else the key ``timebank run`` keeps in the instance folder
    (so every process and command of that bank agrees), else the development key."""
    if value:
        return value
    try:
        kept = (instance / SECRET_KEY_FILE).read_text().strip()
    except OSError:
        kept = ""
    return kept or DEVELOPMENT_KEY


def keep_secret_key(instance: Path) -> bool:
    """Make a random secret key in the instance folder unless one is there; whether made."""
    import secrets

    path = instance / SECRET_KEY_FILE
    if path.exists():
        return False
    instance.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: theirs is ours
        return False
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48) + "\n")
    return True


def _proxies(value: str | None) -> int:
    if value is None or not value.strip():
        return 0
    if not value.strip().isdigit():
        raise ValueError(f"TIMEBANK_TRUSTED_PROXIES must be a whole number; got {value!r}")
    return int(value)


def _rate(value: str | None) -> float:
    """``TIMEBANK_SEND_RATE``: texts a second per sender; ``off`` or ``0`` for no limit."""
    if value is None or not value.strip():
        return 1.0
    if value.strip().lower() in ("off", "none", "0"):
        return 0.0
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(
            f"TIMEBANK_SEND_RATE must be a number of texts a second, or off; got {value!r}"
        ) from None
    if rate < 0 or rate != rate or rate == float("inf"):
        raise ValueError(f"TIMEBANK_SEND_RATE must be 0 or more; got {value!r}")
    return rate


METRICS_TOKEN_MIN = 16


def _metrics_token(value: str | None) -> str:
    """``TIMEBANK_METRICS_TOKEN``: long enough that it cannot be guessed by trying."""
    token = (value or "").strip()
    if token and len(token) < METRICS_TOKEN_MIN:
        raise ValueError(
            f"TIMEBANK_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN} characters "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return token


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Config:
    instance_path: Path = field(default_factory=lambda: instance_folder({}))
    database_url: str = ""
    redis_url: str = ""
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_sms_from: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_whatsapp_from: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    # Twilio's own opt-out management answers STOP/START/HELP on SMS: then the bank stays quiet.
    twilio_answers_keywords: bool = False
    # WhatsApp templates for texts sent outside the 24-hour window (see app.delivery).
    twilio_whatsapp_templates: str = ""
    public_base_url: str = ""
    default_region: str = "GB"
    timezone: str = "Europe/London"
    quiet_hours: str = "21:00-08:00"
    require_approval: bool = False
    bank_name: str = "Time Bank"
    # Keys the names of numbers in Redis. Set it in production; any long random string.
    secret_key: str = DEVELOPMENT_KEY
    # SMS segments a second from one sender number (Twilio: about 1 on a US long code, 10 on
    # an international one, 100 on a short code); 0 sends as fast as the worker can.
    send_rate: float = 1.0
    # Proxies in front of the web process that set X-Forwarded-For (a platform's router: 1),
    # so sign-in attempts are counted per real address.
    trusted_proxies: int = 0
    # Bearer token for /metrics from other than loopback; unset: this machine only.
    metrics_token: str = ""
    session_ttl_seconds: int = 2 * 24 * 3600
    inbound_memory_seconds: int = 72 * 3600
    queue_name: str = "timebank"
    testing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Config:
        env = dict(os.environ if env is None else env)
        config = cls(
            instance_path=instance_folder(env),
            database_url=env.get("DATABASE_URL", ""),
            redis_url=env.get("REDIS_URL", ""),
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            twilio_sms_from=env.get("TWILIO_SMS_FROM", ""),
            twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID", ""),
            twilio_whatsapp_from=env.get("TWILIO_WHATSAPP_FROM", ""),
            twilio_api_base_url=env.get("TWILIO_API_BASE_URL") or "https://api.twilio.com",
            # Twilio answers STOP/START/HELP on long codes unless its opt-out handling is
            # turned off: so by default the bank stays quiet on them when Twilio is in use.
            twilio_answers_keywords=_flag(
                env.get("TWILIO_ANSWERS_KEYWORDS"),
                default=bool(env.get("TWILIO_ACCOUNT_SID") and env.get("TWILIO_AUTH_TOKEN")),
            ),
            twilio_whatsapp_templates=env.get("TWILIO_WHATSAPP_TEMPLATES", ""),
            public_base_url=env.get("PUBLIC_BASE_URL", "").rstrip("/"),
            default_region=(env.get("TIMEBANK_DEFAULT_REGION") or "GB").upper(),
            timezone=env.get("TIMEBANK_TIMEZONE") or "Europe/London",
            quiet_hours=env.get("TIMEBANK_QUIET_HOURS") or "21:00-08:00",
            require_approval=_flag(env.get("TIMEBANK_REQUIRE_APPROVAL")),
            bank_name=env.get("TIMEBANK_NAME") or "Time Bank",
            trusted_proxies=_proxies(env.get("TIMEBANK_TRUSTED_PROXIES")),
            send_rate=_rate(env.get("TIMEBANK_SEND_RATE")),
            metrics_token=_metrics_token(env.get("TIMEBANK_METRICS_TOKEN")),
        )
        known = {f.name for f in fields(cls)}
        config = replace(config, **{k: v for k, v in overrides.items() if k in known})
        if "secret_key" in overrides:
            return config
        # Read from the instance folder in use, whether it came from the environment or not.
        return replace(config, secret_key=_secret_key(env.get("TIMEBANK_SECRET_KEY"),
                                                      config.instance_path))

    @property
    def sqlite_path(self) -> Path:
        return self.instance_path / "timebank.sqlite3"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def embedded_redis_path(self) -> Path:
        return self.instance_path / "redis.db"

    @property
    def public(self) -> bool:
        """Reachable from outside this machine, by what is configured: Twilio or a public URL."""
        return self.uses_twilio or bool(self.public_base_url)

    @property
    def uses_twilio(self) -> bool:
        """Both credentials set: send through Twilio and require signed webhooks."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def bank_numbers(self) -> list[str]:
        """The configured numbers, which the default bank owns."""
        return [n for n in (self.twilio_sms_from, self.twilio_whatsapp_from) if n]
