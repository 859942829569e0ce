"""link: a link proof is answered by the link step, not by the dialogue."""

from __future__ import annotations

from seamline.shared.linking import Outcome

from tests.bots.steps.walk import Rest, step, stored_turn, telegram


async def test_an_expired_code_is_answered_as_expired_and_the_dialogue_stays_out(seamline):
    turn = await stored_turn(seamline, telegram("482913", update_id=1), link=Outcome("expired"))
    rest = Rest()
    await step(seamline, "link")(turn, rest)
    assert turn.handled and rest.ran  # the rest is "reply", which skips the steps after it
    assert "expired" in turn.replies[0].text and turn.annotation.intent == "link_account"


async def test_a_message_without_a_proof_walks_on_untouched(seamline):
    turn = await stored_turn(seamline, telegram("482913 is my order", update_id=1))
    rest = Rest()
    await step(seamline, "link")(turn, rest)
    assert rest.ran and not turn.handled and turn.replies == []
