"""When and how a text may go out: quiet hours, WhatsApp's 24-hour window, a loop guard.

Pure functions of the clock and the configuration, used by ``app.jobs.send_message``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

WHATSAPP_WINDOW = timedelta(hours=24)


class BadSetting(ValueError):
    """A configuration value that cannot be read."""


def parse_quiet_hours(spec: str) -> tuple[time, time] | None:
    """``"21:00-08:00"`` → (21:00, 08:00); ``"off"`` (or empty) → None."""
    spec = (spec or "").strip().lower()
    if spec in ("", "off", "none", "0"):
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in spec.split("-", 1))
    except ValueError:
        raise BadSetting(
            f"TIMEBANK_QUIET_HOURS should look like 21:00-08:00, not {spec!r}"
        ) from None
    return (start, end) if start != end else None


def quiet_until(now: datetime, zone: str, spec: str) -> datetime | None:
    """The end of the quiet period ``now`` falls in (in UTC), or None when texts may go."""
    window = parse_quiet_hours(spec)
    if window is None:
        return None
    start, end = window
    try:
        tz = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start < end else clock >= start or clock < end
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)


def in_whatsapp_window(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Free-form WhatsApp texts are allowed within 24 hours of the member's last message."""
    if last_inbound_at is None:
        return False
    return now - last_inbound_at < WHATSAPP_WINDOW


@dataclass(frozen=True)
class Template:
    """An approved WhatsApp template: its ``ContentSid`` and which values fill {{1}}, {{2}}…"""

    sid: str
    variables: tuple[str, ...]

    def content_variables(self, values_json: str | None) -> str:
        values = json.loads(values_json or "{}")
        return json.dumps({str(i): str(values.get(name, "")) for i, name in
                           enumerate(self.variables, start=1)})


def templates(spec: str) -> dict[str, Template]:
    """``TWILIO_WHATSAPP_TEMPLATES``: JSON from a kind of text to its template, e.g.
    ``{"confirm_ask": {"sid": "HX…", "variables": ["other", "hours", "what", "ref"]}}``."""
    if not spec.strip():
        return {}
    try:
        raw = json.loads(spec)
        return {
            kind: Template(str(entry["sid"]), tuple(str(v) for v in entry.get("variables", [])))
            for kind, entry in raw.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        raise BadSetting("TWILIO_WHATSAPP_TEMPLATES should be JSON like "
                         '{"confirm_ask": {"sid": "HX...", "variables": ["other"]}}') from None
