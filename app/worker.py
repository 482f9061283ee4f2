"""Run the RQ worker inside the app's context, with RQ's scheduler for delayed jobs."""

from __future__ import annotations

import logging

from rq import Worker

from app import create_app, services


def main(burst: bool = False) -> bool:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app()
    with app.app_context():
        shared = services()
        worker = Worker([shared.queue], connection=shared.redis)
        return bool(worker.work(burst=burst, with_scheduler=True))
