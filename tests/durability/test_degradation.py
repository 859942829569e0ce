"""Degradation (docs/degradation.md): Redis restarted mid traffic, the database cut off. Nothing is lost,
everything is answered once after storage is back; webhooks answer 503 while the database is away, the
widget hears "unavailable" (and reconnects). A redis-server of this test's own (the shared one is not
restarted) and a TCP proxy in front of PostgreSQL, cut and restored."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time

import aiohttp
import pytest

from seamline.bots.app import SEAMLINE
from seamline.shared.message import Reply, Role
from seamline.shared.storage.customers import SqlCustomerStore
from seamline.shared.tokens import Signer

from tests.conftest import SECRET
from tests.durability.test_cross_worker_order import _frames_until, _welcomed, post_update, telegram_workers
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server of this test's own, stopped and started again on one port."""

    def __init__(self) -> None:
        self.port, self._process = free_port(), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


@pytest.fixture
def own_redis():
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode:
        pytest.skip("no redis-server")
    server = RedisServer().start()
    yield server
    server.stop()


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of PostgreSQL: ``cut`` drops every connection and refuses new
    ones (the database is down, as far as the app can tell); ``restore`` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.port, self._target = free_port(), target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()


async def test_a_redis_restart_mid_traffic_loses_nothing_and_answers_everything_once(
    http, make_server, settings, postgres_url, own_redis
):
    async with FakeTelegram() as telegram:
        a, b = await telegram_workers(make_server, settings, telegram, postgres_url, own_redis.url)
        ws, token = await _welcomed(http, a)
        await ws.send_json({"type": "message", "id": "w-1", "text": "hello"})
        await _frames_until(ws, lambda f: f["type"] == "message" and f["role"] == "bot")
        assert await post_update(http, a, telegram.update("message_text", chat_id=6300, text="hello")) == 200
        await telegram.wait_for("sendMessage", chat_id=6300)
        before = len(telegram.texts(6300))

        own_redis.stop()
        down = telegram.update("message_text", chat_id=6300, text="where is my order")
        assert await post_update(http, b, down) == 200  # stored in the database inbox: acknowledged
        await ws.send_json({"type": "message", "id": "w-2", "text": "where is my order"})
        error = await _frames_until(ws, lambda f: f["type"] == "error")
        assert (error[-1]["code"], error[-1]["id"]) == ("unavailable", "w-2")  # widget: "reconnecting…"
        own_redis.start()

        await telegram.wait_for("sendMessage", chat_id=6300, count=before + 1, timeout=40)  # resumed by itself
        assert await post_update(http, a, down) == 200  # Telegram re-sends it: not answered again
        ws2, _ = await _welcomed_with(http, a, token)
        await ws2.send_json({"type": "message", "id": "w-2", "text": "where is my order"})  # the widget resends
        answered = await _frames_until(ws2, lambda f: f["type"] == "message" and f["role"] == "bot")
        assert any(f.get("id") == "w-2" for f in answered)
        # The relay resubscribed on worker A: worker B's reply reaches the first tab too.
        visitor = Signer(secret_key=SECRET, purpose="web-visitor").verify(token)
        store_b = b.app[SEAMLINE].store
        customer = await store_b.find_customer("web", visitor)
        identities = await SqlCustomerStore(store_b).reachable_identities(customer.id)
        for n in range(50):  # the reader reconnects within a second or two (a miss is kept in the outbox)
            reply = Reply(text="An agent: all good.", role=Role.AGENT, id=f"r-after-restart-{n}")
            if await b.app[SEAMLINE].pipeline.send_to_customer(customer.id, reply, identities) == "web":
                break
            await asyncio.sleep(0.2)
        got = await _frames_until(ws, lambda f: str(f.get("id", "")).startswith("r-after-restart"))
        assert got[-1]["text"] == "An agent: all good."
        await asyncio.sleep(0.5)
        telegram_customer = await store_b.find_customer("telegram", "6300")
        history = await store_b.history(telegram_customer.id, 100)
        said = [m.text for m in history if m.role == Role.CUSTOMER and m.channel == "telegram"]
        assert said == ["hello", "where is my order"]  # stored once, despite the re-delivery
        assert history[-1].role == Role.BOT  # and answered


async def _welcomed_with(http: aiohttp.ClientSession, server, token: str):
    ws = await http.ws_connect(server.ws_url)
    await ws.send_json({"type": "hello", "token": token, "lang": "en"})
    frame = await _frames_until(ws, lambda f: f["type"] == "welcome")
    return ws, frame[-1]["token"]


async def test_with_the_database_down_webhooks_answer_503_and_the_resend_is_answered_once(
    http, make_server, settings, postgres_url, redis_url
):
    admin_port = int(postgres_url.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = await Proxy(admin_port).start()
    through_proxy = postgres_url.replace(f":{admin_port}/", f":{proxy.port}/")
    async with FakeTelegram() as telegram:
        [server] = await telegram_workers(make_server, settings, telegram, through_proxy, redis_url, count=1)
        ws, token = await _welcomed(http, server)
        await proxy.cut()
        update = telegram.update("message_text", chat_id=6400, text="hello")
        assert await post_update(http, server, update) == 503  # Telegram delivers it again later
        fresh = await http.ws_connect(server.ws_url)
        await fresh.send_json({"type": "hello", "token": token, "lang": "en"})
        refused = await fresh.receive(timeout=10)
        assert refused.type == aiohttp.WSMsgType.TEXT and refused.json()["code"] == "unavailable"
        assert (await fresh.receive(timeout=10)).data == 1013  # closed: try again later
        await proxy.restore()
        statuses = []
        for _ in range(50):  # Telegram's re-delivery, until the pool has reconnected
            statuses.append(await post_update(http, server, update))
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.2)
        assert set(statuses) <= {200, 503} and statuses[-1] == 200
        await telegram.wait_for("sendMessage", chat_id=6400)
        await asyncio.sleep(0.5)
        assert len(telegram.calls_of("sendMessage", chat_id=6400)) == len(telegram.texts(6400)) >= 1
        await ws.close()
    await proxy.cut()


async def test_agent_consoles_get_events_again_after_a_redis_restart(own_redis):
    from seamline.bots.app import redis_client
    from seamline.handoff.inbox import RedisInbox
    from seamline.shared.settings import Settings

    def inbox() -> RedisInbox:
        return RedisInbox(client=redis_client(Settings(redis_url=own_redis.url)), retry_seconds=0.1)

    here, there = inbox(), inbox()  # two workers
    await here.start()
    await there.start()
    try:
        console = here.subscribe(admin=True)
        own_redis.stop()
        await asyncio.sleep(0.3)  # both readers notice
        own_redis.start()
        for n in range(100):  # published from the other worker until the first has resubscribed
            await there.publish({"type": "ping", "n": n})
            with contextlib.suppress(TimeoutError):
                event = await asyncio.wait_for(console.get(), 0.1)
                break
        assert '"ping"' in event
    finally:
        await here.close()
        await there.close()
