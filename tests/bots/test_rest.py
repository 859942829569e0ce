"""The Rasa-compatible REST channel (bots/rest.py) through a real HTTP client: Rasa's request and
answer shapes, payloads, refusals (400/401/413/415/429), resends, linking to a Telegram customer and
an agent's reply waiting in the mailbox."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace

import aiohttp
import pytest
from aiohttp import web

from seamline.bots.app import build
from seamline.bots.rest import RestChannel
from seamline.bots.rest_replies import rasa_items
from seamline.shared.channel import ChannelContext
from seamline.shared.errors import ConfigError
from seamline.shared.message import Button, Message, Reply

from tests.support import Recorder

TOKEN = "rest-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Rest:
    url: str
    http: aiohttp.ClientSession
    seamline: object
    telegram: Recorder

    async def post(self, body, *, headers=AUTH, **kwargs) -> tuple[int, object, aiohttp.typedefs.LooseHeaders]:
        async with self.http.post(f"{self.url}/webhooks/rest/webhook", json=body, headers=headers, **kwargs) as r:
            return r.status, await r.json(), r.headers

    async def say(self, sender: str, message: str | None, **metadata) -> list[dict]:
        body = {"sender": sender, "message": message, **({"metadata": metadata} if metadata else {})}
        status, answer, _ = await self.post(body)
        assert status == 200, answer
        return answer


async def serve(settings, understanding, *, extras=None, **config):
    """The REST channel (with ``config``) on a port of its own, beside a recording Telegram adapter."""
    seamline = await build(settings, understanding=understanding)
    telegram = Recorder()
    seamline.pipeline.register(telegram)
    channel = RestChannel(
        config={"token": TOKEN, **config},
        context=ChannelContext(
            conversations=seamline.pipeline, limiter=seamline.limiter, data_dir=settings.data_dir, extras=extras or {}
        ),
    )
    seamline.pipeline.register(channel)
    app = web.Application()
    app.add_routes(channel.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    await channel.start()
    return seamline, telegram, runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def make_rest(settings, understanding):
    opened = []

    async def make(changed_settings=None, **config) -> Rest:
        seamline, telegram, runner, url = await serve(changed_settings or settings, understanding, **config)
        http = aiohttp.ClientSession()
        opened.append((seamline, runner, http))
        return Rest(url, http, seamline, telegram)

    yield make
    for seamline, runner, http in opened:
        await http.close()
        await runner.cleanup()
        await seamline.close()


@pytest.fixture
async def rest(make_rest) -> Rest:
    return await make_rest()


# -- Rasa's shapes ----------------------------------------------------------------------------------


async def test_a_message_is_answered_with_rasas_array_of_bot_messages_with_buttons(rest):
    answer = await rest.say("user-1", "hello")
    assert len(answer) == 1
    assert answer[0]["recipient_id"] == "user-1" and "person" in answer[0]["text"].lower()
    assert {"title": "Talk to a person", "payload": "/human_agent"} in answer[0]["buttons"]
    assert set(answer[0]) == {"recipient_id", "text", "buttons"}  # no nulls, as Rasa leaves them out


async def test_a_reply_without_buttons_has_no_buttons_key(rest):
    answer = await rest.say("user-2", "what are your opening hours")
    assert [set(item) for item in answer] == [{"recipient_id", "text"}]


async def test_several_replies_to_one_message_come_back_as_several_items_in_order(rest):
    answer = await rest.say("user-3", "/human_agent")  # a payload, as a Rasa button press sends it
    assert len(answer) >= 2
    assert "person" in answer[0]["text"].lower()
    assert all(item["recipient_id"] == "user-3" for item in answer)
    history = await rest.seamline.pipeline.history("rest", "user-3")
    said = [m.text for m in history if m.direction == "out"]
    assert [item["text"] for item in answer] == said  # what was answered is what was stored, in order


async def test_a_payload_message_triggers_its_intent_and_is_stored_without_arguments(rest):
    answer = await rest.say("user-4", "/delivery_info")
    assert "deliver" in answer[0]["text"].lower()
    inbound = [m for m in await rest.seamline.pipeline.history("rest", "user-4") if m.direction == "in"]
    assert inbound[0].payload == "/delivery_info"


async def test_health_answers_like_rasa(rest):
    async with rest.http.get(f"{rest.url}/webhooks/rest/") as r:
        assert r.status == 200 and await r.json() == {"status": "ok"}


def test_image_and_custom_are_shown_as_rasa_shows_them():
    # Rasa's CollectingOutputChannel: text (with its buttons), then custom, then image, each its own item
    reply = Reply("look", (Button("Yes", "/affirm"),), image="https://x/y.png", custom={"k": 1})
    assert rasa_items("u", reply) == [
        {"recipient_id": "u", "text": "look", "buttons": [{"title": "Yes", "payload": "/affirm"}]},
        {"recipient_id": "u", "custom": {"k": 1}},
        {"recipient_id": "u", "image": "https://x/y.png"},
    ]


def test_a_text_without_buttons_is_cut_at_blank_lines_as_rasa_does():
    assert rasa_items("u", Reply("One.\n\nTwo.\nStill two.")) == [
        {"recipient_id": "u", "text": "One."},
        {"recipient_id": "u", "text": "Two.\nStill two."},
    ]
    assert rasa_items("u", Reply("", image="https://x/only.png")) == [
        {"recipient_id": "u", "image": "https://x/only.png"}
    ]


def test_an_image_that_is_not_an_http_url_is_never_answered():
    for bad in ("javascript:alert(1)", "data:image/png;base64,AAAA", "/relative.png", "https://x/a b.png"):
        assert rasa_items("u", Reply("hi", image=bad)) == [{"recipient_id": "u", "text": "hi"}]


# -- the message is stored first, resends are answered once --------------------------------------


async def test_a_resent_message_id_gets_the_same_answer_and_is_stored_once(rest):
    first = await rest.say("user-5", "how much is delivery", message_id="m-1")
    again = await rest.say("user-5", "how much is delivery", message_id="m-1")
    assert again == first
    history = await rest.seamline.pipeline.history("rest", "user-5")
    assert [m.direction for m in history].count("in") == 1


async def test_the_same_message_id_from_two_senders_is_two_messages(rest):
    await rest.say("user-6", "hello", message_id="1")
    assert await rest.say("user-7", "hello", message_id="1")  # not taken for a resend
    assert len(await rest.seamline.pipeline.history("rest", "user-7")) == 2


# -- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"message": "hi"}, "sender"),
        ({"sender": "", "message": "hi"}, "sender"),
        ({"sender": "x" * 129, "message": "hi"}, "sender"),
        ({"sender": ["a"], "message": "hi"}, "sender"),
        ({"sender": "a", "message": "x" * 4097}, "longer than 4096"),
        ({"sender": "a", "message": 5}, "message must be a string"),
        ({"sender": "a", "message": "hi", "metadata": "x"}, "metadata must be a JSON object"),
        ({"sender": "a", "message": "hi", "metadata": {"message_id": {"x": 1}}}, "message_id"),
        (["sender", "a"], "JSON object"),
    ],
)
async def test_a_malformed_request_is_a_400_with_the_reason(rest, body, reason):
    status, answer, _ = await rest.post(body)
    assert status == 400 and reason in answer["error"]


async def test_invalid_json_and_deep_nesting_are_400_not_500(rest):
    for data in (b"{not json", b"[" * 50_000, b"\xff\xfe"):
        async with rest.http.post(
            f"{rest.url}/webhooks/rest/webhook", data=data, headers={**AUTH, "Content-Type": "application/json"}
        ) as r:
            assert r.status in (400, 413) and "error" in await r.json()


async def test_a_body_that_is_not_json_is_415_and_a_huge_one_413(rest):
    async with rest.http.post(f"{rest.url}/webhooks/rest/webhook", data="sender=a&message=hi", headers=AUTH) as r:
        assert r.status == 415 and "JSON" in (await r.json())["error"]
    status, answer, _ = await rest.post({"sender": "a", "message": "hi", "metadata": {"pad": "x" * 70_000}})
    assert status == 413 and "larger" in answer["error"]


async def test_without_the_token_nothing_is_stored(rest):
    for headers, query in [
        ({}, ""),
        ({"Authorization": "Bearer wrong-token-0123456789"}, ""),
        ({}, "?token=wrong"),
        ({"Authorization": f"Basic {TOKEN}"}, ""),
    ]:
        async with rest.http.post(
            f"{rest.url}/webhooks/rest/webhook{query}", json={"sender": "a", "message": "hi"}, headers=headers
        ) as r:
            assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
            assert "token" in (await r.json())["error"]
    assert await rest.seamline.store.find_customer("rest", "a") is None


async def test_the_token_may_come_in_the_query_like_rasas_http_api(rest):
    status, answer, _ = await rest.post({"sender": "q", "message": "hello"}, headers={}, params={"token": TOKEN})
    assert status == 200 and answer[0]["recipient_id"] == "q"


async def test_a_sender_over_its_budget_gets_429_with_retry_after(make_rest):
    rest = await make_rest(rate_limit=2)
    await rest.say("fast", "hello")
    await rest.say("fast", "thanks")
    status, answer, headers = await rest.post({"sender": "fast", "message": "again"})
    assert status == 429 and int(headers["Retry-After"]) >= 1 and "sender" in answer["error"]
    assert await rest.say("other", "hello")  # other senders are not held up


async def test_an_address_over_its_budget_gets_429_even_without_a_token(make_rest):
    rest = await make_rest(address_rate_limit=3)
    for _ in range(3):
        await rest.post({"sender": "a", "message": "hi"}, headers={})
    status, answer, headers = await rest.post({"sender": "a", "message": "hi"})
    assert status == 429 and "Retry-After" in headers and "address" in answer["error"]


def test_the_channel_refuses_to_start_open_to_anyone_unless_told(settings):
    context = ChannelContext(conversations=None, limiter=None, data_dir=settings.data_dir)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as error:
        RestChannel(config={"allow_anonymous": False}, context=context)
    assert error.value.setting == "SEAMLINE_REST_TOKEN" and "SEAMLINE_REST_ALLOW_ANONYMOUS" in error.value.fix
    assert RestChannel(config={"allow_anonymous": True}, context=context)


def test_a_short_token_is_refused_by_its_setting():
    token = next(s for s in RestChannel.settings if s.key == "token")
    with pytest.raises(ValueError, match="shorter than 16"):
        token.parse("secret")
    assert token.secret and token.enables


async def test_anonymous_mode_serves_requests_without_a_token(make_rest):
    rest = await make_rest(token=None, allow_anonymous=True)
    status, answer, _ = await rest.post({"sender": "anon", "message": "hello"}, headers={})
    assert status == 200 and answer[0]["recipient_id"] == "anon"


def test_to_message_is_pure_and_reads_rasas_body():
    channel = RestChannel(config={"token": TOKEN}, context=None)  # type: ignore[arg-type]
    message = channel.to_message({"sender": 42, "message": " /link_yes abc ", "metadata": {"language": "ru"}})
    assert message == Message(
        channel="rest",
        address="42",
        sender="42",
        text="/link_yes",
        payload="/link_yes abc",
        language="ru",
        ts=message.ts,
    )
    assert channel.to_message({"sender": "a", "message": None}) is None  # a poll for waiting replies
    assert channel.to_message({"sender": "a", "message": "/" + "x" * 300}).payload is None  # too long: text


# -- replies outside a request --------------------------------------------------------------------


async def agent_replies(seamline, sender: str, text: str) -> None:
    """Olga (an admin) takes the sender's conversation, if nobody has, and writes ``text``."""
    customer = await seamline.store.find_customer("rest", sender)
    conversation = (await seamline.sessions.load(customer.id)).conversation_id
    agent = await seamline.handoff.agents.by_email("olga@shop.example") or await seamline.handoff.agents.add(
        "olga@shop.example", name="Olga", password="a long pass phrase 42", queues=[], role="admin"
    )
    await seamline.handoff.claim(agent, conversation)
    await seamline.handoff.reply(agent, conversation, text)


