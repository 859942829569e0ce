"""Issue 13 on two real ``seamline run`` workers sharing PostgreSQL and Redis.

- Cross-worker delivery: the customer on worker A, the agent on worker B. The agent logs in on B,
  takes the conversation and answers there; the customer's widget socket open on A (or the
  Telegram customer whose updates reach A's webhook) gets the answer once, and what the customer
  writes next through A shows live in the agent's console on B.
- Per-conversation ordering: one Telegram chat's 20 messages POSTed to both workers' webhooks at
  once, alternately (as a load balancer spreads them): processed one at a time, in the order they
  were stored (the inbox's order, which is the one order both workers can agree on), one reply
  each, and the replies reach Telegram in that order.
- Duplicate webhook storm: one Telegram update, and one VK event, each delivered 50 times at once
  to the two workers: every delivery acknowledged, the message stored once, one reply.

The workers are shared by the tests of this module (each uses its own chats).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.scale.cluster import TEXTS, processed, until

pytestmark = [pytest.mark.slow, pytest.mark.services]

HUMAN = "I want to talk to a human"
ORDERED, STORM = 20, 50


async def test_an_agent_on_worker_b_answers_a_widget_open_on_worker_a_and_sees_its_next_message_live(workers):
    widget = await workers.widget(0)
    agent = await workers.agent(1)
    try:
        await agent.open_inbox()
        await widget.say(HUMAN)
        await widget.wait(lambda: widget.messages("bot"), what="the bot's answer to the request for a person")
        conversation = await agent.waiting("web")
        await agent.take(conversation)

        await agent.reply(conversation, "Hello, this is Anna on worker B")
        await widget.wait(
            lambda: [m for m in widget.messages("agent") if m["text"] == "Hello, this is Anna on worker B"],
            what="the agent's answer from worker B",
        )
        await widget.say("My parcel is late, written on worker A")
        await until(
            lambda: "My parcel is late, written on worker A" in agent.customer_texts(conversation),
            what="the customer's message in the console on worker B",
        )
        assert len([m for m in widget.messages("agent") if m["text"] == "Hello, this is Anna on worker B"]) == 1
    finally:
        await widget.close()
        await agent.close()


async def test_an_agent_on_worker_b_answers_a_telegram_customer_whose_updates_reach_worker_a(workers):
    telegram, chat = workers.telegram, 7301
    agent = await workers.agent(1)
    try:
        await agent.open_inbox()
        assert await workers.telegram_post(0, telegram.update("message_text", chat_id=chat, text=HUMAN)) == 200
        await telegram.wait_for("sendMessage", chat_id=chat, timeout=30)
        conversation = await agent.waiting("telegram")
        await agent.take(conversation)

        await agent.reply(conversation, "Hello, this is Anna on worker B")
        await telegram.wait_for("sendMessage", chat_id=chat, text="Hello, this is Anna on worker B", timeout=30)
        update = telegram.update("message_text", chat_id=chat, text="My parcel is late, written through A")
        assert await workers.telegram_post(0, update) == 200
        await until(
            lambda: "My parcel is late, written through A" in agent.customer_texts(conversation),
            what="the customer's message in the console on worker B",
        )
        assert telegram.texts(chat).count("Hello, this is Anna on worker B") == 1
    finally:
        await agent.close()


async def test_one_chats_messages_sent_to_two_workers_at_once_are_answered_once_each_in_order(workers):
    telegram, chat = workers.telegram, 7401
    updates = [telegram.update("message_text", chat_id=chat, text=TEXTS[i % len(TEXTS)]) for i in range(ORDERED)]

    statuses = await asyncio.gather(*(workers.telegram_post(i % 2, u) for i, u in enumerate(updates)))

    assert statuses == [200] * ORDERED
    await telegram.wait_for("sendMessage", chat_id=chat, count=ORDERED, timeout=60)
    arrival, _, history = await processed(workers.database_url, "telegram", str(chat), ORDERED)
    await asyncio.sleep(1)  # a reply sent twice would arrive now
    assert sorted(arrival) == sorted(str(u["update_id"]) for u in updates)  # each stored once
    assert [role for role, _, _ in history] == ["customer", "bot"] * ORDERED  # one at a time, one reply each
    assert telegram.texts(chat) == [text for role, text, _ in history if role == "bot"]  # sent in that order
    processed_order = [external for role, _, external in history if role == "customer"]
    assert processed_order == arrival, f"processed {processed_order}, stored {arrival}"  # in arrival order


async def test_one_update_delivered_fifty_times_to_two_workers_is_answered_once(workers):
    telegram, vk, chat, peer = workers.telegram, workers.vk, 7501, 8501
    update = telegram.update("message_text", chat_id=chat, text="what are your opening hours")
    event = vk.message_new(peer, "what are your opening hours")

    statuses = await asyncio.gather(
        *(workers.telegram_post(i % 2, update) for i in range(STORM)),
        *(workers.vk_post(i % 2, event) for i in range(STORM)),
    )

    assert statuses[:STORM] == [200] * STORM
    assert statuses[STORM:] == [(200, "ok")] * STORM
    await telegram.wait_for("sendMessage", chat_id=chat, timeout=30)
    await vk.wait_for(lambda: vk.sent_to(peer), timeout=30)
    for channel, who in (("telegram", chat), ("vk", peer)):
        arrival, _, history = await processed(workers.database_url, channel, str(who), 1)
        assert len(arrival) == 1, (channel, arrival)
        assert [role for role, _, _ in history] == ["customer", "bot"], (channel, history)
    await asyncio.sleep(1)  # a second reply would arrive now
    assert len(telegram.texts(chat)) == 1
    assert len(vk.sent_to(peer)) == 1
    assert len([c for c in vk.calls_of("messages.send") if c.params.get("peer_id") == str(peer)]) == 1
