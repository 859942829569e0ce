"""Logging in to the console's API under attack: parallel guessing bursts, lock-outs aimed at the
real agent, login CSRF, the cookie behind an https proxy, the Authorization scheme's case.
The budgets are handoff/login.py's (5 per e-mail + address, 20 per address, slow lane after)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

import seamline.handoff.agents as agents_module
from seamline.handoff.login import LoginGuard

from tests.handoff.test_api import PASSWORD

LOGIN = "/api/v1/auth/login"
PROXY = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    """Every password the server hashed to check a login (scrypt: the cost a guess makes us pay)."""
    seen: list[str] = []
    real = agents_module.check_password

    def counting(password: str, stored: str) -> bool:
        seen.append(password)
        return real(password, stored)

    monkeypatch.setattr(agents_module, "check_password", counting)
    return seen


async def login(http, url: str, email: str, password: str, *, address: str | None = None, **headers):
    if address:
        headers["X-Forwarded-For"] = address
    async with http.post(url + LOGIN, json={"email": email, "password": password}, headers=headers) as r:
        return r.status, r.headers.get("Retry-After"), await r.json()


async def _add(server, email: str):
    from seamline.bots.app import SEAMLINE

    await server.app[SEAMLINE].handoff.agents.add(email, name="Olga", password=PASSWORD, queues=[])


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_parallel_burst_against_one_email_is_hashed_at_most_the_budget(
    make_server, settings, http, hashes, backend, request
):
    redis = request.getfixturevalue("redis_url") if backend == "redis" else ""
    server = await make_server(settings, redis_url=redis)
    await _add(server, "olga@shop.example")
    results = await asyncio.gather(
        *(login(http, server.url, "olga@shop.example", f"guess number {n}") for n in range(60))
    )
    statuses = [status for status, _, _ in results]
    # 5 in the budget of this e-mail + address, and one in the slow lane: the rest refused unhashed.
    assert len(hashes) <= 6 and statuses.count(401) <= 6
    assert statuses.count(429) >= 54 and set(statuses) <= {401, 429}


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_parallel_burst_from_one_address_over_many_emails_is_hashed_at_most_the_budget(
    make_server, settings, http, hashes, backend, request
):
    redis = request.getfixturevalue("redis_url") if backend == "redis" else ""
    server = await make_server(settings, redis_url=redis)
    results = await asyncio.gather(
        *(login(http, server.url, f"user{n}@shop.example", "guess guess guess") for n in range(100))
    )
    assert len(hashes) <= 21  # 20 per address, and one in the address's slow lane
    assert [status for status, _, _ in results].count(429) >= 79


async def test_a_locked_out_email_still_logs_in_from_another_address_and_slowly_from_the_same(
    make_server, settings, http, monkeypatch
):
    monkeypatch.setattr(LoginGuard, "SLOW_SECONDS", 3.0)
    server = await make_server(settings, trusted_proxies=PROXY)  # the client address is X-Forwarded-For's
    await _add(server, "olga@shop.example")
    attacker, office = "203.0.113.9", "198.51.100.7"
    statuses = [
        (await login(http, server.url, "olga@shop.example", f"guess {n}", address=attacker))[0] for n in range(8)
    ]
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429  # the attacker is stopped
    status, _, body = await login(http, server.url, "olga@shop.example", PASSWORD, address=office)
    assert status == 200 and body["token"]  # the agent is not: their address has its own budget
    # From the attacker's address too the right password gets in, after the slow lane's wait.
    status, retry, body = await login(http, server.url, "olga@shop.example", PASSWORD, address=attacker)
    if status == 429:
        assert "too many failed logins" in body["error"] and 0 < int(retry) <= 3
        await asyncio.sleep(int(retry))
        status, _, body = await login(http, server.url, "olga@shop.example", PASSWORD, address=attacker)
    assert status == 200 and body["token"]


async def test_failures_behind_a_trusted_proxy_do_not_lock_out_every_agent(make_server, settings, http):
    server = await make_server(settings, trusted_proxies=PROXY)
    await _add(server, "olga@shop.example")
    for n in range(25):  # one address spends its whole budget on many e-mails
        await login(http, server.url, f"user{n}@shop.example", "guess guess guess", address="203.0.113.9")
    assert (await login(http, server.url, "user0@shop.example", "guess guess guess", address="203.0.113.9"))[0] == 429
    status, _, _ = await login(http, server.url, "olga@shop.example", PASSWORD, address="198.51.100.7")
    assert status == 200


async def test_an_untrusted_peer_cannot_pick_its_address_with_x_forwarded_for(make_server, settings, http):
    server = await make_server(settings)  # no trusted proxy: X-Forwarded-For is ignored
    await _add(server, "olga@shop.example")
    statuses = [
        (await login(http, server.url, "olga@shop.example", f"guess {n}", address=f"203.0.113.{n}"))[0]
        for n in range(8)
    ]
    assert statuses[-1] == 429


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
async def test_a_login_not_sent_as_json_is_refused_415(server, http, content_type):
    """A form on another site can post text/plain or a form with the browser's cookies and no
    preflight (login CSRF); application/json cannot be sent cross-site without our consent."""
    await _add(server, "olga@shop.example")
    body = f'{{"email": "olga@shop.example", "password": "{PASSWORD}"}}'
    async with http.post(server.url + LOGIN, data=body, headers={"Content-Type": content_type}) as response:
        assert response.status == 415
        assert "application/json" in (await response.json())["error"]
        assert "seamline_session" not in response.cookies


async def test_every_json_endpoint_of_the_agent_api_wants_json(server, http, agent):
    api = await agent(role="admin")
    for path in (
        "/me/status",
        "/agents/x/status",
        "/conversations/x/messages",
        "/conversations/x/notes",
        "/conversations/x/transfer",
    ):
        async with http.post(
            api.base + path,
            data='{"status": "away", "text": "hi", "queue": "support"}',
            headers={**api.headers, "Content-Type": "text/plain"},
        ) as response:
            assert response.status == 415, path


async def test_the_cookie_is_secure_behind_a_trusted_https_proxy(make_server, settings, http):
    server = await make_server(settings, trusted_proxies=PROXY)
    await _add(server, "olga@shop.example")
    status, _, _ = await login(http, server.url, "olga@shop.example", PASSWORD)
    assert status == 200
    async with http.post(
        server.url + LOGIN,
        json={"email": "olga@shop.example", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    ) as response:
        assert response.status == 200
        assert response.cookies["seamline_session"]["secure"]
    async with http.post(server.url + LOGIN, json={"email": "olga@shop.example", "password": PASSWORD}) as response:
        assert response.status == 200 and not response.cookies["seamline_session"]["secure"]  # plain http


async def test_an_untrusted_peer_claiming_https_gets_no_secure_cookie_unless_configured(make_server, settings, http):
    server = await make_server(settings)
    await _add(server, "olga@shop.example")
    async with http.post(
        server.url + LOGIN,
        json={"email": "olga@shop.example", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    ) as response:
        assert response.status == 200 and not response.cookies["seamline_session"]["secure"]
    forced = await make_server(settings, cookie_secure="true")
    async with http.post(forced.url + LOGIN, json={"email": "olga@shop.example", "password": PASSWORD}) as response:
        assert response.status == 200 and response.cookies["seamline_session"]["secure"]


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
async def test_the_bearer_scheme_is_case_insensitive(agent, http, scheme):
    api = await agent()
    async with http.get(api.base + "/me", headers={"Authorization": f"{scheme} {api.token}"}) as response:
        assert response.status == 200 and (await response.json())["email"] == api.agent.email
    async with http.post(api.base + "/auth/logout", headers={"Authorization": f"{scheme} {api.token}"}) as response:
        assert response.status == 200
    async with http.get(api.base + "/me", headers={"Authorization": f"Bearer {api.token}"}) as response:
        assert response.status == 401  # the logout ended that token, whatever the case


async def test_a_deeply_nested_login_body_is_400_and_logs_no_error(server, http, caplog):
    body = "[" * 100_000 + "]" * 100_000
    async with http.post(server.url + LOGIN, data=body, headers={"Content-Type": "application/json"}) as response:
        assert response.status == 400
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_the_guard_forgets_failures_after_its_window():
    from seamline.shared.limits import MemoryLimiter

    now = [1000.0]
    guard = LoginGuard(
        limiter=MemoryLimiter(clock=lambda: now[0]), per_pair=2, per_address=3, per_email=4, window=60, slow=10
    )
    assert [(await guard.attempt("a@x.example", "10.0.0.1")).check for _ in range(4)] == [True, True, True, False]
    assert (await guard.attempt("a@x.example", "10.0.0.2")).check  # another address: its own budget
    now[0] += 11
    assert (await guard.attempt("a@x.example", "10.0.0.1")).check  # the slow lane again
    now[0] += 61
    assert [(await guard.attempt("a@x.example", "10.0.0.1")).check for _ in range(2)] == [True, True]
    await guard.succeeded("a@x.example", "10.0.0.1")
    assert (await guard.attempt("a@x.example", "10.0.0.1")).check  # the right password starts afresh


@pytest.mark.parametrize(
    "name, value, problem",
    [
        ("SEAMLINE_COOKIE_SECURE", "yes", "is not auto, true or false"),
        ("SEAMLINE_AGENT_GRACE_SECONDS", "10", "outside 65..86400"),
        ("SEAMLINE_AGENT_GRACE_SECONDS", "soon", "not a whole number"),
    ],
)
def test_bad_login_and_presence_settings_are_refused_with_the_fix(tmp_path, name, value, problem):
    from seamline.shared.errors import ConfigError
    from seamline.shared.settings import load_settings

    base = {"SEAMLINE_DATA_DIR": str(tmp_path), "SEAMLINE_SECRET_KEY": "k" * 32}
    with pytest.raises(ConfigError) as refused:
        load_settings({**base, name: value})
    assert name in str(refused.value) and problem in str(refused.value)
    good = load_settings({**base, "SEAMLINE_COOKIE_SECURE": "TRUE", "SEAMLINE_AGENT_GRACE_SECONDS": "120"})
    assert (good.cookie_secure, good.agent_grace_seconds) == ("true", 120)
    assert (load_settings(base).cookie_secure, load_settings(base).agent_grace_seconds) == ("auto", 90)


async def test_a_login_that_cannot_be_counted_is_503_not_checked(server, http, hashes, monkeypatch, caplog):
    from seamline.bots.app import SEAMLINE
    from seamline.shared.errors import StoreError

    await _add(server, "olga@shop.example")

    async def down(key, *, limit, window):
        raise StoreError("Redis failed counting: connection refused")

    monkeypatch.setattr(server.app[SEAMLINE].limiter, "take", down)
    status, retry, body = await login(http, server.url, "olga@shop.example", PASSWORD)
    assert (status, retry) == (503, "5") and body["error"] and hashes == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
