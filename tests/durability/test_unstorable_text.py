"""Issue 10 item 14: text a database cannot store (a lone surrogate on SQLite, NUL on PostgreSQL) is
cleaned where a message is made, so it is stored, answered, and "kept" is said only of what was committed.

Lone surrogates and NUL characters become U+FFFD (as the widget's frames do), in the text, the sender's name, the
payload and attachments alike. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import replace

import aiohttp
import pytest

from seamline.bots.app import SEAMLINE, build
from seamline.bots.telegram import WEBHOOK_PATH
from seamline.shared.errors import StoreError
from seamline.shared.message import Attachment, Message

from tests.conftest import Server
from tests.fakes.telegram import SECRET_HEADER, TOKEN, FakeTelegram
from tests.support import Recorder

BROKEN = "hello \ud800 wor\x00ld"  # a lone surrogate (SQLite refuses it) and a NUL (PostgreSQL refuses it)
CLEAN = "hello \ufffd wor\ufffdld"
WEBHOOK_SECRET = "unstorable-secret-0123"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_settings(request, settings):
    if request.param == "postgresql":
        return replace(settings, database_url=request.getfixturevalue("postgres_url"))
    return settings


async def test_a_message_with_unstorable_characters_is_stored_cleaned_and_answered(db_settings, understanding):
    seamline = await build(db_settings, understanding=understanding)
    try:
        adapter = Recorder("telegram")
        seamline.pipeline.register(adapter)
        handled = await seamline.pipeline.handle(
            Message(
                channel="telegram",
                address="300",
                sender="300",
                text=BROKEN,
                external_id="1",
                sender_name="Ann\x00 \udc00",
                payload="/start ref\x00",
                attachments=(
                    Attachment("document", name="a\x00.pdf", data={"file_name": "a\ud800.pdf", "nested": ["x\x00"]}),
                ),
            )
        )
        assert len(adapter.sent) >= 1
        inbound = (await seamline.store.history(handled.inbound.customer_id))[0]
        assert (inbound.text, inbound.payload) == (CLEAN, "/start ref\ufffd")
        assert inbound.attachments == [
            {
                "kind": "document",
                "url": None,
                "name": "a\ufffd.pdf",
                "data": {"file_name": "a\ufffd.pdf", "nested": ["x\ufffd"]},
            }
        ]
        customer = await seamline.store.find_customer("telegram", "300")
        assert customer.name == "Ann\ufffd \ufffd"
    finally:
        await seamline.close()


async def test_a_telegram_update_with_unstorable_characters_is_answered(db_settings, understanding):
    async with FakeTelegram() as telegram:
        server = Server(
            replace(
                db_settings,
                channels={
                    "telegram": dict(
                        token=TOKEN,
                        api_base=telegram.url,
                        webhook_url="http://127.0.0.1:9/telegram/webhook",
                        webhook_secret=WEBHOOK_SECRET,
                    )
                },
            ),
            understanding,
        )
        await server.start()
        try:
            update = telegram.update("message_text", chat_id=5100, text="x")
            body = json.dumps(update).replace('"x"', '"hello \\ud800 wor\\u0000ld"')
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    f"{server.url}{WEBHOOK_PATH}",
                    data=body,
                    headers={SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"},
                ) as response:
                    assert response.status == 200
            await telegram.wait_for("sendMessage", chat_id=5100)
            history = await server.app[SEAMLINE].pipeline.history("telegram", "5100")
            assert [m.text for m in history if m.role == "customer"] == [CLEAN]
        finally:
            await server.stop()


async def test_a_widget_message_with_a_lone_surrogate_is_answered_not_an_internal_error(db_settings, make_server):
    server = await make_server(db_settings)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.ws_url)
        await ws.send_json({"type": "hello", "token": None})
        while (await ws.receive_json(timeout=10))["type"] != "welcome":
            pass
        await ws.send_str('{"type": "message", "id": "c-1", "text": "hello \\ud800 wor\\u0000ld"}')
        frames = [await ws.receive_json(timeout=10)]
        while frames[-1].get("role") != "bot" and frames[-1]["type"] != "error":
            frames.append(await ws.receive_json(timeout=10))
        assert [f["type"] for f in frames if f["type"] == "error"] == []
        assert frames[0]["text"] == CLEAN and frames[-1]["role"] == "bot"
        await ws.close()


async def test_a_widget_message_that_could_not_be_stored_is_not_said_to_be_kept(settings, make_server, monkeypatch):
    server = await make_server(settings)
    store = server.app[SEAMLINE].store

    async def refuse(message):
        raise StoreError("database write failed: disk I/O error")

    monkeypatch.setattr(store, "append", refuse)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.ws_url)
        await ws.send_json({"type": "hello", "token": None})
        while (await ws.receive_json(timeout=10))["type"] != "welcome":
            pass
        await ws.send_json({"type": "message", "id": "c-1", "text": "hello"})
        error = await ws.receive_json(timeout=10)
        assert error["type"] == "error" and error["id"] == "c-1"
        assert "kept" not in error["message"] and "resend" in error["message"]
        await ws.close()
