"""escalate: asking for a person puts the chat in a queue and tells the customer so."""

from __future__ import annotations

from tests.bots.steps.walk import Rest, step, stored_turn, telegram


async def test_asking_for_a_person_queues_the_chat_and_says_so(seamline):
    turn = await stored_turn(seamline, telegram("I want to talk to a human", update_id=1))
    turn.parse = seamline.pipeline.understanding.parse(turn.message.text, None)
    await step(seamline, "decide")(turn, Rest())
    before = len(turn.replies)
    rest = Rest()
    await step(seamline, "escalate")(turn, rest)
    assert turn.session.handoff in ("queued", "with_agent") and len(turn.replies) > before and rest.ran


async def test_a_vip_customer_goes_to_people_at_once(seamline):
    turn = await stored_turn(seamline, telegram("hello", update_id=1))
    turn.parse = seamline.pipeline.understanding.parse("hello", None)
    turn.session.attributes["vip"] = True
    await step(seamline, "escalate")(turn, Rest())
    assert turn.session.handoff == "queued"


async def test_a_plain_question_stays_with_the_bot(seamline):
    turn = await stored_turn(seamline, telegram("how much is delivery", update_id=1))
    turn.parse = seamline.pipeline.understanding.parse(turn.message.text, None)
    await step(seamline, "decide")(turn, Rest())
    await step(seamline, "escalate")(turn, Rest())
    assert turn.session.handoff == "bot" and len(turn.replies) == 1


async def test_an_action_resuming_the_conversation_gives_it_back_to_the_bot(seamline):
    from seamline.bots.dialogue import Decision

    turn = await stored_turn(seamline, telegram("I want to talk to a human", update_id=1))
    turn.parse = seamline.pipeline.understanding.parse(turn.message.text, None)
    await step(seamline, "decide")(turn, Rest())
    await step(seamline, "escalate")(turn, Rest())
    assert turn.session.handoff == "queued"
    later = await stored_turn(seamline, telegram("never mind", update_id=2))
    later.parse = seamline.pipeline.understanding.parse("never mind", None)
    later.session = turn.session
    later.decision = Decision((), resume=True)  # a custom action returned ConversationResumed
    await step(seamline, "escalate")(later, Rest())
    assert later.session.handoff == "bot"
    info = await seamline.store.conversation(later.session.conversation_id)
    assert info.state == "bot"