async def test_an_agents_reply_waits_in_the_mailbox_and_comes_first_in_the_next_answer(rest):
    await rest.say("waiting", "talk to a person")
    await agent_replies(rest.seamline, "waiting", "Hello, Olga here. Let me check.")
    answer = await rest.say("waiting", None)  # a poll: no message, only what waits
    texts = [item["text"] for item in answer]
    assert texts[-1] == "Hello, Olga here. Let me check." and any("Olga" in t for t in texts[:-1])
    assert await rest.say("waiting", None) == []  # taken once
    await agent_replies(rest.seamline, "waiting", "Your order ships tomorrow.")
    answer = await rest.say("waiting", "thank you")
    assert answer[0]["text"] == "Your order ships tomorrow."  # waiting replies come before the new turn's


# -- linking --------------------------------------------------------------------------------------


async def test_a_rest_sender_links_to_a_telegram_customer_with_a_code(rest):
    await rest.seamline.pipeline.handle(
        Message(channel="telegram", address="900", sender="900", text="where is my order", external_id="1")
    )
    await rest.seamline.pipeline.handle(
        Message(channel="telegram", address="900", sender="900", text="48213", external_id="2")
    )
    answer = await rest.say("app-user", "link my account")  # one other channel: the code is for it
    code = re.search(r"\b(\d{6})\b", answer[0]["text"]).group(1)
    await rest.seamline.pipeline.handle(
        Message(channel="telegram", address="900", sender="900", text=code, external_id="3")
    )
    # The REST sender issued the code, so it is asked to confirm; it has no request open: the mailbox.
    question = (await rest.say("app-user", None))[-1]
    yes = question["buttons"][0]
    assert yes["payload"].startswith("/link_yes ")
    answer = await rest.say("app-user", yes["payload"])  # the client sends the button's payload, as in Rasa
    assert "linked" in " ".join(item["text"] for item in answer).lower()
    assert (await rest.seamline.store.find_customer("rest", "app-user")).id == (
        await rest.seamline.store.find_customer("telegram", "900")
    ).id
    history = await rest.seamline.pipeline.history("rest", "app-user")
    assert "48213" in [m.text for m in history if m.channel == "telegram"]
    assert not any(yes["payload"] in (m.text or "") for m in history)  # the reference is not stored in clear


