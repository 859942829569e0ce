"""The agent console: static files served at ``/console/`` (no build step); it talks to ``/api/v1``."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"


def install(app: web.Application) -> None:
    async def index(_request: web.Request) -> web.FileResponse:
        response = web.FileResponse(STATIC / "console.html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
            "img-src 'self' data: https:; frame-ancestors 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def bare(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/console/")

    app.router.add_get("/console", bare)
    app.router.add_get("/console/", index)
    app.router.add_static("/console/static/", STATIC)
