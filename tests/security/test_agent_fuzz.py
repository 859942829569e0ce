"""Whatever a client sends to the agent API, the answer is a documented 4xx (or 2xx), never a 500,
and nothing is logged as an error: bodies of any JSON shape and type, non-JSON bodies, query
strings ("²", 5000 digits), headers, ids, and the inbox WebSocket's first frame."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.handoff.test_api import escalated

ENDPOINTS = [
    ("POST", "/auth/login"),
    ("POST", "/auth/logout"),
    ("GET", "/me"),
    ("POST", "/me/status"),
    ("GET", "/queues"),
    ("GET", "/canned"),
    ("GET", "/agents"),
    ("POST", "/agents/{id}/status"),
    ("GET", "/conversations"),
    ("GET", "/conversations/{id}"),
    *[
        ("POST", "/conversations/{id}/" + action)
        for action in ("claim", "messages", "notes", "transfer", "release", "resolve")
    ],
    ("GET", "/customers/{id}"),
    ("GET", "/customers/{id}/export"),
    ("DELETE", "/customers/{id}"),
    ("POST", "/links/{id}/undo"),
]
KEYS = ["email", "password", "kind", "status", "text", "agent", "queue", "note", "type", "token"]
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
objects = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), values, max_size=6)
numbers = st.sampled_from(["²", "٣", "1" * 5000, "-1", "0", "1e3", " 5", "9" * 13, "", "10"]) | st.text(max_size=12)
DEPTHS = st.sampled_from([2, 50, 999, 1500, 100_000]) | st.integers(1, 3000)
bodies = st.one_of(
    objects.map(json.dumps),
    values.map(json.dumps),
    DEPTHS.map(lambda depth: "[" * depth + "]" * depth),
    DEPTHS.map(lambda depth: '{"email":' * depth + "1" + "}" * depth),
    st.binary(max_size=64).map(lambda raw: raw.decode("latin-1")),
)


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
async def target(seamline, telegram, agent):
    admin = await agent(role="admin")
    return admin, await escalated(seamline, "8001")


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    ident=st.sampled_from(["real", "x", "%C2%B2", "a" * 300]),
    body=bodies,
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=latin-1", "text/plain", "application/x-www-form-urlencoded"]
    ),
    query=st.dictionaries(st.sampled_from(["limit", "offset", "state", "mine", "queue"]), numbers, max_size=3),
    auth=st.sampled_from(["token", "lower", "none", "garbage", "Basic Zm9vOmJhcg=="]),
)
async def test_no_request_to_the_agent_api_gets_a_5xx_or_logs_an_error(
    target, server, http, caplog, endpoint, ident, body, content_type, query, auth
):
    admin, conversation = target
    method, path = endpoint
    path = path.replace("{id}", conversation if ident == "real" else ident)
    headers = {"Content-Type": content_type}
    if auth in ("token", "lower") and path != "/auth/logout":
        headers["Authorization"] = ("Bearer " if auth == "token" else "bearer ") + admin.token
    elif auth == "garbage":
        headers["Authorization"] = "Bearer \u00e9\u00e9 not-a-token"
    elif auth.startswith("Basic"):
        headers["Authorization"] = auth
    async with http.request(
        method, server.url + "/api/v1" + path, params=query, data=body.encode("utf-8", "replace"), headers=headers
    ) as response:
        assert response.status < 500, (method, path, response.status, await response.text())
        if response.status >= 400 and response.content_type != "text/plain":  # text: aiohttp's own 400
            assert "error" in await response.json()  # (a request line over 8 KiB, before any handler)
    assert not _errors(caplog)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(first=bodies | objects.map(lambda o: json.dumps({"type": "auth", **o})) | st.just('{"token": 5}'))
async def test_a_bad_first_frame_on_the_inbox_is_refused_with_an_error_frame(server, http, caplog, first):
    async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
        await ws.send_str(first)
        said = await ws.receive_json(timeout=5)
        assert said == {"type": "error", "error": "log in first"}
        await ws.receive(timeout=5)
        assert ws.close_code == 4401
    assert not _errors(caplog)


async def test_a_binary_first_frame_on_the_inbox_is_refused(server, http, caplog):
    async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive_json(timeout=5))["type"] == "error"
    assert not _errors(caplog)


@pytest.mark.parametrize("limit", ["²", "1" * 5000, "٣"])
async def test_an_odd_number_in_a_query_is_400(agent, limit):
    api = await agent()
    async with api.http.get(api.base + "/conversations", params={"limit": limit}, headers=api.headers) as response:
        assert response.status == 400 and "limit must be a whole number" in (await response.json())["error"]


async def test_a_request_line_too_long_is_400_and_one_warning_line(server, http, caplog):
    async with http.get(
        server.url + "/api/v1/conversations",
        params={"limit": "1" * 5000, "offset": "2" * 5000},
        headers={"Authorization": "Bearer x"},
    ) as response:
        assert response.status == 400
    assert not _errors(caplog)
    assert not [r for r in caplog.records if r.exc_info]  # no traceback
