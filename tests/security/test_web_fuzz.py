"""Whatever a client sends on the widget's WebSocket, it gets a documented frame back (an error frame at
worst), the socket stays up and nothing is logged as an error or with a traceback (issue 10, item 13):
every frame type of docs/web-chat-protocol.md with fields of any JSON type, garbage, binary frames and
JSON nested thousands deep."""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bots.test_web_protocol import Client

TYPES = ["hello", "message", "link", "ping", "older"]
FIELDS = ["id", "text", "payload", "token", "lang", "external_id", "signature", "channel", "before"]
ERROR_CODES = {
    "bad_json",
    "bad_frame",
    "unknown_type",
    "hello_required",
    "hello_repeated",
    "bad_token",
    "too_long",
    "empty",
    "rate_limited",
    "link_unavailable",
}  # documented, and all a client's fault: not "internal"
ANSWERS = {"welcome", "message", "ack", "pong", "error", "link", "older", "history"}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["\x00", "\ud800", "a" * 5000, "ru", "telegram", "c-1"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
frames = st.fixed_dictionaries({"type": st.sampled_from(TYPES) | values}, optional={name: values for name in FIELDS})
DEPTHS = st.sampled_from([2, 999, 1001, 5000, 30_000]) | st.integers(1, 30_000)
raw_frames = st.one_of(
    frames.map(json.dumps),
    frames.map(json.dumps),
    values.map(json.dumps),
    DEPTHS.map(lambda depth: '{"type":"message","text":' * (depth // 15) + '"x"' + "}" * (depth // 15)),
    DEPTHS.map(lambda depth: "[" * depth + "]" * depth),
    st.binary(max_size=64),
    st.text(max_size=80),
).filter(lambda raw: len(raw) < 60_000)  # a bigger frame closes the socket with 1009, as documented


@pytest.fixture
async def chat(http, make_server, settings):
    """A server without frame budgets (they are tested elsewhere) and one socket that said hello."""
    server = await make_server(settings, web_rate_limit=0, web_address_rate_limit=0)
    client = Client(http, server.ws_url)
    await client.connect()
    await client.hello()
    return server, client


async def answers_until_pong(ws: aiohttp.ClientWebSocketResponse) -> list[dict]:
    """Every frame the server sent before it answered a ping: the socket is alive and in order."""
    await ws.send_json({"type": "ping"})
    seen = []
    while True:
        msg = await ws.receive(timeout=20)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"the socket was closed: {msg}"
        frame = json.loads(msg.data)
        if frame["type"] == "pong":
            return seen
        seen.append(frame)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=raw_frames)
async def test_no_frame_breaks_the_socket_or_logs_an_error(chat, http, caplog, raw):
    server, client = chat
    caplog.clear()
    caplog.set_level(logging.INFO)
    sockets = [client.ws, await http.ws_connect(server.ws_url)]  # after a hello, and as the first frame
    for ws in sockets:
        if isinstance(raw, bytes):
            await ws.send_bytes(raw)
        else:
            await ws.send_str(raw)
        for frame in await answers_until_pong(ws):
            assert frame["type"] in ANSWERS, frame
            if frame["type"] == "error":
                assert frame["code"] in ERROR_CODES and isinstance(frame["message"], str), frame
    for ws in sockets[1:]:
        await ws.close()
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not logged, [r.getMessage() for r in logged]


async def test_a_huge_frame_closes_only_its_socket_without_a_traceback(chat, http, caplog):
    server, client = chat
    caplog.set_level(logging.INFO)
    await client.ws.send_str(json.dumps({"type": "message", "id": "c-1", "text": "x" * 70_000}))
    closing = await client.ws.receive(timeout=10)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and client.ws.close_code == 1009
    other = Client(http, server.ws_url)
    await other.connect()
    await other.hello()
    assert await answers_until_pong(other.ws) == []
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not logged, [r.getMessage() for r in logged]
