"""Read by gunicorn from the folder it starts in (the repository root, where the Procfile's
``web`` runs): the web workers share one folder of metrics. See ``app/gunicorn_conf.py``."""

from app.gunicorn_conf import child_exit, on_exit, on_starting

__all__ = ["child_exit", "on_exit", "on_starting"]
