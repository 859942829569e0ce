"""The agent console in Russian and English: ?lang= first, then the agent's saved choice, then the
browser's language. A Russian-speaking agent gets it in Russian and can switch it to English, which
sticks; what tests and scripts rely on (data-testid, data-key, data-state) stays the same.

Waiting is Playwright's ``expect`` and the fake's ``wait_for``; nothing sleeps.
"""

from __future__ import annotations

import re
from contextlib import asynccontextmanager

import pytest

from tests.handoff import test_console_browser as console
from tests.handoff.test_console_browser import TIMEOUT, customer_says, expect, log_in, tid

# The console's fixtures, shared with its browser tests: Seamline polling the fake Telegram, with one agent.
seamline, telegram = console.seamline, console.telegram

pytestmark = pytest.mark.browser


@asynccontextmanager
async def console_page(browser, **options):
    """A page in a browser context of its own (``locale="ru-RU"``: a Russian browser), closed after."""
    context = await browser.new_context(**options)
    errors = []
    try:
        context.set_default_timeout(TIMEOUT)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
    finally:
        await context.close()
    assert not errors, f"uncaught errors on the page: {errors}"


async def test_a_russian_browser_gets_the_console_in_russian_and_the_agent_can_switch_to_english(
    browser, telegram, seamline
):
    async with console_page(browser, locale="ru-RU") as console:
        await console.goto(seamline.url + "/console/")
        await expect(tid(console, "login-submit")).to_have_text("Войти")
        await expect(tid(console, "login-language")).to_have_value("ru")
        await expect(console.locator("html")).to_have_attribute("lang", "ru")

        await log_in(console, seamline.url)
        await expect(console.get_by_role("heading", name=re.compile(r"^Ожидают"))).to_be_visible()
        await expect(tid(console, "logout")).to_have_text("Выйти")
        await expect(tid(console, "live")).to_have_text("на связи")
        await expect(tid(console, "language")).to_have_value("ru")
        await expect(tid(console, "waiting").locator(".none")).to_have_text("Никто не ждёт.")
        await expect(console).to_have_title("Консоль Seamline")
        async with console.expect_response("**/api/v1/me/status"):
            await tid(console, "status").select_option("away")  # so the customer waits in the queue

        # A Telegram customer asks for a person
        await customer_says(telegram, "I want to talk to a human")
        item = tid(console, "waiting").locator('[data-testid="conversation-item"]')
        await expect(item).to_have_count(1)
        await expect(item.locator('[data-testid="waiting-time"]')).to_have_text(re.compile(r"^\d+ с$"))
        await item.click()
        state = tid(console, "conversation-state")
        await expect(state).to_have_attribute("data-state", "queued")
        await expect(state).to_have_text(re.compile(r"^в очереди · \w+$"))
        await expect(tid(console, "release")).to_have_text("Вернуть боту")
        await expect(tid(console, "reply-input")).to_have_attribute("placeholder", "Возьмите диалог, чтобы ответить")
        escalation = tid(console, "escalation")
        await expect(escalation.locator("dt").filter(has_text=re.compile(r"^Очередь$"))).to_have_count(1)
        await expect(escalation.locator('[data-key="Queue"]')).to_have_text(re.compile(r"^(support|delivery)$"))
        await expect(escalation.locator('[data-key="Reason"]')).to_have_text("клиент попросил оператора")
        await expect(tid(console, "messages").locator('[data-testid="channel"]').first).to_have_text("Telegram")

        await tid(console, "claim").click()
        await expect(state).to_have_attribute("data-state", "with_agent")
        await expect(state).to_have_text(re.compile(r"^у оператора · "))

        # English, at once, without a reload
        await tid(console, "language").select_option("en")
        await expect(console.locator("html")).to_have_attribute("lang", "en")
        await expect(console.get_by_role("heading", name=re.compile(r"^Waiting"))).to_be_visible()
        await expect(tid(console, "release")).to_have_text("Return to bot")
        await expect(state).to_have_text(re.compile(r"^with agent · "))
        await expect(escalation.locator("dt").filter(has_text=re.compile(r"^Queue$"))).to_have_count(1)
        await expect(tid(console, "reply-input")).to_have_attribute(
            "placeholder", "Reply to the customer (Enter sends, Shift+Enter: new line)"
        )

        # ... and it is remembered
        await console.reload()
        await expect(tid(console, "app")).to_be_visible()
        await expect(tid(console, "logout")).to_have_text("Log out")
        await expect(tid(console, "language")).to_have_value("en")
        await tid(console, "mine").locator('[data-testid="conversation-item"]').click()
        await expect(tid(console, "release")).to_have_text("Return to bot")
        await expect(state).to_have_text(re.compile(r"^with agent · "))


async def test_the_lang_parameter_wins_over_the_browser_and_the_saved_choice(browser, seamline):
    async with console_page(browser, locale="ru-RU") as console:
        await console.goto(seamline.url + "/console/?lang=en")
        await expect(tid(console, "login-submit")).to_have_text("Log in")
        await expect(console.locator("html")).to_have_attribute("lang", "en")

        await console.goto(seamline.url + "/console/")  # the parameter was not a choice to keep
        await expect(tid(console, "login-submit")).to_have_text("Войти")
        await tid(console, "login-language").select_option("en")  # on the login box, at once
        await expect(tid(console, "login-submit")).to_have_text("Log in")
        await console.reload()
        await expect(tid(console, "login-submit")).to_have_text("Log in")

        await console.goto(seamline.url + "/console/?lang=ru")
        await expect(tid(console, "login-submit")).to_have_text("Войти")
        await expect(tid(console, "login-email").locator("xpath=..")).to_contain_text("Эл. почта")

    async with console_page(browser, locale="en-US") as console:  # a browser with no Russian in it
        await console.goto(seamline.url + "/console/")
        await expect(tid(console, "login-submit")).to_have_text("Log in")
        await expect(tid(console, "login-language")).to_have_value("en")
