"""The durable inbox: one owner per row when processes share a database, a dead process's rows taken
over, and a webhook that cannot store an update says so (503) instead of "ok". SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import replace
from datetime import timedelta

import aiohttp
from sqlalchemy import select, update

from seamline.bots.app import SEAMLINE
from seamline.bots.telegram import WEBHOOK_PATH
from seamline.shared.errors import StoreError
from seamline.shared.message import utcnow
from seamline.shared.storage.holders import HOST
from seamline.shared.storage.inbox import Entry, SqlInbox
from seamline.shared.storage.models import InboxRow
from seamline.shared.storage.sql import SqlChatStore

from tests.conftest import Server
from tests.fakes.telegram import SECRET_HEADER, TOKEN, FakeTelegram
from tests.fakes.vk import FakeVk

WEBHOOK_SECRET = "inbox-webhook-secret-0123"


async def left_by(store: SqlChatStore, owner: str, count: int, *, stale: bool) -> list[int]:
    """``count`` rows stored by ``owner`` and not done; ``stale``: its lease long run out."""
    taken = await SqlInbox(store=store, channel="telegram", owner=owner).put(
        [Entry(f"{owner}-{n}", str(n % 7), "{}") for n in range(count)]
    )
    if stale:
        await store.run(
            update(InboxRow).where(InboxRow.owner == owner).values(claimed_at=utcnow() - timedelta(hours=1))
        )
    return [t.id for t in taken]


async def test_two_processes_taking_over_at_once_get_each_row_exactly_once(stores):
    ids = await left_by(stores[0], "elsewhere:4242:gone", 300, stale=True)
    first, second = (SqlInbox(store=s, channel="telegram", owner=f"host-{n}:{n}:racer") for n, s in enumerate(stores))
    a, b = await asyncio.gather(first.take_over(), second.take_over())
    assert not {t.id for t in a} & {t.id for t in b}
    assert sorted(t.id for t in a + b) == sorted(ids)


async def test_rows_of_a_live_process_wait_and_rows_of_a_dead_one_of_this_host_are_taken_at_once(stores):
    live = await left_by(stores[0], f"{HOST}:{os.getppid()}:alive", 3, stale=False)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that existed on this host and is gone now
    dead = await left_by(stores[0], f"{HOST}:{gone.pid}:dead", 3, stale=False)
    other_host = await left_by(stores[0], "elsewhere:1:unknown", 3, stale=False)
    taken = await SqlInbox(store=stores[1], channel="telegram").take_over()
    assert [t.id for t in taken] == dead
    assert not set(live + other_host) & {t.id for t in taken}  # theirs until their lease runs out


async def test_a_row_given_up_is_not_taken_again_and_a_done_row_never(stores):
    inbox = SqlInbox(store=stores[0], channel="telegram", owner="elsewhere:9:x")
    [done] = await inbox.put([Entry("1", "1", "{}")])
    await inbox.done(done)
    [failed] = await inbox.put([Entry("2", "1", "{}")])
    await inbox.release(failed)
    taken = await SqlInbox(store=stores[1], channel="telegram").take_over()
    assert [(t.platform_id, t.attempts) for t in taken] == [("2", 2)]
    assert await SqlInbox(store=stores[1], channel="telegram").put([Entry("1", "1", "{}")]) == []  # redelivery


async def test_a_telegram_update_that_cannot_be_stored_gets_503_and_its_resend_is_answered_once(
    settings, understanding, database_url, monkeypatch
):
    async with FakeTelegram() as telegram:
        server = Server(
            replace(
                settings,
                database_url=database_url,
                channels={
                    "telegram": dict(
                        token=TOKEN,
                        api_base=telegram.url,
                        webhook_url="http://127.0.0.1:9/telegram/webhook",
                        webhook_secret=WEBHOOK_SECRET,
                    )
                },
            ),
            understanding,
        )
        await server.start()
        try:
            store = server.app[SEAMLINE].store
            real = store.write_all
            failing = [StoreError("database write failed: connection refused")]

            async def write_all(writes):
                if failing:
                    raise failing.pop()
                await real(writes)

            monkeypatch.setattr(store, "write_all", write_all)
            body = json.dumps(telegram.update("message_text", chat_id=5300, text="hello"))
            statuses = []
            async with aiohttp.ClientSession() as http:
                for _ in range(2):  # Telegram sends it again after anything but 2xx
                    async with http.post(
                        f"{server.url}{WEBHOOK_PATH}",
                        data=body,
                        headers={SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"},
                    ) as response:
                        statuses.append(response.status)
            assert statuses == [503, 200]
            await telegram.wait_for("sendMessage", chat_id=5300)
            await asyncio.sleep(0.3)
            assert len(telegram.texts(5300)) == 1
        finally:
            await server.stop()


async def test_a_vk_event_that_cannot_be_stored_gets_503_and_its_resend_is_answered_once(
    settings, understanding, database_url, monkeypatch
):
    async with FakeVk() as vk:
        server = Server(
            replace(
                settings,
                database_url=database_url,
                channels={
                    "vk": dict(
                        token=vk.token,
                        group_id=vk.group_id,
                        api_base=vk.url,
                        confirmation="c0nf",
                        secret="vk-secret-0123",
                    )
                },
            ),
            understanding,
        )
        await server.start()
        try:
            store = server.app[SEAMLINE].store
            real = store.write_all
            failing = [StoreError("database write failed: connection refused")]

            async def write_all(writes):
                if failing:
                    raise failing.pop()
                await real(writes)

            monkeypatch.setattr(store, "write_all", write_all)
            event = vk.message_new(5400, "hello")
            url = f"{server.url}/vk/callback"
            first = await vk.post_callback(url, event, secret="vk-secret-0123")
            assert first[0] == 503 and first[1] != "ok"
            assert await vk.post_callback(url, event, secret="vk-secret-0123") == (200, "ok")
            await vk.wait_for(lambda: vk.sent_to(5400))
            await asyncio.sleep(0.3)
            assert len(vk.sent_to(5400)) == 1
            customer = await store.find_customer("vk", "5400")
            assert [m.role for m in await store.history(customer.id)] == ["customer", "bot"]
        finally:
            await server.stop()


async def test_a_lease_is_renewed_only_for_the_rows_a_process_holds(stores):
    inbox = SqlInbox(store=stores[0], channel="telegram", owner="host-a:1:x", lease=timedelta(seconds=30))
    held, _orphan = await inbox.put([Entry("h", "1", "{}"), Entry("o", "2", "{}")])
    await stores[0].run(update(InboxRow).values(claimed_at=utcnow() - timedelta(minutes=5)))
    await inbox.renew([held.id])  # "o" was stored but never queued here (its read-back failed, say)
    taken = await SqlInbox(
        store=stores[1], channel="telegram", owner="host-b:1:x", lease=timedelta(seconds=30)
    ).take_over()
    assert [t.platform_id for t in taken] == ["o"]


async def test_rows_done_a_day_ago_are_forgotten_and_rows_given_up_are_kept(stores):
    inbox = SqlInbox(store=stores[0], channel="telegram", owner="host-a:1:x")
    old, fresh, given_up = await inbox.put([Entry(name, "1", "{}") for name in ("old", "fresh", "bad")])
    await inbox.done(old)
    await inbox.done(fresh)
    await inbox.done(given_up, error="given up after 5 attempts")
    await stores[0].run(
        update(InboxRow).where(InboxRow.platform_id.in_(["old", "bad"])).values(done_at=utcnow() - timedelta(days=2))
    )
    await inbox.purge()
    assert await inbox.put([Entry("fresh", "1", "{}")]) == []  # still known: a redelivery adds nothing
    async with stores[0].engine.connect() as conn:
        left = sorted((await conn.execute(select(InboxRow.platform_id))).scalars())
    assert left == ["bad", "fresh"]
