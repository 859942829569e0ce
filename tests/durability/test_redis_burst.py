"""A burst of customers at once waits for a Redis connection instead of failing the turn."""

from __future__ import annotations

import asyncio
import os

import pytest

from seamline.bots.app import build_inbox, build_sessions
from seamline.shared.settings import Settings


@pytest.fixture
def redis_settings(tmp_path) -> Settings:
    url = os.environ.get("SEAMLINE_TEST_REDIS_URL")
    if not url:
        if os.environ.get("SEAMLINE_REQUIRE_SERVICES"):
            pytest.fail("SEAMLINE_TEST_REDIS_URL is not set")
        pytest.skip("no Redis: run through tests/services.sh")
    return Settings(redis_url=url, data_dir=tmp_path)


async def test_three_hundred_sessions_at_once_are_all_served(redis_settings):
    sessions = build_sessions(redis_settings)
    try:

        async def turn(number: int) -> None:
            async with sessions.lock(f"burst-{number}"):
                await sessions.load(f"burst-{number}")

        results = await asyncio.gather(*(turn(n) for n in range(300)), return_exceptions=True)
        assert [r for r in results if r is not None] == []
    finally:
        await sessions.close()


async def test_a_burst_of_console_events_is_all_published(redis_settings):
    inbox = build_inbox(redis_settings)
    await inbox.start()
    try:
        results = await asyncio.gather(
            *(inbox.publish({"type": "ping", "n": n}) for n in range(300)), return_exceptions=True
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
    finally:
        await inbox.close()
