"""Issue 13, per-conversation ordering across workers.

One Telegram chat's 20 messages are POSTed to the webhooks of two real workers at once, alternately
(as a load balancer spreads them): the chat is still processed one message at a time, in the order
the updates were stored, and each message gets exactly one reply, which reaches Telegram in that
order (the texts at the fake are the bot's answers in the stored history's order).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.scale.cluster import TEXTS, processed

pytestmark = [pytest.mark.slow, pytest.mark.services]

COUNT = 20


async def test_one_chats_messages_sent_to_two_workers_at_once_are_answered_once_each_in_order(cluster):
    workers = await cluster(count=2)
    telegram, chat = workers.telegram, 7401
    updates = [telegram.update("message_text", chat_id=chat, text=TEXTS[i % len(TEXTS)]) for i in range(COUNT)]

    statuses = await asyncio.gather(*(workers.telegram_post(i % 2, u) for i, u in enumerate(updates)))

    assert statuses == [200] * COUNT
    await telegram.wait_for("sendMessage", chat_id=chat, count=COUNT, timeout=60)
    arrival, _, history = await processed(workers.database_url, "telegram", str(chat), COUNT)
    await asyncio.sleep(1)  # a reply sent twice would arrive now
    assert sorted(arrival) == sorted(str(u["update_id"]) for u in updates)  # each stored once
    assert [role for role, _, _ in history] == ["customer", "bot"] * COUNT  # one at a time, one reply each
    assert [external for role, _, external in history if role == "customer"] == arrival  # in arrival order
    assert telegram.texts(chat) == [text for role, text, _ in history if role == "bot"]  # sent in that order
    assert workers.tracebacks() == []
