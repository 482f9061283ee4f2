"""gunicorn's hooks for the ``web`` process: one folder of metrics for all its workers.

gunicorn reads ``gunicorn.conf.py`` from the folder it starts in (the repository root, where
the Procfile's ``web`` runs), and that file takes these hooks from here; ``timebank run``
names this module (``--config python:app.gunicorn_conf``). Importing it changes nothing.

Each gunicorn worker is a process of its own, so counters kept in memory would answer a
scrape with one worker's share. With ``PROMETHEUS_MULTIPROC_DIR`` set, ``prometheus_client``
keeps them in memory-mapped files in that folder instead, and ``/metrics`` adds up every
worker's (``app.metrics``). The folder must be set before a worker imports the library and
must start empty, so the master prepares it as it starts:

- ``PROMETHEUS_MULTIPROC_DIR`` unset (the usual case): a new private folder
  (``/tmp/timebank-metrics-*``, mode 0700) for this gunicorn, removed when it stops;
- set: that folder (made if missing), with the files of an earlier run removed (only
  ``prometheus_client``'s own ``counter_*.db``, ``histogram_*.db``, ``gauge_*.db`` and
  ``summary_*.db``). Give each gunicorn on a machine a folder of its own.

Not with ``--preload``: the app (and the library) would be loaded before the folder is set,
and each worker would count for itself. The master says so in its log if it happens.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MADE_ENV = "TIMEBANK_METRICS_DIR_MADE"  # the folder the master made, removed at exit
_KINDS = ("counter", "gauge", "histogram", "summary")

log = logging.getLogger("gunicorn.error")


def prepare_metrics_dir(environ: MutableMapping[str, str] | None = None) -> Path:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` in ``environ`` (the process's own by default) to an
    empty folder for this server's metrics, and return it."""
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    named = env.get(MULTIPROC_ENV, "").strip()
    if named:
        folder = Path(named)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            if stale.name.partition("_")[0] in _KINDS:
                stale.unlink()
        env.pop(MADE_ENV, None)
    else:
        folder = Path(tempfile.mkdtemp(prefix="timebank-metrics-"))
        env[MADE_ENV] = str(folder)
    env[MULTIPROC_ENV] = str(folder)
    return folder


def remove_metrics_dir(environ: MutableMapping[str, str] | None = None) -> None:
    """Remove the folder ``prepare_metrics_dir`` made (never one the operator named)."""
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    made = env.pop(MADE_ENV, "")
    if made and env.get(MULTIPROC_ENV) == made:
        shutil.rmtree(made, ignore_errors=True)


# --- gunicorn's hooks ------------------------------------------------------------------------


def on_starting(server: Any) -> None:
    if "prometheus_client" in sys.modules and not os.environ.get(MULTIPROC_ENV):
        log.warning("metrics: the app was loaded before its metrics folder was set (--preload?);"
                    " each worker will count only its own texts")
    folder = prepare_metrics_dir()
    log.info("metrics: gunicorn workers share %s", folder)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    remove_metrics_dir()
