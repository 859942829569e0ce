"""The agent API (/api/v1) against a running Seamline: auth, reading, and what agents do.

Customers write through the pipeline with a recording Telegram adapter; agents use the HTTP API.
Every queue is made always open, so the tests do not depend on the clock (hours: test_routing.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re

import aiohttp
import pytest

from seamline.bots.app import SEAMLINE
from seamline.shared.message import Message

from tests.support import Recorder, eventually

PASSWORD = "correct horse battery"
_updates = itertools.count(1)


@pytest.fixture
async def seamline(server):
    seamline = server.app[SEAMLINE]
    handoff = seamline.handoff
    handoff.routing = dataclasses.replace(handoff.routing, queues={})  # every queue open, whatever the time
    return seamline


@pytest.fixture
def telegram(seamline) -> Recorder:
    adapter = Recorder()
    seamline.pipeline.register(adapter)
    return adapter


class Api:
    """One agent's view of the API."""

    def __init__(self, http: aiohttp.ClientSession, server, agent, token: str) -> None:
        self.http, self.base, self.agent, self.token = http, server.url + "/api/v1", agent, token

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, status: int = 200) -> dict:
        async with self.http.get(self.base + path, headers=self.headers) as response:
            body = await response.json()
            assert response.status == status, body
            return body

    async def post(self, path: str, body=None, status: int = 200) -> dict:
        async with self.http.post(
            self.base + path, json=body if body is not None else {}, headers=self.headers
        ) as response:
            data = await response.json()
            assert response.status == status, data
            return data


@pytest.fixture
def agent(seamline, http, server):
    emails = itertools.count(1)

    async def make(*, role: str = "agent", capacity: int = 5, queues=(), status: str | None = None) -> Api:
        email = f"agent{next(emails)}@example.com"
        created = await seamline.handoff.agents.add(
            email,
            name=email.split("@")[0].title(),
            password=PASSWORD,
            queues=list(queues),
            role=role,
            capacity=capacity,
        )
        async with http.post(
            server.url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD, "kind": "api"}
        ) as response:
            assert response.status == 200
            token = (await response.json())["token"]
        api = Api(http, server, created, token)
        if status:
            assert (await api.post("/me/status", {"status": status})) == {"status": status}
        return api

    return make


async def say(seamline, chat: str, text: str = "", payload: str | None = None):
    """The Telegram customer ``chat`` writes; returns what the pipeline handled."""
    return await seamline.pipeline.handle(
        Message(
            channel="telegram", address=chat, sender=chat, text=text, payload=payload, external_id=str(next(_updates))
        )
    )


async def escalated(seamline, chat: str, text: str = "I want to talk to a human") -> str:
    """A customer who asked for a person; returns the conversation id."""
    handled = await say(seamline, chat, text)
    conversation = await seamline.store.conversation(handled.inbound.conversation_id)
    assert conversation.state in ("queued", "with_agent")
    return conversation.id


# -- auth ------------------------------------------------------------------------------------------


async def test_login_gives_a_token_that_opens_the_api(agent):
    api = await agent()
    me = await api.get("/me")
    assert (me["email"], me["role"], me["load"]) == (api.agent.email, "agent", 0)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "agent1@example.com", "password": "wrong password!"},
        {"email": "nobody@example.com", "password": PASSWORD},
    ],
)
async def test_a_wrong_password_or_email_is_401(agent, http, server, body):
    await agent()
    async with http.post(server.url + "/api/v1/auth/login", json=body) as response:
        assert response.status == 401 and "token" not in await response.json()


async def test_guessing_passwords_is_stopped_for_that_email_and_address(agent, http, server):
    api, other = await agent(), await agent()

    async def login(email, password):
        async with http.post(server.url + "/api/v1/auth/login", json={"email": email, "password": password}) as r:
            return r.status, r.headers.get("Retry-After"), (await r.json()).get("error")

    for _ in range(6):  # 5 in the budget, one in the slow lane (handoff/login.py)
        assert (await login(api.agent.email, "not the password"))[0] == 401
    status, retry, error = await login(api.agent.email.upper(), PASSWORD)  # even the right one, for a moment
    assert status == 429 and 0 < int(retry) <= 30 and "too many failed logins" in error
    assert (await login(other.agent.email, PASSWORD))[0] == 200  # a colleague is not locked out


