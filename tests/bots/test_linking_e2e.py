"""One customer across channels, end to end through the real adapters: the widget in headless
Chromium (Playwright), aiogram against the fake Bot API, vk_api against the fake VK API, and the
web chat protocol over a real WebSocket; PostgreSQL and Redis behind them (tests/services.sh).

- a 6-digit code asked for in Telegram (for the website) and typed in the widget, confirmed in Telegram;
- "Continue in Telegram" in the widget: a t.me deep link, opened by a Telegram user, confirmed in the widget;
- "Continue in VK": a vk.me link whose ``ref`` arrives with the first VK message, confirmed on the web;
- the site's signed identity: one site user on two browsers is one customer with one history.

Nothing sleeps and hopes: every wait is for a condition, bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from seamline.bots.app import SEAMLINE
from seamline.bots.vk_format import to_message as vk_message
from seamline.shared.errors import ConfigError
from seamline.shared.settings import load_settings

from tests.fakes.telegram import BOT, TOKEN, FakeTelegram
from tests.fakes.vk import FakeVk

pytestmark = pytest.mark.browser

IDENTITY_SECRET = "site-identity-secret-0123456789"
VK_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vk"
TIMEOUT = 10_000  # ms, for every wait on a page


def sign(external_id: str, secret: str = IDENTITY_SECRET) -> str:
    """What the site's server computes for its logged-in user (docs/web-chat-protocol.md)."""
    return hmac.new(secret.encode(), external_id.encode(), hashlib.sha256).hexdigest()


# -- pure: VK's ref and the setting ----------------------------------------------------------------


def vk_fixture(name: str) -> dict:
    return json.loads((VK_FIXTURES / f"{name}.json").read_text())


def test_a_vk_message_that_came_by_a_ref_link_carries_it_as_a_start_payload():
    event = vk_fixture("message_new_text")
    event["object"]["message"].update(ref="ln-AbCdEfGhIjKlMnOpQrStUvWxYz012345", ref_source="widget")
    message = vk_message(event)
    assert message.payload == "/start ln-AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    assert message.text == "Здравствуйте! Где мой заказ 48213?"  # the text stays as it is


def test_vks_start_button_pressed_after_a_ref_link_is_the_deep_link_and_other_buttons_keep_theirs():
    start = vk_fixture("message_new_start_button")
    start["object"]["message"]["ref"] = "ln-AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    assert vk_message(start).payload == "/start ln-AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    button = vk_fixture("message_new_keyboard_payload")
    kept = vk_message(button).payload
    button["object"]["message"]["ref"] = "ln-AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    assert vk_message(button).payload == kept and kept.startswith("/")
    assert vk_message(vk_fixture("message_new_text")).payload is None  # no ref: nothing changes


def test_the_identity_secret_is_read_from_the_environment_or_the_file_and_must_be_long(tmp_path):
    base = {"SEAMLINE_SECRET_KEY": "k" * 32, "SEAMLINE_DATA_DIR": str(tmp_path)}
    assert load_settings(base).web_identity_secret == ""
    assert (
        load_settings({**base, "SEAMLINE_WEB_IDENTITY_SECRET": IDENTITY_SECRET}).web_identity_secret == IDENTITY_SECRET
    )
    assert IDENTITY_SECRET not in repr(load_settings({**base, "SEAMLINE_WEB_IDENTITY_SECRET": IDENTITY_SECRET}))
    (tmp_path / "seamline.toml").write_text(f'[web]\nidentity_secret = "{IDENTITY_SECRET}"\n')
    assert load_settings({**base, "SEAMLINE_CONFIG_DIR": str(tmp_path)}).web_identity_secret == IDENTITY_SECRET
    with pytest.raises(ConfigError) as error:
        load_settings({**base, "SEAMLINE_WEB_IDENTITY_SECRET": "short"})
    assert error.value.setting == "SEAMLINE_WEB_IDENTITY_SECRET"


# -- servers ---------------------------------------------------------------------------------------


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def vk():
    async with FakeVk() as fake:
        yield fake


