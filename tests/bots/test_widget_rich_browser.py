"""The chat widget shows a bot's image and hands its custom payload to the page: a real headless
Chromium, the widget embedded in a shop's own page (which serves the picture and listens for
``seamline:custom``), Seamline's real pipeline saying the reply. An image whose URL is not http(s)
is never shown, even when a frame carrying one reaches the widget (the server drops them; here the
frame is altered on the way)."""

from __future__ import annotations

import base64
import json
import re

import pytest
from aiohttp import web

from seamline.bots.app import SEAMLINE
from seamline.shared.message import Reply

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect
expect.set_options(timeout=10_000)

# a 1x1 transparent PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
SHORT = "Our bestseller: the winter boots."
CUSTOM = {"carousel": [{"sku": "boots-1"}, {"sku": "boots-2"}]}
EVIL = "javascript:window.__xss=1"


class Show:
    """After ``decide``: "picture" is answered with the shop's picture and a custom payload."""

    name = "show"
    after = "decide"

    def __init__(self, picture: str) -> None:
        self.picture = picture

    async def __call__(self, turn, call_next) -> None:
        await call_next(turn)
        text = turn.message.text.strip().lower()
        if text == "picture":
            turn.replies[:] = [Reply(SHORT, image=self.picture, custom=CUSTOM)]
        elif text == "look":
            turn.replies[:] = [Reply("Look at this")]


@pytest.fixture
async def shop(server):
    """The shop's site: a page embedding the widget that records ``seamline:custom`` events, and the picture."""
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>A shop</title></head><body>'
        "<script>window.__custom = []; window.addEventListener('seamline:custom', "
        "(e) => window.__custom.push(e.detail));</script>"
        f'<script src="{server.url}/widget.js" async></script></body></html>'
    )

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def picture(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/boots.png", picture)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    server.app[SEAMLINE].pipeline.add_step(Show(url + "/boots.png"), after="decide")
    yield url
    await runner.cleanup()


@pytest.fixture
async def tab(browser, server):
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert not errors, f"uncaught errors on the page: {errors}"


async def open_chat(tab, url: str) -> None:
    await tab.goto(url)
    await tab.locator('[data-seamline="launcher"]').click()
    await expect(tab.locator('[data-seamline="status"]')).to_have_attribute("data-state", "online")


async def say(tab, text: str) -> None:
    await tab.locator('[data-seamline="input"]').fill(text)
    await tab.locator('[data-seamline="input"]').press("Enter")


async def test_the_widget_shows_the_image_and_hands_the_custom_payload_to_the_page(tab, shop):
    await open_chat(tab, shop + "/")
    await say(tab, "picture")
    bot = tab.locator('[data-seamline="messages"] .sl-msg.sl-bot').last
    image = bot.locator('img[data-seamline="image"]')
    await expect(image).to_have_attribute("src", shop + "/boots.png")
    await expect(image).to_have_attribute("alt", SHORT)
    await expect(bot.locator(".sl-text")).to_have_text(SHORT)
    assert await image.evaluate("img => img.decode().then(() => img.naturalWidth)") == 1  # it loaded
    events = await tab.evaluate("() => window.__custom")
    assert [(e["custom"], e["text"], e["replay"]) for e in events] == [(CUSTOM, SHORT, False)]
    assert await bot.locator("text=carousel").count() == 0  # custom is for the page, never shown

    await tab.reload()  # the history replays both: the image shown, the payload handed over once
    await tab.locator('[data-seamline="launcher"]').click()
    replayed = tab.locator('[data-seamline="messages"] .sl-msg.sl-bot img[data-seamline="image"]')
    await expect(replayed).to_have_attribute("src", shop + "/boots.png")
    events = await tab.evaluate("() => window.__custom")
    assert [(e["id"], e["custom"], e["replay"]) for e in events] == [(events[0]["id"], CUSTOM, True)]


async def test_the_widget_never_shows_an_image_whose_url_is_not_http(tab, shop, server):
    altered: list[str] = []

    async def alter(ws):
        # Between the page and Seamline: the bot's "Look at this" gets a javascript: image on the way.
        seamline = ws.connect_to_server()
        ws.on_message(lambda message: seamline.send(message))

        def to_page(message):
            frame = json.loads(message)
            if frame.get("type") == "message" and frame.get("text") == "Look at this":
                frame["image"] = EVIL
                altered.append(frame["id"])
            ws.send(json.dumps(frame))

        seamline.on_message(to_page)

    await tab.route_web_socket(re.compile(r".*/chat/ws.*"), alter)
    await open_chat(tab, shop + "/")
    await say(tab, "look")
    bot = tab.locator('[data-seamline="messages"] .sl-msg.sl-bot').last
    await expect(bot.locator(".sl-text")).to_have_text("Look at this")
    await expect(tab.locator('[data-seamline="messages"] img')).to_have_count(0)
    assert altered  # the frame with the javascript: image did reach the widget
    assert await tab.evaluate("() => typeof window.__xss") == "undefined"
