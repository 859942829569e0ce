"""A real Seamline (SQLite, the shipped config, a recording Telegram adapter) for the step tests."""

from __future__ import annotations

import pytest

from seamline.bots.app import build

from tests.bots.steps.walk import Recorder


@pytest.fixture
async def seamline(settings, understanding):
    seamline = await build(settings, understanding=understanding)
    yield seamline
    await seamline.close()


@pytest.fixture
def adapter(seamline) -> Recorder:
    """The Telegram channel, connected: what the bot sends there is kept in ``adapter.sent``."""
    recorder = Recorder("telegram")
    seamline.pipeline.register(recorder)
    return recorder
