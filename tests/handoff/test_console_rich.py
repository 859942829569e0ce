"""The agent console shows what the bot did besides talking: the images it sent, inline (never a
``javascript:`` one), and why one of its custom actions failed, as a line of the timeline where it
happened. A real headless Chromium against Seamline with the fake Telegram Bot API."""

from __future__ import annotations

import pytest

from seamline.bots.app import SEAMLINE
from seamline.shared.message import Reply

from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.handoff.test_console_browser import CHAT, EMAIL, PASSWORD, customer_says, log_in, tid

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect

PICTURE = "https://shop.example/img/boots.png"
SHORT = "Our bestseller: the winter boots."


class Show:
    """After ``decide``: "picture" is answered with an image, "bad picture" with a javascript: one."""

    name = "show"
    after = "decide"

    async def __call__(self, turn, call_next) -> None:
        await call_next(turn)
        text = turn.message.text.strip().lower()
        if text == "picture":
            turn.replies[:] = [Reply(SHORT, image=PICTURE)]
        elif text == "bad picture":
            turn.replies[:] = [Reply("Look at this", image="javascript:window.__xss=1")]


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def seamline(telegram, settings, make_server):
    server = await make_server(settings, channels={"telegram": dict(token=TOKEN, api_base=telegram.url)})
    await server.app[SEAMLINE].handoff.agents.add(EMAIL, name="Olga", password=PASSWORD, queues=["support", "delivery"])
    server.app[SEAMLINE].pipeline.add_step(Show(), after="decide")
    return server


@pytest.fixture
async def console(browser, seamline):
    context = await browser.new_context()
    context.set_default_timeout(10_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert not errors, f"uncaught errors on the console: {errors}"


async def test_the_console_shows_the_bots_images_and_why_an_action_failed(telegram, seamline, console):
    telegram.enqueue(telegram.update("message_text", chat_id=CHAT, text="picture"))
    await telegram.wait_for("sendPhoto", chat_id=CHAT)  # captioned: no sendMessage
    await customer_says(telegram, "bad picture")
    pipeline = seamline.app[SEAMLINE].pipeline
    [first, *_] = await pipeline.history("telegram", str(CHAT))
    # What the decide step records when an action fails (bots/steps/decide.py)
    await pipeline.store.record_event(
        "action_failed",
        first.customer_id,
        first.conversation_id,
        {"action": "action_order_status", "problem": "action_order_status timed out after 10 s"},
    )
    await customer_says(telegram, "I want to talk to a human")

    await log_in(console, seamline.url)  # online with room: the conversation is given to Olga at once
    await tid(console, "mine").locator('[data-testid="conversation-item"]').click()
    lines = tid(console, "messages").locator(":scope > li")
    await expect(lines.filter(has_text="I want to talk to a human")).to_have_count(1)

    failed = tid(console, "action-failed")
    await expect(failed).to_have_count(1)
    await expect(failed).to_contain_text("Action failed: action_order_status timed out after 10 s")
    texts = await lines.all_inner_texts()
    where = next(n for n, t in enumerate(texts) if "action_order_status" in t)
    assert "Look at this" in texts[where - 1] and "I want to talk to a human" in texts[where + 1]  # where it happened

    images = tid(console, "messages").locator('[data-testid="message-image"]')
    await expect(images).to_have_count(1)  # the javascript: one is not shown
    await expect(images).to_have_attribute("src", PICTURE)
    await expect(images).to_have_attribute("alt", SHORT)
    bot = tid(console, "messages").locator('[data-role="bot"]').filter(has=tid(console, "message-image"))
    await expect(bot.locator('[data-testid="message-text"]')).to_have_text(SHORT)
    assert await console.evaluate("() => typeof window.__xss") == "undefined"
