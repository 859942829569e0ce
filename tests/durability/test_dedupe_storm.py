"""A storm of re-deliveries of one Telegram update, spread over two workers sharing PostgreSQL and
Redis: the update is stored once and answered once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from seamline.bots.app import SEAMLINE
from seamline.shared.storage.inbox import SqlInbox
from seamline.shared.storage.models import InboxRow

from tests.durability.test_cross_worker_order import post_update, telegram_workers
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.services


async def test_a_hundred_copies_of_one_update_across_two_workers_are_stored_once_and_answered_once(
    http, make_server, settings, postgres_url, redis_url, monkeypatch
):
    async with FakeTelegram() as telegram:
        workers = await telegram_workers(make_server, settings, telegram, postgres_url, redis_url)
        puts = []
        real_put = SqlInbox.put

        async def put(inbox, entries):
            puts.append([e.platform_id for e in entries])
            return await real_put(inbox, entries)

        monkeypatch.setattr(SqlInbox, "put", put)
        update = telegram.update("message_text", chat_id=6200, text="hello")

        statuses = await asyncio.gather(*(post_update(http, workers[n % 2], update) for n in range(100)))

        assert set(statuses) == {200}  # every copy acknowledged: Telegram stops re-sending
        assert 1 <= len(puts) <= 3  # the copies waited for the first one's commit (Redis), not the database
        await telegram.wait_for("sendMessage", chat_id=6200)
        late = await post_update(http, workers[0], update)  # a copy after the turn: Redis drops it
        await asyncio.sleep(0.5)
        assert late == 200 and len(telegram.texts(6200)) == len(telegram.calls_of("sendMessage", chat_id=6200))
        answers = telegram.calls_of("sendMessage", chat_id=6200)
        assert len({c.params["text"] for c in answers}) == len(answers)  # no answer repeated
        store = workers[0].app[SEAMLINE].store
        async with store.engine.connect() as conn:
            rows = (await conn.execute(select(func.count()).select_from(InboxRow))).scalar_one()
        assert rows == 1
