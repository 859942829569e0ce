"""The agent console end to end: a customer on Telegram (the real aiogram against the fake Bot API)
asks for a person; an agent in a real headless Chromium takes over, answers, follows the customer
onto the website widget live, and gives the conversation back to the bot.

Waiting is Playwright's ``expect`` and the fake's ``wait_for``; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from seamline.bots.app import SEAMLINE

from tests.fakes.telegram import TOKEN, FakeTelegram

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.async_api")
async_playwright, expect = playwright_api.async_playwright, playwright_api.expect

TIMEOUT = 10_000  # ms, for every wait on a page
CHAT = 4242001
EMAIL, PASSWORD = "olga@shop.example", "correct horse battery"
EVIL = '<img src=x onerror="window.__xss=1">'

expect.set_options(timeout=TIMEOUT)


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def seamline(telegram, settings, make_server):
    """Seamline polling the fake Bot API (requested after it, so stopped before it), with one agent."""
    server = await make_server(settings, channels={"telegram": dict(token=TOKEN, api_base=telegram.url)})
    await server.app[SEAMLINE].handoff.agents.add(EMAIL, name="Olga", password=PASSWORD, queues=["support", "delivery"])
    return server


@pytest.fixture
async def pages(browser, seamline):
    """Two separate browser contexts: the agent's console and the customer's website tab."""
    contexts, errors = [], []

    async def new():
        context = await browser.new_context()
        context.set_default_timeout(TIMEOUT)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield new
    for context in contexts:
        await context.close()
    assert not errors, f"uncaught errors on the pages: {errors}"


def tid(page, name: str):
    return page.locator(f'[data-testid="{name}"]')


async def customer_says(telegram, text: str) -> str:
    """The Telegram customer writes ``text``; returns the first thing the bot answers to it."""
    before = len(telegram.texts(CHAT))
    telegram.enqueue(telegram.update("message_text", chat_id=CHAT, text=text))
    await telegram.wait_for("sendMessage", chat_id=CHAT, count=before + 1)
    return telegram.texts(CHAT)[before]


async def log_in(page, url: str) -> None:
    await page.goto(url + "/console/")
    await tid(page, "login-email").fill(EMAIL)
    await tid(page, "login-password").fill(PASSWORD)
    async with page.expect_response("**/api/v1/me/status"):
        await tid(page, "login-submit").click()
    await expect(tid(page, "app")).to_be_visible()
    await expect(tid(page, "live")).to_have_attribute("data-state", "online")


async def test_an_agent_takes_a_telegram_customer_follows_them_to_the_web_and_hands_back(telegram, seamline, pages):
    console = await pages()
    await log_in(console, seamline.url)
    # Away: an online agent with room would be given the conversation at once (no Waiting list).
    async with console.expect_response("**/api/v1/me/status") as status:
        await tid(console, "status").select_option("away")
    assert (await status.value).ok
    await expect(tid(console, "waiting-count")).to_have_text("0")

    # The customer on Telegram
    await customer_says(telegram, "where is my order")
    answer = await customer_says(telegram, "48213")
    assert "48213" in answer
    await customer_says(telegram, "I want to talk to a human")

    # ... appears in the Waiting list, live
    item = tid(console, "waiting").locator('[data-testid="conversation-item"]')
    await expect(item).to_have_count(1)
    await expect(tid(console, "waiting-count")).to_have_text("1")
    await item.click()
    messages = tid(console, "messages").locator('[data-testid="message"]')
    customer_texts = tid(console, "messages").locator('[data-role="customer"] [data-testid="message-text"]')
    await expect(customer_texts).to_have_text(["where is my order", "48213", "I want to talk to a human"])
    first = messages.filter(has_text="where is my order")
    await expect(first.locator('[data-testid="channel"]')).to_have_text("Telegram")
    await expect(first.locator('[data-testid="message-intent"]')).to_have_text("order_status")
    await expect(first.locator('[data-testid="message-confidence"]')).to_have_text(re.compile(r"^ \d+%$"))
    await expect(tid(console, "conversation-state")).to_have_attribute("data-state", "queued")
    await expect(tid(console, "slots")).to_contain_text("48213")
    await expect(tid(console, "escalation")).to_contain_text("human")
    queue = await tid(console, "escalation").locator('[data-key="Queue"]').text_content()
    assert queue in ("support", "delivery")
    await expect(tid(console, "reply-input")).to_be_disabled()

    # Claim and answer: the reply reaches the customer's Telegram chat
    await tid(console, "claim").click()
    await expect(tid(console, "conversation-state")).to_have_attribute("data-state", "with_agent")
    await expect(tid(console, "mine").locator('[data-testid="conversation-item"]')).to_have_count(1)
    await expect(tid(console, "waiting-count")).to_have_text("0")
    await tid(console, "reply-input").fill("Hi, I'm checking 48213")
    await tid(console, "reply-input").press("Enter")
    await telegram.wait_for("sendMessage", chat_id=CHAT, text="Hi, I'm checking 48213")
    await expect(tid(console, "messages").locator('[data-role="agent"] [data-testid="message-text"]')).to_have_text(
        ["Hi, I'm checking 48213"]
    )
    await expect(tid(console, "reply-input")).to_have_value("")

    # A canned response is filled in from the conversation
    await tid(console, "canned").select_option(label="Looking at the order")
    await expect(tid(console, "reply-input")).to_have_value(re.compile(r"I'm looking at order 48213 now\.$"))
    await tid(console, "reply-input").fill("")

    # The customer links the website: a code on Telegram, typed in the widget
    code = re.search(r"\b(\d{6})\b", await customer_says(telegram, "link my account")).group(1)
    site = await pages()
    await site.goto(seamline.url + "/")
    await site.locator('[data-seamline="launcher"]').click()
    await expect(site.locator('[data-seamline="status"]')).to_have_attribute("data-state", "online")
    widget_messages = site.locator('[data-seamline="messages"] .sl-msg')
    widget_input = site.locator('[data-seamline="input"]')
    asked = len(telegram.texts(CHAT))
    await widget_input.fill(code)
    await widget_input.press("Enter")
    await expect(widget_messages.nth(1)).to_have_class(re.compile(r"\bsl-bot\b"))  # waiting for confirmation
    question = (await telegram.wait_for("sendMessage", chat_id=CHAT, count=asked + 1))[asked]  # "Someone in ..."
    telegram.enqueue(telegram.press(question, question.result["reply_markup"]["inline_keyboard"][0][0]["text"]))
    await expect(widget_messages.last).to_contain_text("linked")

    # What they write on the website shows up in the same conversation, live, labelled Web
    await widget_input.fill("I'm on the website now")
    await widget_input.press("Enter")
    web = messages.filter(has_text="I'm on the website now")
    await expect(web).to_have_count(1)
    await expect(web.locator('[data-testid="channel"]')).to_have_text("Web")
    await expect(web).to_have_attribute("data-channel", "web")
    await expect(customer_texts.first).to_have_text("where is my order")  # the same view, not another one
    await expect(tid(console, "identities")).to_contain_text("Web")

    # HTML from a customer is text in the console and never runs
    await widget_input.fill(EVIL)
    await widget_input.press("Enter")
    await expect(customer_texts.last).to_have_text(EVIL)
    await expect(tid(console, "messages").locator("img")).to_have_count(0)
    await console.reload()  # and again when the history comes from the API
    await tid(console, "mine").locator('[data-testid="conversation-item"]').click()
    await expect(customer_texts.last).to_have_text(EVIL)
    await expect(console.locator("[data-testid=messages] img, [data-testid=conversation-item] img")).to_have_count(0)
    assert await console.evaluate("() => typeof window.__xss") == "undefined"

    # Back to the bot: the widget is answered by the bot again
    await tid(console, "release").click()
    await expect(tid(console, "conversation-state")).to_have_attribute("data-state", "bot")
    await expect(tid(console, "mine").locator('[data-testid="conversation-item"]')).to_have_count(0)
    await widget_input.fill("hello")
    await widget_input.press("Enter")
    after_hello = site.locator(
        '[data-seamline="messages"] .sl-msg.sl-customer:has(> .sl-text:text-is("hello")) + .sl-msg.sl-bot .sl-text'
    )
    await expect(after_hello).to_have_count(1)
    await expect(after_hello).not_to_have_text("")


async def test_a_slow_conversation_snapshot_does_not_hide_a_message_that_arrived_live(telegram, seamline, pages):
    """The console reloads the open conversation on some events; a reload fetched before a customer's
    message was stored and answered after the message came over the socket must not wipe it."""
    console = await pages()
    await log_in(console, seamline.url)  # online with room: the conversation is given to Olga at once
    await customer_says(telegram, "I want to talk to a human")
    item = tid(console, "mine").locator('[data-testid="conversation-item"]')
    await item.click()
    await expect(tid(console, "conversation-state")).to_have_attribute("data-state", "with_agent")

    held, release = asyncio.Event(), asyncio.Event()

    async def hold_snapshots(route):
        if route.request.method != "GET":
            return await route.continue_()
        response = await route.fetch()  # taken now, before the customer's next message
        held.set()
        await release.wait()
        await route.fulfill(response=response)

    await console.route(re.compile(r".*/api/v1/conversations/[^/?]+$"), hold_snapshots)
    # A note written from another tab (over the REST API): its event makes this console reload.
    conversation_id = await item.get_attribute("data-id")
    async with aiohttp.ClientSession() as http:
        async with http.post(seamline.url + "/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}) as r:
            token = (await r.json())["token"]
        async with http.post(
            f"{seamline.url}/api/v1/conversations/{conversation_id}/notes",
            json={"text": "checking the order"},
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
            assert r.status == 200, await r.text()
    await asyncio.wait_for(held.wait(), TIMEOUT / 1000)

    telegram.enqueue(telegram.update("message_text", chat_id=CHAT, text="are you still there?"))
    late = tid(console, "messages").locator('[data-testid="message"]').filter(has_text="are you still there?")
    await expect(late).to_have_count(1)  # live, over the socket

    release.set()
    await expect(tid(console, "note")).to_have_count(1)  # the held snapshot has been rendered...
    await expect(late).to_have_count(1)  # ...and the live message is still there
    await expect(late.locator('[data-testid="channel"]')).to_have_text("Telegram")


# Observes the page's real Notification (it is still constructed): what the console asked the browser to show.
RECORD_NOTIFICATIONS = """
(() => {
  window.__notes = [];
  const Real = window.Notification;
  if (!Real) return;
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notes.push({ title: title, body: (options || {}).body, tag: (options || {}).tag });
    }
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


async def notes(page, count: int) -> list[dict]:
    await page.wait_for_function("n => window.__notes.length >= n", arg=count, timeout=TIMEOUT)
    return await page.evaluate("() => window.__notes")


async def test_desktop_notifications_tell_the_agent_of_a_new_conversation_and_its_messages(
    browser, telegram, seamline, pages
):
    asking = await pages()  # permission not given yet: the console offers to turn notifications on
    await log_in(asking, seamline.url)
    await expect(tid(asking, "notify")).to_be_visible()
    await tid(asking, "logout").click()

    context = await browser.new_context(permissions=["notifications"])
    try:
        await context.add_init_script(RECORD_NOTIFICATIONS)
        console = await context.new_page()
        console.set_default_timeout(TIMEOUT)
        await log_in(console, seamline.url)
        await expect(tid(console, "notify")).to_be_hidden()  # allowed already

        await customer_says(telegram, "I want to talk to a human")  # Olga is online: it is hers at once
        shown = await notes(console, 1)
        assert shown[-1]["title"] == "A conversation is yours now"
        assert "person" in shown[-1]["body"]

        telegram.enqueue(telegram.update("message_text", chat_id=CHAT, text=EVIL))
        shown = await notes(console, len(shown) + 1)
        assert (shown[-1]["title"], shown[-1]["body"]) == ("New message on Telegram", EVIL)  # text, as written
        assert await console.evaluate("() => typeof window.__xss") == "undefined"

        # With the conversation open in front of the agent, its messages need no notification.
        await tid(console, "mine").locator('[data-testid="conversation-item"]').click()
        telegram.enqueue(telegram.update("message_text", chat_id=CHAT, text="hello? are you reading?"))
        await expect(
            tid(console, "messages").locator('[data-testid="message"]').filter(has_text="hello? are you reading?")
        ).to_have_count(1)
        assert len(await console.evaluate("() => window.__notes")) == len(shown)
    finally:
        await context.close()


async def test_canned_responses_come_in_the_language_the_customer_writes(telegram, seamline, pages):
    console = await pages()
    await log_in(console, seamline.url)  # online: the conversation is given to Olga at once
    await customer_says(telegram, "Позовите оператора, пожалуйста")
    await tid(console, "mine").locator('[data-testid="conversation-item"]').click()
    await expect(tid(console, "reply-input")).to_be_enabled()
    await tid(console, "canned").select_option(label="Looking at the order")
    # Russian text; no order number known yet: a gap for the agent to fill
    await expect(tid(console, "reply-input")).to_have_value(re.compile(r"^Здравствуйте, .+! Смотрю заказ …\.$"))


async def test_an_admin_sees_the_team_and_sets_a_colleague_who_left_offline(telegram, seamline, pages):
    await seamline.app[SEAMLINE].handoff.agents.add(
        "boss@shop.example", name="Boss", password=PASSWORD, queues=[], role="admin"
    )
    olga = await pages()
    await log_in(olga, seamline.url)  # online: the customer is given to her
    await customer_says(telegram, "I want to talk to a human")
    await expect(tid(olga, "mine").locator('[data-testid="conversation-item"]')).to_have_count(1)

    boss = await pages()
    await boss.goto(seamline.url + "/console/")
    await tid(boss, "login-email").fill("boss@shop.example")
    await tid(boss, "login-password").fill(PASSWORD)
    await tid(boss, "login-submit").click()
    await expect(tid(boss, "app")).to_be_visible()
    async with boss.expect_response("**/api/v1/me/status"):
        await tid(boss, "status").select_option("away")  # so what comes back waits in the queue
    member = tid(boss, "team").locator('[data-testid="team-member"][data-email="olga@shop.example"]')
    await expect(member).to_have_attribute("data-status", "online")
    await expect(member.locator('[data-testid="team-load"]')).to_have_text(re.compile(r"^1/\d+$"))
    await expect(
        tid(boss, "team").locator('[data-email="boss@shop.example"] [data-testid="set-offline"]')
    ).to_have_count(0)  # not oneself
    await expect(tid(olga, "team").locator('[data-testid="set-offline"]')).to_have_count(0)  # admins only

    await member.locator('[data-testid="set-offline"]').click()
    await expect(member).to_have_attribute("data-status", "offline")
    await expect(member.locator('[data-testid="team-load"]')).to_have_text(re.compile(r"^0/\d+$"))
    await expect(tid(boss, "waiting").locator('[data-testid="conversation-item"]')).to_have_count(1)
    await expect(tid(olga, "status")).to_have_value("offline")  # her console follows, live
    await expect(tid(olga, "mine").locator('[data-testid="conversation-item"]')).to_have_count(0)
