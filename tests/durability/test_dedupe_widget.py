"""The widget in a real headless Chromium: a reply frame it already shows (the outbox resent it after a
crash) is shown once, and "the server cannot store messages now" keeps the message and resends it."""

from __future__ import annotations

import re

import pytest

from seamline.bots.app import SEAMLINE
from seamline.shared.message import Reply, Role
from seamline.shared.tokens import Signer

from tests.bots.test_widget_browser import RECONNECT_TIMEOUT, Visitor, expect
from tests.conftest import SECRET, fail_storage_once

pytestmark = pytest.mark.browser


@pytest.fixture
async def visitor(browser, server):
    one = await Visitor.new(browser)
    yield one
    await one.close()
    assert not one.errors, f"uncaught errors on the page: {one.errors}"


async def test_a_reply_delivered_twice_is_shown_once(visitor, server):
    await visitor.open(server.url + "/")
    await visitor.say("Hello")
    web = server.app[SEAMLINE].pipeline._adapters["web"]  # what the outbox sends through
    visitor_id = Signer(secret_key=SECRET, purpose="web-visitor").verify(await visitor.token())
    reply = Reply(text="Your parcel left today.", role=Role.AGENT, id="r-resent")

    for _ in range(2):  # sent, then sent again (a worker died before marking it sent)
        await web.send(visitor_id, reply)
    shown = visitor.texts.filter(has_text="Your parcel left today.")
    await expect(shown).to_have_count(1)  # the first copy is on screen before the customer writes on
    await visitor.say("thanks")  # a later frame: the second copy has arrived by then

    await expect(shown).to_have_count(1)


async def test_a_message_the_server_cannot_store_now_is_kept_and_answered_after_reconnecting(
    visitor, server, monkeypatch
):
    await visitor.open(server.url + "/")
    failed = fail_storage_once(server, monkeypatch)  # the next turn finds Redis down

    await visitor.type("Where is my order?")

    written = visitor.customer("Where is my order?")
    await expect(visitor.status).to_have_attribute("data-state", "online", timeout=RECONNECT_TIMEOUT)
    await expect(written).not_to_have_class(re.compile(r"\bsl-pending\b"), timeout=RECONNECT_TIMEOUT)
    await expect(visitor.messages.nth(1)).to_have_class(re.compile(r"\bsl-bot\b"))
    await expect(written).to_have_count(1)
    await expect(visitor.list.locator(".sl-error")).to_have_count(0)  # not shown as failed
    assert failed  # the first attempt did meet the outage
