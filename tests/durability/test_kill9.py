"""Issue 10 item 1: an update the platform was told "ok" about survives a kill -9.

A real ``seamline run`` process gets 100 updates from the fake Telegram (webhook, or long polling) or
the fake VK (Callback API, or Bots Long Poll), is killed with SIGKILL right after the last 200/"ok"
(or right after the getUpdates call that confirms them all, or the VK long poll position past them
all is kept), and started again on the same database: every update is stored, and every one
answered exactly once. The fakes hold the bot's
answers until the restart, so at the kill all 100 are acknowledged and none answered yet (the worst
case). What the killed process had already sent to the fake (it arrives there) counts as answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from seamline.shared.storage.database import create_engine
from seamline.shared.storage.models import InboxRow, MessageRow

from tests.fakes.telegram import SECRET_HEADER, TOKEN, FakeTelegram  # noqa: F401 - the header the fake sends
from tests.fakes.vk import FakeVk
from tests.support import free_port

pytestmark = pytest.mark.slow

CHATS, PER_CHAT = 10, 10  # 100 updates
WEBHOOK_SECRET = "kill9-webhook-secret-0123"
CONFIRMATION, VK_SECRET = "c0nf1rm", "kill9-vk-secret-0123"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite+aiosqlite:///{tmp_path}/var/seamline.db"


class Seamline:
    """``seamline run`` as a subprocess; ``kill()`` is SIGKILL, nothing flushed or drained."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Seamline:
        with open(self.log, "ab") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "seamline.bots.cli",
                "run",
                env=self.env,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        line = b""
        while b"Seamline is running" not in line:
            line = await asyncio.wait_for(self.process.stdout.readline(), 120)
            assert line, self.log.read_text()
        return self

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 30)  # reaped: its pid is gone

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 30)


