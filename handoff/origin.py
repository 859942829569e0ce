"""Cross-site request checks for the agent API: a request that rides on the console's session
cookie must come from the console's own page.

The cookie is ``SameSite=Strict``, but "site" is the registrable domain: a page on another origin
of the same site (``blog.shop.example``, another port) still gets it sent along, and a WebSocket
has no CORS to stop it reading what comes back. So:

- the inbox WebSocket opened with the cookie needs an ``Origin`` that is the console's own
  (the scheme and ``Host`` the request came to; the scheme from ``X-Forwarded-Proto`` when a
  trusted proxy sent it) or one listed in ``SEAMLINE_CONSOLE_ALLOWED_ORIGINS``; no ``Origin``
  with a cookie is refused too (every browser sends one on a WebSocket);
- any other state-changing request with the cookie needs such an ``Origin`` when it has one
  (browsers send it on every POST/DELETE; a request without one still needs ``X-CSRF-Token``);
- a request with ``Authorization: Bearer`` and no cookie is a script, not a browser riding on a
  login, and is not checked: a page on another origin cannot add that header without CORS,
  which the API does not grant.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from aiohttp import web

from seamline.handoff.api import COOKIE
from seamline.shared.net import Network, forwarded_proto

API = "/api/v1/"
INBOX = "/api/v1/inbox"

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _normal(origin: str) -> str | None:
    """``scheme://host[:port]`` lower-cased, default port dropped; None if it is no http(s) origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORTS[parts.scheme] else "")


def own_origin(request: web.Request, proxies: tuple[Network, ...] = ()) -> str | None:
    """The origin the console was served from, as the browser sees it."""
    scheme = forwarded_proto(request.remote, request.headers.get("X-Forwarded-Proto"), proxies) or request.scheme
    return _normal(f"{scheme}://{request.host}")


def foreign_origin(
    request: web.Request, *, allowed: tuple[str, ...] = (), proxies: tuple[Network, ...] = (), required: bool
) -> str | None:
    """Why the request's ``Origin`` is refused, or None when it is the console's own or allowed.
    ``required``: a missing ``Origin`` is refused too."""
    raw = request.headers.get("Origin")
    if raw is None:
        return "a request with the console's cookie must carry an Origin header" if required else None
    origin = _normal(raw)
    if origin is not None and (origin == own_origin(request, proxies) or origin in {_normal(a) for a in allowed}):
        return None
    return (
        f"the origin {raw[:100]!r} may not use the console's login; list it in "
        "SEAMLINE_CONSOLE_ALLOWED_ORIGINS if it is yours"
    )


def check_cookie_request(
    request: web.Request, *, allowed: tuple[str, ...] = (), proxies: tuple[Network, ...] = (), websocket: bool = False
) -> str | None:
    """For a request authenticated by the session cookie (not by a Bearer header): why it must be
    refused with 403, or None. Reading with GET is not checked (nothing changes, and a foreign page
    cannot read the answer); the inbox WebSocket is, because it streams what it reads."""
    if not websocket and request.method in SAFE_METHODS:
        return None
    return foreign_origin(request, allowed=allowed, proxies=proxies, required=websocket)


def origin_guard(*, allowed: tuple[str, ...] = (), proxies: tuple[Network, ...] = ()):
    """An aiohttp middleware doing ``check_cookie_request`` for every ``/api/v1/`` request that
    carries the console's cookie and no Bearer header: 403 with a reason, before any handler runs
    (for the inbox: before the WebSocket upgrade)."""

    @web.middleware
    async def guard(request: web.Request, handler):
        if (
            request.path.startswith(API)
            and request.cookies.get(COOKIE)
            and not request.headers.get("Authorization", "").lower().startswith("bearer ")
        ):
            refused = check_cookie_request(request, allowed=allowed, proxies=proxies, websocket=request.path == INBOX)
            if refused:
                raise web.HTTPForbidden(text=json.dumps({"error": refused}), content_type="application/json")
        return await handler(request)

    return guard
