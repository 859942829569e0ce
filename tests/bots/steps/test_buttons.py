"""rate and callback: answers to what the handoff asked for."""

from __future__ import annotations

from tests.bots.steps.walk import Rest, step, stored_turn, telegram


async def test_a_rating_button_is_recorded_and_thanked_for_and_nothing_else_answers_it(seamline):
    turn = await stored_turn(seamline, telegram("⭐⭐⭐⭐", update_id=1, payload="/rate 4"))
    turn.session.slots["rating_for"] = turn.session.conversation_id  # the agent closed the chat
    rest = Rest()
    await step(seamline, "rate")(turn, rest)
    assert not rest.ran and [r.text for r in turn.replies] == ["Thank you for your rating!"]
    events = await seamline.store.events(turn.session.customer_id)
    assert [(e["kind"], e["data"]) for e in events] == [("csat", {"score": 4})]


async def test_a_rating_nobody_asked_for_walks_on(seamline):
    turn = await stored_turn(seamline, telegram("5", update_id=1, payload="/rate 5"))
    rest = Rest()
    await step(seamline, "rate")(turn, rest)
    assert rest.ran and turn.replies == []


async def test_a_phone_number_left_while_waiting_shows_in_the_queue(seamline):
    turn = await stored_turn(seamline, telegram("call me back please", update_id=1))
    parse = seamline.pipeline.understanding.parse("I want a person", None)
    await seamline.handoff.escalate(
        turn.session, reason="asked", parse=parse, message=turn.message, inbound_id=turn.inbound.id
    )
    assert turn.session.handoff == "queued"
    later = await stored_turn(seamline, telegram("call me on +7 916 123-45-67", update_id=2))
    later.parse = seamline.pipeline.understanding.parse(later.message.text, None)
    rest = Rest()
    await step(seamline, "callback")(later, rest)
    info = await seamline.handoff.conversation(later.session.conversation_id)
    assert info.escalation["callback"] == "+79161234567" and rest.ran
