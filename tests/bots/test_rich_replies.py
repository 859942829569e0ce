"""Images and custom payloads on every channel, end to end: the real pipeline stores and sends a reply
that carries them (a step placed after ``decide`` says it, as a custom action's dispatcher would), and
each channel shows it its own way: the widget's frames and history, Telegram through the real aiogram
against the fake Bot API, VK through the real vk_api against the fake VK API, the REST channel in
Rasa's shapes (docs/channels.md, docs/web-chat-protocol.md)."""

from __future__ import annotations

import pytest
from aiogram.methods import SendLocation, SendMessage, SendVenue

from seamline.bots.app import SEAMLINE
from seamline.bots.telegram_custom import custom_method
from seamline.bots.vk_format import custom_params, with_image_link
from seamline.shared.message import Button, Reply

from tests.bots.test_web_protocol import client
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.fakes.vk import FakeVk
from tests.support import eventually

PICTURE = "https://shop.example/img/boots.png"
SHORT = "Our bestseller: the winter boots."
LONG = "These boots. " * 100  # over a caption's 1024 units, under a message's 4096
REST_TOKEN = "rest-test-token-0123456789"
BUTTONS = (Button("Buy", "/buy"), Button("Other boots", "/more"))


class Show:
    """After ``decide``: a customer's text naming one of ``replies`` is answered with that reply only."""

    name = "show"
    after = "decide"

    def __init__(self, replies: dict[str, Reply]) -> None:
        self.replies = replies

    async def __call__(self, turn, call_next) -> None:
        await call_next(turn)
        reply = self.replies.get(turn.message.text.strip().lower())
        if reply is not None:
            turn.replies[:] = [reply]


REPLIES = {
    "picture": Reply(SHORT, BUTTONS, image=PICTURE, custom={"banner": "boots", "vk": {"attachment": "photo-1_2"}}),
    "long picture": Reply(LONG, BUTTONS, image=PICTURE),
    "only a picture": Reply("", image=PICTURE),
    "bad picture": Reply("Look at this", image="javascript:alert(document.cookie)"),
    "data picture": Reply("Look at this", image="data:image/svg+xml;base64,PHN2Zz4="),
    "location": Reply("We are here", custom={"telegram": {"latitude": 55.75, "longitude": 37.62}}),
    "web only": Reply("Nothing for Telegram", custom={"carousel": [1, 2]}),
}


def shown(server) -> None:
    server.app[SEAMLINE].pipeline.add_step(Show(REPLIES), after="decide")


# -- the web widget's protocol -------------------------------------------------------------------


async def test_the_widget_gets_the_image_and_the_custom_payload_and_the_history_replays_them(http, server):
    shown(server)
    c = await client(http, server)
    token = (await c.hello())["token"]
    *_, answer = await c.say("picture", id="c-1")
    assert answer["role"] == "bot" and answer["text"] == SHORT
    assert answer["image"] == PICTURE
    assert answer["custom"] == {"banner": "boots", "vk": {"attachment": "photo-1_2"}}
    assert answer["buttons"] == [{"title": "Buy", "payload": "/buy"}, {"title": "Other boots", "payload": "/more"}]
    await c.ws.close()

    again = await client(http, server)
    [mine, replayed] = (await again.hello(token))["history"]
    assert mine["text"] == "picture"
    assert {k: replayed[k] for k in ("id", "text", "image", "custom")} == {
        k: answer[k] for k in ("id", "text", "image", "custom")
    }


@pytest.mark.parametrize("text", ["bad picture", "data picture"])
async def test_an_image_that_is_not_an_http_url_never_reaches_the_widget(http, server, text):
    shown(server)
    c = await client(http, server)
    token = (await c.hello())["token"]
    *_, answer = await c.say(text, id="c-1")
    assert answer["text"] == "Look at this" and "image" not in answer
    await c.ws.close()
    history = (await (await client(http, server)).hello(token))["history"]
    assert all("image" not in m for m in history)


# -- Telegram ------------------------------------------------------------------------------------


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def on_telegram(telegram, settings, make_server):
    server = await make_server(settings, channels={"telegram": dict(token=TOKEN, api_base=telegram.url)})
    shown(server)
    return server


async def test_telegram_sends_a_photo_captioned_with_the_text_and_the_buttons_under_it(telegram, on_telegram):
    telegram.enqueue(telegram.update("message_text", chat_id=2001, text="picture"))
    [photo] = await telegram.wait_for("sendPhoto", chat_id=2001)
    assert photo.params["photo"] == PICTURE and photo.params["caption"] == SHORT
    keys = [row[0] for row in photo.params["reply_markup"]["inline_keyboard"]]
    assert keys == [{"text": "Buy", "callback_data": "/buy"}, {"text": "Other boots", "callback_data": "/more"}]
    assert photo.result["caption"] == SHORT and photo.result["photo"]
    assert telegram.calls_of("sendMessage", chat_id=2001) == []  # the caption said it all
    assert telegram.calls_of("sendLocation", chat_id=2001) == []  # the custom payload has no Telegram shape


async def test_telegram_sends_the_photo_then_a_text_too_long_for_a_caption_with_the_buttons(telegram, on_telegram):
    telegram.enqueue(telegram.update("message_text", chat_id=2002, text="long picture"))
    [text] = await telegram.wait_for("sendMessage", chat_id=2002)
    [photo] = telegram.calls_of("sendPhoto", chat_id=2002)
    assert telegram.calls.index(photo) < telegram.calls.index(text)
    assert "caption" not in photo.params and "reply_markup" not in photo.params
    assert text.params["text"] == LONG.strip() and text.params["reply_markup"]["inline_keyboard"]


