"""Security headers on every response: pages, the widget script, the API, errors, /healthz.

Set in ``on_response_prepare`` rather than a middleware because that signal also sees what no
handler returned (a 404 for an unknown path, an exception's response, static files, WebSocket
upgrades), just before the headers go out. A header a handler set itself (the console's own CSP)
is kept.

What may be framed: only the demo page, by this origin and the sites allowed to embed the chat
(SEAMLINE_WEB_ALLOWED_ORIGINS). The widget itself is embedded with a ``<script>`` tag (its UI
lives in a shadow root of the host page, no iframe), so ``frame-ancestors 'none'`` everywhere else
costs it nothing; ``/widget.js`` is served with ``Cross-Origin-Resource-Policy: cross-origin`` so
any site may load it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from aiohttp import web

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# JSON, text and anything that is not a page: nothing in it may run or load.
NOTHING = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def _inline_hashes(page: Path) -> str:
    """CSP hashes of a page's inline scripts, so they run and nothing else inline does."""
    scripts = re.findall(r"<script>(.*?)</script>", page.read_text(encoding="utf-8"), flags=re.S)
    return " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'" for s in scripts)


def demo_page_policy(page: Path, frame_origins: tuple[str, ...] = ()) -> str:
    """The demo shop page (``/``): its own inline script (by hash), the widget from here, the chat's
    WebSocket (``connect-src 'self'`` covers ws: and wss: of this origin in current browsers); framed
    only by this origin and ``frame_origins``."""
    return (
        "default-src 'self'; script-src 'self' " + _inline_hashes(page) + "; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: https:; connect-src 'self'; frame-ancestors "
        + " ".join(("'self'", *frame_origins))
        + "; base-uri 'none'; form-action 'self'"
    )


def install(app: web.Application, *, pages: dict[str, str]) -> None:
    """``pages``: path → Content-Security-Policy for an HTML page served there; every other response
    gets ``NOTHING`` unless its handler set a policy of its own."""

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        policy = headers.setdefault("Content-Security-Policy", pages.get(request.path, NOTHING))
        for name, value in COMMON.items():
            headers.setdefault(name, value)
        framed = re.search(r"frame-ancestors ([^;]*)", policy)
        if framed and framed.group(1).strip() != "'none'" and "X-Frame-Options" in headers:
            # X-Frame-Options cannot list origins: SAMEORIGIN for 'self' alone, else the CSP decides.
            if framed.group(1).strip() == "'self'":
                headers["X-Frame-Options"] = "SAMEORIGIN"
            else:
                del headers["X-Frame-Options"]
        if request.path == "/widget.js":
            headers.setdefault("Cross-Origin-Resource-Policy", "cross-origin")

    app.on_response_prepare.append(add)
