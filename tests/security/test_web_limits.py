"""Widget frames are limited per visitor and per address, one hello per socket, welcomes in pages (item 8)."""

from __future__ import annotations

import json

from tests.bots.test_web_protocol import Client
from tests.security.test_web_connections import PROXY, connect


async def settle(client: Client, ids: set[str]) -> dict[str, str]:
    """Wait until each of ``ids`` was echoed or refused on this socket: id → "stored" or the error code."""
    outcome: dict[str, str] = {}
    while not ids <= outcome.keys():
        frame = await client.receive(timeout=20)
        if frame.get("id") in ids and frame["type"] == "error":
            outcome[frame["id"]] = frame["code"]
        elif frame.get("id") in ids and frame["type"] == "message" and frame["role"] == "customer":
            outcome[frame["id"]] = "stored"
    return outcome


async def flood(tabs) -> dict[str, str]:
    """Ten messages from each tab at once; what became of each message id."""
    for n, tab in enumerate(tabs):
        for m in range(10):
            await tab.ws.send_json({"type": "message", "id": f"t{n}-{m}", "text": f"message {m} from tab {n}"})
    outcomes: dict[str, str] = {}
    for n, tab in enumerate(tabs):
        outcomes.update(await settle(tab, {f"t{n}-{m}" for m in range(10)}))
    return outcomes


async def long_history(http, server):
    """A visitor who said twelve 3 KB messages, all answered: (socket, token, what was said, frames seen)."""
    c = await connect(http, server)
    token = (await c.hello())["token"]
    said = [f"{n:02d} " + "x" * 3000 for n in range(12)]
    seen = []
    for n, text in enumerate(said):
        seen += await c.say(text, id=f"c-{n}")
    while not any(f.get("id") == "c-11" for f in seen) or seen[-1]["role"] != "bot":
        seen.append(await c.receive("message"))  # until the last message is answered
    return c, token, said, seen


async def test_ten_sockets_of_one_visitor_share_one_budget(http, server):
    first = await connect(http, server)
    token = (await first.hello())["token"]
    tabs = [first] + [await connect(http, server) for _ in range(9)]
    for tab in tabs[1:]:
        await tab.hello(token)
    outcomes = await flood(tabs)
    stored = [i for i, o in outcomes.items() if o == "stored"]
    assert len(stored) == 30  # SEAMLINE_WEB_RATE_LIMIT: 30 per 10 s for the visitor, not for each tab
    assert {o for o in outcomes.values() if o != "stored"} == {"rate_limited"}


async def test_the_visitor_budget_holds_across_processes_sharing_redis(
    http, make_server, settings, postgres_url, redis_url
):
    shared = dict(database_url=postgres_url, redis_url=redis_url)
    servers = [await make_server(settings, **shared), await make_server(settings, **shared)]
    first = await connect(http, servers[0])
    token = (await first.hello())["token"]
    tabs = [first] + [await connect(http, servers[n % 2]) for n in range(1, 6)]
    for tab in tabs[1:]:
        await tab.hello(token)
    outcomes = await flood(tabs)
    assert list(outcomes.values()).count("stored") == 30  # not 30 per process


async def test_one_address_shares_a_budget_across_visitors(http, make_server, settings):
    server = await make_server(settings, web_address_rate_limit=20, web_rate_limit=1000, trusted_proxies=PROXY)
    visitors = [await connect(http, server, "203.0.113.7") for _ in range(5)]
    for visitor in visitors:
        await visitor.hello()  # 5 of the address's 20 frames
    for visitor in visitors:
        for _ in range(10):
            await visitor.ws.send_json({"type": "ping"})
    answers = [(await v.receive(timeout=10))["type"] for v in visitors for _ in range(10)]
    assert answers.count("pong") == 15 and answers.count("error") == 35
    elsewhere = await connect(http, server, "198.51.100.2")
    await elsewhere.hello()
    await elsewhere.ws.send_json({"type": "ping"})
    assert await elsewhere.receive() == {"type": "pong"}


async def test_a_second_hello_on_one_socket_is_an_error(http, server):
    c = await connect(http, server)
    token = (await c.hello())["token"]
    await c.say("my own conversation", id="c-1")
    await c.ws.send_json({"type": "hello", "token": None})
    error = await c.receive()
    assert (error["type"], error["code"]) == ("error", "hello_repeated")
    echo, _ = await c.say("still mine", id="c-2")
    assert echo["role"] == "customer"
    history = (await (await connect(http, server)).hello(token))["history"]
    assert [m["text"] for m in history if m["role"] == "customer"] == ["my own conversation", "still mine"]


async def test_the_welcome_is_capped_in_bytes_and_older_pages_bring_the_rest(http, make_server, settings):
    server = await make_server(settings, web_history_bytes=16_384)
    _, token, said, seen = await long_history(http, server)
    again = await connect(http, server)
    await again.ws.send_json({"type": "hello", "token": token})
    raw = await again.ws.receive_str(timeout=10)
    welcome = json.loads(raw)
    assert welcome["type"] == "welcome" and len(raw.encode()) < 16_384 + 1024
    assert welcome["more"] is True and welcome["history"][-1]["role"] == "bot"
    pages, cursor = [welcome["history"]], welcome["before"]
    while cursor is not None:
        await again.ws.send_json({"type": "older", "id": f"p-{len(pages)}", "before": cursor})
        older = await again.receive("older")
        assert older["id"] == f"p-{len(pages)}" and len(json.dumps(older).encode()) < 16_384 + 1024
        pages.insert(0, older["history"])
        cursor = older["before"]
        assert older["more"] is (cursor is not None)
    everything = [m for p in pages for m in p]
    assert [m["text"] for m in everything if m["role"] == "customer"] == said
    assert [m["id"] for m in everything] == [f["id"] for f in seen]  # every message once, in order


async def test_history_pages_have_a_budget_of_their_own(http, server):
    c = await connect(http, server)
    await c.hello()  # a new visitor's hello counts for the address only
    answers = []
    for n in range(25):
        await c.ws.send_json({"type": "older", "id": f"p-{n}", "before": "0" * 32})
        answers.append(await c.receive("older", "error"))
    assert [a["type"] for a in answers] == ["older"] * 20 + ["error"] * 5
    assert {a["code"] for a in answers if a["type"] == "error"} == {"rate_limited"}
    assert all(a["history"] == [] and a["more"] is False for a in answers if a["type"] == "older")
