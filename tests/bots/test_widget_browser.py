"""The website chat widget end to end: a real headless Chromium (Playwright) against a running Seamline.

One Chromium serves the whole module; every test gets its own browser context, so storage
(the token in localStorage, the outbox in sessionStorage) starts empty. Each test also gets
its own server and database (the ``server`` fixture). Waiting is Playwright's auto-waiting
``expect``; nothing sleeps.
"""

from __future__ import annotations

import re

import pytest
import yaml
from aiohttp import web

from seamline.shared.settings import CONFIG_DIR

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.async_api")
async_playwright, expect = playwright_api.async_playwright, playwright_api.expect

TIMEOUT = 10_000  # ms, for every wait on the page
RECONNECT_TIMEOUT = 20_000  # ms: the widget's backoff may be a few seconds into its schedule
CYRILLIC = re.compile(r"[А-Яа-яЁё]")

expect.set_options(timeout=TIMEOUT)


def _responses(key: str, language: str = "en") -> list[str]:
    data = yaml.safe_load((CONFIG_DIR / "responses" / f"{language}.yml").read_text(encoding="utf-8"))
    return [variant["text"] for variant in data["responses"][key]]


def _one_of(texts: list[str]) -> re.Pattern:
    return re.compile("^(?:" + "|".join(re.escape(t) for t in texts) + ")$")


class Visitor:
    """One visitor: a browser context with one tab, and the widget's parts as locators."""

    def __init__(self, context, page) -> None:
        self.context, self.page = context, page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.launcher = page.locator('[data-seamline="launcher"]')
        self.panel = page.locator('[data-seamline="panel"]')
        self.list = page.locator('[data-seamline="messages"]')
        self.messages = self.list.locator(".sl-msg")
        self.texts = self.list.locator(".sl-msg .sl-text")
        self.buttons = page.locator('[data-seamline="buttons"] button')
        self.input = page.locator('[data-seamline="input"]')
        self.send_button = page.locator('[data-seamline="send"]')
        self.status = page.locator('[data-seamline="status"]')

    @classmethod
    async def new(cls, browser) -> Visitor:
        context = await browser.new_context()
        context.set_default_timeout(TIMEOUT)
        return cls(context, await context.new_page())

    async def open(self, url: str) -> None:
        """Load the page, open the chat and wait until it is connected."""
        await self.page.goto(url)
        await self.launcher.click()
        await expect(self.panel).to_be_visible()
        await expect(self.status).to_have_attribute("data-state", "online")

    async def type(self, text: str) -> None:
        await self.input.fill(text)
        await self.input.press("Enter")

    def customer(self, text: str):
        """The customer's own message with exactly this text (pending or not)."""
        return self.messages.filter(has=self.page.locator(".sl-text", has_text=re.compile(f"^{re.escape(text)}$")))

    async def say(self, text: str):
        """Send ``text`` and wait for the echo and the bot's answer right after it; return that answer."""
        count = await self.messages.count()
        await self.type(text)
        mine, answer = self.messages.nth(count), self.messages.nth(count + 1)
        await expect(mine).to_have_class(re.compile(r"\bsl-customer\b"))
        await expect(mine.locator(".sl-text")).to_have_text(text)
        await expect(answer).to_have_class(re.compile(r"\bsl-bot\b"))
        await expect(mine).not_to_have_class(re.compile(r"\bsl-pending\b"))
        return answer

    async def token(self) -> str | None:
        return await self.page.evaluate("() => localStorage.getItem('seamline.token')")

    async def close(self) -> None:
        await self.context.close()


@pytest.fixture
async def visitor(browser, server):
    # Asks for the server so that the tab is closed before the server stops (a server stopping
    # with a connected tab waits for it, which costs seconds).
    one = await Visitor.new(browser)
    yield one
    await one.close()
    assert not one.errors, f"uncaught errors on the page: {one.errors}"


async def test_a_visitor_opens_the_chat_says_hello_and_gets_an_answer(visitor, server):
    await visitor.page.goto(server.url + "/")
    await expect(visitor.panel).to_be_hidden()
    await visitor.launcher.click()
    await expect(visitor.panel).to_be_visible()
    await expect(visitor.status).to_have_attribute("data-state", "online")
    await expect(visitor.messages).to_have_count(0)

    await visitor.type("Hello")
    await expect(visitor.messages.first).to_have_class(re.compile(r"\bsl-customer\b"))
    await expect(visitor.messages.first.locator(".sl-text")).to_have_text("Hello")
    await expect(visitor.messages.nth(1)).to_have_class(re.compile(r"\bsl-bot\b"))
    await expect(visitor.messages.nth(1).locator(".sl-text")).to_have_text(_one_of(_responses("greet")))
    await expect(visitor.list.locator(".sl-pending")).to_have_count(0)
    await expect(visitor.input).to_have_value("")
    await expect(visitor.status).to_have_attribute("data-state", "online")


async def test_after_a_reload_the_conversation_is_shown_again(visitor, server):
    await visitor.open(server.url + "/")
    answer = await visitor.say("Hello")
    answer_text = await answer.locator(".sl-text").text_content()
    token = await visitor.token()
    assert token

    await visitor.page.reload()
    await visitor.launcher.click()
    await expect(visitor.status).to_have_attribute("data-state", "online")
    await expect(visitor.texts).to_have_text(["Hello", answer_text])
    await expect(visitor.messages.first).to_have_class(re.compile(r"\bsl-customer\b"))
    await expect(visitor.messages.nth(1)).to_have_class(re.compile(r"\bsl-bot\b"))
    await expect(visitor.list.locator(".sl-pending")).to_have_count(0)
    # the same visitor; each welcome renews the token's signature (it expires unused, see shared/tokens.py)
    assert (await visitor.token()).rpartition(".")[0] == token.rpartition(".")[0]