async def test_concurrent_senders_each_get_only_their_own_answers(rest):
    answers = await asyncio.gather(*(rest.say(f"c{n}", "hello") for n in range(8)))
    for n, answer in enumerate(answers):
        assert answer and all(item["recipient_id"] == f"c{n}" for item in answer)


async def test_a_storage_outage_is_a_503_with_retry_after_and_the_resend_is_answered(rest, monkeypatch):
    sessions = rest.seamline.pipeline._sessions
    real_lock, failed = sessions.lock, []

    def lock(key):  # Redis or the database down for one turn
        if not failed:
            failed.append(key)
            from seamline.shared.errors import StoreError

            raise StoreError("Redis failed locking session: connection refused")
        return real_lock(key)

    monkeypatch.setattr(sessions, "lock", lock)
    status, answer, headers = await rest.post({"sender": "down", "message": "hello", "metadata": {"message_id": "7"}})
    assert status == 503 and headers["Retry-After"] == "5" and "send it again" in answer["error"]
    assert (await rest.say("down", "hello", message_id="7"))[0]["recipient_id"] == "down"


async def test_on_postgresql_and_redis_the_budget_is_shared_and_answers_hold(
    make_rest, settings, postgres_url, redis_url
):
    rest = await make_rest(replace(settings, database_url=postgres_url, redis_url=redis_url), rate_limit=1)
    assert (await rest.say("pg", "hello"))[0]["recipient_id"] == "pg"
    status, _, headers = await rest.post({"sender": "pg", "message": "hello"})
    assert status == 429 and "Retry-After" in headers


