"""The REST channel behind several workers on one Redis (bots/rest_mailbox.py): a reply said on one
worker waits for the sender's poll on another and is given once; a resend reaching another worker
gets the same answer; with Redis away a poll is a 503, never a 500, and a message is still answered."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from redis.asyncio import Redis

from seamline.bots.app import SEAMLINE
from seamline.shared.errors import ChannelError
from seamline.shared.message import Reply

from tests.bots.test_rest import TOKEN, serve

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def say(http: aiohttp.ClientSession, server, sender: str, message: str | None, **metadata) -> list[dict]:
    body = {"sender": sender, "message": message, **({"metadata": metadata} if metadata else {})}
    async with http.post(f"{server.url}/webhooks/rest/webhook", json=body, headers=AUTH) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def agent_replies(seamline, sender: str, text: str) -> None:
    """Olga (an admin) takes the sender's conversation and writes ``text``."""
    customer = await seamline.store.find_customer("rest", sender)
    conversation = (await seamline.sessions.load(customer.id)).conversation_id
    agent = await seamline.handoff.agents.add(
        "olga@shop.example", name="Olga", password="a long pass phrase 42", queues=[], role="admin"
    )
    await seamline.handoff.claim(agent, conversation)
    await seamline.handoff.reply(agent, conversation, text)


@pytest.mark.services
async def test_an_agents_reply_said_on_worker_b_is_given_to_the_poll_on_worker_a_once(
    http, make_server, settings, postgres_url, redis_url
):
    shared = dict(database_url=postgres_url, redis_url=redis_url, environ={"SEAMLINE_REST_TOKEN": TOKEN})
    a, b = await make_server(settings, **shared), await make_server(settings, **shared)
    assert await say(http, a, "app-7", "talk to a person")
    await agent_replies(b.app[SEAMLINE], "app-7", "Olga here: your parcel left today.")

    given: list[str] = []
    for _ in range(100):  # B's outbox sends the reply after its commit: poll A until it is there
        given += [item["text"] for item in await say(http, a, "app-7", None)]
        if "Olga here: your parcel left today." in given:
            break
        await asyncio.sleep(0.1)
    later = await say(http, a, "app-7", None) + await say(http, b, "app-7", None)
    assert given.count("Olga here: your parcel left today.") == 1 and later == []  # once, on either worker
    assert all(item["recipient_id"] == "app-7" for item in await say(http, b, "app-7", "thank you"))


@pytest.mark.services
async def test_a_resend_reaching_the_other_worker_gets_the_same_answer(
    http, make_server, settings, postgres_url, redis_url
):
    shared = dict(database_url=postgres_url, redis_url=redis_url, environ={"SEAMLINE_REST_TOKEN": TOKEN})
    a, b = await make_server(settings, **shared), await make_server(settings, **shared)
    first = await say(http, a, "app-8", "where is my order", message_id="m-1")
    assert first and await say(http, b, "app-8", "where is my order", message_id="m-1") == first
    customer = await a.app[SEAMLINE].store.find_customer("rest", "app-8")
    history = await a.app[SEAMLINE].store.history(customer.id, 50)
    assert [m.text for m in history].count("where is my order") == 1  # walked once


async def test_with_redis_away_a_poll_is_a_503_and_a_message_is_still_answered(settings, understanding):
    away = "redis://127.0.0.1:9/0"  # nothing listens there
    seamline, _, runner, base = await serve(
        settings, understanding, extras={"redis": lambda: Redis.from_url(away, socket_connect_timeout=1)}
    )
    channel = seamline.pipeline._adapters["rest"]
    url = f"{base}/webhooks/rest/webhook"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json={"sender": "s", "message": None}, headers=AUTH) as response:
                assert response.status == 503 and response.headers["Retry-After"] == "5"
                assert "poll again" in (await response.json())["error"]
            body = {"sender": "s", "message": "hello", "metadata": {"message_id": "1"}}
            async with http.post(url, json=body, headers=AUTH) as response:
                assert response.status == 200 and (await response.json())[0]["recipient_id"] == "s"
        with pytest.raises(ChannelError):  # an agent's reply cannot be kept: the outbox tries it again later
            await channel.send("s", Reply(text="Olga here."))
    finally:
        await channel.stop()
        await runner.cleanup()
        await seamline.close()