async def test_html_in_a_message_is_shown_as_text_and_never_run(visitor, server):
    evil = '<script>window.__xss=1</script><b>bold</b> & <img src=x onerror="window.__xss=2">'
    await visitor.open(server.url + "/")
    await visitor.say(evil)

    confirmed = visitor.list.locator(".sl-customer:not(.sl-pending) .sl-text")
    await expect(confirmed).to_have_count(1)
    assert await confirmed.text_content() == evil
    await expect(visitor.list.locator("script, b, img")).to_have_count(0)
    await expect(
        visitor.page.locator("#seamline-widget script, #seamline-widget b, #seamline-widget img")
    ).to_have_count(0)
    # The bot has answered, so a created <img> would have failed to load and run onerror by now.
    assert await visitor.page.evaluate("() => typeof window.__xss") == "undefined"


async def test_a_quick_reply_button_sends_its_payload_and_the_bot_answers_that_intent(visitor, server):
    await visitor.open(server.url + "/")
    await visitor.say("Hello")
    button = visitor.buttons.filter(has_text="Where is my order?")
    await expect(button).to_be_visible()

    await button.click()
    await expect(visitor.messages.nth(2)).to_have_class(re.compile(r"\bsl-customer\b"))
    await expect(visitor.messages.nth(2).locator(".sl-text")).to_have_text("Where is my order?")
    await expect(visitor.messages.nth(3)).to_have_class(re.compile(r"\bsl-bot\b"))
    await expect(visitor.messages.nth(3).locator(".sl-text")).to_have_text(_one_of(_responses("ask_order_number")))
    await expect(visitor.buttons).to_have_count(0)  # the question has no quick replies of its own


async def test_the_widget_reconnects_by_itself_and_delivers_what_was_written_offline(visitor, server):
    await visitor.open(server.url + "/")
    await visitor.say("Hello")

    await server.stop()
    await expect(visitor.status).to_have_attribute("data-state", "offline")
    await visitor.type("Where is my order?")
    written = visitor.customer("Where is my order?")
    await expect(written).to_have_count(1)
    await expect(written).to_have_class(re.compile(r"\bsl-pending\b"))

    await server.start()
    await expect(visitor.status).to_have_attribute("data-state", "online", timeout=RECONNECT_TIMEOUT)
    await expect(written).not_to_have_class(re.compile(r"\bsl-pending\b"))
    await expect(visitor.messages.nth(3)).to_have_class(re.compile(r"\bsl-bot\b"))
    await expect(visitor.messages.nth(3).locator(".sl-text")).to_have_text(_one_of(_responses("ask_order_number")))
    await expect(visitor.messages.nth(2)).to_have_class(re.compile(r"\bsl-customer\b"))
    await expect(visitor.messages).to_have_count(4)
    await expect(written).to_have_count(1)
    await expect(visitor.list.locator(".sl-pending")).to_have_count(0)


async def test_a_russian_visitor_is_answered_in_russian(visitor, server):
    await visitor.open(server.url + "/")
    answer = await visitor.say("Здравствуйте")
    await expect(answer.locator(".sl-text")).to_have_text(CYRILLIC)


async def test_two_visitors_do_not_see_each_others_messages(browser, visitor, server):
    bob = await Visitor.new(browser)
    try:
        await visitor.open(server.url + "/")
        await bob.open(server.url + "/")
        await visitor.say("Alice writes 1111")
        await bob.say("Bob writes 2222")  # by now everything Bob caused has been sent out

        await expect(visitor.messages).to_have_count(2)
        await expect(visitor.list).not_to_contain_text("Bob writes")
        await expect(bob.messages).to_have_count(2)
        await expect(bob.list).not_to_contain_text("Alice writes")
        assert await visitor.token() != await bob.token()

        await visitor.page.reload()  # nor in the history from the server
        await visitor.launcher.click()
        await expect(visitor.status).to_have_attribute("data-state", "online")
        await expect(visitor.list.locator(".sl-customer .sl-text")).to_have_text(["Alice writes 1111"])
        await expect(visitor.messages).to_have_count(2)
        assert not bob.errors, f"uncaught errors on Bob's page: {bob.errors}"
    finally:
        await bob.close()


@pytest.fixture
async def foreign_site(server):
    """Another origin (a shop's own site) embedding the widget with one script tag."""
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>A shop</title></head><body>'
        f'<script src="{server.url}/widget.js" async></script></body></html>'
    )

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_the_widget_embedded_in_another_site_chats_with_seamline(visitor, server, foreign_site):
    assert foreign_site != server.url
    sockets = []
    visitor.page.on("websocket", lambda ws: sockets.append(ws.url))
    await visitor.open(foreign_site + "/")
    answer = await visitor.say("Hello")
    await expect(answer.locator(".sl-text")).to_have_text(_one_of(_responses("greet")))
    assert sockets and set(sockets) == {server.ws_url}
    assert await visitor.page.evaluate("() => location.origin") == foreign_site
    assert await visitor.token()  # kept in the shop's own storage
