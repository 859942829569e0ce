"""One client cannot use up the widget's connections (issue 10, item 3)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from seamline.shared.net import parse_networks

from tests.bots.test_web_protocol import Client
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
PROXY = parse_networks(["127.0.0.1"])  # the test client plays a reverse proxy to speak for many addresses


async def connect(http, server, address: str | None = None) -> Client:
    """A widget socket, from ``address`` (as told by the trusted proxy) when given."""
    client = Client(http, server.ws_url)
    client.ws = await http.ws_connect(server.ws_url, headers={"X-Forwarded-For": address} if address else {})
    return client


async def test_a_socket_that_never_says_hello_is_closed_after_the_deadline(http, make_server, settings):
    server = await make_server(settings, web_hello_timeout=1)
    silent = await connect(http, server)
    closing = await silent.ws.receive(timeout=15)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert silent.ws.close_code == 4408
    pinging = await connect(http, server)  # pings without a hello buy no time either
    await pinging.ws.send_json({"type": "ping"})
    assert await pinging.receive() == {"type": "pong"}
    await pinging.ws.receive(timeout=15)
    assert pinging.ws.close_code == 4408
    talking = await connect(http, server)  # a hello in time keeps the socket past the deadline
    await talking.hello()
    await talking.ws.send_json({"type": "ping"})
    assert await talking.receive(timeout=15) == {"type": "pong"}


async def test_the_address_cap_refuses_one_socket_too_many_while_others_are_served(http, make_server, settings):
    server = await make_server(settings, web_connections_per_address=3, trusted_proxies=PROXY)
    held = [await connect(http, server, "203.0.113.7") for _ in range(3)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(http, server, "203.0.113.7")
    assert refused.value.status == 429
    other = await connect(http, server, "198.51.100.2")  # another customer is still served
    await other.hello()
    assert (await other.say("hello", id="c-1"))[-1]["role"] == "bot"
    async with http.get(server.url + "/healthz") as health:
        assert health.status == 200
    await held[0].ws.close()  # a closed socket frees its place
    again = await _retry_connect(http, server, "203.0.113.7")
    assert (await again.hello())["type"] == "welcome"


async def _retry_connect(http, server, address: str) -> Client:
    for _ in range(50):
        try:
            return await connect(http, server, address)
        except aiohttp.WSServerHandshakeError:
            await asyncio.sleep(0.05)
    raise AssertionError("the freed place was never given back")


async def test_the_address_cap_holds_across_processes_sharing_redis(http, make_server, settings, redis_url):
    first = await make_server(settings, redis_url=redis_url, web_connections_per_address=3, trusted_proxies=PROXY)
    second = await make_server(settings, redis_url=redis_url, web_connections_per_address=3, trusted_proxies=PROXY)
    held = [
        await connect(http, first, "203.0.113.7"),
        await connect(http, first, "203.0.113.7"),
        await connect(http, second, "203.0.113.7"),
    ]
    for server in (first, second):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await connect(http, server, "203.0.113.7")
        assert refused.value.status == 429
    await held[2].ws.close()
    assert (await (await _retry_connect(http, first, "203.0.113.7")).hello())["type"] == "welcome"


@pytest.mark.slow  # a real seamline process
def test_running_out_of_descriptors_logs_a_line_not_a_flood(tmp_path, models_dir):
    """A real `seamline run` with few descriptors, flooded with connections: the accept error is
    logged once, not thousands of times (the old server wrote ~500 tracebacks a second)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    env.update(
        SEAMLINE_DATA_DIR=str(tmp_path),
        SEAMLINE_NLU_MODELS=str(models_dir),
        SEAMLINE_PORT=str(port),
        SEAMLINE_SECRET_KEY="s" * 32,
    )
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200)); "
        "from seamline.bots.cli import main; raise SystemExit(main(['run']))"
    )
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=out, stderr=out)
    flood: list[socket.socket] = []
    try:
        _wait_healthy(port, process)
        for _ in range(400):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            flood.append(sock)
        time.sleep(3)
        for sock in flood:
            sock.close()
        flood.clear()
        _wait_healthy(port, process)  # and it serves again once the flood is gone
    finally:
        for sock in flood:
            sock.close()
        process.terminate()
        process.wait(timeout=20)
    text = log.read_text()
    assert "Too many open files" in text
    assert text.count("out of system resource") == 1, text[-2000:]


def _wait_healthy(port: int, process: subprocess.Popen) -> None:
    for _ in range(600):
        assert process.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server never answered /healthz")


async def test_a_process_that_dies_with_sockets_open_frees_its_share(redis_url):
    """Redis socket leases: a process killed without closing its sockets cannot lock its clients'
    address out for ever; its leases lapse unless it renews them."""
    from redis.asyncio import Redis

    from seamline.bots.web_limits import RedisConnections

    dead = RedisConnections(client=Redis.from_url(redis_url), lease=1.0)
    alive = RedisConnections(client=Redis.from_url(redis_url), lease=1.0)
    try:
        assert await dead.acquire("203.0.113.7", 2) and await dead.acquire("203.0.113.7", 2)
        assert await alive.acquire("203.0.113.7", 2) is None
        await dead.close()  # killed: no release, no more renewals
        for _ in range(100):
            lease = await alive.acquire("203.0.113.7", 2)
            if lease:
                break
            await asyncio.sleep(0.05)
        assert lease
        await asyncio.sleep(1.5)  # a live process renews its leases: the place stays taken
        assert await alive.acquire("203.0.113.7", 2)
        assert await alive.acquire("203.0.113.7", 2) is None
    finally:
        await alive.close()


@pytest.mark.parametrize(
    "name, bad",
    [
        ("SEAMLINE_WEB_HELLO_TIMEOUT", "0"),
        ("SEAMLINE_WEB_HELLO_TIMEOUT", "ten"),
        ("SEAMLINE_WEB_CONNECTIONS_PER_ADDRESS", "-1"),
        ("SEAMLINE_WEB_ADDRESS_RATE_LIMIT", "1.5"),
        ("SEAMLINE_WEB_HISTORY_BYTES", "100"),
    ],
)
def test_a_bad_limit_setting_is_refused_with_its_name(tmp_path, name, bad):
    from seamline.shared.errors import ConfigError
    from seamline.shared.settings import load_settings

    with pytest.raises(ConfigError, match=name):
        load_settings({"SEAMLINE_DATA_DIR": str(tmp_path), name: bad})
