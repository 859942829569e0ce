"""Two workers on one PostgreSQL and one Redis: the widget open on one gets what the other sends, and
one chat's messages are answered in order whichever worker the platform posts them to."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from seamline.bots.app import SEAMLINE
from seamline.bots.channels import CHANNELS
from seamline.bots.telegram import WEBHOOK_PATH
from seamline.shared.message import Reply, Role
from seamline.shared.storage.customers import SqlCustomerStore
from seamline.shared.tokens import Signer

from tests.conftest import SECRET
from tests.fakes.telegram import SECRET_HEADER, TOKEN, FakeTelegram
from tests.fakes.vk import FakeVk

pytestmark = pytest.mark.services


async def _welcomed(http: aiohttp.ClientSession, server) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    ws = await http.ws_connect(server.ws_url)
    await ws.send_json({"type": "hello", "token": None, "lang": "en"})
    while (frame := await ws.receive_json(timeout=10))["type"] != "welcome":
        pass
    return ws, frame["token"]


async def _frames_until(ws: aiohttp.ClientWebSocketResponse, wanted) -> list[dict]:
    frames: list[dict] = []
    while not frames or not wanted(frames[-1]):
        frames.append(await ws.receive_json(timeout=10))
    return frames


async def test_a_reply_sent_by_worker_b_reaches_the_widget_open_on_worker_a(
    http, make_server, settings, postgres_url, redis_url
):
    a = await make_server(settings, database_url=postgres_url, redis_url=redis_url)
    b = await make_server(settings, database_url=postgres_url, redis_url=redis_url)
    ws, token = await _welcomed(http, a)
    await ws.send_json({"type": "message", "id": "c-1", "text": "hello"})
    await _frames_until(ws, lambda f: f["type"] == "message" and f["role"] == "bot")
    visitor = Signer(secret_key=SECRET, purpose="web-visitor").verify(token)
    seamline_b = b.app[SEAMLINE]
    customer = await seamline_b.store.find_customer("web", visitor)
    identities = await SqlCustomerStore(seamline_b.store).reachable_identities(customer.id)

    used = await seamline_b.pipeline.send_to_customer(
        customer.id, Reply(text="An agent here: your parcel left today.", role=Role.AGENT, id="r-agent-1"), identities
    )

    assert used == "web"  # not marked unreachable, not sent elsewhere
    frame = (await _frames_until(ws, lambda f: f["type"] == "message"))[-1]
    assert (frame["id"], frame["text"]) == ("r-agent-1", "An agent here: your parcel left today.")
    await ws.close()
    await asyncio.sleep(0.2)  # the last socket closed: worker A unsubscribes
    again = await seamline_b.pipeline.send_to_customer(customer.id, Reply(text="still there?", id="r-2"), identities)
    assert again is None  # no tab open anywhere: unreachable, as in one process


WEBHOOK_SECRET = "cross-worker-secret-0123"


def telegram_workers(make_server, settings, telegram, postgres_url, redis_url, count: int = 2):
    """``count`` Seamline apps serving one Telegram bot's webhook, on one PostgreSQL and one Redis."""
    changes = dict(
        database_url=postgres_url,
        redis_url=redis_url,
        channels={
            "telegram": dict(
                token=TOKEN,
                api_base=telegram.url,
                webhook_url="http://127.0.0.1:9/telegram/webhook",
                webhook_secret=WEBHOOK_SECRET,
            )
        },
    )
    return asyncio.gather(*(make_server(settings, **changes) for _ in range(count)))


