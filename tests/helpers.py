"""Test actions, in the spirit of flaskr's ``AuthActions``: text the bank, read what it sent."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from typing import Any

from flask import Flask
from rq import SimpleWorker
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from app.services import Services
from ledger.models import Message


def replies(response: TestResponse) -> list[str]:
    """The texts a member reads in a TwiML answer."""
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return [(m.findtext("Body") or "".join(m.itertext())) for m in root.iter("Message")]


class Phone:
    """A member's phone texting the bank through the real webhook."""

    def __init__(self, app: Flask, number: str, *, to: str = "", channel: str = "sms",
                 auth_token: str | None = None, url: str = "http://localhost/twilio/messages"
                 ) -> None:
        self.app = app
        self.client = app.test_client()
        self.number = number
        self.to = to
        self.channel = channel
        self.auth_token = auth_token
        self.url = url

    @property
    def address(self) -> str:
        return f"whatsapp:{self.number}" if self.channel == "whatsapp" else self.number

    def form(self, body: str | None = "", sid: str | None = None, **extra: str) -> dict[str, str]:
        form = {
            "MessageSid": sid or "SM" + uuid.uuid4().hex,
            "AccountSid": "AC" + "0" * 32,
            "From": self.address,
            "To": self.to,
            "NumMedia": "0",
        }
        if body is not None:
            form["Body"] = body
        form.update(extra)
        return form

    def post(self, form: dict[str, Any], *, signature: str | None = None,
             remote_addr: str = "127.0.0.1", headers: dict[str, str] | None = None
             ) -> TestResponse:
        headers = dict(headers or {})
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        elif self.auth_token:
            headers["X-Twilio-Signature"] = RequestValidator(self.auth_token).compute_signature(
                self.url, form
            )
        return self.client.post(
            "/twilio/messages", data=form, headers=headers,
            environ_base={"REMOTE_ADDR": remote_addr},
        )

    def send(self, body: str | None, sid: str | None = None, **extra: str) -> TestResponse:
        return self.post(self.form(body, sid, **extra))

    def text(self, body: str | None, sid: str | None = None, **extra: str) -> list[str]:
        """Text the bank; return the replies the member reads."""
        return replies(self.send(body, sid, **extra))

    def reply(self, body: str | None, **extra: str) -> str:
        """Text the bank and return its one reply."""
        answers = self.text(body, **extra)
        assert len(answers) == 1, answers
        return answers[0]


class Outbox:
    """What the bank sent on its own (not as replies), after the worker has run."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def run_jobs(self) -> None:
        SimpleWorker([self.services.queue], connection=self.services.redis).work(
            burst=True, with_scheduler=False
        )

    def received(self, address: str) -> list[str]:
        """The texts as ``address``'s phone got them (the console transport's inbox, which
        ``timebank chat`` reads): what the bank keeps may hide a secret such as a code."""
        from app.transports import outbox_entry, outbox_key

        self.run_jobs()
        key = outbox_key(address, self.services.config.secret_key)
        entries = [outbox_entry(fields) for _, fields in self.services.redis.xrange(key)]
        with self.services.db.reading() as session:
            bodies = {i: body for i, body in session.execute(select(Message.id, Message.body))}
        return [copy if copy is not None else bodies[i] for i, copy in filter(None, entries)]

    def to(self, address: str, status: str | None = "sent") -> list[str]:
        """Bodies of the texts to ``address`` (``+44…`` or ``whatsapp:+44…``)."""
        self.run_jobs()
        with self.services.db.reading() as session:
            query = select(Message).where(Message.to_address == address).order_by(Message.id)
            if status:
                query = query.where(Message.status == status)
            return [m.body for m in session.scalars(query)]


def ref_in(text: str) -> str:
    """The reference a text asks for a reply with (``Reply YES 17 …`` → ``17``)."""
    found = re.search(r"\bYES (\d+)", text)
    assert found, text
    return found.group(1)


def join(phone: Phone, name: str, skills: str = "SKIP", area: str = "SKIP") -> Phone:
    """Join as ``name`` and answer the three questions (skills, area, free times), keeping
    the bank's default language where the bank offers several (``conversations.languages``)."""
    first = phone.text(f"JOIN {name}")[0]
    if "Which language?" in first:
        first = phone.text("SKIP")[0]
    assert first.startswith("Welcome to")
    phone.text(skills)
    phone.text(area)
    phone.text("SKIP")
    return phone