@pytest.fixture
def production(settings, postgres_url, redis_url):
    """The settings of a real deployment: PostgreSQL, Redis, a site identity secret."""
    return replace(settings, database_url=postgres_url, redis_url=redis_url, web_identity_secret=IDENTITY_SECRET)


@pytest.fixture
async def seamline(telegram, vk, production, make_server):
    """Seamline with the web chat, Telegram (long polling) and VK (Bots Long Poll) against the fakes
    (requested after them, so stopped before them)."""
    return await make_server(
        production,
        channels={
            "telegram": dict(token=TOKEN, api_base=telegram.url),
            "vk": dict(token=vk.token, group_id=vk.group_id, api_base=vk.url),
        },
    )


def parts(server):
    return server.app[SEAMLINE]


def visitor_of(token: str) -> str:
    """The visitor id inside a widget token (``<visitor>.<signature>``)."""
    return token.rpartition(".")[0]


async def same_customer(server, *identities: tuple[str, str]) -> bool:
    store = parts(server).store
    found = [await store.fresh_customer(channel, sender) for channel, sender in identities]
    return all(found) and len({c.id for c in found}) == 1


# -- the web chat protocol, as a client ------------------------------------------------------------


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = iter(range(1, 1000))

    async def hello(self, token: str | None = None, **claim: str) -> dict:
        await self.ws.send_json({"type": "hello", "token": token, "lang": "en", **claim})
        return await self.receive("welcome")

    async def receive(self, *types: str, timeout: float = 10) -> dict:
        while True:
            frame = await self.ws.receive_json(timeout=timeout)
            if not types or frame["type"] in types:
                return frame

    async def say(self, text: str) -> dict:
        """Send a message; return the bot's answer."""
        await self.ws.send_json({"type": "message", "id": f"c-{next(self.ids)}", "text": text})
        while (frame := await self.receive("message", "error"))["type"] == "message" and frame["role"] == "customer":
            pass
        return frame

    async def link(self, channel: str) -> dict:
        await self.ws.send_json({"type": "link", "id": f"l-{next(self.ids)}", "channel": channel})
        return await self.receive("link", "error")


@pytest.fixture
async def connect():
    """Open protocol clients to a server; all are closed after the test."""
    async with aiohttp.ClientSession() as http:

        async def open_one(server) -> Client:
            return Client(await http.ws_connect(server.ws_url))

        yield open_one


# -- the widget in Chromium ------------------------------------------------------------------------


@pytest.fixture
def browser(browser):
    """The run's Chromium (tests/conftest.py), with this module's wait for every expect."""
    from playwright.async_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT)
    return browser


def expect(locator):
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


class Visitor:
    """One browser (context) with one tab holding the widget."""

    def __init__(self, context, page) -> None:
        self.context, self.page = context, page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.launcher = page.locator('[data-seamline="launcher"]')
        self.status = page.locator('[data-seamline="status"]')
        self.list = page.locator('[data-seamline="messages"]')
        self.messages = self.list.locator(".sl-msg")
        self.input = page.locator('[data-seamline="input"]')
        self.channels = page.locator('[data-seamline="channels"] button')

    async def open(self, url: str) -> None:
        await self.page.goto(url)
        await self.launcher.click()
        await expect(self.status).to_have_attribute("data-state", "online")

    async def say(self, text: str):
        """Send ``text``; wait for its echo and the bot's answer after it; return the answer's text locator."""
        count = await self.messages.count()
        await self.input.fill(text)
        await self.input.press("Enter")
        await expect(self.messages.nth(count)).to_have_class(re.compile(r"\bsl-customer\b"))
        answer = self.messages.nth(count + 1)
        await expect(answer).to_have_class(re.compile(r"\bsl-bot\b"))
        return answer.locator(".sl-text")

    async def token(self) -> str:
        return await self.page.evaluate("() => localStorage.getItem('seamline.token')")


