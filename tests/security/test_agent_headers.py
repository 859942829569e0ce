"""Security headers on every response, not only the console's page: pages, the widget script,
the API (also its errors), /healthz, unknown paths. The widget is still loadable from any site."""

from __future__ import annotations

import pytest

PATHS = [
    "/",
    "/widget.js",
    "/console/",
    "/console/static/console.js",
    "/api/v1/me",
    "/api/v1/queues",
    "/healthz",
    "/no/such/page",
]


@pytest.mark.parametrize("path", PATHS)
async def test_every_response_carries_the_security_headers(server, path):
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(server.url + path) as response:
        headers = response.headers
        assert response.status < 500
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"]
        policy = headers["Content-Security-Policy"]
        if path == "/":  # the demo page may be framed by its own origin (and the shop's: below)
            assert "frame-ancestors 'self';" in policy and headers["X-Frame-Options"] == "SAMEORIGIN"
        else:
            assert "frame-ancestors 'none'" in policy and headers["X-Frame-Options"] == "DENY"
        if path.startswith("/api/") or path == "/healthz":
            assert "default-src 'none'" in policy  # JSON: nothing in it may run or load


async def test_the_demo_page_runs_its_own_script_and_the_widget_only(server):
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(server.url + "/") as response:
        policy = response.headers["Content-Security-Policy"]
    assert (
        "script-src 'self' 'sha256-" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    )
    assert "connect-src 'self'" in policy


async def test_the_widget_script_stays_loadable_from_any_site(server):
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.get(server.url + "/widget.js", headers={"Origin": "https://shop.example"}) as response,
    ):
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
        assert response.headers["Content-Type"].startswith("application/javascript")


async def test_the_demo_page_may_be_framed_by_the_sites_allowed_to_embed_the_chat(make_server, settings):
    import aiohttp

    server = await make_server(settings, web_allowed_origins=("https://shop.example",))
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/") as response:
            assert "frame-ancestors 'self' https://shop.example;" in response.headers["Content-Security-Policy"]
            assert "X-Frame-Options" not in response.headers  # it cannot list origins: the CSP decides
        async with http.get(server.url + "/api/v1/me") as response:
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