# -- through the framework's registry (seamline run) ------------------------------------------------


async def test_the_app_serves_the_rest_channel_once_its_token_is_set(make_server, settings):
    server = await make_server(settings, environ={"SEAMLINE_REST_TOKEN": TOKEN})
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/webhooks/rest/webhook", json={"sender": "s", "message": "hello"}, headers=AUTH
        ) as r:
            assert r.status == 200 and (await r.json())[0]["recipient_id"] == "s"
        async with http.get(f"{server.url}/api/v1/channels") as r:
            listed = {c["name"]: c for c in (await r.json())["channels"]}
        assert listed["rest"]["labels"]["en"] == "App chat"


async def test_without_a_token_the_app_serves_no_rest_endpoint(server):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/webhooks/rest/webhook", json={"sender": "s", "message": "hi"}) as r:
            assert r.status == 404


@pytest.mark.parametrize(
    "environ, problem",
    [
        ({"SEAMLINE_REST_ALLOW_ANONYMOUS": "false"}, "no token"),
        ({"SEAMLINE_REST_TOKEN": "short"}, "shorter than 16"),
        ({"SEAMLINE_REST_TOKEN": TOKEN, "SEAMLINE_REST_RATE_LIMIT": "many"}, "not a whole number"),
    ],
)
async def test_a_wrong_rest_setting_stops_the_app_naming_it(make_server, settings, environ, problem):
    with pytest.raises(ConfigError) as error:
        await make_server(settings, environ=environ)
    assert error.value.setting.startswith("SEAMLINE_REST_") and problem in error.value.problem