async def test_a_login_without_email_and_password_is_400(http, server):
    async with http.post(
        server.url + "/api/v1/auth/login", data="nope", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400


ENDPOINTS = [
    ("POST", "/auth/logout"),
    ("GET", "/me"),
    ("POST", "/me/status"),
    ("GET", "/queues"),
    ("GET", "/agents"),
    ("GET", "/conversations"),
    ("GET", "/conversations/x"),
    *[("POST", f"/conversations/x/{a}") for a in ("claim", "messages", "notes", "transfer", "release", "resolve")],
    ("GET", "/customers/x"),
    ("GET", "/customers/x/export"),
    ("DELETE", "/customers/x"),
    ("POST", "/links/x/undo"),
]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Cookie": "seamline_session=not-a-token"}]
)
async def test_every_endpoint_wants_a_valid_token(http, server, headers):
    for method, path in ENDPOINTS:
        async with http.request(
            method, server.url + "/api/v1" + path, json={"text": "hi", "status": "online"}, headers=headers
        ) as response:
            assert response.status == 401, (method, path, response.status)
            assert "error" in await response.json()


async def test_the_inbox_websocket_wants_a_valid_token(http, server):
    async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
        await ws.send_json({"type": "auth", "token": "not-a-token"})
        assert (await ws.receive_json(timeout=5))["type"] == "error"
        await ws.receive(timeout=5)
        assert ws.close_code == 4401


async def test_a_session_cookie_needs_the_csrf_header_to_change_anything(seamline, agent, http, server):
    api = await agent()
    async with http.post(
        server.url + "/api/v1/auth/login", json={"email": api.agent.email, "password": PASSWORD}
    ) as response:
        login = await response.json()
        assert response.status == 200 and login["csrf"]
        assert "seamline_session" in response.cookies and response.cookies["seamline_session"]["httponly"]
    cookie = {"Cookie": f"seamline_session={login['token']}"}
    async with http.get(server.url + "/api/v1/me", headers=cookie) as response:
        assert response.status == 200  # reading needs no CSRF token
    for headers in (cookie, {**cookie, "X-CSRF-Token": "wrong"}):
        async with http.post(server.url + "/api/v1/me/status", json={"status": "away"}, headers=headers) as r:
            assert r.status == 403
    assert (await seamline.handoff.agents.get(api.agent.id)).status == "offline"
    async with http.post(
        server.url + "/api/v1/me/status", json={"status": "away"}, headers={**cookie, "X-CSRF-Token": login["csrf"]}
    ) as response:
        assert response.status == 200
    assert (await seamline.handoff.agents.get(api.agent.id)).status == "away"


async def test_a_logged_out_token_is_dead(agent):
    api = await agent()
    await api.post("/auth/logout")
    await api.get("/me", status=401)


# -- reading ---------------------------------------------------------------------------------------


async def test_queues_are_listed_with_their_waiting_customers(seamline, telegram, agent):
    api = await agent()
    await escalated(seamline, "101")
    queues = {q["name"]: q for q in (await api.get("/queues"))["queues"]}
    assert {"support", "sales", "delivery", "vip"} <= set(queues)
    assert (queues["support"]["waiting"], queues["support"]["agents_online"], queues["support"]["open"]) == (1, 0, True)


async def test_waiting_conversations_are_listed_by_state(seamline, telegram, agent):
    api = await agent()
    conversation = await escalated(seamline, "102")
    listed = (await api.get("/conversations?state=queued"))["conversations"]
    assert [c["id"] for c in listed] == [conversation]
    assert listed[0]["customer"]["last_channel"] == "telegram" and listed[0]["queue"] == "support"
    assert (await api.get("/conversations?state=with_agent"))["conversations"] == []
    assert "state must be one of" in (await api.get("/conversations?state=waiting", status=400))["error"]


async def test_long_lists_come_in_pages(seamline, telegram, agent):
    api = await agent()
    waiting = [await escalated(seamline, str(150 + n)) for n in range(5)]
    first = await api.get("/conversations?state=queued&limit=2")
    second = await api.get(f"/conversations?state=queued&limit=2&offset={first['next_offset']}")
    last = await api.get(f"/conversations?state=queued&limit=2&offset={second['next_offset']}")
    assert "next_offset" not in last
    assert [c["id"] for page in (first, second, last) for c in page["conversations"]] == waiting  # first come first
    for bad in ("limit=0", "limit=1001", "limit=ten", "offset=-1"):
        assert "must be a whole number" in (await api.get(f"/conversations?{bad}", status=400))["error"]


