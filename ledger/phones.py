"""Phone numbers and channel addresses.

A member is known by one number in E.164 form (``+447700900123``). Twilio writes WhatsApp
senders as ``whatsapp:+447700900123``; the same person texting by SMS and by WhatsApp is the
same member, and the bank answers on the channel it was reached on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import phonenumbers

SMS = "sms"
WHATSAPP = "whatsapp"
_WHATSAPP_PREFIX = "whatsapp:"
_NUMBER = re.compile(r"\+\d{7,15}")


class InvalidNumber(ValueError):
    """Text that is not a phone number a member can text from."""


@dataclass(frozen=True)
class Address:
    """Where a text came from or goes to: a number in E.164 and the channel."""

    phone: str
    channel: str

    @property
    def twilio(self) -> str:
        """The address as Twilio writes it in ``From`` and ``To``."""
        return f"{_WHATSAPP_PREFIX}{self.phone}" if self.channel == WHATSAPP else self.phone

    @property
    def masked(self) -> str:
        return mask(self.phone)


def normalise(number: str, region: str = "GB") -> str:
    """Return ``number`` in E.164, reading it in ``region`` when it has no country code.

    Raises ``InvalidNumber`` for short codes, alphanumeric senders and anything else that is
    not a valid phone number.
    """
    raw = (number or "").strip()
    if not raw or len(raw) > 40:
        raise InvalidNumber("empty or overlong number")
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        parsed = phonenumbers.parse(raw, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(str(exc)) from None
    # "Possible" (right length for its country) rather than "valid": numbering plans grow
    # faster than the library's metadata, and the reserved drama ranges must work in tests.
    if len(str(parsed.national_number)) < 7 or not phonenumbers.is_possible_number(parsed):
        raise InvalidNumber("not a possible number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parse_address(value: str, region: str = "GB", *, strict: bool = False) -> Address:
    """Parse a Twilio ``From``/``To`` value (``+44…`` or ``whatsapp:+44…``).

    ``strict``: as Twilio writes phone numbers, always with ``+``; a short code (``12345``)
    or an alphanumeric sender (``VODAFONE``) is refused.
    """
    raw = (value or "").strip()
    channel = SMS
    if raw.lower().startswith(_WHATSAPP_PREFIX):
        channel = WHATSAPP
        raw = raw[len(_WHATSAPP_PREFIX) :].strip()
    if strict and not raw.startswith("+"):
        raise InvalidNumber("not an international number")
    return Address(phone=normalise(raw, region), channel=channel)


def mask(phone: str | None) -> str:
    """A number fit for logs: ``+44******0123``."""
    if not phone:
        return "-"
    digits = phone.removeprefix(_WHATSAPP_PREFIX)
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_all(text: str) -> str:
    """``text`` with every international number in it masked (a body, an error message)."""
    return _NUMBER.sub(lambda m: mask(m.group()), text)


class MaskNumbers(logging.Filter):
    """A logging filter that masks every number in a record, its traceback included: for
    libraries' own log lines (RQ prints a failed job's traceback, and a Twilio error can
    quote the number it could not reach)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = mask_all(message), None
        if record.exc_text:
            record.exc_text = mask_all(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_all(record.stack_info)
        return True


def member_number(who: str) -> int | None:
    """The member id in ``#12`` (how brokers name a member wherever a phone number is
    accepted), or None."""
    who = who.strip()
    if who.startswith("#") and who[1:].isdigit() and len(who) < 11:
        return int(who[1:])
    return None
