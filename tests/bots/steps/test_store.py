"""store: the message is durable before anything else happens to it; a link code never in clear."""

from __future__ import annotations

from seamline.shared.linking import Outcome

from tests.bots.steps.walk import Rest, step, telegram, turn_for


async def test_the_message_is_in_the_history_before_the_rest_of_the_walk_runs(seamline):
    turn = await turn_for(seamline, telegram("where is my order", update_id=3))
    seen = []

    async def rest(t):
        seen.extend(m.text for m in await seamline.store.history(t.session.customer_id))

    await step(seamline, "store")(turn, rest)
    assert seen == ["where is my order"] and turn.inbound.external_id == "3"


async def test_the_channel_is_told_once_the_message_is_durable(seamline):
    acknowledged = []

    async def on_stored(stored):
        acknowledged.append(stored.text)

    turn = await turn_for(seamline, telegram("hi", update_id=4), on_stored=on_stored)
    await step(seamline, "store")(turn, Rest())
    assert acknowledged == ["hi"]


async def test_a_link_code_is_stored_masked(seamline):
    turn = await turn_for(seamline, telegram("482913", update_id=5), link=Outcome("invalid"))
    await step(seamline, "store")(turn, Rest())
    [stored] = await seamline.store.history(turn.session.customer_id)
    assert "482913" not in stored.text
