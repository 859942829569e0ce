"""The agent console: static files served at ``/console/`` (no build step); it talks to ``/api/v1``.

The console's files are served by name from a list made at start, not with aiohttp's ``add_static``:
that one stats whatever path it is given, and a file name over the file system's limit (a 300
character path segment) raised ``OSError: File name too long`` there, answered with a 500 and a
traceback (found by tests/security/test_fuzz.py). An unknown name is a plain 404.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"


def install(app: web.Application) -> None:
    files = {path.name: path for path in STATIC.iterdir() if path.is_file()}

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

    async def static(request: web.Request) -> web.FileResponse:
        path = files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    app.router.add_get("/console", bare)
    app.router.add_get("/console/", index)
    app.router.add_get("/console/static/{name}", static)