async def test_the_context_of_a_conversation(seamline, telegram, agent):
    api = await agent()
    await say(seamline, "103", "where is my order 48213")
    conversation = await escalated(seamline, "103")
    context = await api.get(f"/conversations/{conversation}")
    assert (context["id"], context["state"], context["queue"]) == (conversation, "queued", "support")
    assert context["escalation"]["reason"] == "the customer asked for a person"
    assert context["escalation"]["reason_code"] == "asked_for_human"  # for a console in another language
    assert context["customer"]["identities"] == [{"channel": "telegram", "external_id": "103", "reachable": True}]
    customer = [m for m in context["messages"] if m["role"] == "customer"]
    assert [m["text"] for m in customer] == ["where is my order 48213", "I want to talk to a human"]
    for message in context["messages"]:
        assert message["channel"] == "telegram" and message["ts"] and message["text"]
    assert customer[0]["intent"] == "order_status" and 0 < customer[0]["confidence"] <= 1
    assert customer[0]["entities"][0]["value"] == "48213"
    assert customer[1]["intent"] == "human_agent"
    assert {m["role"] for m in context["messages"]} == {"customer", "bot"}
    assert isinstance(context["slots"], dict) and context["notes"] == []
    # The history reads as the customer saw it: the replies of one turn in the order they were sent
    assert [m["text"] for m in context["messages"] if m["role"] == "bot"] == telegram.texts("103")
    times = [m["ts"] for m in context["messages"]]
    assert times == sorted(times) and len(set(times)) == len(times)  # no two at the same instant: one order


async def test_an_unknown_conversation_is_404(agent):
    api = await agent()
    await api.get("/conversations/no-such-id", status=404)
    await api.post("/conversations/no-such-id/claim", status=404)


async def test_what_a_customer_writes_is_returned_verbatim(seamline, telegram, agent):
    api = await agent()
    text = '<script>alert("x")</script> & <b>operator</b>'
    conversation = await escalated(seamline, "104", text)
    async with api.http.get(f"{api.base}/conversations/{conversation}", headers=api.headers) as response:
        assert response.content_type == "application/json"
        context = await response.json()
    assert [m["text"] for m in context["messages"] if m["role"] == "customer"] == [text]


# -- agent actions ---------------------------------------------------------------------------------


async def test_claim_then_reply_reaches_the_customer_on_telegram(seamline, telegram, agent):
    api = await agent()
    conversation = await escalated(seamline, "201")
    claimed = await api.post(f"/conversations/{conversation}/claim")
    assert (claimed["state"], claimed["agent_id"]) == ("with_agent", api.agent.id)
    sent = len(telegram.sent)
    message = await api.post(f"/conversations/{conversation}/messages", {"text": "Hello, I am Agent1. How can I help?"})
    assert (message["role"], message["channel"]) == ("agent", "telegram")
    assert telegram.sent[sent:][-1][0] == "201"
    assert telegram.sent[-1][1].text == "Hello, I am Agent1. How can I help?"
    stored = (await seamline.store.history((await seamline.store.conversation(conversation)).customer_id))[-1]
    assert (stored.role, stored.text, stored.channel) == ("agent", "Hello, I am Agent1. How can I help?", "telegram")
    # while the agent holds it, the bot is silent
    sent = len(telegram.sent)
    await say(seamline, "201", "thanks, where is my order?")
    assert len(telegram.sent) == sent


async def test_another_agents_conversation_is_forbidden(seamline, telegram, agent):
    first, second = await agent(), await agent()
    conversation = await escalated(seamline, "202")
    await first.post(f"/conversations/{conversation}/claim")
    await second.post(f"/conversations/{conversation}/claim", status=403)
    await second.post(f"/conversations/{conversation}/messages", {"text": "mine now"}, status=403)
    await second.post(f"/conversations/{conversation}/resolve", status=403)
    await second.post(f"/conversations/{conversation}/transfer", {"queue": "sales"}, status=403)


async def test_a_reply_before_claiming_is_forbidden(seamline, telegram, agent):
    api = await agent()
    conversation = await escalated(seamline, "203")
    await api.post(f"/conversations/{conversation}/messages", {"text": "hi"}, status=403)


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "   "}, {"text": 5}, ["text"], {"text": "x" * 4097}])
async def test_a_bad_message_body_is_400(seamline, telegram, agent, body):
    api = await agent()
    conversation = await escalated(seamline, "204")
    await api.post(f"/conversations/{conversation}/claim")
    sent = len(telegram.sent)
    await api.post(f"/conversations/{conversation}/messages", body, status=400)
    assert len(telegram.sent) == sent


async def test_a_non_json_body_is_400(seamline, telegram, agent):
    api = await agent()
    conversation = await escalated(seamline, "205")
    await api.post(f"/conversations/{conversation}/claim")
    async with api.http.post(
        f"{api.base}/conversations/{conversation}/messages",
        data="text=hello",
        headers={**api.headers, "Content-Type": "application/json"},
    ) as response:
        assert response.status == 400 and "JSON" in (await response.json())["error"]
    async with api.http.post(
        f"{api.base}/conversations/{conversation}/messages", data="text=hello", headers=api.headers
    ) as response:  # not even said to be JSON
        assert response.status == 415 and "JSON" in (await response.json())["error"]


