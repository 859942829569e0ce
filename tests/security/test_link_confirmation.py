"""A code that hits links nothing until the customer who asked for it says yes (issue 10, item 2).

The issuer is a Telegram customer (the pipeline of a running server, a recorder as its Telegram); the
one who types the code is a widget visitor speaking the real WebSocket protocol. Before "yes", nothing
of the issuer (history, order number, slots) may reach the widget, and the customers stay two.
"""

from __future__ import annotations

import itertools
import re

import pytest
from sqlalchemy import update

from seamline.bots.app import SEAMLINE
from seamline.shared.message import Message, utcnow
from seamline.shared.storage.models import LinkCodeRow

from tests.bots.test_linking import Recorder
from tests.bots.test_web_protocol import Client

_ids = itertools.count(1)


class Issuer:
    """A Telegram customer who talked about order 48213 and asked for a code for the website chat."""

    def __init__(self, server, sender: str = "501") -> None:
        self.seamline = server.app[SEAMLINE]
        self.telegram = Recorder("telegram")
        self.seamline.pipeline.register(self.telegram)
        self.sender = sender

    async def say(self, text: str, payload: str | None = None) -> None:
        await self.seamline.pipeline.handle(
            Message(
                channel="telegram",
                address=self.sender,
                sender=self.sender,
                text=text,
                payload=payload,
                external_id=f"tg-{next(_ids)}",
                language="en",
            )
        )

    async def code(self) -> str:
        await self.say("where is my order")
        await self.say("48213")
        await self.say("Website chat", "/link_account web")
        return re.search(r"\b(\d{6})\b", self.telegram.texts(self.sender)[-1]).group(1)

    async def press(self, index: int, sender: str | None = None) -> None:
        """Press a button under the last question this customer got (0: yes, 1: no), as ``sender``."""
        question = [r for a, r in self.telegram.sent if a == self.sender and r.buttons][-1]
        button = question.buttons[index]
        self.sender, asked = sender or self.sender, self.sender
        try:
            await self.say(button.title, button.payload)
        finally:
            self.sender = asked

    async def customer_id(self) -> str:
        return (await self.seamline.store.fresh_customer("telegram", self.sender)).id


async def frames_until_quiet(client: Client) -> list[dict]:
    """Every frame the server sent for what came before: a ping's pong comes after them all."""
    await client.ws.send_json({"type": "ping"})
    frames = []
    while (frame := await client.receive())["type"] != "pong":
        frames.append(frame)
    return frames


async def widget(http, server) -> tuple[Client, dict]:
    client = Client(http, server.ws_url)
    client.ws = await http.ws_connect(server.ws_url)
    return client, await client.hello(lang="en")


async def type_code(http, server, code: str) -> tuple[Client, dict, list[dict]]:
    client, welcome = await widget(http, server)
    frames = await client.say(code, id="c-1")
    return client, welcome, frames + await frames_until_quiet(client)


async def web_customer(server, welcome: dict) -> str:
    visitor = welcome["token"].split(".")[0]
    return (await server.app[SEAMLINE].store.fresh_customer("web", visitor)).id


async def test_a_hit_shows_the_redeemer_nothing_of_the_issuer_and_no_refuses_it(http, server):
    issuer = Issuer(server)
    code = await issuer.code()
    client, welcome, frames = await type_code(http, server, code)

    assert any("waiting for confirmation" in f.get("text", "").lower() for f in frames)
    assert "48213" not in str(frames)
    shown = [m for f in frames if f["type"] == "history" for m in f["history"]]
    assert not [m for m in shown if m["channel"] != "web"]  # nothing said in Telegram
    assert await web_customer(server, welcome) != await issuer.customer_id()
    question = issuer.telegram.sent[-1][1]
    assert "website chat" in question.text and [b.payload.split()[0] for b in question.buttons] == [
        "/link_yes",
        "/link_no",
    ]

    await issuer.press(1)  # "No"

    assert "nothing was linked" in issuer.telegram.texts(issuer.sender)[-1]
    told = await client.receive("message")
    assert "not confirmed" in told["text"] and "48213" not in told["text"]
    assert await web_customer(server, welcome) != await issuer.customer_id()
    again = Client(http, server.ws_url)
    again.ws = await http.ws_connect(server.ws_url)
    assert "48213" not in str((await again.hello(welcome["token"], lang="en"))["history"])
    await issuer.press(0)  # a late "yes" to the refused request changes nothing
    assert "no longer open" in issuer.telegram.texts(issuer.sender)[-1]
    assert await web_customer(server, welcome) != await issuer.customer_id()


async def test_yes_links_and_only_then_the_widget_gets_the_history(http, server):
    issuer = Issuer(server)
    code = await issuer.code()
    client, welcome, frames = await type_code(http, server, code)
    assert "48213" not in str(frames)

    await issuer.press(0)  # "Yes, it was me"

    assert "linked" in issuer.telegram.texts(issuer.sender)[-1]
    assert await web_customer(server, welcome) == await issuer.customer_id()
    after = await frames_until_quiet(client)
    linked = [f for f in after if f["type"] == "message" and f["role"] == "bot"]
    assert linked and "order 48213" in linked[-1]["text"] and "Telegram" in linked[-1]["text"]
    history = [f for f in after if f["type"] == "history"][-1]["history"]
    assert "48213" in [m["text"] for m in history if m["channel"] == "telegram"]
    assert code not in str(history)


@pytest.mark.parametrize("problem", ["no answer in time", "answered from another identity"])
async def test_a_request_not_answered_in_time_or_by_someone_else_links_nothing(http, server, problem):
    issuer = Issuer(server)
    code = await issuer.code()
    _, welcome, _ = await type_code(http, server, code)
    if problem == "no answer in time":
        async with issuer.seamline.store.engine.begin() as conn:
            await conn.execute(update(LinkCodeRow).where(LinkCodeRow.kind == "confirm").values(expires_at=utcnow()))
        await issuer.press(0)
        assert "no longer open" in issuer.telegram.texts(issuer.sender)[-1]
    else:  # the request's reference is valid only from the identity it was sent to
        await issuer.press(0, sender="666")
        assert "no longer open" in issuer.telegram.texts("666")[-1]
    web = await web_customer(server, welcome)
    assert web != await issuer.customer_id()
    assert [i.channel for i in await issuer.seamline.store.identities(web)] == ["web"]
