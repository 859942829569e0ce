"""Issue 10 item 11: a message is answered exactly once, also after a crash and after a long conversation.

The pipeline is built as ``seamline run`` builds it, on a real SQLite file; a "crash" is a turn that
dies right after its message was stored, and a "restart" a second pipeline on the same database
(the in-process session store starts empty, as after a restart).
"""

from __future__ import annotations

import pytest

from seamline.bots.app import build
from seamline.shared.message import Message

from tests.support import Recorder


class Crash(Exception):
    """The process dies here (kill -9): nothing after this point of the turn happens."""


async def crash(stored) -> None:
    raise Crash()


def message(text: str, external_id: str, channel: str = "telegram", sender: str = "100") -> Message:
    return Message(channel=channel, address=sender, sender=sender, text=text, external_id=external_id)


@pytest.fixture
async def started(settings, understanding):
    """Start pipelines on the test's database; each is one run of Seamline."""
    running = []

    async def start():
        seamline = await build(settings, understanding=understanding)
        running.append(seamline)
        adapter = Recorder("telegram")
        seamline.pipeline.register(adapter)
        return seamline, adapter

    yield start
    for seamline in running:
        await seamline.close()


async def test_a_message_resent_after_200_later_messages_is_not_answered_again(started):
    seamline, adapter = await started()
    await seamline.pipeline.handle(message("hello", "1"))
    for n in range(2, 203):
        await seamline.pipeline.handle(message("thanks", str(n)))
    answered = len(adapter.sent)
    again = await seamline.pipeline.handle(message("hello", "1"))
    assert again.duplicate and len(adapter.sent) == answered


async def test_a_message_stored_but_not_answered_before_a_crash_is_answered_when_resent(started):
    first_run, _ = await started()
    with pytest.raises(Crash):
        await first_run.pipeline.handle(message("hello", "41"), on_stored=crash)
    second_run, adapter = await started()
    handled = await second_run.pipeline.handle(message("hello", "41"))
    assert not handled.duplicate and len(adapter.sent) == 1
    roles = [m.role for m in await second_run.store.history(handled.inbound.customer_id)]
    assert roles == ["customer", "bot"]  # the message is kept once, and answered once
    assert (await second_run.pipeline.handle(message("hello", "41"))).duplicate


async def test_a_widget_message_left_unanswered_by_a_crash_is_answered_at_the_next_start(started, settings):
    first_run, _ = await started()
    visitor = "v-7c1e"
    with pytest.raises(Crash):
        await first_run.pipeline.handle(message("hello", f"{visitor}:m1", "web", visitor), on_stored=crash)
    second_run, _ = await started()
    web = Recorder("web")
    second_run.pipeline.register(web)
    assert await second_run.pipeline.answer_unanswered("web") == 1
    assert [address for address, _ in web.sent] == [visitor]
    customer = await second_run.store.find_customer("web", visitor)
    assert [m.role for m in await second_run.store.history(customer.id)] == ["customer", "bot"]
    assert await second_run.pipeline.answer_unanswered("web") == 0  # answered once