async def test_a_note_stays_with_the_agents(seamline, telegram, agent):
    api = await agent()
    conversation = await escalated(seamline, "206")
    await api.post(f"/conversations/{conversation}/claim")
    sent = len(telegram.sent)
    await api.post(f"/conversations/{conversation}/notes", {"text": "angry about order 48213, be gentle"})
    assert len(telegram.sent) == sent
    context = await api.get(f"/conversations/{conversation}")
    assert [(n["text"], n["agent"]) for n in context["notes"]] == [
        ("angry about order 48213, be gentle", api.agent.email)
    ]
    assert "angry about order" not in str(context["messages"])


async def test_transfer_to_a_queue_then_another_agent_claims(seamline, telegram, agent):
    first, second = await agent(), await agent()
    conversation = await escalated(seamline, "207")
    await first.post(f"/conversations/{conversation}/claim")
    moved = await first.post(f"/conversations/{conversation}/transfer", {"queue": "sales", "note": "wants a discount"})
    assert (moved["state"], moved["queue"], moved["agent_id"]) == ("transferred", "sales", None)
    await first.post(f"/conversations/{conversation}/messages", {"text": "still me"}, status=403)
    claimed = await second.post(f"/conversations/{conversation}/claim")
    assert (claimed["state"], claimed["agent_id"], claimed["queue"]) == ("with_agent", second.agent.id, "sales")
    assert [n["text"] for n in (await second.get(f"/conversations/{conversation}"))["notes"]] == ["wants a discount"]


async def test_transfer_to_an_unknown_queue_is_404_and_a_bad_body_400(seamline, telegram, agent):
    api = await agent()
    conversation = await escalated(seamline, "208")
    await api.post(f"/conversations/{conversation}/claim")
    await api.post(f"/conversations/{conversation}/transfer", {"queue": "nowhere"}, status=404)
    await api.post(f"/conversations/{conversation}/transfer", {"note": "to whom?"}, status=400)


async def test_release_gives_the_conversation_back_to_the_bot(seamline, telegram, agent):
    api = await agent()
    conversation = await escalated(seamline, "209")
    await api.post(f"/conversations/{conversation}/claim")
    released = await api.post(f"/conversations/{conversation}/release")
    assert (released["state"], released["agent_id"]) == ("bot", None)
    sent = len(telegram.sent)
    handled = await say(seamline, "209", "where is my order 48213")
    assert [r.role for r in handled.replies] == ["bot"] and len(telegram.sent) == sent + 1
    assert "48213" in telegram.sent[-1][1].text


async def test_resolve_asks_for_a_rating_and_records_it(seamline, telegram, agent):
    api = await agent()
    conversation = await escalated(seamline, "210")
    await api.post(f"/conversations/{conversation}/claim")
    resolved = await api.post(f"/conversations/{conversation}/resolve")
    assert resolved["state"] == "resolved"
    question = telegram.sent[-1][1]
    assert telegram.sent[-1][0] == "210"
    assert [b.payload for b in question.buttons] == [f"/rate {n}" for n in range(1, 6)]
    assert [b.title for b in question.buttons] == ["1", "2", "3", "4", "5"]
    handled = await say(seamline, "210", "5", payload="/rate 5")
    assert handled.inbound.conversation_id != conversation  # a new conversation with the bot
    csat = [e for e in await seamline.store.events(handled.inbound.customer_id) if e["kind"] == "csat"]
    assert [(e["conversation_id"], e["data"]) for e in csat] == [(conversation, {"score": 5})]
    await api.post(f"/conversations/{conversation}/messages", {"text": "one more thing"}, status=403)


