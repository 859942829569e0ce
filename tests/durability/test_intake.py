"""bots/intake.py: an update whose processing fails stays in the inbox and is tried again by the sweep;
one that keeps failing is given up after a bounded number of attempts, logged, and kept in the table."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from seamline.bots.intake import Intake
from seamline.shared.storage.database import create_engine
from seamline.shared.storage.inbox import Entry, SqlInbox
from seamline.shared.storage.models import InboxRow
from seamline.shared.storage.sql import SqlChatStore

from tests.support import eventually


async def rows(store: SqlChatStore) -> dict[str, tuple]:
    async with store.engine.connect() as conn:
        found = (
            await conn.execute(select(InboxRow.platform_id, InboxRow.attempts, InboxRow.done_at, InboxRow.error))
        ).all()
    return {r.platform_id: (r.attempts, r.done_at is not None, r.error) for r in found}


async def test_a_failed_update_is_tried_again_and_one_that_keeps_failing_is_given_up(sqlite_url, caplog):
    store = SqlChatStore(engine=create_engine(sqlite_url))
    processed: list[str] = []
    failures = {"flaky": 1, "broken": 10**6}

    async def process(taken):
        if failures.get(taken.platform_id, 0) > 0:
            failures[taken.platform_id] -= 1
            raise RuntimeError(f"{taken.platform_id} failed")
        processed.append(taken.platform_id)

    intake = Intake(inbox=SqlInbox(store=store, channel="telegram"), process=process, sweep_every=0.05, max_attempts=3)
    await intake.start()
    try:
        await intake.take([Entry("fine", "1", "{}"), Entry("flaky", "2", "{}"), Entry("broken", "3", "{}")])

        async def settled():
            found = await rows(store)
            return found if all(done for _, done, _ in found.values()) else None

        found = await eventually(settled)
    finally:
        await intake.stop()
        await store.close()
        await store.engine.dispose()
    assert sorted(processed) == ["fine", "flaky"]
    assert found["flaky"][:2] == (2, True) and found["fine"][:2] == (1, True)
    assert found["broken"][1] and "given up after 3 attempts" in found["broken"][2]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and "given up" in r.getMessage()]


@dataclass
class TwoWorkers:
    """An Intake processing telegram updates here, and the inbox of another (live) worker beside it."""

    intake: Intake
    other: SqlInbox
    processed: list[str] = field(default_factory=list)


@pytest.fixture
async def two_workers(sqlite_url):
    store = SqlChatStore(engine=create_engine(sqlite_url))
    processed: list[str] = []

    async def process(taken):
        processed.append(taken.platform_id)

    intake = Intake(inbox=SqlInbox(store=store, channel="telegram"), process=process, sweep_every=60)
    await intake.start()
    try:
        yield TwoWorkers(intake, SqlInbox(store=store, channel="telegram", owner="elsewhere:1:other"), processed)
    finally:
        await intake.stop()
        await store.close()
        await store.engine.dispose()


async def test_a_chats_update_waits_for_an_earlier_one_another_worker_holds_and_then_goes(two_workers):
    intake, other, processed = two_workers.intake, two_workers.other, two_workers.processed
    [earlier] = await other.put([Entry("earlier", "7", "{}")])
    await intake.take([Entry("later", "7", "{}"), Entry("elsewhere", "8", "{}")])

    async def answered(*names: str) -> bool:
        return processed == list(names)

    await eventually(lambda: answered("elsewhere"))  # another chat does not wait
    await asyncio.sleep(0.3)
    assert processed == ["elsewhere"]  # chat 7's later update waits for the earlier one
    await other.done(earlier)
    await eventually(lambda: answered("elsewhere", "later"))


async def test_an_earlier_update_nobody_holds_is_taken_and_processed_first_by_the_chats_worker(two_workers):
    intake, other, processed = two_workers.intake, two_workers.other, two_workers.processed
    [released] = await other.put([Entry("earlier", "7", "{}")])
    await other.release(released)  # its processing failed there: nobody holds it now

    await intake.take([Entry("later", "7", "{}")])

    async def both() -> bool:
        return len(processed) == 2

    await eventually(both)  # not left to the sweep, a minute away
    assert processed == ["earlier", "later"]
