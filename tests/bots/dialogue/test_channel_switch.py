"""A form survives a channel switch: asked for an order number in the website chat (the web chat
protocol over a real WebSocket), the customer continues in Telegram (real aiogram against the fake
Bot API) through the widget's deep link, is asked the same question there, answers, and the form is
submitted. The form is session state, and the session is the customer's."""

from __future__ import annotations

import re
import shutil

import aiohttp
import pytest
import yaml

from seamline.bots.app import SEAMLINE

from tests.fakes.telegram import TOKEN, FakeTelegram


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def shop_config(config_dir, tmp_path):
    """The retail config with the order form submitting a response (not the custom action: what is
    tested here is the form's state, wherever the customer is)."""
    copy = tmp_path / "config"
    shutil.copytree(config_dir, copy)
    domain = yaml.safe_load((copy / "domain.yml").read_text(encoding="utf-8"))
    domain["forms"]["order_status_form"]["submit"] = ["order_received"]
    (copy / "domain.yml").write_text(yaml.safe_dump(domain, allow_unicode=True), encoding="utf-8")
    for language, text in (("en", "Order {order_number}: noted."), ("ru", "Заказ {order_number}: записал.")):
        path = copy / "responses" / f"{language}.yml"
        responses = yaml.safe_load(path.read_text(encoding="utf-8"))
        responses["responses"]["order_received"] = [{"text": text}]
        path.write_text(yaml.safe_dump(responses, allow_unicode=True), encoding="utf-8")
    return copy


@pytest.fixture
async def shop(telegram, settings, shop_config, make_server):
    return await make_server(
        settings, config_dir=shop_config, channels={"telegram": dict(token=TOKEN, api_base=telegram.url)}
    )


class Widget:
    """The web chat protocol, as the widget speaks it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.ids = ws, iter(range(1, 1000))

    async def receive(self, *types: str) -> dict:
        while True:
            frame = await self.ws.receive_json(timeout=10)
            if frame["type"] in types:
                return frame

    async def send(self, text: str, payload: str | None = None) -> dict:
        """Send a message; return the bot's first answer."""
        await self.ws.send_json({"type": "message", "id": f"c-{next(self.ids)}", "text": text, "payload": payload})
        while (frame := await self.receive("message", "error"))["type"] == "message" and frame["role"] == "customer":
            pass
        return frame


async def test_a_form_begun_in_the_widget_is_finished_in_telegram(shop, telegram):
    async with aiohttp.ClientSession() as http:
        widget = Widget(await http.ws_connect(shop.ws_url))
        await widget.ws.send_json({"type": "hello", "token": None, "lang": "en"})
        await widget.receive("welcome")
        asked = await widget.send("where is my order")
        assert "order number" in asked["text"].lower()

        await widget.ws.send_json({"type": "link", "id": "l-1", "channel": "telegram"})
        link = await widget.receive("link")
        token = re.search(r"start=(ln-[A-Za-z0-9_-]+)", link["url"]).group(1)
        telegram.enqueue(telegram.update("message_text", chat_id=4001, text=f"/start {token}"))
        await telegram.wait_for("sendMessage", chat_id=4001)  # waiting for the website's yes
        question = await widget.receive("message")
        assert "Telegram" in question["text"] and question["buttons"]
        yes = question["buttons"][0]
        await widget.ws.send_json({"type": "message", "id": "c-yes", "text": yes["title"], "payload": yes["payload"]})

        # Telegram hears it is linked, and the form's question again: it goes on there.
        said = await telegram.wait_for("sendMessage", chat_id=4001, count=3)
        assert re.search("order number|номер заказа", said[2].params["text"], re.IGNORECASE)
        telegram.enqueue(telegram.update("message_text", chat_id=4001, text="48213"))
        answer = (await telegram.wait_for("sendMessage", chat_id=4001, count=4))[3]
        assert re.search("Order 48213: noted|Заказ 48213: записал", answer.params["text"])

    parts = shop.app[SEAMLINE]
    customer = await parts.store.fresh_customer("telegram", "4001")
    session = await parts.sessions.load(customer.id)
    assert session.active_form is None and session.slots["order_number"] == "48213"
    assert [i.channel for i in await parts.store.identities(customer.id)].count("web") == 1
