"""The VK channel: recorded events mapped purely, then Seamline end to end through the real vk_api
library against the fake VK API (tests/fakes/vk.py), in Bots Long Poll and Callback API modes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from seamline.bots.app import SEAMLINE
from seamline.bots.channels import CHANNELS
from seamline.bots.vk import to_message
from seamline.bots.vk_format import MAX_TEXT, keyboard, random_id, split_text
from seamline.shared.errors import ConfigError
from seamline.shared.message import Button, Reply

from tests.fakes.vk import FakeVk
from tests.support import eventually, free_port

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vk"
CONFIRMATION = "3f9a1c2e"
CALLBACK_SECRET = "vk-callback-secret-0123"
SEAMLINE_BIN = Path(sys.executable).with_name("seamline")


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# -- to_message on recorded events (pure) ---------------------------------------------------------


def test_a_text_message():
    message = to_message(fixture("message_new_text"))
    assert message.channel == "vk"
    assert (message.address, message.sender) == ("745120033", "745120033")
    assert message.text == "Здравствуйте! Где мой заказ 48213?"
    assert message.payload is None and message.attachments == ()
    assert message.external_id == "2f1c5e1a9b0d4d7e8a6f3c2b1d0e9f8a7b6c5d4e"  # the event_id
    assert message.language == "ru"  # client_info.lang_id 0


def test_a_keyboard_button_payload_becomes_the_intent():
    message = to_message(fixture("message_new_keyboard_payload"))
    assert message.payload == "/order_status"
    assert message.text == "Where is my order?"
    assert message.language == "en"


def test_vk_start_button_greets():
    assert to_message(fixture("message_new_start_button")).payload == "/greet"


def test_another_bots_payload_is_ignored_and_the_label_kept():
    event = fixture("message_new_keyboard_payload")
    event["object"]["message"]["payload"] = '{"button":"1"}'
    message = to_message(event)
    assert message.payload is None and message.text == "Where is my order?"


def test_a_photo_keeps_its_largest_url():
    message = to_message(fixture("message_new_photo"))
    assert message.text == "Вот так пришла коробка"
    [photo] = message.attachments
    assert photo.kind == "photo"
    assert photo.url.startswith("https://sun9-12.userapi.com/impg/base.jpg")
    assert photo.data == {"vk": "photo745120033_457239071_6a1e2f0b7c9d3e4a58", "width": 1280, "height": 960}


def test_a_document():
    [doc] = to_message(fixture("message_new_doc")).attachments
    assert (doc.kind, doc.name) == ("document", "receipt-48213.pdf")
    assert doc.url.startswith("https://vk.com/doc745120033_670118352")
    assert doc.data["ext"] == "pdf" and doc.data["size"] == 184311


def test_a_voice_message_with_its_transcript():
    [voice] = to_message(fixture("message_new_audio_message")).attachments
    assert voice.kind == "voice"
    assert voice.url.endswith("voice.ogg")
    assert voice.data["duration"] == 7 and voice.data["mp3"].endswith("voice.mp3")
    assert voice.data["transcript"] == "Когда привезут мой заказ"


def test_a_location():
    [place] = to_message(fixture("message_new_geo")).attachments
    assert place.kind == "location" and place.name == "Москва, Россия"
    assert place.data == {"latitude": 55.753544, "longitude": 37.621202, "country": "Россия", "city": "Москва"}


def test_a_callback_button_press():
    message = to_message(fixture("message_event"))
    assert (message.address, message.sender, message.text) == ("745120033", "745120033", "")
    assert message.payload == "/order_status"
    assert message.external_id == "a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9"


def test_events_the_bot_does_not_answer():
    assert to_message(fixture("confirmation")) is None
    assert to_message(fixture("group_join")) is None
    own = fixture("message_new_text")
    own["object"]["message"]["out"] = 1
    assert to_message(own) is None


def test_without_an_event_id_the_message_is_known_by_peer_and_conversation_message_id():
    event = fixture("message_new_text")
    del event["event_id"]
    assert to_message(event).external_id == "745120033:87"


def test_the_keyboard_is_inline_with_command_payloads_within_vk_limits():
    buttons = (
        *(
            Button(f"Button number {i} with a title far longer than forty characters", f"/intent_{i}")
            for i in range(12)
        ),
        Button("Big", "/" + "x" * 300),
    )
    board = json.loads(keyboard(buttons))
    cells = [cell for row in board["buttons"] for cell in row]
    assert board["inline"] is True
    assert len(cells) == 10 and len(board["buttons"]) <= 6
    assert all(len(cell["action"]["label"]) <= 40 for cell in cells)
    assert json.loads(cells[0]["action"]["payload"]) == {"command": "/intent_0"}
    assert json.loads(keyboard((Button("Big", "/" + "x" * 300),)))["buttons"][0][0]["action"] == {
        "type": "text",
        "label": "Big",
    }  # a payload over 255 bytes is dropped; the label is sent as text
    assert (
        json.loads(keyboard((Button("Go", "/greet"),), callback=True))["buttons"][0][0]["action"]["type"] == "callback"
    )
    assert keyboard(()) is None


def test_long_text_is_split_at_paragraphs_and_sentences():
    paragraph = " ".join(f"Sentence {i} of the paragraph says something useful." for i in range(40))
    text = "\n\n".join([paragraph] * 6)
    parts = split_text(text)
    assert len(parts) > 1 and all(len(part) <= MAX_TEXT for part in parts)
    assert " ".join(parts).split() == text.split()
    assert all(part.endswith(".") for part in parts)
    assert split_text("x" * 9000) == ["x" * 4096, "x" * 4096, "x" * 808]


def test_random_id_is_31_bits_and_the_same_for_the_same_reply_part():
    assert random_id("r1", 0) == random_id("r1", 0)
    assert len({random_id("r1", 0), random_id("r1", 1), random_id("r2", 0)}) == 3
    assert all(0 < random_id(f"r{i}", 0) < 2**31 for i in range(1000))


# -- end to end: Seamline + the real vk_api + the fake VK API --------------------------------------


@pytest.fixture
async def fake():
    async with FakeVk() as vk:
        yield vk


def vk_settings(fake: FakeVk, **changes) -> dict:
    return dict(**{"token": fake.token, "group_id": fake.group_id, "api_base": fake.url, **changes})


@pytest.fixture
async def long_poll(fake, settings, make_server):
    return await make_server(settings, channels={"vk": vk_settings(fake)})


@pytest.fixture
async def callback(fake, settings, make_server):
    server = await make_server(
        settings, channels={"vk": vk_settings(fake, confirmation=CONFIRMATION, secret=CALLBACK_SECRET)}
    )
    server.callback_url = f"{server.url}/vk/callback"
    return server


async def history(server, peer: int):
    return await server.app[SEAMLINE].pipeline.history("vk", str(peer))


async def answered(server, fake: FakeVk, peer: int, inbound: int):
    """The history once ``inbound`` customer messages are answered and every answer is at the fake."""

    async def done():
        messages = await history(server, peer)
        outs = [m for m in messages if m.direction == "out"]
        # Inbound messages keep their arrival time, so a later one can be stored (by time) before an
        # earlier one's answer: wait for an answer to every message, not just for an answer last.
        if (
            sum(m.direction == "in" for m in messages) == inbound
            and len(outs) >= inbound
            and messages[-1].direction == "out"
            and len(fake.sent_to(peer)) == len(outs)
        ):
            return messages
        return None

    return await eventually(done)


async def test_long_poll_a_customer_text_is_answered_with_a_keyboard(long_poll, fake):
    fake.push(fake.message_new(1001, "hello"))
    messages = await answered(long_poll, fake, 1001, 1)
    [sent] = fake.sent_to(1001)
    reply = messages[-1]
    assert sent["message"] == reply.text
    assert sent["random_id"] == random_id(reply.id, 0)  # derived from the stored reply
    assert reply.buttons, "greet has buttons in config/responses"
    titles = [cell["action"]["label"] for row in sent["keyboard"]["buttons"] for cell in row]
    assert sent["keyboard"]["inline"] is True and titles == [b["title"] for b in reply.buttons]
    # The real vk_api made the call, redirected here, with the token and our API version.
    call = fake.calls_of("messages.send")[0]
    assert call.params["access_token"] == fake.token and call.params["v"] == "5.199"


async def test_one_customers_messages_are_answered_in_order(long_poll, fake):
    for text in ("hello", "where is my order", "12345"):
        fake.push(fake.message_new(1002, text))
    messages = await answered(long_poll, fake, 1002, 3)
    assert [m.text for m in messages if m.direction == "in"] == ["hello", "where is my order", "12345"]
    assert [m["message"] for m in fake.sent_to(1002)] == [m.text for m in messages if m.direction == "out"]
    assert "12345" in messages[-1].text  # the number answered the bot's question: the turns ran in order


async def test_too_many_requests_then_success_sends_exactly_once(long_poll, fake):
    fake.fail("messages.send", error=6)
    fake.push(fake.message_new(1003, "hello"))
    await answered(long_poll, fake, 1003, 1)
    calls = fake.calls_of("messages.send")
    assert [c.outcome for c in calls] == ["error 6", "ok"]
    assert calls[0].params["random_id"] == calls[1].params["random_id"]
    assert len(fake.sent_to(1003)) == 1


async def test_vk_internal_error_is_retried_and_flood_control_is_not(long_poll, fake):
    fake.fail("messages.send", error=10)
    fake.push(fake.message_new(1010, "hello"))
    await answered(long_poll, fake, 1010, 1)
    assert [c.outcome for c in fake.calls_of("messages.send")] == ["error 10", "ok"]

    fake.fail("messages.send", error=9)  # flood control: the same again would be refused again
    fake.push(fake.message_new(1010, "how much is delivery"))
    await fake.wait_for(lambda: fake.calls_of("messages.send")[-1].outcome == "error 9")
    fake.push(fake.message_new(1010, "thanks"))
    await fake.wait_for(lambda: len(fake.sent_to(1010)) == 2)
    assert [c.outcome for c in fake.calls_of("messages.send")] == ["error 10", "ok", "error 9", "ok"]
    messages = await history(long_poll, 1010)
    assert [m.text for m in messages if m.direction == "in"] == ["hello", "how much is delivery", "thanks"]
    assert len([m for m in messages if m.direction == "out"]) == 3  # the refused reply stays in the history


async def test_a_lost_answer_is_retried_without_a_second_message(long_poll, fake):
    fake.fail("messages.send", status=502, lose_response=True)
    fake.push(fake.message_new(1004, "hello"))
    await answered(long_poll, fake, 1004, 1)
    calls = await fake.wait_for(
        lambda: [c for c in fake.calls_of("messages.send") if c.outcome == "ok"] and fake.calls_of("messages.send")
    )
    assert [c.outcome for c in calls] == ["http 502 (after doing it)", "ok"]
    assert calls[0].params["random_id"] == calls[1].params["random_id"]
    assert len(fake.sent_to(1004)) == 1  # VK (and the fake) drop a repeated random_id


async def test_a_long_reply_goes_out_in_parts_in_order(long_poll, fake):
    channel = long_poll.app[CHANNELS]["vk"]
    paragraph = " ".join(f"Step {i}: check the parcel and keep the receipt." for i in range(60))
    text = "\n\n".join(f"{n}. {paragraph}" for n in range(1, 6))
    await channel.send("1005", Reply(text=text, buttons=(Button("Talk to a person", "/human_agent"),), id="r-long"))
    parts = fake.sent_to(1005)
    assert len(parts) == len(split_text(text)) > 1
    assert all(len(p["message"]) <= 4096 for p in parts)
    assert " ".join(p["message"] for p in parts).split() == text.split()
    assert len({p["random_id"] for p in parts}) == len(parts)
    assert [p["keyboard"] is not None for p in parts] == [False] * (len(parts) - 1) + [True]


async def test_a_callback_button_is_answered_and_its_intent_too(long_poll, fake):
    event = fake.push(fake.message_event(1006, {"command": "/order_status"}))
    await answered(long_poll, fake, 1006, 1)
    assert fake.event_answers == [
        {"event_id": event["object"]["event_id"], "user_id": "1006", "peer_id": "1006", "event_data": None}
    ]
    [sent] = fake.sent_to(1006)
    assert "order number" in sent["message"].lower()  # /order_status without a number asks for it


async def test_an_attachment_is_stored_with_the_inbound_message(long_poll, fake):
    fake.push(fixture("message_new_photo"))
    messages = await answered(long_poll, fake, 745120033, 1)
    [inbound] = [m for m in messages if m.direction == "in"]
    assert inbound.text == "Вот так пришла коробка"
    assert inbound.attachments[0]["kind"] == "photo"
    assert inbound.attachments[0]["url"].startswith("https://sun9-12.userapi.com/impg/base.jpg")


async def test_a_user_who_cannot_be_messaged_is_marked_unreachable_and_others_are_answered(long_poll, fake):
    fake.block(1007, error=901)
    fake.push(fake.message_new(1007, "hello"))
    fake.push(fake.message_new(1008, "hello"))
    await answered(long_poll, fake, 1008, 1)
    store = long_poll.app[SEAMLINE].store

    async def unreachable():
        customer = await store.find_customer("vk", "1007")
        return customer and not (await store.identities(customer.id))[0].reachable

    await eventually(unreachable)
    assert fake.sent_to(1007) == []
    assert [c.outcome for c in fake.calls_of("messages.send") if c.params["peer_id"] == "1007"] == ["error 901"]
    fake.push(fake.message_new(1008, "thanks"))
    await answered(long_poll, fake, 1008, 2)  # still serving


async def test_long_poll_failures_are_handled_as_vk_documents(long_poll, fake):
    for failed in (1, 2, 3):
        fake.fail_poll(failed)
    # At start, then a new key for failed 2, a new key and ts for failed 3 (VK: what was queued is lost).
    await fake.wait_for(lambda: len(fake.calls_of("groups.getLongPollServer")) == 3)
    fake.push(fake.message_new(1009, "hello"))
    await answered(long_poll, fake, 1009, 1)
    assert len(fake.calls_of("groups.getLongPollServer")) == 3


async def test_messages_sent_while_seamline_was_stopped_are_answered_after_a_restart(long_poll, fake):
    fake.push(fake.message_new(1010, "hello"))
    await answered(long_poll, fake, 1010, 1)
    await long_poll.stop()
    fake.push(fake.message_new(1010, "where is my order"))  # VK keeps it; nobody is polling
    fake.push(fake.message_new(1011, "hello"))
    await long_poll.start()
    messages = await answered(long_poll, fake, 1010, 2)
    assert [m.text for m in messages if m.direction == "in"] == ["hello", "where is my order"]
    await answered(long_poll, fake, 1011, 1)
    assert len(fake.sent_to(1010)) == 2  # the first message was not answered twice


async def test_an_unreadable_long_poll_position_starts_from_now(fake, settings, make_server, caplog):
    (settings.data_dir / f"vk-longpoll-{fake.group_id}.json").write_text("{not json")
    fake.push(fake.message_new(1012, "an old message"))
    server = await make_server(settings, channels={"vk": vk_settings(fake)})
    assert "unreadable" in caplog.text
    fake.push(fake.message_new(1013, "hello"))
    await answered(server, fake, 1013, 1)
    assert fake.sent_to(1012) == []


async def test_a_bad_token_stops_the_start_naming_the_setting(fake, settings, make_server):
    with pytest.raises(ConfigError) as error:
        await make_server(settings, channels={"vk": vk_settings(fake, token="vk1.a.not-the-token")})
    assert error.value.setting == "SEAMLINE_VK_TOKEN"
    assert "User authorization failed" in str(error.value)


async def test_a_token_of_another_community_stops_the_start(fake, settings, make_server):
    with pytest.raises(ConfigError) as error:
        await make_server(settings, channels={"vk": vk_settings(fake, group_id=1)})
    assert error.value.setting == "SEAMLINE_VK_GROUP_ID"
    assert f"SEAMLINE_VK_GROUP_ID={fake.group_id}" in str(error.value)


# -- Callback API ---------------------------------------------------------------------------------


async def test_callback_confirmation_answers_the_configured_string(callback, fake):
    assert await fake.post_callback(callback.callback_url, fixture("confirmation")) == (200, CONFIRMATION)
    assert (await fake.confirm(callback.callback_url, group_id=999))[0] == 403


async def test_callback_with_a_wrong_secret_is_refused_and_not_processed(callback, fake):
    status, _ = await fake.post_callback(callback.callback_url, fake.message_new(2001, "forged"), secret="wrong")
    assert status == 403
    assert (await fake.post_callback(callback.callback_url, fake.message_new(2001, "no secret")))[0] == 403
    assert await fake.post_callback(callback.callback_url, fake.message_new(2001, "hello"), secret=CALLBACK_SECRET) == (
        200,
        "ok",
    )
    messages = await answered(callback, fake, 2001, 1)
    assert [m.text for m in messages if m.direction == "in"] == ["hello"]


async def test_callback_says_ok_at_once_and_answers_after(callback, fake):
    gate = fake.pause("messages.send")
    status, body = await fake.post_callback(
        callback.callback_url, fake.message_new(2002, "hello"), secret=CALLBACK_SECRET
    )
    assert (status, body) == (200, "ok")
    await fake.wait_for(lambda: fake.calls_of("messages.send"))
    assert fake.sent_to(2002) == []  # "ok" was answered while the reply was still on its way
    gate.set()
    await answered(callback, fake, 2002, 1)


async def test_callback_event_delivered_twice_is_processed_once(callback, fake):
    event = fake.message_new(2003, "hello")
    for _ in range(2):
        assert await fake.post_callback(callback.callback_url, event, secret=CALLBACK_SECRET) == (200, "ok")
    await fake.post_callback(callback.callback_url, fake.message_new(2003, "thanks"), secret=CALLBACK_SECRET)
    messages = await answered(callback, fake, 2003, 2)
    assert [m.text for m in messages if m.direction == "in"] == ["hello", "thanks"]


async def test_callback_bad_requests(callback, fake):
    async with aiohttp.ClientSession() as http:
        async with http.post(callback.callback_url, data=b"{not json") as response:
            assert response.status == 400 and "JSON" in await response.text()
    other = dict(fake.message_new(2004, "hello"), group_id=1)
    assert (await fake.post_callback(callback.callback_url, other, secret=CALLBACK_SECRET))[0] == 403
    assert await fake.post_callback(callback.callback_url, fixture("group_join"), secret=CALLBACK_SECRET) == (200, "ok")
    broken = fake.message_new(2004, "hello")
    del broken["object"]["message"]
    status, text = await fake.post_callback(callback.callback_url, broken, secret=CALLBACK_SECRET)
    assert status == 400 and "object.message" in text
    assert await history(callback, 2004) == [] and fake.calls_of("messages.send") == []


# -- `seamline run`: the VK channel starts with the web app in one process --------------------------


def _env(tmp_path: Path, fake: FakeVk, port: int, token: str, models: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    env.update(
        SEAMLINE_DATA_DIR=str(tmp_path / "var"),
        SEAMLINE_PORT=str(port),
        PYTHONUNBUFFERED="1",
        SEAMLINE_NLU_MODELS=str(models),
        SEAMLINE_CONFIG_DIR=str(Path(__file__).resolve().parents[2] / "config"),
        SEAMLINE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/var/seamline.db",
        SEAMLINE_VK_TOKEN=token,
        SEAMLINE_VK_GROUP_ID=str(fake.group_id),
        SEAMLINE_VK_API_BASE=fake.url,
    )
    return env


@pytest.mark.slow  # a real seamline process
async def test_seamline_run_serves_vk_beside_the_web_chat(fake, tmp_path, models_dir):
    fake.hold = 120  # a long poll held as long as VK may: Ctrl+C must not wait for it
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(SEAMLINE_BIN),
        "run",
        env=_env(tmp_path, fake, port, fake.token, models_dir),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = b""
        while b"Seamline is running" not in line:
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            assert line, (await process.stderr.read()).decode()
        fake.push(fake.message_new(3001, "hello"))
        await fake.wait_for(lambda: fake.sent_to(3001), timeout=30)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)  # far less than the poll being held
    assert "Traceback" not in (await process.stderr.read()).decode()


@pytest.mark.slow  # a real seamline process
async def test_seamline_run_with_a_bad_vk_token_exits_2_naming_it(fake, tmp_path, models_dir):
    process = await asyncio.create_subprocess_exec(
        str(SEAMLINE_BIN),
        "run",
        env=_env(tmp_path, fake, free_port(), "vk1.a.wrong", models_dir),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 2, err.decode()
    assert "SEAMLINE_VK_TOKEN" in err.decode() and "Traceback" not in err.decode()
    assert b"Seamline is running" not in out


def test_keys_that_only_send_text_carry_no_payload_and_a_location_key_is_vks_own():
    import json as _json

    from seamline.bots.vk_format import keyboard
    from seamline.shared.message import Button

    board = _json.loads(
        keyboard((Button("No, thanks", "No, thanks", kind="reply"), Button("Where are you?", "", kind="location")))
    )
    actions = [cell["action"] for row in board["buttons"] for cell in row]
    assert actions == [{"type": "text", "label": "No, thanks"}, {"type": "location"}]


async def test_a_storage_outage_is_waited_out_and_the_message_answered_once(long_poll, fake, monkeypatch):
    from tests.conftest import fail_storage_once

    failed = fail_storage_once(long_poll, monkeypatch)
    fake.push(fake.message_new(1030, "hello"))
    messages = await answered(long_poll, fake, 1030, 1)
    assert failed and [m.role for m in messages] == ["customer", "bot"] and len(fake.sent_to(1030)) == 1
