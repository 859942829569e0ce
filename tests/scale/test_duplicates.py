"""Issue 13, duplicate webhook storms: the platform delivers one update many times, to any worker.

The same Telegram update POSTed 50 times at once to two real workers (25 each), and the same VK
event likewise: every delivery is acknowledged (the platform must stop retrying), the message is
stored once and the customer gets exactly one reply.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.scale.cluster import processed

pytestmark = [pytest.mark.slow, pytest.mark.services]

STORM = 50


async def test_one_update_delivered_fifty_times_to_two_workers_is_answered_once(cluster):
    workers = await cluster(count=2)
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
    assert workers.tracebacks() == []
