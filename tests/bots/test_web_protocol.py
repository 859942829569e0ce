"""The web chat WebSocket protocol, against a running Seamline (docs/web-chat-protocol.md)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.conftest import SECRET


class Client:
    """A small protocol client: what a third-party widget would do."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session, self._url = session, url
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> Client:
        self.ws = await self._session.ws_connect(self._url)
        return self

    async def hello(self, token=None, lang=None) -> dict:
        await self.ws.send_json({"type": "hello", "token": token, **({"lang": lang} if lang else {})})
        return await self.receive("welcome")

    async def receive(self, *types: str, timeout: float = 10) -> dict:
        while True:
            frame = await self.ws.receive_json(timeout=timeout)
            if not types or frame["type"] in types:
                return frame

    async def say(self, text: str, id: str, **extra) -> list[dict]:
        """Send a message; return the frames up to and including the bot's (first) answer."""
        await self.ws.send_json({"type": "message", "id": id, "text": text, **extra})
        frames = [await self.receive()]
        while frames[-1]["type"] == "message" and frames[-1]["role"] == "customer":
            frames.append(await self.receive())
        return frames


async def client(http, server) -> Client:
    return await Client(http, server.ws_url).connect()


async def test_a_new_visitor_gets_a_token_and_an_empty_history(http, server):
    welcome = await (await client(http, server)).hello()
    assert welcome["history"] == [] and len(welcome["token"]) > 40


async def test_a_message_is_echoed_then_answered_by_the_bot_in_the_customers_language(http, server):
    c = await client(http, server)
    await c.hello()
    echo, answer = await c.say("Здравствуйте!", id="c-1")
    assert (echo["type"], echo["role"], echo["id"], echo["text"]) == ("message", "customer", "c-1", "Здравствуйте!")
    assert answer["role"] == "bot" and answer["channel"] == "web"
    assert any("а" <= ch <= "я" for ch in answer["text"].lower())  # answered in Russian
    english = (await c.say("hello", id="c-2"))[-1]
    assert not any("а" <= ch <= "я" for ch in english["text"].lower())


async def test_reconnecting_with_the_token_restores_the_history(http, server):
    c = await client(http, server)
    token = (await c.hello())["token"]
    await c.say("where is my order", id="c-1")
    await c.say("48213", id="c-2")
    await c.ws.close()
    again = await client(http, server)
    history = (await again.hello(token))["history"]
    assert [(m["role"], m["text"]) for m in history if m["role"] == "customer"] == [
        ("customer", "where is my order"),
        ("customer", "48213"),
    ]
    assert [m["id"] for m in history if m["role"] == "customer"] == ["c-1", "c-2"]
    assert "48213" in history[-1]["text"]  # the bot took the order number (a seeded order)


async def test_a_tampered_token_is_refused_and_reveals_nothing(http, server):
    c = await client(http, server)
    token = (await c.hello())["token"]
    await c.say("my secret problem", id="c-1")
    value, _, signature = token.rpartition(".")
    for forged in (value + "." + signature[:-2] + "AA", value[:-1] + "x." + signature, "garbage"):
        other = await client(http, server)
        await other.ws.send_json({"type": "hello", "token": forged})
        error = await other.receive()
        assert (error["type"], error["code"]) == ("error", "bad_token")
        welcome = await other.receive("welcome")
        assert welcome["history"] == [] and welcome["token"] != token


async def test_a_token_signed_with_another_key_is_refused(http, server):
    from seamline.shared.tokens import Signer

    _, foreign = Signer(secret_key="another-server-secret-key", purpose="web-visitor").new()
    c = await client(http, server)
    await c.ws.send_json({"type": "hello", "token": foreign})
    assert (await c.receive())["code"] == "bad_token"
    await c.receive("welcome")
    _, ours = Signer(secret_key=SECRET, purpose="another-purpose").new()
    c = await client(http, server)  # one hello per connection
    await c.ws.send_json({"type": "hello", "token": ours})
    assert (await c.receive())["code"] == "bad_token"