async def post_update(http: aiohttp.ClientSession, server, update: dict) -> int:
    async with http.post(
        f"{server.url}{WEBHOOK_PATH}",
        data=json.dumps(update),
        headers={SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"},
    ) as response:
        return response.status


async def test_one_chats_updates_posted_alternately_to_two_workers_are_answered_in_order(
    http, make_server, settings, postgres_url, redis_url
):
    async with FakeTelegram() as telegram:
        workers = await telegram_workers(make_server, settings, telegram, postgres_url, redis_url)
        said = [f"where is my order {n}" for n in range(8)]
        for n, text in enumerate(said):
            assert await post_update(http, workers[n % 2], telegram.update("message_text", chat_id=6100, text=text))
        store = workers[0].app[SEAMLINE].store
        for _ in range(300):  # until every message is stored and answered (the replies follow the last)
            customer = await store.find_customer("telegram", "6100")
            history = await store.history(customer.id, 100) if customer else []
            if history and history[-1].role != Role.CUSTOMER and sum(m.role == Role.CUSTOMER for m in history) == 8:
                break
            await asyncio.sleep(0.1)
        assert [m.text for m in history if m.role == Role.CUSTOMER] == said  # processed in the order sent
        assert telegram.texts(6100)  # and answered on Telegram


async def test_stopping_a_worker_with_widgets_open_closes_them_quietly(
    http, make_server, settings, postgres_url, redis_url, caplog
):
    server = await make_server(settings, database_url=postgres_url, redis_url=redis_url)
    sockets = [(await _welcomed(http, server))[0] for _ in range(3)]

    with caplog.at_level(logging.WARNING):
        await server.stop()

    for ws in sockets:
        assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)  # told to go away
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("how", ["worker 1 of a supervisor", "polling=false"])
async def test_a_worker_that_does_not_poll_telegram_or_vk_still_sends_to_them(how, make_server, settings, monkeypatch):
    """Telegram answers a second getUpdates poller with 409 and VK gives every poller each event:
    one process polls; the others send."""
    off = {}
    if how == "polling=false":
        off = {"polling": False}
    else:
        monkeypatch.setenv("SEAMLINE_WORKER_INDEX", "1")
    async with FakeTelegram() as telegram, FakeVk() as vk:
        server = await make_server(
            settings,
            channels={
                "telegram": dict(token=TOKEN, api_base=telegram.url, **off),
                "vk": dict(token=vk.token, group_id=vk.group_id, api_base=vk.url, **off),
            },
        )
        try:
            await server.app[CHANNELS]["telegram"].send("6200", Reply(text="Your parcel left today.", id="r-t"))
            await server.app[CHANNELS]["vk"].send("6300", Reply(text="Your parcel left today.", id="r-v"))
            await telegram.wait_for("sendMessage", chat_id=6200)
            await vk.wait_for(lambda: vk.sent_to(6300))
            await asyncio.sleep(0.3)
            assert telegram.calls_of("getUpdates", ok=None) == []
            assert vk.calls_of("groups.getLongPollServer") == []
        finally:
            await server.stop()


async def test_two_workers_on_one_redis_keep_one_vk_api_pace(make_server, settings, redis_url, postgres_url):
    """VK's calls-a-second limit is the community's: with Redis the workers count their calls in one
    budget, not one each."""
    async with FakeVk() as vk:
        config = dict(token=vk.token, group_id=vk.group_id, api_base=vk.url, polling=False, rate_limit=3)
        workers = [
            await make_server(settings, database_url=postgres_url, redis_url=redis_url, channels={"vk": config})
            for _ in range(2)
        ]
        try:
            await asyncio.gather(
                *(
                    worker.app[CHANNELS]["vk"].send(str(6400 + n), Reply(text="Your parcel left.", id=f"r-{w}-{n}"))
                    for w, worker in enumerate(workers)
                    for n in range(3)
                )
            )
            sends = sorted(call.at for call in vk.calls_of("messages.send"))
            assert len(sends) == 6
            # VK would refuse a 4th call within a second; each worker alone would send its 3 at once.
            busiest = max(sum(at <= t < at + 0.9 for t in sends) for at in sends)
            assert busiest <= 3, sends
        finally:
            for worker in workers:
                await worker.stop()