@pytest.fixture
async def browsers(browser, seamline):
    """New visitors, each in its own browser context; closed before the server stops."""
    made: list[Visitor] = []

    async def new() -> Visitor:
        context = await browser.new_context()
        context.set_default_timeout(TIMEOUT)
        made.append(Visitor(context, await context.new_page()))
        return made[-1]

    yield new
    for one in made:
        await one.context.close()
    assert not [e for one in made for e in one.errors], "uncaught errors on a page"


# -- a code from Telegram typed in the widget -------------------------------------------------------


def first_button(call) -> str:
    """The title of the first inline button on a message the bot sent to Telegram."""
    return call.result["reply_markup"]["inline_keyboard"][0][0]["text"]


async def test_a_code_asked_for_in_telegram_and_typed_in_the_widget_brings_the_telegram_chat_along(
    telegram, seamline, browsers
):
    telegram.enqueue(
        *(
            telegram.update("message_text", chat_id=2001, text=text)
            for text in ("where is my order", "48213", "link my account")
        )
    )
    await telegram.wait_for("sendMessage", chat_id=2001, count=3)
    assert "48213" in telegram.texts(2001)[1]
    where = telegram.calls_of("sendMessage", chat_id=2001)[2]  # where will the code be typed? the website
    telegram.enqueue(telegram.press(where, first_button(where)))
    await telegram.wait_for("sendMessage", chat_id=2001, count=4)
    code = re.search(r"\b(\d{6})\b", telegram.texts(2001)[3]).group(1)

    visitor = await browsers()
    await visitor.open(seamline.url + "/")
    waiting = await visitor.say(code)
    await expect(waiting).to_contain_text("confirmation")
    await expect(visitor.list).not_to_contain_text("48213")  # nothing of Telegram's before the yes
    question = (await telegram.wait_for("sendMessage", chat_id=2001, count=5))[4]
    assert re.search("website chat|чате на сайте", question.params["text"])
    telegram.enqueue(telegram.press(question, first_button(question)))

    answer = visitor.list.locator(".sl-bot .sl-text").last
    await expect(answer).to_contain_text("linked")
    await expect(answer).to_contain_text("order 48213")  # the topic the customer was on
    await expect(answer).to_contain_text("Telegram")
    # The widget now shows what was said in Telegram, marked as such, in order, and the code masked.
    from_telegram = visitor.list.locator('.sl-customer[data-channel="telegram"] .sl-text')
    await expect(from_telegram).to_have_text(
        ["where is my order", "48213", "link my account", re.compile("Website chat|Чат на сайте"), re.compile("Yes|Да")]
    )
    await expect(visitor.list).not_to_contain_text(code)
    web = visitor_of(await visitor.token())
    assert await same_customer(seamline, ("telegram", "2001"), ("web", web))
    customer = await parts(seamline).store.fresh_customer("web", web)
    session = await parts(seamline).sessions.load(customer.id)
    assert session.slots["order_number"] == "48213"  # carried over: no need to ask again

    await visitor.page.reload()  # and it is the visitor's history from now on
    await visitor.launcher.click()
    await expect(visitor.status).to_have_attribute("data-state", "online")
    await expect(from_telegram).to_have_count(5)
    await expect(visitor.messages.last).to_contain_text("order 48213")


# -- deep links from the widget ---------------------------------------------------------------------


