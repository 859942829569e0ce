"""Saying something to a customer from the handoff side: an agent's reply, or what the bot tells
them about the queue. Stored with its outbox row in one commit, shown in the consoles, then sent
(bots/outbox.py) to the channel the customer is on at send time (their last channel, if
reachable; else the most recently active reachable one). A crash before the send leaves the row
to another worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol

from seamline.handoff.agents import Agent
from seamline.handoff.inbox import ConsoleInbox
from seamline.handoff.machine import BOT_SILENT
from seamline.handoff.storage import ConversationInfo, iso
from seamline.shared.history import ChatStore, StoredMessage, new_id, reply_attachments, stored_image
from seamline.shared.identity import ProfileStore
from seamline.shared.message import Reply, Role, image_url, utcnow
from seamline.shared.session import SessionStore

log = logging.getLogger(__name__)


class Phrases(Protocol):
    """The bot's responses in every language (bots/dialogue.py ``Responses``)."""

    def render(self, key: str, language: str, slots: dict[str, str]) -> Reply: ...


class CustomerSender(Protocol):
    """The pipeline's outbox: ``keep`` commits a stored reply with its outbox row, ``deliver`` sends
    the rows this worker holds and returns the channels used."""

    async def keep(self, stored: StoredMessage, reply: Reply) -> None: ...

    async def deliver(self, ids: Iterable[str]) -> list[str]: ...


class Delivery:
    def __init__(
        self,
        *,
        chat: ChatStore,
        customers: ProfileStore,
        sessions: SessionStore,
        inbox: ConsoleInbox,
        responses: Phrases,
        default_queue: str,
    ) -> None:
        self.chat = chat
        self.customers = customers
        self.sessions = sessions
        self.inbox = inbox
        self.responses = responses
        self.default_queue = default_queue
        self.pipeline: CustomerSender | None = None  # set by the composition root

    async def language(self, info: ConversationInfo) -> str:
        session = await self.sessions.load(info.customer_id)
        return session.language if session else "en"

    def say(self, key: str, language: str, **slots: str) -> Reply:
        return self.responses.render(key, language, slots)

    async def tell(self, info: ConversationInfo, key: str, **slots: str) -> StoredMessage:
        """One of the bot's responses, in the customer's language."""
        return await self.deliver(info.customer_id, self.say(key, await self.language(info), **slots), info)

    async def deliver(
        self,
        customer_id: str,
        reply: Reply,
        info: ConversationInfo,
        conversation_id: str | None = None,
        sender: Agent | None = None,
    ) -> StoredMessage:
        session = await self.sessions.load(customer_id)
        last = session.last_channel if session else None
        identities = [i for i in await self.chat.identities(customer_id) if i.reachable]
        if len(identities) > 1 and not any(i.channel == last for i in identities):
            identities = await self.customers.reachable_identities(customer_id)  # most recently active first
        identities.sort(key=lambda i: i.channel != last)  # stable: the last channel first
        target = identities[0] if identities else None
        stored = StoredMessage(
            id=new_id(),
            conversation_id=conversation_id or info.id,
            customer_id=customer_id,
            channel=target.channel if target else (last or "web"),
            direction="out",
            role=reply.role.value,
            text=reply.text,
            identity=target.external_id if target else None,
            buttons=[{"title": b.title, "payload": b.payload} for b in reply.buttons],
            attachments=reply_attachments(reply.image, reply.custom),
            nlu={"agent": sender.email, "agent_name": sender.name} if sender else None,
            created_at=utcnow(),
        )
        if self.pipeline is not None and identities:
            await self.pipeline.keep(stored, replace(reply, id=stored.id, ts=stored.created_at))
        else:
            await self.chat.append(stored)
        holder = info.agent_id if info.state in BOT_SILENT else None
        await self.inbox.publish(
            {"type": "message", "conversation_id": info.id, "message": message_event(stored)},
            audience=holder,
            queue=info.queue or self.default_queue,
        )
        if self.pipeline is not None and identities:
            used = await self.pipeline.deliver([stored.id])
            if not used:
                log.info(
                    "reply %s to %s is stored; not sent now (no channel reached them, or it waits its turn)",
                    stored.id,
                    customer_id,
                )
        return stored

    async def send_as_agent(self, info: ConversationInfo, text: str, agent: Agent) -> StoredMessage:
        return await self.deliver(info.customer_id, Reply(text, role=Role.AGENT), info, sender=agent)


def message_event(m: StoredMessage) -> dict[str, Any]:
    """A stored message as the console shows it (the inbox event and the conversation's context)."""
    out: dict[str, Any] = {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "channel": m.channel,
        "role": m.role,
        "direction": m.direction,
        "text": m.text,
        "ts": iso(m.created_at),
    }
    if m.role == "customer":
        nlu = m.nlu or {}
        out.update(intent=m.intent, confidence=m.confidence, entities=nlu.get("entities", []))
    if m.role == "agent" and m.nlu:
        out["agent"] = m.nlu.get("agent_name")
    if m.buttons:
        out["buttons"] = m.buttons
    if image := image_url(stored_image(m)):
        out["image"] = image
    return out
