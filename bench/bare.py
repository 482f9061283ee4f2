"""The baseline for the webhook benchmark: a bare Flask app that answers fixed TwiML.

It has the bank's route (``POST /twilio/messages``) and answers what the bank answers to
``BALANCE`` for a new member, but does nothing else: no signature check, no form parsing,
no database, no Redis. Whatever the bank's throughput is below this one's is the cost of the
bank's own work (plus the form parsing every webhook pays).

Served by ``bench/run.py`` under the same gunicorn flags as the bank::

    gunicorn 'bench.bare:create_app()' --bind 127.0.0.1:8001 --workers 2

``create_floor_app()`` is a second yardstick for ``BALANCE``: the least that any bank which
answers a balance from its ledger must do, and nothing more. It reads the form, makes one
Redis round trip (claim the MessageSid, read the dialog), and one SQL statement (the sender's
balance), on the bank's own database and Redis, and answers. No signature check, no caps, no
conversation, no kept text, no answer saved for a retry. What it reaches of the bare endpoint
is a ceiling on what the bank's ``BALANCE`` can reach on the same machine.
"""

from __future__ import annotations

from flask import Flask, Response, request

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


def create_floor_app() -> Flask:
    from sqlalchemy import text

    from app.config import Config
    from app.services import address_key, connect_redis
    from ledger.db import Database

    config = Config.from_env()
    redis = connect_redis(config)
    db = Database(config.effective_database_url)
    # By the bank and the number, as the bank's own unique index has them.
    balance = text("SELECT a.balance_minutes FROM members m JOIN accounts a "
                   "ON a.member_id = m.id AND a.kind = 'member' "
                   "WHERE m.bank_id = :bank AND m.phone = :phone")
    with db.peek() as connection:
        bank = connection.execute(text("SELECT id FROM banks WHERE is_default")).scalar()
    app = Flask(__name__)

    @app.post("/twilio/messages")
    def messages_webhook() -> Response:
        form = request.form
        sender = form.get("From", "")
        pipe = redis.pipeline(transaction=False)
        pipe.set(f"bench:floor:{form.get('MessageSid', '')}", b"", nx=True, ex=600)
        # Named by a keyed hash, as the bank names a number in Redis: never the number.
        pipe.get(f"bench:floor-session:{address_key(sender, config.secret_key)}")
        pipe.execute()
        with db.peek() as connection:
            minutes = connection.execute(balance, {"bank": bank, "phone": sender}).scalar() or 0
        return Response(
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Message>Balance: {minutes / 60:g} hours</Message></Response>",
            mimetype="text/xml")

    return app
