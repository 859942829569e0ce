"""understand and typing."""

from __future__ import annotations

from tests.bots.steps.walk import Rest, step, stored_turn, telegram


async def test_the_steps_after_understand_see_the_intent_and_entities(seamline):
    turn = await stored_turn(seamline, telegram("где мой заказ 48213", update_id=1))
    rest = Rest()
    await step(seamline, "understand")(turn, rest)
    assert rest.ran and turn.parse.intent == "order_status" and turn.parse.entity("order_number") == "48213"


async def test_typing_shows_while_the_bot_has_the_chat(seamline):
    typing = []

    async def on_answering(stored):
        typing.append(stored.text)

    turn = await stored_turn(seamline, telegram("hello", update_id=1), on_answering=on_answering)
    await step(seamline, "typing")(turn, Rest())
    assert typing == ["hello"]


async def test_no_typing_while_an_agent_has_the_chat(seamline):
    typing = []

    async def on_answering(stored):
        typing.append(stored.text)

    turn = await stored_turn(seamline, telegram("hello", update_id=1), on_answering=on_answering)
    turn.session.handoff = "with_agent"
    rest = Rest()
    await step(seamline, "typing")(turn, rest)
    assert typing == [] and rest.ran
