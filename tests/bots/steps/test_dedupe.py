"""dedupe: a message the platform delivers twice is answered once."""

from __future__ import annotations

from seamline.shared.session import SEEN_LIMIT

from tests.bots.steps.walk import Rest, step, telegram, turn_for


async def test_a_duplicate_telegram_update_goes_no_further(seamline):
    turn = await turn_for(seamline, telegram("hello", update_id=7))
    turn.session.remember("telegram:7")  # its first delivery was answered
    rest = Rest()
    await step(seamline, "dedupe")(turn, rest)
    assert turn.duplicate and not rest.ran


async def test_a_new_update_walks_on(seamline):
    turn = await turn_for(seamline, telegram("hello", update_id=8))
    rest = Rest()
    await step(seamline, "dedupe")(turn, rest)
    assert rest.ran and not turn.duplicate


async def test_an_update_answered_longer_ago_than_the_session_remembers_is_still_a_duplicate(seamline, adapter):
    first = await seamline.pipeline.handle(telegram("hello", update_id=1))
    assert not first.duplicate
    turn = await turn_for(seamline, telegram("hello", update_id=1))
    turn.session.seen[:] = [f"telegram:other-{n}" for n in range(SEEN_LIMIT)]  # "1" fell out of the window
    rest = Rest()
    await step(seamline, "dedupe")(turn, rest)
    assert turn.duplicate and not rest.ran