async def test_a_resent_client_id_is_processed_once(http, server):
    c = await client(http, server)
    token = (await c.hello())["token"]
    await c.say("hello", id="c-1")
    await c.ws.send_json({"type": "message", "id": "c-1", "text": "hello"})
    assert await c.receive() == {"type": "ack", "id": "c-1", "duplicate": True}
    # also after a reconnect, which is when widgets resend
    again = await client(http, server)
    await again.hello(token)
    await again.ws.send_json({"type": "message", "id": "c-1", "text": "hello"})
    assert (await again.receive())["type"] == "ack"
    history = (await (await client(http, server)).hello(token))["history"]
    assert [m["role"] for m in history] == ["customer", "bot"]


async def test_two_visitors_may_use_the_same_client_ids(http, server):
    a, b = await client(http, server), await client(http, server)
    await a.hello()
    await b.hello()
    assert (await a.say("hello", id="1"))[0]["role"] == "customer"
    assert (await b.say("hi", id="1"))[0]["role"] == "customer"  # not taken for a duplicate


@pytest.mark.parametrize(
    "raw, code",
    [
        ("not json at all", "bad_json"),
        ("[1, 2, 3]", "bad_json"),
        ('{"no": "type"}', "bad_frame"),
        ('{"type": "subscribe"}', "unknown_type"),
        ('{"type": "message", "id": "c-9", "text": "' + "x" * 4097 + '"}', "too_long"),
        ('{"type": "message", "id": "c-9", "text": "   "}', "empty"),
        ('{"type": "message", "id": 5, "text": "hi"}', "bad_frame"),
        ('{"type": "message", "id": "c-9", "text": ["hi"]}', "bad_frame"),
    ],
)
async def test_a_malformed_frame_gets_an_error_and_the_connection_stays_up(http, server, raw, code):
    c = await client(http, server)
    await c.hello()
    await c.ws.send_str(raw)
    error = await c.receive()
    assert (error["type"], error["code"]) == ("error", code) and error["message"]
    _, answer = await c.say("hello", id="c-ok")
    assert answer["role"] == "bot"


async def test_text_at_the_limit_is_accepted(http, server):
    c = await client(http, server)
    await c.hello()
    echo, _ = await c.say("я" * 4096, id="c-long")
    assert len(echo["text"]) == 4096


async def test_a_message_before_hello_is_refused(http, server):
    c = await client(http, server)
    await c.ws.send_json({"type": "message", "id": "c-1", "text": "hi"})
    assert (await c.receive()) == {
        "type": "error",
        "code": "hello_required",
        "message": "send a hello frame first",
        "id": "c-1",
    }


async def test_an_oversized_frame_closes_only_that_connection(http, server):
    c = await client(http, server)
    await c.hello()
    await c.ws.send_str(json.dumps({"type": "message", "id": "c-1", "text": "x" * 70_000}))
    closing = await c.ws.receive(timeout=10)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert c.ws.close_code == 1009
    other = await client(http, server)
    await other.hello()
    assert (await other.say("hello", id="c-1"))[-1]["role"] == "bot"


async def test_a_flood_is_rate_limited_without_losing_the_connection(http, server):
    c = await client(http, server)
    await c.hello()
    for n in range(31):
        await c.ws.send_json({"type": "message", "id": f"c-{n}", "text": "hi"})
    frames = [await c.receive() for _ in range(61)]
    errors = [f for f in frames if f["type"] == "error"]
    assert [(e["code"], e["id"]) for e in errors] == [("rate_limited", "c-30")]


async def test_every_open_tab_of_a_visitor_sees_the_conversation(http, server):
    first = await client(http, server)
    token = (await first.hello())["token"]
    second = await client(http, server)
    await second.hello(token)
    await first.say("hello", id="c-1")
    seen = [await second.receive(), await second.receive()]
    assert [(f["role"], f["text"] if f["role"] == "customer" else "") for f in seen] == [
        ("customer", "hello"),
        ("bot", ""),
    ]


