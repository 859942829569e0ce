"""Whatever is POSTed to /telegram/webhook and /vk/callback, the answer is a documented status (200,
400, 401, 403, 413; never a 5xx) and nothing is logged as an error or with a traceback (issue 10,
item 13): updates and events with fields of any JSON type, garbage, bodies that are not UTF-8, JSON
nested a hundred thousand deep, bodies over the size limit. See docs/testing-channels.md."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from seamline.bots.telegram import WEBHOOK_PATH

from tests.conftest import Server
from tests.fakes.telegram import SECRET_HEADER, TOKEN, FakeTelegram
from tests.fakes.vk import FakeVk

WEBHOOK_SECRET = "fuzz-webhook-secret-0123"
VK_SECRET, CONFIRMATION = "fuzz-vk-secret-0123", "fuzzc0nf"
DOCUMENTED = {200, 400, 401, 403, 413}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["\x00", "\ud800", "a" * 5000, "message_new", "/start x"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
users = st.fixed_dictionaries(
    {"id": st.integers(1, 10**6) | values, "is_bot": st.booleans() | values},
    optional={"first_name": values, "language_code": values},
)
messages = st.fixed_dictionaries(
    {
        "message_id": st.integers(1, 10**6) | values,
        "date": st.integers(0, 2**31) | values,
        "chat": st.fixed_dictionaries({"id": st.integers(1, 10**6) | values, "type": st.just("private") | values}),
    },
    optional={
        "text": values,
        "from": users,
        "caption": values,
        "entities": values,
        "photo": values,
        "contact": values,
        "location": values,
        "document": values,
    },
)
updates = st.fixed_dictionaries(
    {"update_id": st.integers(0, 2**40) | values},
    optional={"message": messages | values, "edited_message": messages, "callback_query": values, "poll": values},
)
vk_messages = st.fixed_dictionaries(
    {},
    optional={
        "peer_id": st.integers(1, 10**6) | values,
        "from_id": st.integers(1, 10**6) | values,
        "text": values,
        "payload": values,
        "attachments": values,
        "geo": values,
        "ref": values,
        "conversation_message_id": values,
        "out": values,
        "action": values,
    },
)
events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["message_new", "message_event", "confirmation", "group_join"]) | values,
        "group_id": st.just(0) | values,
        "secret": st.just(VK_SECRET) | values,
    },  # 0 is replaced by the fake's id
    optional={
        "event_id": st.text(max_size=50) | values,
        "v": values,
        "object": st.fixed_dictionaries(
            {},
            optional={
                "message": vk_messages | values,
                "client_info": values,
                "peer_id": values,
                "user_id": values,
                "event_id": values,
                "payload": values,
            },
        )
        | values,
    },
)
DEPTHS = st.sampled_from([999, 1001, 5000, 100_000]) | st.integers(1, 100_000)
garbage = st.one_of(
    DEPTHS.map(lambda d: ("[" * d + "]" * d).encode()),
    DEPTHS.map(lambda d: ('{"update_id":1,"message":' * (d // 25) + "1" + "}" * (d // 25)).encode()),
    st.binary(max_size=64),
    st.text(max_size=80).map(str.encode),
    values.map(lambda v: json.dumps(v).encode()),
)


@pytest.fixture
async def hooks(settings, understanding):
    """Seamline with the Telegram webhook and the VK Callback API, against the fakes."""
    async with FakeTelegram() as telegram, FakeVk() as vk:
        server = Server(
            replace(
                settings,
                channels={
                    "telegram": dict(
                        token=TOKEN,
                        api_base=telegram.url,
                        webhook_url="http://127.0.0.1:9/telegram/webhook",
                        webhook_secret=WEBHOOK_SECRET,
                    ),
                    "vk": dict(
                        token=vk.token,
                        group_id=vk.group_id,
                        api_base=vk.url,
                        confirmation=CONFIRMATION,
                        secret=VK_SECRET,
                    ),
                },
            ),
            understanding,
        )
        await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                yield server, http, vk.group_id
        finally:
            await server.stop()


async def post(http, url: str, body: bytes, headers: dict | None = None) -> int:
    async with http.post(url, data=body, headers={"Content-Type": "application/json", **(headers or {})}) as response:
        await response.read()
        return response.status


def no_errors_logged(caplog) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [(r.name, r.getMessage()[:200]) for r in bad]


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(update=updates | values, raw=garbage)
async def test_no_telegram_webhook_body_gets_a_5xx_or_logs_an_error(hooks, caplog, update, raw):
    server, http, _ = hooks
    caplog.clear()
    caplog.set_level(logging.INFO)
    url, headers = f"{server.url}{WEBHOOK_PATH}", {SECRET_HEADER: WEBHOOK_SECRET}
    for body in (json.dumps(update).encode(), raw):
        assert await post(http, url, body, headers) in DOCUMENTED
    no_errors_logged(caplog)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(event=events | values, raw=garbage)
@example(event={"type": "message_new", "group_id": 0, "secret": "\ud800"}, raw=b"[]")  # found in CI: a 500
async def test_no_vk_callback_body_gets_a_5xx_or_logs_an_error(hooks, caplog, event, raw):
    server, http, group_id = hooks
    caplog.clear()
    caplog.set_level(logging.INFO)
    if isinstance(event, dict) and event.get("group_id") == 0:
        event["group_id"] = group_id
    for body in (json.dumps(event).encode(), raw):
        assert await post(http, f"{server.url}/vk/callback", body) in DOCUMENTED
    no_errors_logged(caplog)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'\xff\xfe{"update_id": 1}',
        b'{"update_id": 1, "message": ' * 4000 + b"1" + b"}" * 4000,
    ],
    ids=["nested-100000", "not-utf8", "nested-objects"],
)
async def test_malformed_bodies_get_400(hooks, caplog, body):
    server, http, _ = hooks
    assert await post(http, f"{server.url}{WEBHOOK_PATH}", body, {SECRET_HEADER: WEBHOOK_SECRET}) == 400
    assert await post(http, f"{server.url}/vk/callback", body) == 400
    no_errors_logged(caplog)


@pytest.mark.parametrize(
    "field,value",
    [
        ("group_id", "1"),
        ("object", []),
        ("event_id", {"a": 1}),
        ("event_id", "e\x00"),
        ("peer_id", {"a": 1}),
        ("from_id", "5"),
        ("type", 5),
    ],
)
async def test_vk_fields_of_the_wrong_type_get_400(hooks, caplog, field, value):
    server, http, group_id = hooks
    event = {
        "type": "message_new",
        "group_id": group_id,
        "secret": VK_SECRET,
        "event_id": "e1",
        "object": {"message": {"peer_id": 5, "from_id": 5, "text": "hi"}},
    }
    if field in ("peer_id", "from_id"):
        event["object"]["message"][field] = value
    else:
        event[field] = value
    assert await post(http, f"{server.url}/vk/callback", json.dumps(event).encode()) == 400
    no_errors_logged(caplog)


async def test_a_body_over_the_size_limit_gets_413(hooks, caplog):
    server, http, _ = hooks
    body = b'{"update_id": 1, "message": {"text": "' + b"a" * 2_000_000 + b'"}}'
    assert await post(http, f"{server.url}{WEBHOOK_PATH}", body, {SECRET_HEADER: WEBHOOK_SECRET}) == 413
    assert await post(http, f"{server.url}/vk/callback", body) == 413
    no_errors_logged(caplog)