async def test_continue_in_telegram_opens_a_one_time_deep_link_with_the_web_conversation(telegram, seamline, browsers):
    visitor = await browsers()
    await visitor.context.route(
        "https://t.me/**",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><title>Telegram</title>"
        ),
    )
    await visitor.open(seamline.url + "/")
    await visitor.say("where is my order")
    await visitor.say("48213")
    await expect(visitor.channels).to_have_text(["Continue in Telegram", "Continue in VK"])

    async with visitor.context.expect_page() as opened:
        await visitor.channels.filter(has_text="Telegram").click()
    tab = await opened.value
    await tab.wait_for_url(re.compile(r"^https://t\.me/"))
    assert await tab.evaluate("() => window.opener") is None  # the messenger's tab cannot reach back
    match = re.fullmatch(rf"https://t\.me/{BOT['username']}\?start=(ln-[A-Za-z0-9_-]+)", tab.url)
    assert match, tab.url
    token = match.group(1)
    assert len(token) <= 64  # Telegram's limit for a start parameter

    telegram.enqueue(telegram.update("message_text", chat_id=3001, text=f"/start {token}"))
    [waiting] = await telegram.wait_for("sendMessage", chat_id=3001)
    assert re.search("Waiting for confirmation|Ждём подтверждения", waiting.params["text"])
    assert not await same_customer(seamline, ("web", visitor_of(await visitor.token())), ("telegram", "3001"))
    yes = visitor.page.locator('[data-seamline="buttons"] button').first  # "Someone in Telegram wants ..."
    await expect(visitor.messages.last).to_contain_text("Telegram")
    await yes.click()
    greeting = (await telegram.wait_for("sendMessage", chat_id=3001, count=2))[1]
    text = greeting.params["text"]
    # in the Telegram user's language (the fixture's user speaks Russian)
    assert re.search("linked|связаны", text) and re.search("order 48213|заказ 48213", text)
    assert re.search("website chat|чате на сайте", text)
    web = visitor_of(await visitor.token())
    assert await same_customer(seamline, ("web", web), ("telegram", "3001"))
    stored = await parts(seamline).store.history((await parts(seamline).store.fresh_customer("web", web)).id)
    assert [m.channel for m in stored if m.direction == "in"] == ["web", "web", "telegram", "web"]
    assert token not in " ".join(m.text + (m.payload or "") for m in stored)  # never kept in clear

    # The link is used up: someone else opening it (a forwarded link) links nothing.
    telegram.enqueue(telegram.update("message_text", chat_id=3002, text=f"/start {token}"))
    [refused] = await telegram.wait_for("sendMessage", chat_id=3002)
    assert re.search("already been used|уже использован", refused.params["text"])  # (the fixture user: ru)
    assert not await same_customer(seamline, ("web", web), ("telegram", "3002"))


async def test_continue_in_vk_sends_a_ref_link_that_links_the_first_vk_message(vk, seamline, connect):
    web = await connect(seamline)
    welcome = await web.hello()
    assert welcome["channels"] == ["telegram", "vk"] and welcome["identified"] is False
    await web.say("where is my order")
    await web.say("48213")

    link = await web.link("vk")
    assert (link["type"], link["channel"], link["expires_in"]) == ("link", "vk", 600)
    match = re.fullmatch(rf"https://vk\.me/club{vk.group_id}\?ref=(ln-[A-Za-z0-9_-]+)", link["url"])
    assert match, link["url"]

    vk.push(vk.message_new(4001, "Hello!", ref=match.group(1), ref_source="website"))
    [waiting] = await vk.wait_for(lambda: vk.sent_to(4001))
    assert re.search("Waiting for confirmation|Ждём подтверждения", waiting["message"])
    question = await web.receive("message")  # "Someone in VK wants to link to this chat: yes / no"
    assert "VK" in question["text"] and question["buttons"][0]["payload"].startswith("/link_yes ")
    await web.ws.send_json(
        {
            "type": "message",
            "id": "yes-1",
            "text": question["buttons"][0]["title"],
            "payload": question["buttons"][0]["payload"],
        }
    )
    [greeting] = await vk.wait_for(lambda: vk.sent_to(4001)[1:])
    assert "linked" in greeting["message"] and "order 48213" in greeting["message"]
    visitor = visitor_of(welcome["token"])
    assert await same_customer(seamline, ("web", visitor), ("vk", "4001"))

    # Used up: another VK user pressing Start after opening the same link links nothing.
    vk.push(vk.message_new(4002, "Начать", payload={"command": "start"}, ref=match.group(1), lang_id=0))
    [refused] = await vk.wait_for(lambda: vk.sent_to(4002))
    assert re.search("already been used|уже использован", refused["message"])
    assert not await same_customer(seamline, ("web", visitor), ("vk", "4002"))

    # Links are one-time proofs: a visitor may ask for a few an hour, not more.
    for _ in range(4):
        assert (await web.link("telegram"))["type"] == "link"
    refused = await web.link("telegram")
    assert (refused["type"], refused["code"], refused["id"]) == ("error", "rate_limited", "l-8")