def environment(tmp_path: Path, models_dir: Path, database_url: str, port: int, **channel: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    env.update(
        SEAMLINE_PORT=str(port),
        SEAMLINE_DATA_DIR=str(tmp_path / "var"),
        PYTHONUNBUFFERED="1",
        SEAMLINE_NLU_MODELS=str(models_dir),
        SEAMLINE_DATABASE_URL=database_url,
        **channel,
    )
    return env


async def stored(database_url: str, channel: str) -> tuple[int, int, dict[str, list[str]]]:
    """(inbox rows, inbox rows done, per chat the platform ids of the stored customer messages in history order)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(func.count()).where(InboxRow.channel == channel))).scalar()
            done = (
                await conn.execute(
                    select(func.count()).where(InboxRow.channel == channel, InboxRow.done_at.is_not(None))
                )
            ).scalar()
            messages = (
                await conn.execute(
                    select(MessageRow.identity, MessageRow.external_id)
                    .where(MessageRow.channel == channel, MessageRow.direction == "in")
                    .order_by(MessageRow.created_at, MessageRow.id)
                )
            ).all()
    finally:
        await engine.dispose()
    per_chat: dict[str, list[str]] = {}
    for identity, external_id in messages:
        per_chat.setdefault(identity, []).append(external_id)
    return rows, done, per_chat


async def all_done(database_url: str, channel: str, count: int, timeout: float = 90.0) -> dict[str, list[str]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        rows, done, per_chat = await stored(database_url, channel)
        if rows == done == count:
            return per_chat
        assert loop.time() < deadline, f"{done} of {rows} inbox rows done after {timeout} s (expected {count})"
        await asyncio.sleep(0.2)


async def restarted(seamline: Seamline, holds, database_url: str, channel: str, count: int) -> dict[str, list[str]]:
    """Start again after the kill and let the held answers out; the inbox rows per chat once all are done."""
    await seamline.start()
    for hold in holds:
        hold.set()
    per_chat = await all_done(database_url, channel, count)
    await asyncio.sleep(0.5)  # anything sent twice would arrive now
    return per_chat


def assert_answered_once(
    telegram: FakeTelegram, updates: list[dict], per_chat: dict[str, list[str]], *, first_chat: int
) -> None:
    for chat in range(first_chat, first_chat + CHATS):
        ids = [str(u["update_id"]) for u in updates if u["message"]["chat"]["id"] == chat]
        assert per_chat[str(chat)] == ids  # every update stored, once, processed in order
        assert len(telegram.texts(chat)) == PER_CHAT  # each answered exactly once


async def test_telegram_webhook_updates_acknowledged_before_a_kill_9_are_all_answered_once(
    tmp_path, models_dir, database_url
):
    port = free_port()
    async with FakeTelegram() as telegram:
        env = environment(
            tmp_path,
            models_dir,
            database_url,
            port,
            SEAMLINE_TELEGRAM_TOKEN=TOKEN,
            SEAMLINE_TELEGRAM_API_BASE=telegram.url,
            SEAMLINE_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            SEAMLINE_TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
        )
        seamline = Seamline(env, tmp_path / "seamline.log")
        holds = [telegram.hold(7000 + chat) for chat in range(CHATS)]  # no answer gets out before the kill
        try:
            await seamline.start()
            updates = [
                telegram.update("message_text", chat_id=7000 + chat, text="hello")
                for _ in range(PER_CHAT)
                for chat in range(CHATS)
            ]
            telegram.enqueue(*updates)
            deadline = asyncio.get_running_loop().time() + 60
            while len(telegram.deliveries) < len(updates):
                assert asyncio.get_running_loop().time() < deadline, telegram.deliveries[-3:]
                await asyncio.sleep(0.01)
            assert {d.status for d in telegram.deliveries} == {200}
            await seamline.kill()  # right after the last 200

            per_chat = await restarted(seamline, holds, database_url, "telegram", len(updates))
        finally:
            for hold in holds:
                hold.set()
            await seamline.stop()
        assert_answered_once(telegram, updates, per_chat, first_chat=7000)
    assert "Traceback" not in (tmp_path / "seamline.log").read_text()


async def forgotten_by(telegram: FakeTelegram, timeout: float = 60.0) -> None:
    """Wait until getUpdates confirmed every queued update (Telegram keeps none pending any more)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{telegram.url}/bot{TOKEN}/getWebhookInfo") as response:
                if (await response.json())["result"]["pending_update_count"] == 0:
                    return
            assert loop.time() < deadline, f"updates still pending at Telegram after {timeout} s"
            await asyncio.sleep(0.01)


async def test_telegram_long_poll_updates_confirmed_before_a_kill_9_are_all_answered_once(
    tmp_path, models_dir, database_url
):
    async with FakeTelegram() as telegram:
        env = environment(
            tmp_path,
            models_dir,
            database_url,
            free_port(),
            SEAMLINE_TELEGRAM_TOKEN=TOKEN,
            SEAMLINE_TELEGRAM_API_BASE=telegram.url,
        )
        seamline = Seamline(env, tmp_path / "seamline.log")
        holds = [telegram.hold(7100 + chat) for chat in range(CHATS)]  # no answer gets out before the kill
        try:
            await seamline.start()
            updates = [
                telegram.update("message_text", chat_id=7100 + chat, text="hello")
                for _ in range(PER_CHAT)
                for chat in range(CHATS)
            ]
            telegram.enqueue(*updates)
            await forgotten_by(telegram)
            await seamline.kill()  # right after Telegram forgot them

            per_chat = await restarted(seamline, holds, database_url, "telegram", len(updates))
        finally:
            for hold in holds:
                hold.set()
            await seamline.stop()
        assert_answered_once(telegram, updates, per_chat, first_chat=7100)
    assert "Traceback" not in (tmp_path / "seamline.log").read_text()


async def test_vk_callback_events_acknowledged_before_a_kill_9_are_all_answered_once(
    tmp_path, models_dir, database_url
):
    port = free_port()
    async with FakeVk() as vk:
        env = environment(
            tmp_path,
            models_dir,
            database_url,
            port,
            SEAMLINE_VK_TOKEN=vk.token,
            SEAMLINE_VK_GROUP_ID=str(vk.group_id),
            SEAMLINE_VK_API_BASE=vk.url,
            SEAMLINE_VK_CONFIRMATION=CONFIRMATION,
            SEAMLINE_VK_SECRET=VK_SECRET,
        )
        seamline = Seamline(env, tmp_path / "seamline.log")
        release = vk.pause("messages.send")  # no answer gets out before the kill
        url = f"http://127.0.0.1:{port}/vk/callback"
        try:
            await seamline.start()
            events = [vk.message_new(8000 + peer, "hello") for _ in range(PER_CHAT) for peer in range(CHATS)]
            for event in events:
                assert await vk.post_callback(url, event, secret=VK_SECRET) == (200, "ok")
            await seamline.kill()  # right after the last "ok"

            per_chat = await restarted(seamline, [release], database_url, "vk", len(events))
        finally:
            release.set()
            await seamline.stop()
        for peer in range(CHATS):
            ids = [e["event_id"] for e in events if e["object"]["message"]["peer_id"] == 8000 + peer]
            assert per_chat[str(8000 + peer)] == ids  # every event stored, once, processed in order
            assert len(vk.sent_to(8000 + peer)) == PER_CHAT, [  # each answered exactly once
                (c.outcome, c.params.get("random_id"))
                for c in vk.calls_of("messages.send")
                if c.params.get("peer_id") == str(8000 + peer)
            ]
    assert "Traceback" not in (tmp_path / "seamline.log").read_text()


async def test_vk_long_poll_events_past_the_kept_position_at_a_kill_9_are_all_answered_once(
    tmp_path, models_dir, database_url
):
    async with FakeVk() as vk:
        env = environment(
            tmp_path,
            models_dir,
            database_url,
            free_port(),
            SEAMLINE_VK_TOKEN=vk.token,
            SEAMLINE_VK_GROUP_ID=str(vk.group_id),
            SEAMLINE_VK_API_BASE=vk.url,
        )
        seamline = Seamline(env, tmp_path / "seamline.log")
        release = vk.pause("messages.send")  # no answer gets out before the kill
        position = tmp_path / "var" / f"vk-longpoll-{vk.group_id}.json"
        try:
            await seamline.start()
            events = [vk.push(vk.message_new(8100 + peer, "hello")) for _ in range(PER_CHAT) for peer in range(CHATS)]
            deadline = asyncio.get_running_loop().time() + 60
            while not (position.exists() and json.loads(position.read_text())["ts"] == str(len(events))):
                assert asyncio.get_running_loop().time() < deadline, "the long poll position never reached the end"
                await asyncio.sleep(0.01)
            await seamline.kill()  # right after the position past every event was kept

            per_chat = await restarted(seamline, [release], database_url, "vk", len(events))
        finally:
            release.set()
            await seamline.stop()
        for peer in range(CHATS):
            ids = [e["event_id"] for e in events if e["object"]["message"]["peer_id"] == 8100 + peer]
            assert per_chat[str(8100 + peer)] == ids  # every event stored, once, processed in order
            assert len(vk.sent_to(8100 + peer)) == PER_CHAT  # each answered exactly once
    assert "Traceback" not in (tmp_path / "seamline.log").read_text()
