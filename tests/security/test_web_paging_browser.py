"""The widget in Chromium pages a long history: the welcome brings the newest messages, "Earlier messages"
brings the rest (issue 10, item 8: a welcome is capped in bytes)."""

from __future__ import annotations

import json

import pytest

from tests.bots.test_widget_browser import Visitor, expect
from tests.security.test_web_limits import long_history

pytestmark = pytest.mark.browser


async def test_the_widget_shows_older_pages_on_request(browser, http, make_server, settings):
    server = await make_server(settings, web_history_bytes=16_384)
    c, token, said, seen = await long_history(http, server)
    await c.ws.close()

    visitor = await Visitor.new(browser)
    try:
        await visitor.context.add_init_script(f"localStorage.setItem('seamline.token', {json.dumps(token)})")
        await visitor.open(server.url + "/")
        earlier = visitor.page.locator('[data-seamline="older"]')
        await expect(visitor.customer(said[-1])).to_have_count(1)
        await expect(visitor.customer(said[0])).to_have_count(0)  # not in the first page
        while await earlier.count():
            shown = await visitor.messages.count()
            await earlier.click()
            await expect(visitor.messages).not_to_have_count(shown)  # a page came in above
        await expect(earlier).to_have_count(0)
        await expect(visitor.messages).to_have_count(len(seen))
        for text in said:
            await expect(visitor.customer(text)).to_have_count(1)
        assert not visitor.errors, visitor.errors
    finally:
        await visitor.close()
