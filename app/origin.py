"""Where a request came from: straight from this machine, or through something in between.

Unsigned webhooks and the dashboard on the development key are served only to requests made
on this machine. A proxy, tunnel or CDN connects from loopback too, so any header that such a
hop adds (and any ``X-Forwarded-*``) means the request came from elsewhere.
"""

from __future__ import annotations

import ipaddress

from flask import request

_FORWARDING_HEADERS = frozenset(h.lower() for h in (
    "Forwarded", "X-Real-IP", "Via", "CF-Connecting-IP", "True-Client-IP", "X-Client-IP",
    "X-Cluster-Client-IP", "X-Original-Host",
))


def forwarded() -> bool:
    """The request carries a header that a proxy, tunnel or CDN adds."""
    return any(name.lower() in _FORWARDING_HEADERS or name.lower().startswith("x-forwarded-")
               for name, _ in request.headers.items())


def from_this_machine() -> bool:
    """A request from loopback straight to the web process, through no proxy (the socket's
    own address, whatever ``TIMEBANK_TRUSTED_PROXIES`` made of it)."""
    if forwarded():
        return False
    original = request.environ.get("werkzeug.proxy_fix.orig", {})
    address = original.get("REMOTE_ADDR", request.remote_addr) or ""
    try:
        return ipaddress.ip_address(address.removeprefix("::ffff:")).is_loopback
    except ValueError:
        return False
