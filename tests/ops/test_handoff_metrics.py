"""What /metrics tells about people's queues: how many wait, and how long a claimed one waited."""

from __future__ import annotations

import re

from tests.handoff.test_api import agent, escalated, seamline, telegram

__all__ = ["agent", "seamline", "telegram"]


async def _metrics(http, server) -> str:
    async with http.get(server.url + "/metrics") as answer:
        assert answer.status == 200
        return await answer.text()


def _value(text: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_a_waiting_conversation_is_counted_and_its_wait_measured_when_claimed(
    seamline,
    telegram,
    agent,
    http,
    server,
):
    waited_before = _value(await _metrics(http, server), "seamline_handoff_wait_seconds_count")
    conversation = await escalated(seamline, "301")
    queue = (await seamline.store.conversation(conversation)).queue or "default"
    assert _value(await _metrics(http, server), f'seamline_queue_waiting{{queue="{queue}"}}') == 1

    api = await agent()
    await api.post(f"/conversations/{conversation}/claim")
    after = await _metrics(http, server)
    assert _value(after, f'seamline_queue_waiting{{queue="{queue}"}}') == 0
    assert _value(after, "seamline_handoff_wait_seconds_count") == waited_before + 1
