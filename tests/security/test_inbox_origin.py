"""Cross-site use of the console's login: a page on another origin (even of the same site, which
gets the SameSite cookie sent along) must not open the inbox WebSocket with the admin's cookie and
read customers' messages, nor change anything with it. See handoff/origin.py for the rules."""

from __future__ import annotations

import aiohttp
import pytest

from seamline.shared.errors import ConfigError
from seamline.shared.settings import load_settings

from tests.handoff.test_api import PASSWORD, escalated, say


async def _cookie_login(http, server, api) -> tuple[dict, str]:
    async with http.post(
        server.url + "/api/v1/auth/login", json={"email": api.agent.email, "password": PASSWORD}
    ) as response:
        assert response.status == 200
        login = await response.json()
    return {"Cookie": f"seamline_session={login['token']}"}, login["csrf"]


async def _refused(http, url: str, headers: dict) -> int:
    """The status the WebSocket handshake was refused with (fails if it was accepted)."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with http.ws_connect(url + "/api/v1/inbox", headers=headers) as ws:
            pytest.fail(f"the inbox opened and said {await ws.receive(timeout=5)}")
    return refused.value.status


async def _streams_customer_messages(seamline, http, url: str, headers: dict, chat: str) -> None:
    await escalated(seamline, chat)
    async with http.ws_connect(url + "/api/v1/inbox", headers=headers) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await say(seamline, chat, "my card number is 4242")
        while (event := await ws.receive_json(timeout=5))["type"] != "message":
            pass
        assert event["message"]["text"] == "my card number is 4242"


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:1", "https://127.0.0.1", "null"])
async def test_another_origin_cannot_open_the_inbox_with_the_admins_cookie(
    seamline, telegram, agent, http, server, origin
):
    admin = await agent(role="admin")
    cookie, _ = await _cookie_login(http, server, admin)
    await escalated(seamline, "9001")
    assert await _refused(http, server.url, {**cookie, "Origin": origin}) == 403


async def test_a_cookie_without_an_origin_cannot_open_the_inbox(seamline, agent, http, server):
    cookie, _ = await _cookie_login(http, server, await agent(role="admin"))
    assert await _refused(http, server.url, cookie) == 403


async def test_the_consoles_own_page_opens_the_inbox_with_its_cookie(seamline, telegram, agent, http, server):
    cookie, _ = await _cookie_login(http, server, await agent(role="admin"))
    await _streams_customer_messages(seamline, http, server.url, {**cookie, "Origin": server.url}, "9002")


async def test_a_script_with_a_token_and_no_cookie_needs_no_origin(seamline, telegram, agent, http, server):
    api = await agent(role="admin")
    await escalated(seamline, "9003")
    async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
        await ws.send_json({"type": "auth", "token": api.token})
        assert (await ws.receive_json(timeout=5))["type"] == "hello"


async def test_behind_a_trusted_proxy_the_https_origin_is_the_consoles_own(settings, make_server, http):
    from dataclasses import replace

    from seamline.shared.net import parse_networks

    proxied = await make_server(settings, trusted_proxies=parse_networks(["127.0.0.1"]))
    direct = await make_server(replace(settings, data_dir=settings.data_dir / "direct"))
    from seamline.bots.app import SEAMLINE

    for server, expected in ((proxied, True), (direct, False)):
        handoff = server.app[SEAMLINE].handoff
        email = f"admin{server.port}@example.com"
        await handoff.agents.add(email, name="Admin", password=PASSWORD, queues=[], role="admin", capacity=5)
        async with http.post(server.url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD}) as r:
            token = (await r.json())["token"]
        headers = {
            "Cookie": f"seamline_session={token}",
            "X-Forwarded-Proto": "https",
            "Origin": server.url.replace("http://", "https://"),
        }
        if expected:
            async with http.ws_connect(server.url + "/api/v1/inbox", headers=headers) as ws:
                assert (await ws.receive_json(timeout=5))["type"] == "hello"
        else:  # X-Forwarded-Proto from a peer that is no trusted proxy is not believed
            assert await _refused(http, server.url, headers) == 403


async def test_an_origin_listed_in_the_setting_may_use_the_cookie(settings, make_server, http):
    from seamline.bots.app import SEAMLINE

    server = await make_server(settings, console_allowed_origins=("https://console.shop.example",))
    email = "listed@example.com"
    await server.app[SEAMLINE].handoff.agents.add(
        email, name="A", password=PASSWORD, queues=[], role="admin", capacity=5
    )
    async with http.post(server.url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD}) as r:
        token = (await r.json())["token"]
    cookie = {"Cookie": f"seamline_session={token}"}
    async with http.ws_connect(
        server.url + "/api/v1/inbox", headers={**cookie, "Origin": "https://console.shop.example"}
    ) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
    assert await _refused(http, server.url, {**cookie, "Origin": "https://other.shop.example"}) == 403


async def test_a_state_change_with_the_cookie_from_another_origin_is_refused(seamline, agent, http, server):
    api = await agent()
    cookie, csrf = await _cookie_login(http, server, api)
    headers = {**cookie, "X-CSRF-Token": csrf}
    async with http.post(
        server.url + "/api/v1/me/status", json={"status": "away"}, headers={**headers, "Origin": "http://evil.example"}
    ) as response:
        assert response.status == 403 and "origin" in (await response.json())["error"]
    assert (await seamline.handoff.agents.get(api.agent.id)).status != "away"
    async with http.post(
        server.url + "/api/v1/me/status", json={"status": "away"}, headers={**headers, "Origin": server.url}
    ) as response:
        assert response.status == 200
    assert (await seamline.handoff.agents.get(api.agent.id)).status == "away"


def test_console_origins_are_read_from_the_setting_and_a_bad_one_is_a_config_error():
    settings = load_settings(
        {
            "SEAMLINE_CONSOLE_ALLOWED_ORIGINS": "https://a.shop.example, http://b.shop.example:8080/",
            "SEAMLINE_SECRET_KEY": "x" * 32,
        }
    )
    assert settings.console_allowed_origins == ("https://a.shop.example", "http://b.shop.example:8080")
    with pytest.raises(ConfigError, match="SEAMLINE_CONSOLE_ALLOWED_ORIGINS"):
        load_settings(
            {"SEAMLINE_CONSOLE_ALLOWED_ORIGINS": "console.shop.example/path", "SEAMLINE_SECRET_KEY": "x" * 32}
        )


async def test_every_state_changing_endpoint_refuses_the_cookie_from_another_origin(seamline, agent, http, server):
    from tests.handoff.test_api import ENDPOINTS

    cookie, csrf = await _cookie_login(http, server, await agent(role="admin"))
    headers = {**cookie, "X-CSRF-Token": csrf, "Origin": "https://blog.127.0.0.1.example"}
    for method, path in [(m, p) for m, p in ENDPOINTS if m != "GET"] + [("POST", "/auth/login")]:
        async with http.request(
            method, server.url + "/api/v1" + path, json={"text": "hi", "status": "away"}, headers=headers
        ) as response:
            assert response.status == 403, (method, path, response.status)
            assert "origin" in (await response.json())["error"], (method, path)