async def test_the_wait_estimate_comes_from_how_long_people_take(seamline, telegram, agent):
    from datetime import timedelta

    from sqlalchemy import update

    from seamline.shared.message import utcnow
    from seamline.shared.storage.models import ConversationRow

    api = await agent(capacity=2)
    await api.post("/me/status", {"status": "online"})
    # Nothing measured yet: 4 minutes per customer ahead, per online agent
    for chat in ("230", "231", "232"):
        await escalated(seamline, chat)  # the first two are assigned at once: capacity 2
    assert "number 1" in telegram.texts("232")[-1] and "about 4 min" in telegram.texts("232")[-1]
    for chat in ("233", "234", "235"):
        await escalated(seamline, chat)
    while True:  # the agent works through everything: six conversations resolved
        for state in ("with_agent", "queued"):
            for conversation in (await api.get(f"/conversations?state={state}"))["conversations"]:
                if state == "queued":
                    await api.post(f"/conversations/{conversation['id']}/claim")
                await api.post(f"/conversations/{conversation['id']}/resolve")
        if not (await api.get("/conversations?state=queued"))["conversations"]:
            break
    now = utcnow()
    async with seamline.store.engine.begin() as conn:  # each took a person 30 minutes
        await conn.execute(
            update(ConversationRow)
            .where(ConversationRow.state == "resolved")
            .values(assigned_at=now - timedelta(minutes=31), closed_at=now - timedelta(minutes=1))
        )
    assert await seamline.handoff.handling_minutes("support") == 30
    # The agent is full again; the next customers wait: a place frees up every 30 / 2 minutes
    for chat in ("240", "241", "242", "243"):
        await escalated(seamline, chat)
    assert "number 1" in telegram.texts("242")[-1] and "about 15 min" in telegram.texts("242")[-1]
    assert "number 2" in telegram.texts("243")[-1] and "about 30 min" in telegram.texts("243")[-1]


async def test_after_hours_the_customer_is_told_when_people_are_back_and_a_callback_number_shows(
    seamline, telegram, agent
):
    from datetime import time as clock
    from datetime import timedelta

    from seamline.handoff.routing import Hours
    from seamline.shared.message import utcnow

    closed = Hours("UTC", tuple(((clock(0), clock(0)),) for _ in range(7)))  # opens at midnight, for no time
    seamline.handoff.routing = dataclasses.replace(seamline.handoff.routing, queues={"support": closed})
    api = await agent()
    await api.post("/me/status", {"status": "online"})  # online, but the queue is closed: not assigned
    before = utcnow()
    conversation = await escalated(seamline, "260")
    tomorrow = {(t + timedelta(days=1)).strftime("%d.%m") for t in (before, utcnow())}  # even at midnight
    told = telegram.texts("260")[-1]
    assert "away" in told and any(f"back at {day} 00:00 (UTC time)" in told for day in tomorrow)
    await say(seamline, "260", "please call me back at +7 916 123-45-67")
    waiting = (await api.get("/conversations?state=queued"))["conversations"]
    assert [c["id"] for c in waiting] == [conversation]
    assert waiting[0]["escalation"]["after_hours"] is True
    assert waiting[0]["escalation"]["callback"] == "+79161234567"
    context = await api.get(f"/conversations/{conversation}")
    assert context["customer"]["attributes"]["phone"] == "+79161234567"


async def test_a_customer_quiet_in_the_queue_for_a_day_is_back_with_the_bot(seamline, telegram, agent):
    from datetime import timedelta

    from sqlalchemy import update

    from seamline.shared.message import utcnow
    from seamline.shared.storage.models import ConversationRow, MessageRow

    api = await agent()
    stale, fresh = await escalated(seamline, "261"), await escalated(seamline, "262")
    long_ago = utcnow() - timedelta(hours=25)
    async with seamline.store.engine.begin() as conn:
        await conn.execute(update(MessageRow).where(MessageRow.conversation_id == stale).values(created_at=long_ago))
        await conn.execute(update(ConversationRow).where(ConversationRow.id == stale).values(queued_at=long_ago))
    assert await seamline.handoff.abandon_stale(timedelta(hours=24)) == 1
    assert (await api.get(f"/conversations/{stale}"))["state"] == "abandoned"
    assert [c["id"] for c in (await api.get("/conversations?state=queued"))["conversations"]] == [fresh]
    handled = await say(seamline, "261", "hello again")
    assert handled.inbound.conversation_id != stale and handled.replies  # a new conversation, the bot answers
    assert (await seamline.store.conversation(handled.inbound.conversation_id)).state == "bot"


async def test_an_agent_at_capacity_cannot_claim_more(seamline, telegram, agent):
    api = await agent(capacity=1)
    first, second = await escalated(seamline, "211"), await escalated(seamline, "212")
    await api.post(f"/conversations/{first}/claim")
    assert "capacity" in (await api.post(f"/conversations/{second}/claim", status=403))["error"]
    assert (await api.get("/me"))["load"] == 1


async def test_a_new_escalation_goes_to_the_least_busy_online_agent(seamline, telegram, agent):
    busy = await agent()
    await escalated(seamline, "213")
    await busy.post("/me/status", {"status": "online"})  # takes the waiting conversation
    assert (await busy.get("/me"))["load"] == 1
    idle = await agent(status="online")
    conversation = await escalated(seamline, "214")
    context = await idle.get(f"/conversations/{conversation}")
    assert (context["state"], context["agent_id"]) == ("with_agent", idle.agent.id)
    assert any("Agent" in t for t in telegram.texts("214")[-1:])  # told who took it
    again = await escalated(seamline, "215")  # both hold one now: either is fine, but never over capacity
    assert (await idle.get(f"/conversations/{again}"))["state"] == "with_agent"


