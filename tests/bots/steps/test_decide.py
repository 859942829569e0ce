"""decide: what the bot says to what it understood."""

from __future__ import annotations

from tests.bots.steps.walk import Recorder, Rest, step, stored_turn, telegram


async def test_asking_about_an_order_without_a_number_gets_asked_for_it(seamline):
    turn = await stored_turn(seamline, telegram("where is my order", update_id=1))
    turn.parse = seamline.pipeline.understanding.parse("where is my order", None)
    rest = Rest()
    await step(seamline, "decide")(turn, rest)
    assert rest.ran and "order number" in turn.replies[0].text and turn.session.active_form == "order_status_form"


async def test_link_my_account_shows_a_code_for_the_other_connected_channel(seamline, adapter):
    seamline.pipeline.register(Recorder("web"))
    turn = await stored_turn(seamline, telegram("link my account", update_id=1, payload="/link_account"))
    turn.parse = seamline.pipeline.understanding.parse(turn.message.text, turn.message.payload)
    await step(seamline, "decide")(turn, Rest())
    assert turn.secret and turn.secret in turn.replies[0].text


async def test_nothing_understood_nothing_decided(seamline):
    turn = await stored_turn(seamline, telegram("hello", update_id=1))
    rest = Rest()
    await step(seamline, "decide")(turn, rest)  # a step before removed the parse: nothing to decide on
    assert rest.ran and turn.decision is None and turn.replies == []
