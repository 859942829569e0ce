"""Issue 13, cross-worker delivery: the customer on worker A, the agent on worker B.

Two real ``seamline run`` workers on one PostgreSQL and Redis. The agent logs in on B, takes the
conversation and answers there; the customer's widget socket is open on A (or the customer writes
in Telegram through A's webhook) and gets the answer; what the customer writes next through A shows
live in the agent's console on B.
"""

from __future__ import annotations

import pytest

from tests.scale.cluster import until

pytestmark = [pytest.mark.slow, pytest.mark.services]

HUMAN = "I want to talk to a human"


async def test_an_agent_on_worker_b_answers_a_widget_open_on_worker_a_and_sees_its_next_message_live(cluster):
    workers = await cluster(count=2)
    widget = await workers.widget(0)
    agent = await workers.agent(1)
    try:
        await agent.open_inbox()
        await widget.say(HUMAN)
        await widget.wait(lambda: widget.messages("bot"), what="the bot's answer to the request for a person")
        conversation = await agent.waiting()
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
    assert workers.tracebacks() == []


async def test_an_agent_on_worker_b_answers_a_telegram_customer_whose_updates_reach_worker_a(cluster):
    workers = await cluster(count=2)
    telegram, chat = workers.telegram, 7301
    agent = await workers.agent(1)
    try:
        await agent.open_inbox()
        assert await workers.telegram_post(0, telegram.update("message_text", chat_id=chat, text=HUMAN)) == 200
        await telegram.wait_for("sendMessage", chat_id=chat, timeout=30)
        conversation = await agent.waiting()
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
    assert workers.tracebacks() == []
