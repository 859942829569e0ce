"""Logging in to the agent API, and reading what a request says: its token, its JSON body, its
numbers. Every mistake a client can make here is a 4xx with a JSON reason, never a 500.

Login attempts are counted before the password is hashed (``LoginGuard``, handoff/login.py); the
console cookie is ``Secure`` per SEAMLINE_COOKIE_SECURE; the client address and scheme are the
trusted proxies' (shared/net.py). See docs/handoff.md, "Logging in".
"""

from __future__ import annotations

import json
import logging
import math

from aiohttp import WSMsgType, web

from seamline.handoff.login import LoginGuard
from seamline.shared.errors import StoreError
from seamline.shared.net import Network, client_address, forwarded_proto

log = logging.getLogger(__name__)
COOKIE = "seamline_session"


def error(status: int, message: str) -> web.HTTPException:
    kinds = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
        409: web.HTTPConflict,
        415: web.HTTPUnsupportedMediaType,
        429: web.HTTPTooManyRequests,
    }
    return kinds[status](text=json.dumps({"error": message}), content_type="application/json")


class Login:
    """``POST /api/v1/auth/login``: e-mail and password for a token (and, for the console, a cookie)."""

    def __init__(
        self, *, agents, guard: LoginGuard, cookie_secure: str = "auto", trusted_proxies: tuple[Network, ...] = ()
    ) -> None:
        self._agents = agents
        self._guard = guard
        self._cookie_secure = cookie_secure  # "auto" (https, directly or via a trusted proxy), "true", "false"
        self._proxies = trusted_proxies

    async def login(self, request: web.Request) -> web.Response:
        said = await body(request)
        email, password = said.get("email"), said.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            raise error(400, 'send {"email": ..., "password": ...}')
        kind = "api" if said.get("kind") == "api" else "session"
        who = email.strip().lower()[:320]
        address = client_address(request.remote, request.headers.get("X-Forwarded-For"), self._proxies)
        try:
            verdict = await self._guard.attempt(who, address)  # reserved before hashing: see handoff/login.py
        except StoreError as exc:  # no budget to count in: refuse rather than hash uncounted
            log.warning("login refused, its attempt could not be counted: %s", exc)
            raise web.HTTPServiceUnavailable(
                text=json.dumps({"error": "try again in a moment"}),
                content_type="application/json",
                headers={"Retry-After": "5"},
            ) from None
        if not verdict.check:
            refused = error(429, f"too many failed logins; try again in {math.ceil(verdict.wait)} s")
            refused.headers["Retry-After"] = str(math.ceil(verdict.wait))
            raise refused
        login = await self._agents.login(email, password, kind=kind)
        if login is None:
            raise error(401, "wrong e-mail or password")
        await self._guard.succeeded(who, address)
        response = web.json_response({"token": login.token, "csrf": login.csrf, "agent": login.agent.to_dict()})
        if kind == "session":
            response.set_cookie(
                COOKIE,
                login.token,
                httponly=True,
                samesite="Strict",
                secure=self._secure(request),
                max_age=12 * 3600,
                path="/",
            )
        return response

    def _secure(self, request: web.Request) -> bool:
        """Whether the cookie is ``Secure``: SEAMLINE_COOKIE_SECURE, where ``auto`` means the browser
        reached us over https (directly, or through a trusted proxy's ``X-Forwarded-Proto``)."""
        if self._cookie_secure in ("true", "false"):
            return self._cookie_secure == "true"
        proto = forwarded_proto(request.remote, request.headers.get("X-Forwarded-Proto"), self._proxies)
        return (proto or request.scheme) == "https"


def bearer(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (the scheme in any case, RFC 7235), else None."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def number(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # ASCII digits only ("²".isdigit() is true) and short (int() refuses 4300+ digits with an error).
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12) or not low <= int(raw) <= high:
        raise error(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


async def first_token(ws: web.WebSocketResponse) -> str:
    """The token of a first frame ``{"type": "auth", "token": "..."}``; "" for anything else (no frame
    within 10 s, not JSON, nested too deep, a token that is not a string): the caller refuses it."""
    try:
        first = await ws.receive(timeout=10)
    except TimeoutError:
        return ""
    if first.type != WSMsgType.TEXT or len(first.data) > 4096:
        return ""
    try:
        said = json.loads(first.data)
    except (ValueError, RecursionError):
        return ""
    token = said.get("token") if isinstance(said, dict) else None
    return token if isinstance(token, str) else ""


async def body(request: web.Request) -> dict:
    # Only application/json: a form or text/plain body is what another site can send with the
    # browser's cookies without asking (login CSRF); JSON needs a CORS preflight, which we never grant.
    if request.content_type != "application/json":
        raise error(415, "send the body as JSON, with Content-Type: application/json")
    try:
        parsed = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep
        raise error(400, "the body must be JSON") from None
    if not isinstance(parsed, dict):
        raise error(400, "the body must be a JSON object")
    return parsed
