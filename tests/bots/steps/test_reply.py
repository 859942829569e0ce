"""reply: the one ending. Whatever step answered, the answer is stored with what was understood and
its outbox rows, the message counts as answered, and once the pipeline hands the rows to the outbox
(after the session lock, as ``Pipeline.handle`` does) the customer gets the replies on the channel
they wrote from."""

from __future__ import annotations

from seamline.bots.steps import Annotation
from seamline.shared.errors import Unreachable
from seamline.shared.message import Reply

from tests.bots.steps.walk import Rest, step, stored_turn, telegram


async def sent_after_the_lock(seamline, turn) -> None:
    await seamline.pipeline.dispatcher.deliver(row.id for row in turn.sent)


def say(*texts: str):
    return lambda turn: turn.replies.extend(Reply(t) for t in texts)


async def test_what_a_later_step_decided_is_stored_then_sent_in_order(seamline, adapter):
    turn = await stored_turn(seamline, telegram("hello", update_id=1))
    await step(seamline, "reply")(turn, Rest(say("one", "two")))
    assert adapter.sent == []  # nothing sent under the lock
    await sent_after_the_lock(seamline, turn)
    assert [r.text for _, r in adapter.sent] == ["one", "two"]
    history = await seamline.store.history(turn.session.customer_id)
    assert [m.text for m in history] == ["hello", "one", "two"]
    assert [r.id for _, r in adapter.sent] == [m.id for m in history[1:]]


async def test_the_message_counts_as_answered_once_the_turn_is_stored(seamline, adapter):
    turn = await stored_turn(seamline, telegram("hello", update_id=9))
    await step(seamline, "reply")(turn, Rest(say("hi")))
    assert "telegram:9" in turn.session.seen and await seamline.store.answered("telegram", "9")


async def test_what_was_understood_is_kept_with_the_message(seamline, adapter):
    turn = await stored_turn(seamline, telegram("где мой заказ 48213", update_id=1))
    turn.parse = seamline.pipeline.understanding.parse(turn.message.text, None)
    await step(seamline, "reply")(turn, Rest())
    [inbound] = await seamline.store.history(turn.session.customer_id)
    assert inbound.intent == "order_status"


async def test_a_step_before_reply_that_answered_skips_the_steps_after_it(seamline, adapter):
    turn = await stored_turn(seamline, telegram("482913", update_id=1))
    turn.answer(Reply("That code has expired."), intent="link_account", link="expired")
    turn.handled = True
    rest = Rest(say("the dialogue's answer"))
    await step(seamline, "reply")(turn, rest)
    await sent_after_the_lock(seamline, turn)
    assert not rest.ran and [r.text for _, r in adapter.sent] == ["That code has expired."]
    assert turn.annotation == Annotation("link_account", 1.0, {"intent": "link_account", "link": "expired"})


async def test_a_customer_who_blocked_the_bot_is_marked_unreachable_and_the_reply_kept(seamline):
    class Blocked:
        channel = "telegram"

        async def send(self, address, reply):
            raise Unreachable("Forbidden: bot was blocked by the user")

    seamline.pipeline.register(Blocked())
    turn = await stored_turn(seamline, telegram("hello", update_id=1))
    await step(seamline, "reply")(turn, Rest(say("hi")))
    await sent_after_the_lock(seamline, turn)
    assert [m.text for m in await seamline.store.history(turn.session.customer_id)] == ["hello", "hi"]
    assert [i.reachable for i in await seamline.store.identities(turn.session.customer_id)] == [False]
