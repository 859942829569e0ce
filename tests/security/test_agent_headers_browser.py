"""The security headers break nothing a person uses: in Chromium, the demo page's own script and the
widget run and the console logs in, with no Content-Security-Policy violation reported."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.bots.test_widget_browser import TIMEOUT
from tests.handoff.test_api import PASSWORD

pytestmark = pytest.mark.browser


async def _page(browser, url: str):
    context = await browser.new_context()
    page = await context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    await page.goto(url)
    return context, page, violations


async def test_the_demo_pages_button_opens_the_widget_under_its_policy(browser, server):
    context, page, violations = await _page(browser, server.url + "/")
    try:
        await expect(page.locator('[data-seamline="launcher"]')).to_be_visible(timeout=TIMEOUT)
        await page.click("#ask")  # the page's inline script (allowed by its hash) calls Seamline.open()
        await expect(page.locator('[data-seamline="panel"]')).to_be_visible(timeout=TIMEOUT)
        assert violations == []
    finally:
        await context.close()


async def test_the_console_logs_in_under_its_policy(browser, server):
    from seamline.bots.app import SEAMLINE

    await server.app[SEAMLINE].handoff.agents.add("olga@shop.example", name="Olga", password=PASSWORD, queues=[])
    context, page, violations = await _page(browser, server.url + "/console/")
    try:
        await page.fill('[data-testid="login-email"]', "olga@shop.example")
        await page.fill('[data-testid="login-password"]', PASSWORD)
        await page.click('[data-testid="login-submit"]')
        await expect(page.locator('[data-testid="status"]')).to_be_visible(timeout=TIMEOUT)
        assert violations == []
    finally:
        await context.close()
