"""The pipeline: stored before processed, duplicates once, escalation recorded, quiet while an agent holds."""

from __future__ import annotations

import pytest

from seamline.bots.app import build
from seamline.shared.message import Message, Reply

from tests.support import Recorder


@pytest.fixture
async def seamline(settings, understanding):
    seamline = await build(settings, understanding=understanding)
    yield seamline
    await seamline.close()


def telegram(text, update_id=None, sender="100"):
    return Message(
        channel="telegram",
        address=sender,
        sender=sender,
        text=text,
        external_id=str(update_id) if update_id is not None else None,
    )


async def test_the_inbound_message_is_stored_before_it_is_processed(seamline):
    adapter = Recorder("telegram")
    seamline.pipeline.register(adapter)
    seen_at_store_time = []

    async def on_stored(stored):
        seen_at_store_time.append([m.text for m in await seamline.store.history(stored.customer_id)])
        assert adapter.sent == []  # nothing answered yet

    await seamline.pipeline.handle(telegram("hello", 1), on_stored=on_stored)
    assert seen_at_store_time == [["hello"]]
    assert len(adapter.sent) == 1 and adapter.sent[0][0] == "100"


async def test_a_platform_message_delivered_twice_is_answered_once(seamline):
    adapter = Recorder("telegram")
    seamline.pipeline.register(adapter)
    first = await seamline.pipeline.handle(telegram("hello", 7))
    second = await seamline.pipeline.handle(telegram("hello", 7))
    assert not first.duplicate and second.duplicate and len(adapter.sent) == 1


async def test_dedupe_survives_a_lost_session(seamline):
    adapter = Recorder("telegram")
    seamline.pipeline.register(adapter)
    handled = await seamline.pipeline.handle(telegram("hello", 8))
    await seamline.sessions.delete(handled.inbound.customer_id)  # e.g. a restart of the in-process store
    assert (await seamline.pipeline.handle(telegram("hello", 8))).duplicate


async def test_the_reply_goes_to_the_channel_the_customer_wrote_from(seamline):
    web, tg = Recorder("web"), Recorder("telegram")
    seamline.pipeline.register(web)
    seamline.pipeline.register(tg)
    await seamline.pipeline.handle(telegram("hi", 1))
    assert len(tg.sent) == 1 and web.sent == []


async def test_what_the_bot_understood_is_stored_with_the_message(seamline):
    seamline.pipeline.register(Recorder("telegram"))
    handled = await seamline.pipeline.handle(telegram("где мой заказ 48213", 1))
    inbound, reply = await seamline.store.history(handled.inbound.customer_id)
    assert (inbound.intent, inbound.nlu["entities"][0]["value"]) == ("order_status", "48213")
    assert reply.role == "bot" and "48213" in reply.text


async def test_asking_for_a_person_queues_the_conversation_with_the_reason(seamline):
    seamline.pipeline.register(Recorder("telegram"))
    handled = await seamline.pipeline.handle(telegram("I want to talk to a human", 1))
    conversation = await seamline.store.conversation(handled.inbound.conversation_id)
    events = await seamline.store.events(handled.inbound.customer_id)
    assert (conversation.state, conversation.queue) == ("queued", "support")
    events = [e for e in events if e["kind"] == "handoff_requested"]
    assert (
        events[-1]["kind"] == "handoff_requested" and events[-1]["data"]["reason"] == "the customer asked for a person"
    )


async def test_the_bot_is_quiet_while_an_agent_holds_the_conversation(seamline):
    adapter = Recorder("telegram")
    seamline.pipeline.register(adapter)
    handled = await seamline.pipeline.handle(telegram("hello", 1))
    session = await seamline.sessions.load(handled.inbound.customer_id)
    session.handoff = "with_agent"
    await seamline.sessions.save(session)
    quiet = await seamline.pipeline.handle(telegram("are you there?", 2))
    assert quiet.replies == () and len(adapter.sent) == 1
    assert (await seamline.store.history(handled.inbound.customer_id))[-1].text == "are you there?"


class Failing(Recorder):
    """An adapter whose every send fails with ``error``."""

    def __init__(self, channel: str, error: Exception) -> None:
        super().__init__(channel)
        self.error = error

    async def send(self, address, reply):
        raise self.error


async def test_a_failing_channel_loses_nothing(seamline):
    from seamline.shared.errors import ChannelError

    seamline.pipeline.register(Failing("telegram", ChannelError("telegram is down")))
    handled = await seamline.pipeline.handle(telegram("hello", 1))
    assert [m.role for m in await seamline.store.history(handled.inbound.customer_id)] == ["customer", "bot"]


async def test_a_customer_who_blocked_the_bot_is_marked_unreachable(seamline):
    from seamline.shared.errors import Unreachable

    seamline.pipeline.register(Failing("telegram", Unreachable("Forbidden: bot was blocked by the user")))
    handled = await seamline.pipeline.handle(telegram("hello", 1))
    assert [i.reachable for i in await seamline.store.identities(handled.inbound.customer_id)] == [False]
    assert [m.role for m in await seamline.store.history(handled.inbound.customer_id)] == ["customer", "bot"]


async def test_a_step_handed_to_the_pipeline_goes_where_its_before_says_and_answers_instead_of_the_dialogue(
    settings, understanding
):
    from seamline.bots.pipeline import Pipeline

    class OrdersClosed:
        """The shop's order system is down: questions about orders get a notice, not the form."""

        name = "orders_closed"
        before = "decide"

        async def __call__(self, turn, call_next):
            if turn.parse.intent == "order_status":
                turn.answer(Reply("Order lookups are down for an hour, sorry."))
                return
            await call_next(turn)

    built = await build(settings, understanding=understanding)
    try:
        pipeline = Pipeline(
            store=built.store,
            sessions=built.sessions,
            understanding=understanding,
            dialogue=built.pipeline._dialogue,
            steps=[OrdersClosed()],
        )
        adapter = Recorder("telegram")
        pipeline.register(adapter)
        names = [s.name for s in pipeline.steps]
        assert names.index("orders_closed") == names.index("decide") - 1
        handled = await pipeline.handle(telegram("where is my order", 1))
        assert [r.text for _, r in adapter.sent] == ["Order lookups are down for an hour, sorry."]
        [inbound, _] = await built.store.history(handled.inbound.customer_id)
        assert inbound.intent == "order_status"  # what was understood is kept for the agent
    finally:
        await built.close()


async def test_a_step_placed_next_to_an_unknown_step_is_refused_naming_the_steps_there_are(seamline):
    from seamline.shared.errors import ConfigError

    async def audit(turn, call_next):
        await call_next(turn)

    with pytest.raises(ConfigError) as error:
        seamline.pipeline.add_step(audit, after="understnad")
    assert "understand" in error.value.fix
    seamline.pipeline.add_step(audit, after="understand")
    removed = seamline.pipeline.remove_step("audit")
    assert removed.name == "audit" and "audit" not in [s.name for s in seamline.pipeline.steps]