async def test_whatever_a_client_posts_the_answer_is_never_a_500(rest):
    """Random bodies, as an attacker's script would post them: every answer is one of the documented ones."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    )
    bodies = (
        st.fixed_dictionaries(
            {},
            optional={
                "sender": values | st.text(min_size=1, max_size=130),
                "message": values | st.text(max_size=60),
                "metadata": values | st.dictionaries(st.sampled_from(["message_id", "language", "x"]), values),
            },
        )
        | values
    )
    statuses: list[int] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bodies)
    def check(body) -> None:
        statuses.append(asyncio.run_coroutine_threadsafe(rest.post(body), loop).result(timeout=30)[0])

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(check)
    assert set(statuses) <= {200, 400, 413, 415} and 400 in statuses and 200 in statuses  # 415: json=None sends no body


async def test_without_a_mailbox_an_agents_reply_goes_to_the_customers_other_channel(make_rest):
    rest = await make_rest(mailbox=0)
    telegram = rest.telegram
    await rest.seamline.pipeline.handle(
        Message(channel="telegram", address="901", sender="901", text="link my account", external_id="11")
    )
    code = re.search(r"\b(\d{6})\b", telegram.sent[-1][1].text).group(1)  # for the one other channel: rest
    assert "waiting for confirmation" in (await rest.say("app-2", code))[0]["text"].lower()
    question = next(r for a, r in reversed(telegram.sent) if a == "901" and r.buttons)
    await rest.seamline.pipeline.handle(
        Message(
            channel="telegram",
            address="901",
            sender="901",
            text="Yes",
            payload=question.buttons[0].payload,
            external_id="12",
        )
    )
    await rest.say("app-2", "talk to a person")  # now the customer was last on REST
    await agent_replies(rest.seamline, "app-2", "Olga here: your parcel left today.")
    assert ("901", "Olga here: your parcel left today.") in [(a, r.text) for a, r in telegram.sent]
    assert await rest.say("app-2", None) == []  # nothing kept back for a poll


async def test_the_language_hint_picks_the_reply_language_and_an_unknown_one_falls_back(rest):
    assert "заказ" in (await rest.say("ru-user", "привет", language="ru"))[0]["text"].lower()
    assert (await rest.say("de-user", "hello", language="de"))[0]["text"]  # no German responses: English
