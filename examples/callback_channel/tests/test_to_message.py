"""to_message is pure: each recorded payload of the messenger becomes the Message it should."""

import json
from pathlib import Path

import pytest
from seamline_callback import CallbackChannel

FIXTURES = Path(__file__).parent / "fixtures"
channel = CallbackChannel(config={"url": "https://messenger.example/replies", "token": "x" * 16}, context=None)


def recorded(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_a_text_message():
    message = channel.to_message(recorded("message.json"))
    assert (message.channel, message.sender, message.text, message.external_id) == (
        "callback",
        "u-42",
        "where is my order",
        "1001",
    )


def test_a_button_press_carries_its_payload():
    assert channel.to_message(recorded("button.json")).payload == "/delivery_info"


def test_typing_is_not_a_message():
    assert channel.to_message(recorded("typing.json")) is None


@pytest.mark.parametrize("body", [[], {"sender": ""}, {"sender": "a", "text": 5}, {"sender": "a", "payload": 1}])
def test_a_malformed_body_is_refused_with_a_reason(body):
    with pytest.raises(ValueError):
        channel.to_message(body)