async def test_a_link_needs_a_hello_and_a_configured_messenger(server, connect):
    client = await connect(server)
    await client.ws.send_json({"type": "link", "id": "l-0", "channel": "telegram"})
    assert (await client.receive("error"))["code"] == "hello_required"
    welcome = await client.hello()
    assert welcome["channels"] == [] and welcome["identified"] is False
    for channel in ("telegram", "vk", "whatsapp"):
        error = await client.link(channel)
        assert (error["type"], error["code"]) == ("error", "link_unavailable")
    await client.ws.send_json({"type": "link", "id": "l-9", "channel": 7})
    assert (await client.receive("error"))["code"] == "bad_frame"
    assert (await client.say("hello"))["role"] == "bot"  # and the chat goes on


# -- the site's signed identity ---------------------------------------------------------------------


@pytest.fixture
async def site(production, make_server):
    return await make_server(production)


async def test_one_site_user_on_two_browsers_is_one_customer_with_one_history(site, connect):
    first = await connect(site)
    welcome = await first.hello(external_id="user-1", signature=sign("user-1"))
    assert welcome["identified"] is True and welcome["history"] == []
    await first.say("where is my order")
    await first.say("48213")

    second = await connect(site)  # another browser: no token, the same site user
    welcome = await second.hello(external_id="user-1", signature=sign("user-1").upper())
    assert welcome["identified"] is True
    assert [m["text"] for m in welcome["history"] if m["role"] == "customer"] == ["where is my order", "48213"]
    answer = await second.say("thanks")
    assert answer["role"] == "bot"
    # The first browser is told: it gets the joined history at once.
    refreshed = await first.receive("history")
    assert [m["text"] for m in refreshed["history"] if m["role"] == "customer"] == ["where is my order", "48213"]
    again = await (await connect(site)).hello(token=welcome["token"])  # the second browser, reloaded
    assert [m["text"] for m in again["history"] if m["role"] == "customer"] == ["where is my order", "48213", "thanks"]
    assert await same_customer(site, ("site", "user-1"), ("web", visitor_of(welcome["token"])))


UNPROVEN = {
    "unsigned": {"external_id": "user-1"},
    "another user's signature": {"external_id": "user-1", "signature": sign("user-2")},
    "not the site's key": {"external_id": "user-1", "signature": sign("user-1", "x" * 32)},
    "an empty signature": {"external_id": "user-1", "signature": ""},
    "not a string": {"external_id": 17, "signature": sign("17")},
}


async def test_an_unproven_claim_is_ignored_and_the_visitor_stays_alone(site, connect, caplog):
    owner = await connect(site)
    assert (await owner.hello(external_id="user-1", signature=sign("user-1")))["identified"] is True
    await owner.say("my secret order 48213")
    caplog.set_level("INFO", logger="seamline.bots.web")

    for case, claim in UNPROVEN.items():
        caplog.clear()
        intruder = await connect(site)
        welcome = await intruder.hello(**claim)
        assert (welcome["identified"], welcome["history"]) == (False, []), case
        answer = await intruder.say("where is my order")
        assert "48213" not in answer["text"], case
        assert not await same_customer(site, ("web", visitor_of(welcome["token"])), ("site", "user-1")), case
        logged = " ".join(r.getMessage() for r in caplog.records if r.name == "seamline.bots.web")
        assert "ignored" in logged, case
        if claim.get("signature"):
            assert claim["signature"] not in logged, case  # the log never holds a signature
    assert [
        m.text
        for m in await parts(site).store.history((await parts(site).store.fresh_customer("site", "user-1")).id)
        if m.direction == "in"
    ] == ["my secret order 48213"]  # and nothing of theirs reached the owner


