"""The Telegram channel: recorded payloads as Messages, and Seamline end to end through the real
aiogram against the fake Bot API (tests/fakes/telegram.py), in long polling and webhook mode.

Nothing sleeps and hopes: every wait is for a condition, bounded (10 s).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import replace

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, types
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Update

from seamline.bots.app import SEAMLINE
from seamline.bots.channels import CHANNELS
from seamline.bots.telegram import WEBHOOK_PATH, to_message
from seamline.bots.telegram_text import CallbackPayloads, split, utf16_len
from seamline.shared.errors import ConfigError
from seamline.shared.message import Attachment, Button, Reply

from tests.conftest import Server, fail_storage_once
from tests.fakes.telegram import CUSTOMER, SECRET_HEADER, TOKEN, FakeTelegram, load_fixture
from tests.support import eventually, free_port

WEBHOOK_SECRET = "webhook-secret-0123456789"


def native(fixture: str) -> Update:
    return Update.model_validate(load_fixture(fixture))


# to_message: every recorded update kind, pure


def test_a_text_message():
    message = to_message(native("message_text"))
    assert (message.channel, message.address, message.sender) == ("telegram", str(CUSTOMER), str(CUSTOMER))
    assert (message.text, message.payload, message.attachments) == ("Hello! Where is my order?", None, ())
    assert message.external_id == "873561201"  # the update_id: a redelivered update is dropped by the pipeline
    assert (message.sender_name, message.language) == ("Anna Kovaleva", "ru")


def test_a_deep_link_start_keeps_its_payload_as_text_and_payload():
    message = to_message(native("command_start_with_payload"))
    assert message.text == message.payload == "/start promo-summer_24"
    assert message.external_id == "873561200"


def test_a_command_addressed_to_the_bot_by_name_is_the_bare_command():
    update = load_fixture("command_start_with_payload")
    update["message"]["text"] = "/order_status@seamline_shop_bot 48213"
    update["message"]["entities"][0]["length"] = len("/order_status@seamline_shop_bot")
    assert to_message(Update.model_validate(update)).payload == "/order_status 48213"


def test_a_button_press_carries_the_payload_and_the_button_title():
    message = to_message(native("callback_query"))
    assert (message.payload, message.text) == ("/order_status", "Where is my order?")
    assert (message.address, message.sender, message.external_id) == (str(CUSTOMER), str(CUSTOMER), "873561203")


def test_a_button_with_a_long_payload_is_pressed_with_the_whole_payload():
    payloads = CallbackPayloads()
    long = "/order_status " + "x" * 100
    update = load_fixture("callback_query")
    update["callback_query"]["data"] = payloads.pack(long)
    assert to_message(Update.model_validate(update), payloads).payload == long


def test_a_shared_contact_is_a_contact_attachment_with_the_phone():
    message = to_message(native("contact"))
    assert message.text == ""
    [contact] = message.attachments
    assert (contact.kind, contact.data["phone_number"], contact.data["own"]) == ("contact", "79161234567", True)


def test_a_photo_is_an_attachment_of_its_largest_size_and_the_caption_is_the_text():
    message = to_message(native("photo"))
    assert message.text == "The box arrived damaged"
    assert message.attachments == (
        Attachment(
            "photo",
            data={
                "file_id": "AgACAgIAAxkBAAIGDGZdq1_large-1280",
                "file_unique_id": "AQADn9ExG2ZQ8Ep9",
                "file_size": 151877,
                "width": 1280,
                "height": 960,
            },
        ),
    )


def test_a_document_is_an_attachment_with_its_name():
    [document] = to_message(native("document")).attachments
    assert (document.kind, document.name) == ("document", "receipt-48213.pdf")
    assert (document.data["file_id"], document.data["mime_type"]) == (
        "BQACAgIAAxkBAAIGDWZdrBv8receipt",
        "application/pdf",
    )


def test_a_voice_message_is_a_voice_attachment():
    message = to_message(native("voice"))
    [voice] = message.attachments
    assert (message.text, voice.kind, voice.data["file_id"], voice.data["duration"]) == (
        "",
        "voice",
        "AwACAgIAAxkBAAIGDmZdrC5voice",
        7,
    )


def test_a_location_is_an_attachment_with_coordinates():
    [place] = to_message(native("location")).attachments
    assert (place.kind, place.data["latitude"], place.data["longitude"]) == ("location", 55.751244, 37.618423)


def test_an_edited_message_is_a_message_of_its_own_update():
    message = to_message(native("edited_message"))
    assert (message.text, message.external_id) == ("Hello! Where is my order 48213?", "873561202")


def test_other_update_kinds_are_not_messages():
    assert to_message(native("my_chat_member")) is None


# Fitting Telegram's limits, pure


def test_a_short_text_is_one_part():
    assert split("  Hello  ") == ["Hello"]


def test_a_long_text_is_cut_between_paragraphs_within_4096_utf16_units():
    paragraph = "Доставка 🚚 занимает 1-3 дня. " * 40  # the emoji counts 2 UTF-16 units
    text = "\n\n".join(f"{n}. {paragraph.strip()}" for n in range(12))
    parts = split(text)
    assert len(parts) > 3 and all(utf16_len(p) <= 4096 for p in parts)
    assert "\n\n".join(parts) == text  # nothing lost, cut only where paragraphs end


def test_a_text_without_boundaries_is_cut_hard_but_never_inside_a_surrogate_pair():
    parts = split("a" + "😀" * 5000)
    assert all(utf16_len(p) <= 4096 for p in parts) and "".join(parts) == "a" + "😀" * 5000


def test_callback_data_fits_in_64_bytes():
    payloads = CallbackPayloads()
    assert payloads.pack("/order_status") == "/order_status"
    for long in ("ы" * 40, "/x " * 30, ""):
        data = payloads.pack(long)
        assert 1 <= len(data.encode()) <= 64 and payloads.unpack(data) == long


# End to end: Seamline's app, aiogram, the fake Bot API


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def polling(telegram, settings, make_server):
    """Seamline in long-polling mode against the fake (requested after it, so stopped before it)."""
    return await make_server(settings, channels={"telegram": dict(token=TOKEN, api_base=telegram.url)})


@pytest.fixture
async def webhook(telegram, settings, understanding):
    """Seamline in webhook mode: its own URL must be known before it starts, so the port is chosen first."""
    port = free_port()
    server = Server(
        replace(
            settings,
            channels={
                "telegram": dict(
                    token=TOKEN,
                    api_base=telegram.url,
                    webhook_url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
                    webhook_secret=WEBHOOK_SECRET,
                )
            },
        ),
        understanding,
    )
    server.port = port
    await server.start()
    yield server
    await server.stop()


async def history(server, chat: int):
    return await server.app[SEAMLINE].pipeline.history("telegram", str(chat))


async def test_polling_a_customer_text_is_answered_in_the_chat_with_buttons(telegram, polling):
    telegram.enqueue(telegram.update("message_text", chat_id=1001, text="hello"))
    [answer] = await telegram.wait_for("sendMessage", chat_id=1001)
    assert answer.params["text"].startswith(("Hi!", "Hello!"))
    buttons = [row[0] for row in answer.params["reply_markup"]["inline_keyboard"]]
    assert {"text": "Where is my order?", "callback_data": "/order_status"} in buttons
    assert "parse_mode" not in answer.params
    [typing] = telegram.calls_of("sendChatAction", chat_id=1001)
    assert typing.params["action"] == "typing"
    assert telegram.calls.index(typing) < telegram.calls.index(answer)  # "typing..." before the answer


async def test_a_button_press_is_answered_and_acts_on_its_payload(telegram, polling):
    press = telegram.update("callback_query", chat_id=1002)
    telegram.enqueue(press)
    [answer] = await telegram.wait_for("sendMessage", chat_id=1002)
    assert "order number" in answer.params["text"]
    assert telegram.calls_of("answerCallbackQuery", callback_query_id=press["callback_query"]["id"])


async def test_a_button_with_a_long_payload_reaches_the_bot_whole(telegram, polling):
    long = "/order_status " + "x" * 100
    await polling.app[CHANNELS]["telegram"].send("1003", Reply("Pick one", buttons=(Button("Track", long),)))
    [sent] = await telegram.wait_for("sendMessage", chat_id=1003)
    assert len(sent.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"].encode()) <= 64
    telegram.enqueue(telegram.press(sent, "Track"))
    await telegram.wait_for("sendMessage", chat_id=1003, count=2)
    inbound = [m for m in await history(polling, 1003) if m.role == "customer"]
    assert (inbound[-1].text, inbound[-1].payload) == ("Track", long)


async def test_a_photo_is_stored_as_an_attachment_of_the_message(telegram, polling):
    telegram.enqueue(telegram.update("photo", chat_id=1004))
    await telegram.wait_for("sendMessage", chat_id=1004)
    [inbound] = [m for m in await history(polling, 1004) if m.role == "customer"]
    assert inbound.text == "The box arrived damaged"
    assert [(a["kind"], a["data"]["file_id"]) for a in inbound.attachments] == [
        ("photo", "AgACAgIAAxkBAAIGDGZdq1_large-1280")
    ]


async def test_flood_control_is_waited_out_and_the_answer_sent_once(telegram, polling):
    telegram.fail("sendMessage", status=429, retry_after=1)
    telegram.enqueue(telegram.update("message_text", chat_id=1005, text="hello"))
    await telegram.wait_for("sendMessage", chat_id=1005)
    telegram.enqueue(telegram.update("message_text", chat_id=1005, text="thank you"))
    await telegram.wait_for("sendMessage", chat_id=1005, count=2)  # the chat moved on: no retry is left
    assert [c.status for c in telegram.calls_of("sendMessage", ok=None, chat_id=1005)] == [429, 200, 200]


async def test_server_errors_are_retried_with_backoff(telegram, polling):
    telegram.fail("sendMessage", times=2, status=500)
    telegram.enqueue(telegram.update("message_text", chat_id=1006, text="hello"))
    await telegram.wait_for("sendMessage", chat_id=1006)
    assert [c.status for c in telegram.calls_of("sendMessage", ok=None, chat_id=1006)] == [500, 500, 200]


async def test_a_long_reply_is_sent_in_parts_in_order_with_the_buttons_on_the_last(telegram, polling):
    text = "\n\n".join(f"Part {n}: " + "We deliver in 1-3 days. " * 100 for n in range(6)).replace(" \n", "\n").strip()
    await polling.app[CHANNELS]["telegram"].send("1007", Reply(text, buttons=(Button("Delivery", "/delivery_info"),)))
    sent = [c.params for c in telegram.calls_of("sendMessage", chat_id=1007)]
    assert len(sent) > 1 and all(utf16_len(p["text"]) <= 4096 for p in sent)
    assert "\n\n".join(p["text"] for p in sent) == text
    assert [("reply_markup" in p) for p in sent] == [False] * (len(sent) - 1) + [True]


async def test_text_is_never_sent_as_markup(telegram, polling):
    text = "<b>50% off</b> & <script>alert(1)</script> *now*"
    await polling.app[CHANNELS]["telegram"].send("1008", Reply(text))
    [sent] = telegram.calls_of("sendMessage", chat_id=1008)
    assert sent.params["text"] == text and "parse_mode" not in sent.params


async def test_a_customer_who_blocked_the_bot_is_unreachable_and_others_are_still_answered(telegram, polling):
    telegram.block(1009)
    telegram.enqueue(telegram.update("message_text", chat_id=1009, text="hello"))
    store = polling.app[SEAMLINE].store

    async def unreachable():
        customer = await store.find_customer("telegram", "1009")
        return customer is not None and (await store.identities(customer.id))[0].reachable is False

    await eventually(unreachable)
    telegram.enqueue(telegram.update("message_text", chat_id=1010, text="hello"))
    await telegram.wait_for("sendMessage", chat_id=1010)
    assert telegram.calls_of("sendMessage", ok=False, chat_id=1009)[0].status == 403


async def test_one_chat_is_answered_in_order(telegram, polling):
    texts = ["hello", "where is my order", "48213", "thank you"]
    telegram.enqueue(*(telegram.update("message_text", chat_id=1011, text=t) for t in texts))
    await telegram.wait_for("sendMessage", chat_id=1011, count=4)
    answers = telegram.texts(1011)
    assert "order number" in answers[1] and "48213" in answers[2]  # each answer knows the one before it
    stored = await history(polling, 1011)
    assert [m.text for m in stored if m.role == "customer"] == texts
    assert [m.text for m in stored if m.role == "bot"] == answers


async def test_a_slow_chat_does_not_hold_up_the_others(telegram, polling):
    release = telegram.hold(1012)  # every call for chat 1012 waits
    telegram.enqueue(
        telegram.update("message_text", chat_id=1012, text="hello"),
        telegram.update("message_text", chat_id=1012, text="where is my order"),
        telegram.update("message_text", chat_id=1013, text="hello"),
    )
    await telegram.wait_for("sendMessage", chat_id=1013)
    assert telegram.calls_of("sendMessage", chat_id=1012) == []
    release.set()
    await telegram.wait_for("sendMessage", chat_id=1012, count=2)
    assert "order number" in telegram.texts(1012)[1]


async def test_other_update_kinds_are_acknowledged_and_ignored(telegram, polling, caplog):
    caplog.set_level(logging.WARNING, logger="seamline.bots.telegram")
    telegram.enqueue(
        telegram.update("my_chat_member", chat_id=1014), telegram.update("message_text", chat_id=1014, text="hello")
    )
    await telegram.wait_for("sendMessage", chat_id=1014)
    assert len(telegram.texts(1014)) == 1
    assert [r.getMessage() for r in caplog.records if r.name.startswith("bots.")] == []


async def test_webhook_is_set_at_start_with_the_secret_and_no_polling(telegram, webhook):
    [call] = telegram.calls_of("setWebhook")
    assert call.params["url"] == f"{webhook.url}{WEBHOOK_PATH}"
    assert call.params["secret_token"] == WEBHOOK_SECRET
    assert telegram.calls_of("getUpdates", ok=None) == []


async def test_webhook_answers_200_at_once_and_processes_after(telegram, webhook):
    release = telegram.hold(2001)  # the bot cannot answer the chat yet...
    update = telegram.update("message_text", chat_id=2001, text="hello")
    telegram.enqueue(update)

    async def delivered():
        return telegram.deliveries

    [delivery] = await eventually(delivered)
    assert (delivery.update_id, delivery.status) == (update["update_id"], 200)  # ...but the update is taken
    release.set()
    [answer] = await telegram.wait_for("sendMessage", chat_id=2001)
    assert answer.params["text"].startswith(("Hi!", "Hello!"))


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "wrong-secret-0123456789"}], ids=["missing", "wrong"])
async def test_webhook_without_the_right_secret_is_refused_and_nothing_processed(telegram, webhook, headers):
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{webhook.url}{WEBHOOK_PATH}",
            headers=headers,
            json=telegram.update("message_text", chat_id=2002, text="hello"),
        ) as response:
            assert response.status == 401
    assert await history(webhook, 2002) == [] and telegram.calls_of("sendMessage") == []


@pytest.mark.parametrize("body", ["{not json", "[]", '{"hello": "world"}'])
async def test_webhook_refuses_what_is_not_an_update_with_400_and_stays_up(telegram, webhook, body):
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{webhook.url}{WEBHOOK_PATH}",
            data=body,
            headers={SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
    telegram.enqueue(telegram.update("message_text", chat_id=2003, text="hello"))
    await telegram.wait_for("sendMessage", chat_id=2003)


async def test_an_update_delivered_twice_is_processed_once(telegram, webhook):
    update = telegram.update("message_text", chat_id=2004, text="hello")
    telegram.enqueue(update, update, telegram.update("message_text", chat_id=2004, text="thank you"))
    await telegram.wait_for("sendMessage", chat_id=2004, count=2)  # one chat is processed in order:
    assert len(telegram.texts(2004)) == 2  # the copy came before "thank you" and was dropped
    assert [d.status for d in telegram.deliveries] == [200, 200, 200]
    assert [m.text for m in await history(webhook, 2004) if m.role == "customer"] == ["hello", "thank you"]


async def start_failing(settings, understanding, telegram_settings) -> ConfigError:
    server = Server(replace(settings, channels={"telegram": telegram_settings}), understanding)
    try:
        with pytest.raises(ConfigError) as error:
            await server.start()
    finally:
        await server.stop()
        await server.app[SEAMLINE].close()  # aiohttp runs no on_cleanup after a failed startup
    return error.value


async def test_a_token_telegram_refuses_stops_the_start_naming_the_setting(telegram, settings, understanding):
    error = await start_failing(settings, understanding, dict(token="654321:" + "B" * 35, api_base=telegram.url))
    assert error.setting == "SEAMLINE_TELEGRAM_TOKEN" and "401" in error.problem
    assert [c.status for c in telegram.calls_of("getMe", ok=None)] == [401]


async def test_an_api_base_that_is_not_telegram_stops_the_start_naming_the_setting(telegram, settings, understanding):
    error = await start_failing(settings, understanding, dict(token=TOKEN, api_base=f"{telegram.url}/not-telegram"))
    assert error.setting == "SEAMLINE_TELEGRAM_API_BASE"


async def test_a_webhook_telegram_refuses_stops_the_start_naming_the_setting(telegram, settings, understanding):
    telegram.fail("setWebhook", status=400, description="Bad Request: bad webhook: Failed to resolve host")
    error = await start_failing(
        settings,
        understanding,
        dict(
            token=TOKEN,
            api_base=telegram.url,
            webhook_url="https://shop.invalid/telegram/webhook",
            webhook_secret=WEBHOOK_SECRET,
        ),
    )
    assert error.setting == "SEAMLINE_TELEGRAM_WEBHOOK_URL" and "Failed to resolve host" in error.problem


async def test_the_fake_speaks_json_and_form_bodies_like_telegram(telegram):
    base = f"{telegram.url}/bot{TOKEN}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/sendMessage", json={"chat_id": 1, "text": "hi"}) as response:
            assert (await response.json())["result"]["chat"]["id"] == 1
        async with http.post(f"{base}/SENDMESSAGE", data={"chat_id": "1", "text": ""}) as response:
            assert response.status == 400 and (await response.json()) == {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message text is empty",
            }
        telegram.fail("getMe", status=429, retry_after=3)
        async with http.get(f"{base}/getMe") as response:
            assert (await response.json())["parameters"] == {"retry_after": 3}
        async with http.post(f"{base}/getUpdates", data={"timeout": "0"}) as response:
            assert await response.json() == {"ok": True, "result": []}


async def test_the_fake_serves_a_plain_aiogram_dispatcher_bot(telegram):
    """The example of docs/testing-channels.md: any aiogram bot can be tested against the fake."""
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(telegram.url)))
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: types.Message) -> None:
        await message.answer(f"You said: {message.text}")

    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False))
    try:
        telegram.enqueue(telegram.update("message_text", chat_id=4001, text="hi"))
        [answer] = await telegram.wait_for("sendMessage", chat_id=4001)
        assert answer.params["text"] == "You said: hi"
    finally:
        await dispatcher.stop_polling()
        await polling
        await bot.session.close()


@pytest.mark.slow  # a real seamline process
async def test_seamline_run_serves_the_web_chat_and_telegram_in_one_process(telegram, tmp_path, models_dir):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    env.update(
        SEAMLINE_PORT=str(port),
        SEAMLINE_DATA_DIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
        SEAMLINE_NLU_MODELS=str(models_dir),
        SEAMLINE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/seamline.db",
        SEAMLINE_TELEGRAM_TOKEN=TOKEN,
        SEAMLINE_TELEGRAM_API_BASE=telegram.url,
    )
    with open(tmp_path / "stderr.log", "wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "seamline.bots.cli", "run", env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
    try:
        line = b""
        while b"Seamline is running" not in line:
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            assert line, (tmp_path / "stderr.log").read_text()
        telegram.enqueue(telegram.update("message_text", chat_id=3001, text="hello"))
        await telegram.wait_for("sendMessage", chat_id=3001)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def test_keys_that_send_text_or_share_a_phone_come_as_a_reply_keyboard(telegram, polling):
    from seamline.shared.message import Button, Reply

    channel = polling.app[CHANNELS]["telegram"]
    await channel.send(
        "1010",
        Reply(
            "Leave us your phone and we call you back",
            buttons=(Button("Share my phone", "", kind="contact"), Button("No, thanks", "No, thanks", kind="reply")),
        ),
    )
    [sent] = await telegram.wait_for("sendMessage", chat_id=1010)
    keyboard = sent.params["reply_markup"]
    assert keyboard["keyboard"] == [[{"text": "Share my phone", "request_contact": True}], [{"text": "No, thanks"}]]
    assert keyboard["one_time_keyboard"] is True and "inline_keyboard" not in keyboard


async def test_a_storage_outage_is_waited_out_and_the_message_answered_once(telegram, polling, monkeypatch):
    failed = fail_storage_once(polling, monkeypatch)
    telegram.enqueue(telegram.update("message_text", chat_id=1020, text="hello"))
    await telegram.wait_for("sendMessage", chat_id=1020)
    assert failed and len(telegram.calls_of("sendMessage", chat_id=1020)) == 1
    assert [m.role for m in await history(polling, 1020)] == ["customer", "bot"]