async def test_an_agent_going_offline_requeues_what_they_held(seamline, telegram, agent):
    api = await agent(status="online")
    conversation = await escalated(seamline, "216")
    assert (await api.get(f"/conversations/{conversation}"))["agent_id"] == api.agent.id
    sent = len(telegram.sent)
    await api.post("/me/status", {"status": "offline"})
    context = await api.get(f"/conversations/{conversation}")
    assert (context["state"], context["agent_id"]) == ("queued", None)
    assert len(telegram.sent) == sent + 1  # the customer is told
    other = await agent(status="online")  # the next agent to come online gets it
    assert (await other.get(f"/conversations/{conversation}"))["agent_id"] == other.agent.id


async def test_logging_out_ends_the_open_inbox_socket_too(seamline, telegram, agent, http, server):
    api = await agent()
    async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
        await ws.send_json({"type": "auth", "token": api.token})
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await api.post("/auth/logout")
        assert (await ws.receive_json(timeout=5)) == {"type": "error", "error": "your session has ended: log in again"}
        assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await escalated(seamline, "219", "I want to talk to a human: my card was charged twice")
    await api.get("/me", status=401)


async def test_an_open_inbox_socket_keeps_its_agent_seen_and_ends_when_the_session_expires(
    seamline, agent, http, server, monkeypatch
):
    from datetime import timedelta

    from sqlalchemy import select, update

    from seamline.handoff import api as agent_api
    from seamline.shared.message import utcnow
    from seamline.shared.storage.models import AgentRow, AgentTokenRow

    monkeypatch.setattr(agent_api, "RECHECK_SECONDS", 0.1)
    agents = seamline.handoff.agents
    monkeypatch.setattr(agents, "SEEN_EVERY", 0.05)
    api = await agent(status="online")
    long_ago = utcnow() - timedelta(hours=1)
    engine = seamline.store.engine

    async def seen_at():
        async with engine.connect() as conn:
            return (await conn.execute(select(AgentRow.seen_at).where(AgentRow.id == api.agent.id))).scalar_one()

    async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
        await ws.send_json({"type": "auth", "token": api.token})
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        async with engine.begin() as conn:
            await conn.execute(update(AgentRow).where(AgentRow.id == api.agent.id).values(seen_at=long_ago))
        await eventually(lambda: _later(seen_at, long_ago))  # the socket alone marks the agent as here
        async with engine.begin() as conn:  # the session runs out while the console is open
            await conn.execute(
                update(AgentTokenRow)
                .where(AgentTokenRow.agent_id == api.agent.id)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        agents.forget()
        event = await ws.receive_json(timeout=5)
        while event["type"] != "error":
            event = await ws.receive_json(timeout=5)
        assert "log in again" in event["error"]


async def _later(read, than) -> bool:
    from seamline.shared.storage.sql import aware

    value = await read()
    return value is not None and aware(value) > than


async def test_an_agent_who_left_without_logging_out_is_set_offline_and_their_customers_requeued(
    seamline, telegram, agent, http, server
):
    from datetime import timedelta

    from seamline.shared.message import utcnow

    handoff, after = seamline.handoff, timedelta(minutes=5)
    gone, here = await agent(status="online", capacity=1), await agent(status="online", capacity=1)
    first, second = await escalated(seamline, "231"), await escalated(seamline, "232")
    holders = {(await gone.get(f"/conversations/{c}"))["agent_id"]: c for c in (first, second)}
    assert set(holders) == {gone.agent.id, here.agent.id}
    assert await handoff.set_gone_offline(after) == []  # both were seen just now
    async with http.ws_connect(server.url + "/api/v1/inbox") as ws:  # only `here` has a console open
        await ws.send_json({"type": "auth", "token": here.token})
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        sent = len(telegram.sent)
        later = utcnow() + timedelta(minutes=6)
        assert [a.email for a in await handoff.set_gone_offline(after, now=later)] == [gone.agent.email]
        lost = holders[gone.agent.id]
        context = await here.get(f"/conversations/{lost}")
        assert (context["state"], context["agent_id"]) == ("queued", None)  # `here` is full: it waits
        assert len(telegram.sent) == sent + 1  # and its customer is told
        kept = await here.get(f"/conversations/{holders[here.agent.id]}")
        assert (kept["state"], kept["agent_id"]) == ("with_agent", here.agent.id)
        statuses = {a.email: a.status for a in await handoff.agents.all()}
        assert (statuses[gone.agent.email], statuses[here.agent.email]) == ("offline", "online")


async def test_the_inbox_websocket_streams_customer_messages(seamline, telegram, agent, http, server):
    api = await agent()
    conversation = await escalated(seamline, "217")
    async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
        await ws.send_json({"type": "auth", "token": api.token})
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await say(seamline, "217", "hello? anyone?")
        while True:
            event = await ws.receive_json(timeout=5)
            if event["type"] == "message" and event["message"]["role"] == "customer":
                break
        assert (event["conversation_id"], event["message"]["text"]) == (conversation, "hello? anyone?")


async def test_while_an_agent_holds_it_the_customer_can_still_link_a_channel(seamline, telegram, agent, http, server):
    api = await agent()
    conversation = await escalated(seamline, "218")
    await api.post(f"/conversations/{conversation}/claim")
    await say(seamline, "218", "what did the bot understand here?")
    sent = len(telegram.sent)
    await say(seamline, "218", "link my account")
    code = re.search(r"\b(\d{6})\b", telegram.texts("218")[-1]).group(1)  # the bot answers just this
    assert len(telegram.sent) == sent + 1
    async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
        await ws.send_json({"type": "auth", "token": api.token})
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await seamline.pipeline.handle(
            Message(channel="web", address="visitor-218", sender="visitor-218", text=code, external_id="w-1")
        )
        yes = telegram.sent[-1][1].buttons[0]  # "Someone in the website chat wants to link ...": the customer says yes
        await say(seamline, "218", yes.title, yes.payload)
        events = [await ws.receive_json(timeout=5)]
        while events[-1]["type"] != "customer":
            events.append(await ws.receive_json(timeout=5))
    assert (events[-1]["conversation_id"], events[-1]["linked"]) == (conversation, "web")
    assert code not in str(events)  # never in clear
    context = await api.get(f"/conversations/{conversation}")
    assert context["state"] == "with_agent"
    assert {i["channel"] for i in context["customer"]["identities"]} >= {"telegram", "web"}
    silent = [m for m in context["messages"] if m["text"] == "what did the bot understand here?"][0]
    assert silent["intent"] and silent["confidence"] is not None  # understood, though the bot kept quiet


async def test_a_held_conversation_streams_to_its_agent_and_to_a_colleague_who_opens_it(
    seamline, telegram, agent, http, server
):
    olga, ivan = await agent(), await agent()
    conversation = await escalated(seamline, "219")
    await olga.post(f"/conversations/{conversation}/claim")

    async def inbox(api):
        ws = await http.ws_connect(server.url + "/api/v1/inbox")
        await ws.send_json({"type": "auth", "token": api.token})
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        return ws

    async def next_message(ws, timeout=5):
        while True:
            event = await ws.receive_json(timeout=timeout)
            if event["type"] == "message":
                return event["message"]["text"]

    hers, his = await inbox(olga), await inbox(ivan)
    try:
        await say(seamline, "219", "first, for Olga")
        assert await next_message(hers) == "first, for Olga"
        with pytest.raises(asyncio.TimeoutError):
            await next_message(his, timeout=0.5)  # not his conversation: not his traffic
        await his.send_json({"type": "watch", "conversation_id": conversation})  # he opens it
        await his.send_str("not json")  # ignored

        async def watching():
            return any(c.watching == conversation for c in seamline.handoff.inbox._subscribers.values())

        await eventually(watching)
        await say(seamline, "219", "second, Ivan is reading")
        assert await next_message(hers) == "second, Ivan is reading"
        assert await next_message(his) == "second, Ivan is reading"
    finally:
        await hers.close()
        await his.close()


async def test_the_agents_reply_follows_the_customer_to_the_channel_they_are_on(seamline, telegram, agent):
    from seamline.shared.errors import Unreachable

    class Web(Recorder):
        closed = False

        async def send(self, address, reply):
            if self.closed:
                raise Unreachable("no tab open")
            await super().send(address, reply)

    web = Web("web")
    seamline.pipeline.register(web)
    api = await agent()
    conversation = await escalated(seamline, "270")
    await api.post(f"/conversations/{conversation}/claim")
    await say(seamline, "270", "link my account")
    code = re.search(r"\b(\d{6})\b", telegram.texts("270")[-1]).group(1)
    await seamline.pipeline.handle(
        Message(channel="web", address="visitor-270", sender="visitor-270", text=code, external_id="w-270-1")
    )
    yes = telegram.sent[-1][1].buttons[0]  # linked once the customer says yes in Telegram
    await say(seamline, "270", yes.title, yes.payload)
    await seamline.pipeline.handle(
        Message(
            channel="web",
            address="visitor-270",
            sender="visitor-270",
            text="I'm on the website now",
            external_id="w-270-2",
        )
    )
    sent_to_telegram = len(telegram.sent)

    reply = await api.post(f"/conversations/{conversation}/messages", {"text": "I see you on the website"})
    assert reply["channel"] == "web" and web.texts("visitor-270")[-1] == "I see you on the website"
    assert len(telegram.sent) == sent_to_telegram  # not to the channel they left

    await say(seamline, "270", "back on my phone")  # the agent still holds it, whatever the channel
    assert (await api.get(f"/conversations/{conversation}"))["state"] == "with_agent"
    reply = await api.post(f"/conversations/{conversation}/messages", {"text": "Got it, answering here"})
    assert reply["channel"] == "telegram" and telegram.texts("270")[-1] == "Got it, answering here"

    await seamline.pipeline.handle(
        Message(
            channel="web",
            address="visitor-270",
            sender="visitor-270",
            text="one more thing from the site",
            external_id="w-270-3",
        )
    )
    web.closed = True  # ... and then they close the tab: the reply goes where they can still be reached
    await api.post(f"/conversations/{conversation}/messages", {"text": "Are you still there?"})
    assert telegram.texts("270")[-1] == "Are you still there?"
    identities = (await api.get(f"/conversations/{conversation}"))["customer"]["identities"]
    assert {(i["channel"], i["reachable"]) for i in identities} == {("telegram", True), ("web", False)}


# -- customers (admin) -----------------------------------------------------------------------------


async def test_only_an_admin_may_export_or_erase_a_customer(seamline, telegram, agent):
    api, admin = await agent(), await agent(role="admin")
    handled = await say(seamline, "301", "hello")
    customer = handled.inbound.customer_id
    assert (await api.get(f"/customers/{customer}"))["identities"][0]["external_id"] == "301"
    await api.get(f"/customers/{customer}/export", status=403)
    async with api.http.delete(f"{api.base}/customers/{customer}", headers=api.headers) as response:
        assert response.status == 403
    exported = await admin.get(f"/customers/{customer}/export")
    assert exported["customer"]["id"] == customer and "hello" in str(exported)
    await admin.get("/customers/no-such-customer/export", status=404)


async def test_escalations_at_the_same_time_respect_capacity(seamline, telegram, agent):
    first, second = await agent(capacity=1, status="online"), await agent(capacity=1, status="online")
    conversations = await asyncio.gather(*[escalated(seamline, str(chat)) for chat in (401, 402, 403)])
    holders = [(await first.get(f"/conversations/{c}"))["agent_id"] for c in conversations]
    assert sorted(h for h in holders if h) == sorted([first.agent.id, second.agent.id]), (holders, first.agent.id)
    assert holders.count(None) == 1  # the third waits in the queue


async def test_an_admin_sets_a_colleague_offline_and_their_customers_go_back_to_the_queue(seamline, telegram, agent):
    admin, olga = await agent(role="admin"), await agent(status="online")
    conversation = await escalated(seamline, "241")
    assert (await olga.get(f"/conversations/{conversation}"))["agent_id"] == olga.agent.id
    await olga.post(f"/agents/{admin.agent.id}/status", {"status": "offline"}, status=403)  # admins only
    await admin.post(f"/agents/{olga.agent.id}/status", {"status": "asleep"}, status=400)
    await admin.post("/agents/no-such-agent/status", {"status": "offline"}, status=404)
    assert await admin.post(f"/agents/{olga.agent.id}/status", {"status": "offline"}) == {
        "id": olga.agent.id,
        "status": "offline",
    }
    context = await admin.get(f"/conversations/{conversation}")
    assert (context["state"], context["agent_id"]) == ("queued", None)
    team = {a["email"]: (a["status"], a["load"]) for a in (await admin.get("/agents"))["agents"]}
    assert team[olga.agent.email] == ("offline", 0)


async def test_an_agent_an_admin_sets_online_is_not_thereby_seen(seamline, telegram, agent):
    from datetime import timedelta

    from sqlalchemy import update

    from seamline.shared.message import utcnow
    from seamline.shared.storage.models import AgentRow

    admin, absent = await agent(role="admin"), await agent()
    async with seamline.store.engine.begin() as conn:  # they were last here an hour ago
        await conn.execute(
            update(AgentRow).where(AgentRow.id == absent.agent.id).values(seen_at=utcnow() - timedelta(hours=1))
        )
    await admin.post(f"/agents/{absent.agent.id}/status", {"status": "online"})
    # Being set online by someone else is not being here: the next sweep sets them offline again.
    gone = await seamline.handoff.set_gone_offline(timedelta(minutes=5))
    assert [a.email for a in gone] == [absent.agent.email]
