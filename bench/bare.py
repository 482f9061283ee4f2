"""The baseline for the webhook benchmark: a bare Flask app that answers fixed TwiML.

It has the bank's route (``POST /twilio/messages``) and answers what the bank answers to
``BALANCE`` for a new member, but does nothing else: no signature check, no form parsing,
no database, no Redis. Whatever the bank's throughput is below this one's is the cost of the
bank's own work (plus the form parsing every webhook pays).

Served by ``bench/run.py`` under the same gunicorn flags as the bank::

    gunicorn 'bench.bare:create_app()' --bind 127.0.0.1:8001 --workers 2
"""

from __future__ import annotations

from flask import Flask, Response

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    "<Response><Message>Balance: 0 hours</Message></Response>"
)


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/twilio/messages")
    def messages_webhook() -> Response:
        return Response(TWIML, mimetype="text/xml")

    return app