async def test_the_widget_and_demo_page_are_served(http, server):
    async with http.get(server.url + "/") as page:
        assert page.status == 200 and '<script src="/widget.js"' in await page.text()
    async with http.get(server.url + "/widget.js") as script:
        assert script.status == 200 and "javascript" in script.headers["Content-Type"]
        assert "/chat/ws" in await script.text()


async def test_the_chat_works_on_postgresql_and_redis(http, make_server, settings, postgres_url, redis_url):
    server = await make_server(settings, database_url=postgres_url, redis_url=redis_url)
    c = await client(http, server)
    token = (await c.hello())["token"]
    await c.say("where is my order", id="c-1")
    answer = (await c.say("order 48213", id="c-2"))[-1]
    assert "48213" in answer["text"]
    await server.stop()
    restarted = await make_server(settings, database_url=postgres_url, redis_url=redis_url)
    again = await client(http, restarted)
    history = (await again.hello(token))["history"]
    assert [m["text"] for m in history if m["role"] == "customer"] == ["where is my order", "order 48213"]
    await again.ws.send_json({"type": "message", "id": "c-2", "text": "order 48213"})
    assert (await again.receive())["type"] == "ack"  # dedupe survives a restart through Redis


async def test_a_server_shutdown_tells_open_chats_it_is_going_away(http, server):
    c = await client(http, server)
    await c.hello()
    stopping = asyncio.create_task(server.stop())
    closing = await c.ws.receive(timeout=10)
    await stopping
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert c.ws.close_code == 1001


async def test_a_failure_while_processing_keeps_the_message_and_a_resend_is_answered(http, server, monkeypatch):
    from seamline.bots.app import SEAMLINE

    understanding = server.app[SEAMLINE].pipeline.understanding
    real_parse, calls = understanding.parse, []

    def flaky_parse(text, payload=None):
        calls.append(text)
        if len(calls) == 1:
            raise RuntimeError("the model crashed")
        return real_parse(text, payload)

    monkeypatch.setattr(understanding, "parse", flaky_parse)
    c = await client(http, server)
    token = (await c.hello())["token"]
    await c.ws.send_json({"type": "message", "id": "c-1", "text": "hello"})
    echo, error = await c.receive(), await c.receive()
    assert echo["role"] == "customer" and (error["code"], error["id"]) == ("internal", "c-1")
    assert (await c.say("hello", id="c-1"))[-1]["role"] == "bot"  # the resend is processed, not dropped
    history = (await (await client(http, server)).hello(token))["history"]
    assert [m["role"] for m in history] == ["customer", "bot"]  # one copy of the message, one answer
    visitor = token.rpartition(".")[0]
    stored = await server.app[SEAMLINE].pipeline.history("web", visitor)
    assert stored[0].intent == "greet"  # what the bot understood is kept on the one stored copy


async def test_only_allowed_sites_may_open_the_chat(http, make_server, settings):
    server = await make_server(settings, web_allowed_origins=("https://shop.example",))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(server.ws_url, headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    allowed = await http.ws_connect(server.ws_url, headers={"Origin": "https://shop.example"})
    await allowed.send_json({"type": "hello", "token": None})
    assert (await allowed.receive_json(timeout=10))["type"] == "welcome"
    await allowed.close()


async def test_a_dead_redis_gives_a_clear_error_and_the_chat_stays_up(http, make_server, settings):
    server = await make_server(settings, redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    c = await client(http, server)
    await c.hello()
    await c.ws.send_json({"type": "message", "id": "c-1", "text": "hello"})
    error = await c.receive()
    assert (error["type"], error["code"], error["id"]) == (
        "error",
        "unavailable",
        "c-1",
    )  # the widget keeps it, shows "reconnecting…" and resends it
    await c.ws.send_json({"type": "ping"})
    assert await c.receive() == {"type": "pong"}
