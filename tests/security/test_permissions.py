"""Who may read and act on what (docs/handoff.md): two agents with different skills, a sales-only
agent and a support agent, on a support conversation; an admin may do everything. Each refusal is
403 with a reason. Texts an agent sends (reply, note, transfer note) are bounded."""

from __future__ import annotations

import asyncio
import json

from tests.handoff.test_api import escalated, say
from tests.support import eventually


async def test_a_sales_only_agent_cannot_act_on_a_waiting_support_conversation(seamline, telegram, agent):
    sales = await agent(queues=["sales"])
    conversation = await escalated(seamline, "7101")  # the default queue: support
    assert (await seamline.store.conversation(conversation)).queue == "support"
    for action in ("resolve", "release", "claim"):
        refused = await sales.post(f"/conversations/{conversation}/{action}", status=403)
        assert "support" in refused["error"] and "skills" in refused["error"]
    refused = await sales.post(f"/conversations/{conversation}/notes", {"text": "closing this"}, status=403)
    assert "skills" in refused["error"]
    assert (await seamline.store.conversation(conversation)).state == "queued"


async def test_a_sales_only_agent_cannot_read_a_support_conversation(seamline, telegram, agent):
    sales, support = await agent(queues=["sales"]), await agent(queues=["support"])
    conversation = await escalated(seamline, "7102", "I want a human, my card 4242 was charged twice")
    refused = await sales.get(f"/conversations/{conversation}", status=403)
    assert "skills" in refused["error"]
    for state in ("", "?state=queued"):
        listed = await sales.get(f"/conversations{state}")
        assert conversation not in [c["id"] for c in listed["conversations"]]
    context = await support.get(f"/conversations/{conversation}")
    assert any("4242" in m["text"] for m in context["messages"])
    assert conversation in [c["id"] for c in (await support.get("/conversations?state=queued"))["conversations"]]


async def test_the_agent_with_the_skill_claims_and_replies_and_the_other_cannot_act(seamline, telegram, agent):
    sales, support = await agent(queues=["sales"]), await agent(queues=["support"])
    conversation = await escalated(seamline, "7103")
    await support.post(f"/conversations/{conversation}/claim")
    await support.post(f"/conversations/{conversation}/messages", {"text": "Hi, looking into it"})
    for action, body in (
        ("messages", {"text": "hi"}),
        ("transfer", {"queue": "sales"}),
        ("release", None),
        ("resolve", None),
        ("notes", {"text": "x"}),
    ):
        assert "error" in await sales.post(f"/conversations/{conversation}/{action}", body, status=403)
    await support.post(f"/conversations/{conversation}/resolve")


async def test_a_conversation_transferred_to_an_agent_by_name_is_theirs_whatever_their_skills(
    seamline, telegram, agent
):
    sales, support = await agent(queues=["sales"]), await agent(queues=["support"])
    conversation = await escalated(seamline, "7104")
    await support.post(f"/conversations/{conversation}/claim")
    await support.post(f"/conversations/{conversation}/transfer", {"agent": sales.agent.email, "note": "a sale"})
    assert (await sales.get(f"/conversations/{conversation}"))["notes"][-1]["text"] == "a sale"
    await sales.post(f"/conversations/{conversation}/claim")
    await sales.post(f"/conversations/{conversation}/messages", {"text": "Hello from sales"})
    assert "Hello from sales" in telegram.texts("7104")


async def test_an_admin_may_read_and_act_on_any_conversation(seamline, telegram, agent):
    admin = await agent(role="admin", queues=["sales"])
    conversation = await escalated(seamline, "7105")
    await admin.get(f"/conversations/{conversation}")
    await admin.post(f"/conversations/{conversation}/notes", {"text": "seen"})
    await admin.post(f"/conversations/{conversation}/resolve")


