"""agents and silence: while people are on the conversation they see what the customer writes,
and while an agent holds it the bot says nothing."""

from __future__ import annotations

import json

from tests.bots.steps.walk import Rest, step, stored_turn, telegram


async def test_a_message_while_the_chat_waits_for_a_person_reaches_the_agents_consoles(seamline):
    turn = await stored_turn(seamline, telegram("I want a person", update_id=1))
    parse = seamline.pipeline.understanding.parse("I want a person", None)
    await seamline.handoff.escalate(
        turn.session, reason="asked", parse=parse, message=turn.message, inbound_id=turn.inbound.id
    )
    console = seamline.handoff.inbox.subscribe(admin=True)
    later = await stored_turn(seamline, telegram("are you there?", update_id=2))
    rest = Rest()
    await step(seamline, "agents")(later, rest)
    events = [json.loads(console.get_nowait()) for _ in range(console.qsize())]
    assert [e["message"]["text"] for e in events if e["type"] == "message"] == ["are you there?"]
    assert rest.ran


async def test_a_message_while_an_agent_has_the_chat_gets_no_answer_from_the_bot(seamline):
    turn = await stored_turn(seamline, telegram("hello?", update_id=1))
    turn.session.handoff = "with_agent"
    turn.parse = seamline.pipeline.understanding.parse("hello?", None)
    rest = Rest()
    await step(seamline, "silence")(turn, rest)
    assert not rest.ran and turn.replies == []


async def test_asking_for_a_link_code_while_an_agent_has_the_chat_still_gets_one(seamline):
    turn = await stored_turn(seamline, telegram("link my account", update_id=1, payload="/link_account"))
    turn.session.handoff = "with_agent"
    turn.parse = seamline.pipeline.understanding.parse(turn.message.text, turn.message.payload)
    assert turn.parse.intent == "link_account"
    rest = Rest()
    await step(seamline, "silence")(turn, rest)
    assert rest.ran


async def test_the_bot_answers_when_it_has_the_chat(seamline):
    turn = await stored_turn(seamline, telegram("hello", update_id=1))
    turn.parse = seamline.pipeline.understanding.parse("hello", None)
    rest = Rest()
    await step(seamline, "silence")(turn, rest)
    assert rest.ran
