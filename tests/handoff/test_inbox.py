"""The live inbox: one contract for the in-process inbox and the Redis relay (real Redis), and two
Seamline processes sharing PostgreSQL and Redis: an agent connected to one sees what a customer
does on the other, and capacity holds across both."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from dataclasses import replace

import aiohttp
import pytest
from redis.asyncio import Redis

from seamline.bots.app import SEAMLINE
from seamline.handoff.inbox import DROPPED, REVOKED, Inbox, RedisInbox
from seamline.shared.message import Message

PASSWORD = "correct horse battery"


@pytest.fixture(params=["memory", "redis"])
async def make_inbox(request):
    made: list[Inbox] = []

    async def make(**options) -> Inbox:
        if request.param == "memory":
            inbox = Inbox(**options)
        else:
            inbox = RedisInbox(client=Redis.from_url(request.getfixturevalue("redis_url")), **options)
        await inbox.start()
        made.append(inbox)
        return inbox

    yield make
    for inbox in made:
        await inbox.close()


async def next_event(queue: asyncio.Queue) -> dict:
    return json.loads(await asyncio.wait_for(queue.get(), 5))


async def test_every_subscriber_gets_every_event_in_order(make_inbox):
    inbox = await make_inbox()
    first, second = inbox.subscribe(), inbox.subscribe()
    for n in range(3):
        await inbox.publish({"type": "message", "n": n, "text": "<b>привет</b>"})
    for queue in (first, second):
        assert [await next_event(queue) for _ in range(3)] == [
            {"type": "message", "n": n, "text": "<b>привет</b>"} for n in range(3)
        ]


async def test_an_unsubscribed_console_gets_nothing_more(make_inbox):
    inbox = await make_inbox()
    gone, staying = inbox.subscribe(), inbox.subscribe()
    inbox.unsubscribe(gone)
    await inbox.publish({"type": "message", "n": 1})
    assert (await next_event(staying))["n"] == 1
    assert gone.empty()


async def test_a_console_that_stops_reading_is_dropped_and_told(make_inbox):
    inbox = await make_inbox(backlog=3)
    stuck, reading = inbox.subscribe(), inbox.subscribe()
    for n in range(5):
        await inbox.publish({"type": "message", "n": n})
        assert (await next_event(reading))["n"] == n
    drained = [stuck.get_nowait() for _ in range(stuck.qsize())]
    assert drained[-1] == DROPPED and len(drained) <= 3  # it reconnects and reloads
    await inbox.publish({"type": "message", "n": 5})
    assert (await next_event(reading))["n"] == 5
    assert stuck.empty()


async def test_a_held_conversations_events_go_to_its_agent_admins_and_watchers(make_inbox):
    inbox = await make_inbox()
    olga, ivan, admin = inbox.subscribe("olga"), inbox.subscribe("ivan"), inbox.subscribe("boss", admin=True)
    await inbox.publish({"type": "message", "conversation_id": "c1", "n": 1}, audience="olga")
    await inbox.publish({"type": "conversation", "conversation": {"id": "c2"}})  # for everyone
    assert [(await next_event(olga)).get("n") for _ in range(2)] == [1, None]
    assert [(await next_event(admin)).get("n") for _ in range(2)] == [1, None]
    assert (await next_event(ivan))["type"] == "conversation" and ivan.empty()
    inbox.watch(ivan, "c1")  # Ivan opens Olga's conversation
    await inbox.publish({"type": "message", "conversation_id": "c1", "n": 2}, audience="olga")
    assert (await next_event(ivan))["n"] == 2
    inbox.watch(ivan, "c9")
    await inbox.publish({"type": "message", "conversation_id": "c1", "n": 3}, audience="olga")
    await inbox.publish({"type": "message", "conversation_id": "c9", "n": 4}, audience="olga")
    assert (await next_event(ivan))["n"] == 4


async def test_a_revoked_login_ends_its_consoles_and_only_those(make_inbox):
    inbox = await make_inbox()
    forgotten = []
    inbox.on_revoke(lambda agent_id, digest: forgotten.append((agent_id, digest)))
    tab, other_tab = inbox.subscribe("olga", session="d1"), inbox.subscribe("olga", session="d2")
    colleague = inbox.subscribe("ivan", session="d3")
    await inbox.publish({"type": "message", "n": 1})
    await inbox.revoke("olga", "d1")
    assert await asyncio.wait_for(tab.get(), 5) == REVOKED  # what was queued is dropped, the end is told
    assert ("olga", "d1") in forgotten
    assert inbox.agents_here() == {"olga", "ivan"}
    await inbox.publish({"type": "message", "n": 2})
    assert [(await next_event(other_tab))["n"] for _ in range(2)] == [1, 2]
    assert [(await next_event(colleague))["n"] for _ in range(2)] == [1, 2]
    assert tab.empty()
    await inbox.revoke("olga")  # every login of the agent (a password change)
    assert await asyncio.wait_for(other_tab.get(), 5) == REVOKED
    assert inbox.agents_here() == {"ivan"}


async def test_through_redis_every_process_sees_every_event(redis_url):
    one, two = (RedisInbox(client=Redis.from_url(redis_url)) for _ in range(2))
    await one.start()
    await two.start()
    try:
        here, there = one.subscribe(), two.subscribe()
        await one.publish({"type": "message", "from": "one"})
        await two.publish({"type": "message", "from": "two"})
        for queue in (here, there):
            assert [(await next_event(queue))["from"] for _ in range(2)] == ["one", "two"]
    finally:
        await one.close()
        await two.close()


async def test_with_redis_down_this_processes_consoles_still_get_events():
    inbox = RedisInbox(client=Redis.from_url("redis://127.0.0.1:1/0"), retry_seconds=0.05)
    await inbox.start()  # returns although Redis is not there: the relay keeps retrying
    try:
        queue = inbox.subscribe()
        await inbox.publish({"type": "message", "n": 1})
        assert (await next_event(queue))["n"] == 1
    finally:
        await inbox.close()


# -- two Seamline processes on the same PostgreSQL and Redis ----------------------------------------


@pytest.fixture
async def pair(make_server, settings, request):
    shared = replace(
        settings, database_url=request.getfixturevalue("postgres_url"), redis_url=request.getfixturevalue("redis_url")
    )
    servers = [await make_server(shared), await make_server(shared)]
    for server in servers:
        handoff = server.app[SEAMLINE].handoff
        handoff.routing = dataclasses.replace(handoff.routing, queues={})  # every queue open, whatever the time
    return servers


async def logged_in(http, server, email: str, *, capacity: int = 5) -> str:
    await server.app[SEAMLINE].handoff.agents.add(email, name="Olga", password=PASSWORD, queues=[], capacity=capacity)
    async with http.post(
        server.url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD, "kind": "api"}
    ) as response:
        assert response.status == 200
        return (await response.json())["token"]


async def say(server, chat: str, text: str, n: int):
    return await server.app[SEAMLINE].pipeline.handle(
        Message(channel="web", address=chat, sender=chat, text=text, external_id=f"{chat}-{n}")
    )


async def test_an_agent_on_one_process_sees_a_customer_on_the_other(pair):
    one, two = pair
    async with aiohttp.ClientSession() as http:
        token = await logged_in(http, two, "olga@example.com")
        async with http.ws_connect(two.url + "/api/v1/inbox") as ws:
            await ws.send_json({"type": "auth", "token": token})
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            handled = await say(one, "visitor-1", "I want to talk to a human", 1)
            conversation_id = handled.inbound.conversation_id
            events = [await ws.receive_json(timeout=5)]
            while events[-1]["type"] != "conversation":
                events.append(await ws.receive_json(timeout=5))
            assert events[-1]["conversation"]["id"] == conversation_id
            assert events[-1]["conversation"]["state"] in ("queued", "with_agent")
            await say(one, "visitor-1", "my parcel <script>alert(1)</script> is late", 2)
            while not (events[-1]["type"] == "message" and events[-1]["message"]["role"] == "customer"):
                events.append(await ws.receive_json(timeout=5))
            assert events[-1]["conversation_id"] == conversation_id
            assert events[-1]["message"]["text"] == "my parcel <script>alert(1)</script> is late"


async def test_a_logout_on_one_process_ends_the_login_on_the_other_at_once(pair):
    one, two = pair
    async with aiohttp.ClientSession() as http:
        token = await logged_in(http, one, "olga@example.com")
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(two.url + "/api/v1/me", headers=headers) as response:
            assert response.status == 200  # the other process has checked (and cached) the token
        async with http.ws_connect(two.url + "/api/v1/inbox") as ws:
            await ws.send_json({"type": "auth", "token": token})
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            async with http.post(one.url + "/api/v1/auth/logout", headers=headers) as response:
                assert response.status == 200
            event = await ws.receive_json(timeout=5)
            while event["type"] != "error":  # (an agent status event may come first)
                event = await ws.receive_json(timeout=5)
            assert "log in again" in event["error"]
            assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        async with http.get(two.url + "/api/v1/me", headers=headers) as response:
            assert response.status == 401  # not after the cache's 30 s: now


async def test_capacity_holds_when_two_processes_assign_at_once(pair):
    one, two = pair
    async with aiohttp.ClientSession() as http:
        token = await logged_in(http, one, "olga@example.com", capacity=1)
        async with http.post(
            one.url + "/api/v1/me/status", json={"status": "online"}, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200
    for server in pair:  # widen the race: choosing an agent reads the loads, then waits a moment
        handoff = server.app[SEAMLINE].handoff
        read_loads = handoff.loads

        async def slow_loads(agent_ids, read_loads=read_loads):
            loads = await read_loads(agent_ids)
            await asyncio.sleep(0.05)
            return loads

        handoff.loads = slow_loads
    chats = [f"visitor-{n}" for n in range(12)]
    await asyncio.gather(
        *(say(server, chat, "I want to talk to a human", 1) for server, chat in zip([one, two] * 6, chats, strict=True))
    )
    handoff = one.app[SEAMLINE].handoff
    held = await handoff.conversations("with_agent")
    waiting = await handoff.conversations("queued")
    assert (len(held), len(waiting)) == (1, 11)


async def test_no_process_tells_a_waiting_customer_the_same_place_twice(pair):
    one, two = pair
    sent: list[tuple[str, str]] = []

    class Recorder:
        channel = "web"

        async def send(self, address, reply):
            sent.append((address, reply.text))

    for server in pair:
        server.app[SEAMLINE].pipeline.register(Recorder())
    conversations = [
        (await say(one, f"visitor-{n}", "I want to talk to a human", 1)).inbound.conversation_id for n in range(3)
    ]  # nobody online: all three wait
    async with aiohttp.ClientSession() as http:
        token = await logged_in(http, one, "olga@example.com")
        headers = {"Authorization": f"Bearer {token}"}
        async with http.post(f"{one.url}/api/v1/conversations/{conversations[0]}/claim", headers=headers) as r:
            assert r.status == 200  # the other two move up, and are told so (by process one)
        told = [(a, t) for a, t in sent if "now number" in t]
        assert told == [("visitor-1", told[0][1]), ("visitor-2", told[1][1])] and "number 1" in told[0][1]
        # Through process two she takes the last one in line: the first keeps its place, and is not told again
        async with http.post(f"{two.url}/api/v1/conversations/{conversations[2]}/claim", headers=headers) as r:
            assert r.status == 200
    assert [t for a, t in sent if a == "visitor-1" and "now number" in t] == [told[0][1]]