async def test_a_console_cannot_watch_a_conversation_outside_its_agents_skills(seamline, telegram, agent, http, server):
    sales, support = await agent(queues=["sales"]), await agent(queues=["support"])
    conversation = await escalated(seamline, "7106")
    await support.post(f"/conversations/{conversation}/claim")
    inbox, watched = seamline.handoff.inbox, []
    real_watch = inbox.watch
    inbox.watch = lambda queue, conversation_id: (watched.append(conversation_id), real_watch(queue, conversation_id))
    try:
        async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
            await ws.send_json({"type": "auth", "token": sales.token})
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            await ws.send_json({"type": "watch", "conversation_id": conversation})
            await eventually(lambda: _done(watched))
            await say(seamline, "7106", "my password is hunter2")
            sentinel = await escalated(seamline, "7107")  # every console hears of a new waiting customer
            seen = []
            while True:
                event = await ws.receive_json(timeout=5)
                seen.append(event)
                if event.get("type") == "conversation" and event["conversation"]["id"] == sentinel:
                    break
    finally:
        inbox.watch = real_watch
    assert watched == [None]
    assert not [e for e in seen if e.get("type") == "message" and e.get("conversation_id") == conversation]


async def _done(watched) -> bool:
    await asyncio.sleep(0)
    return bool(watched)


async def test_replies_notes_and_transfer_notes_are_bounded(seamline, telegram, agent):
    support = await agent(queues=["support"])
    conversation = await escalated(seamline, "7108")
    await support.post(f"/conversations/{conversation}/claim")
    huge = "x" * 900_000
    for action, body in (
        ("messages", {"text": huge}),
        ("notes", {"text": huge}),
        ("transfer", {"queue": "sales", "note": huge}),
    ):
        refused = await support.post(f"/conversations/{conversation}/{action}", body, status=400)
        assert "longer than 4096 characters" in refused["error"]
    context = await support.get(f"/conversations/{conversation}")
    assert context["state"] == "with_agent" and not context["notes"]
    await support.post(f"/conversations/{conversation}/transfer", {"queue": "sales", "note": "y" * 4096})


async def test_what_is_said_in_a_waiting_conversation_reaches_only_consoles_with_its_skill(make_inbox):
    inbox = await make_inbox()
    sales, support, generalist = (
        inbox.subscribe("s", skills=("sales",)),
        inbox.subscribe("p", skills=("support",)),
        inbox.subscribe("g"),
    )
    await inbox.publish({"type": "message", "conversation_id": "c1", "text": "my card 4242"}, queue="support")
    await inbox.publish({"type": "conversation", "conversation": {"id": "c2"}})  # a state change: everyone
    for console in (support, generalist):
        assert [json.loads(await asyncio.wait_for(console.get(), 5))["type"] for _ in range(2)] == [
            "message",
            "conversation",
        ]
    assert json.loads(await asyncio.wait_for(sales.get(), 5))["type"] == "conversation" and sales.empty()


async def test_a_sales_console_does_not_receive_a_waiting_support_customers_messages(
    seamline, telegram, agent, http, server
):
    sales, support = await agent(queues=["sales"]), await agent(queues=["support"])
    conversation = await escalated(seamline, "7109")
    heard = {}
    for api in (sales, support):
        async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
            await ws.send_json({"type": "auth", "token": api.token})
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            await say(seamline, "7109", f"my address is 1 Main St, for {api.agent.email}")
            sentinel = await escalated(seamline, f"7110{api.agent.email}")
            heard[api] = []
            while (event := await ws.receive_json(timeout=5)).get("conversation", {}).get("id") != sentinel:
                heard[api].append(event)
    said = [e for e in heard[support] if e.get("type") == "message" and e["conversation_id"] == conversation]
    assert said and "1 Main St" in said[0]["message"]["text"]
    assert not [e for e in heard[sales] if e.get("conversation_id") == conversation]


async def test_a_customers_profile_is_for_agents_who_may_read_one_of_their_conversations(seamline, telegram, agent):
    sales, support, admin = await agent(queues=["sales"]), await agent(queues=["support"]), await agent(role="admin")
    conversation = await escalated(seamline, "7111")
    customer = (await seamline.store.conversation(conversation)).customer_id
    assert "skills" in (await sales.get(f"/customers/{customer}", status=403))["error"]
    for api in (support, admin):
        assert (await api.get(f"/customers/{customer}"))["identities"][0]["external_id"] == "7111"