async def test_without_a_configured_secret_claims_are_ignored(settings, make_server, connect):
    server = await make_server(settings)
    client = await connect(server)
    welcome = await client.hello(external_id="user-1", signature=sign("user-1"))
    assert welcome["identified"] is False
    assert await parts(server).store.fresh_customer("site", "user-1") is None


async def test_when_linking_the_identity_fails_the_chat_still_opens_anonymous(site, connect, monkeypatch):
    from seamline.shared.errors import StoreError

    async def down(*args, **kwargs):
        raise StoreError("the database is down")

    monkeypatch.setattr(parts(site).linker, "link_site_identity", down)
    client = await connect(site)
    welcome = await client.hello(external_id="user-1", signature=sign("user-1"))
    assert (welcome["identified"], welcome["history"]) == (False, [])
    assert (await client.say("hello"))["role"] == "bot"


async def test_a_browser_that_held_another_site_users_chat_starts_a_new_one(site, connect):
    first = await connect(site)
    welcome = await first.hello(external_id="user-1", signature=sign("user-1"))
    await first.say("user one writes 11111")
    shared_token = welcome["token"]

    # The same browser (same token), now with another user logged in.
    other = await connect(site)
    welcome = await other.hello(token=shared_token, external_id="user-2", signature=sign("user-2"))
    assert welcome["identified"] is True and welcome["token"] != shared_token
    assert welcome["history"] == []
    await other.say("user two writes 22222")
    assert not await same_customer(site, ("site", "user-1"), ("site", "user-2"))
    mine = await (await connect(site)).hello(token=shared_token, external_id="user-1", signature=sign("user-1"))
    assert "22222" not in json.dumps(mine["history"]) and "11111" in json.dumps(mine["history"])


@pytest.fixture
async def shop(site):
    """The shop's own site (another origin) embedding the widget; ``/?external_id=..&signature=..`` is
    a page of that logged-in user, as the shop's server would render it; ``/`` a page of nobody."""
    from html import escape

    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        attributes = " ".join(
            f'data-{name.replace("_", "-")}="{escape(request.query[name])}"'
            for name in ("external_id", "signature")
            if name in request.query
        )
        return web.Response(
            content_type="text/html",
            text=(
                '<!doctype html><html><head><meta charset="utf-8"><title>My account</title></head><body>'
                f'<script src="{site.url}/widget.js" async {attributes}></script></body></html>'
            ),
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_the_widget_sends_the_sites_signed_user_and_shows_the_shared_history(site, shop, browser):
    from urllib.parse import urlencode

    async def visit(**claim: str) -> Visitor:
        context = await browser.new_context()
        context.set_default_timeout(TIMEOUT)
        visitor = Visitor(context, await context.new_page())
        visitors.append(visitor)
        await visitor.open(f"{shop}/?{urlencode(claim)}")
        return visitor

    visitors: list[Visitor] = []
    try:
        alice = await visit(external_id="user-7", signature=sign("user-7"))
        await alice.say("Alice asks about 48213")
        phone = await visit(external_id="user-7", signature=sign("user-7"))  # her phone
        await expect(phone.list.locator(".sl-customer .sl-text")).to_have_text(["Alice asks about 48213"])
        await phone.say("and from the phone")
        forged = await visit(external_id="user-7", signature="0" * 64)
        unsigned = await visit(external_id="user-7")
        for stranger in (forged, unsigned):
            await expect(stranger.messages).to_have_count(0)
            await stranger.say("hello")
            await expect(stranger.list).not_to_contain_text("Alice")
        assert await same_customer(
            site, ("web", visitor_of(await alice.token())), ("web", visitor_of(await phone.token())), ("site", "user-7")
        )

        # Logged out on the first browser: the page has no user any more, and the widget neither
        # shows nor continues the user's conversation.
        await alice.open(f"{shop}/")
        await expect(alice.messages).to_have_count(0)
        assert not await same_customer(site, ("web", visitor_of(await alice.token())), ("site", "user-7"))
        assert not [v.errors for v in visitors if v.errors]
    finally:
        for visitor in visitors:
            await visitor.context.close()