async def test_telegram_shows_a_photo_it_cannot_fetch_as_a_link_under_the_text(telegram, on_telegram):
    telegram.fail("sendPhoto", status=400, description="Bad Request: failed to get HTTP URL content")
    telegram.enqueue(telegram.update("message_text", chat_id=2003, text="picture"))
    [text] = await telegram.wait_for("sendMessage", chat_id=2003)
    assert text.params["text"] == f"{SHORT}\n{PICTURE}" and text.params["reply_markup"]["inline_keyboard"]


async def test_telegram_never_sends_a_javascript_image_and_still_says_the_text(telegram, on_telegram):
    telegram.enqueue(telegram.update("message_text", chat_id=2004, text="bad picture"))
    [text] = await telegram.wait_for("sendMessage", chat_id=2004)
    assert text.params["text"] == "Look at this"
    assert telegram.calls_of("sendPhoto", ok=None) == []


async def test_a_custom_payload_with_a_telegram_shape_is_sent_as_that_method(telegram, on_telegram):
    telegram.enqueue(telegram.update("message_text", chat_id=2005, text="location"))
    [place] = await telegram.wait_for("sendLocation", chat_id=2005)
    assert (float(place.params["latitude"]), float(place.params["longitude"])) == (55.75, 37.62)
    [text] = telegram.calls_of("sendMessage", chat_id=2005)
    assert text.params["text"] == "We are here" and telegram.calls.index(text) < telegram.calls.index(place)


async def test_a_custom_payload_for_another_channel_is_not_sent_on_telegram(telegram, on_telegram):
    telegram.enqueue(telegram.update("message_text", chat_id=2006, text="web only"))
    await telegram.wait_for("sendMessage", chat_id=2006)
    await telegram.wait_for("sendChatAction", chat_id=2006)
    assert [c.method for c in telegram.calls if c.params.get("chat_id") in (2006, "2006")] == [
        "sendChatAction",
        "sendMessage",
    ]


# -- VK ------------------------------------------------------------------------------------------


async def sent_to(vk: FakeVk, peer: int, count: int) -> list[dict]:
    async def arrived():
        """the bot's messages reached the fake VK"""
        return vk.sent_to(peer) if len(vk.sent_to(peer)) >= count else None

    return await eventually(arrived)


@pytest.fixture
async def vk():
    async with FakeVk() as fake:
        yield fake


@pytest.fixture
async def on_vk(vk, settings, make_server):
    server = await make_server(
        settings, channels={"vk": {"token": vk.token, "group_id": vk.group_id, "api_base": vk.url}}
    )
    shown(server)
    return server


async def test_vk_shows_the_image_as_a_link_line_and_sends_the_custom_vk_parameters(vk, on_vk):
    vk.push(vk.message_new(3001, "picture"))
    [sent] = await sent_to(vk, 3001, 1)
    assert sent["message"] == f"{SHORT}\n{PICTURE}"
    assert sent["attachment"] == "photo-1_2"  # custom["vk"], merged into messages.send
    assert [cell["action"]["label"] for row in sent["keyboard"]["buttons"] for cell in row] == ["Buy", "Other boots"]


async def test_vk_sends_an_image_without_text_as_its_link_and_never_a_javascript_one(vk, on_vk):
    vk.push(vk.message_new(3002, "only a picture"))
    vk.push(vk.message_new(3002, "bad picture"))
    first, second = await sent_to(vk, 3002, 2)
    assert first["message"] == PICTURE
    assert second["message"] == "Look at this"


# -- REST ----------------------------------------------------------------------------------------


async def test_rest_answers_image_and_custom_as_rasa_items(http, settings, make_server):
    server = await make_server(settings, environ={"SEAMLINE_REST_TOKEN": REST_TOKEN})
    shown(server)
    async with http.post(
        f"{server.url}/webhooks/rest/webhook",
        json={"sender": "rest-1", "message": "picture"},
        headers={"Authorization": f"Bearer {REST_TOKEN}"},
    ) as response:
        assert response.status == 200
        items = await response.json()
    assert items == [
        {
            "recipient_id": "rest-1",
            "text": SHORT,
            "buttons": [{"title": "Buy", "payload": "/buy"}, {"title": "Other boots", "payload": "/more"}],
        },
        {"recipient_id": "rest-1", "custom": {"banner": "boots", "vk": {"attachment": "photo-1_2"}}},
        {"recipient_id": "rest-1", "image": PICTURE},
    ]


# -- the rules, pure -------------------------------------------------------------------------------


def test_a_telegram_custom_payload_picks_the_most_specific_method_and_never_another_chat():
    venue = custom_method(
        "42", {"telegram": {"chat_id": 999, "latitude": 55.7, "longitude": 37.6, "title": "Shop", "address": "Main st"}}
    )
    assert isinstance(venue, SendVenue) and venue.chat_id == "42" and venue.title == "Shop"
    assert isinstance(custom_method("42", {"latitude": 55.7, "longitude": 37.6}), SendLocation)  # Rasa's bare shape
    text = custom_method("42", {"text": "hi", "parse_mode": "HTML"})
    assert isinstance(text, SendMessage) and text.parse_mode == "HTML"
    assert custom_method("42", {"carousel": [1]}) is None
    assert custom_method("42", {"latitude": "north", "longitude": 1}) is None  # invalid: skipped, not raised


def test_vk_custom_parameters_are_only_those_that_do_not_change_the_recipient():
    params = custom_params({"vk": {"attachment": "photo-1_2", "peer_id": 1, "random_id": 7, "template": {"type": "x"}}})
    assert params == {"attachment": "photo-1_2", "template": '{"type": "x"}'}
    assert custom_params({"carousel": [1]}) == {} and custom_params(None) == {}
    assert with_image_link("Hi", "javascript:alert(1)") == "Hi"
    assert with_image_link("", PICTURE) == PICTURE
