"""The RQ worker: sends the bank's texts and runs scheduled jobs. ``python worker.py``."""

from app.worker import main

if __name__ == "__main__":
    main()
