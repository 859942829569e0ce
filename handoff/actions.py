"""What the bot and agents do to a conversation: escalate it to people, claim, reply, note,
transfer, return to the bot, resolve; and what a waiting customer does (a call back, a rating).

Each action checks who may do it (handoff/permissions.py through ``Queries``), moves the
conversation (``Transitions``) and tells the customer (``Delivery``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from seamline.handoff.agents import Agent, Agents
from seamline.handoff.delivery import Delivery, message_event
from seamline.handoff.estimates import Estimates
from seamline.handoff.inbox import ConsoleInbox
from seamline.handoff.machine import BOT_SILENT, WITH_PEOPLE
from seamline.handoff.presence import Presence
from seamline.handoff.queries import Forbidden, NotFound, Queries
from seamline.handoff.routing import Routing
from seamline.handoff.storage import ConversationInfo, HandoffFigures, HandoffStore
from seamline.handoff.transitions import Transitions
from seamline.shared.errors import HandoffError
from seamline.shared.history import ChatStore, StoredMessage
from seamline.shared.identity import ProfileStore
from seamline.shared.message import Button, Message, Reply, utcnow
from seamline.shared.session import Session


class Actions:
    def __init__(
        self,
        *,
        chat: ChatStore,
        customers: ProfileStore,
        agents: Agents,
        inbox: ConsoleInbox,
        rows: HandoffStore,
        figures: HandoffFigures,
        routing: Routing,
        queries: Queries,
        transitions: Transitions,
        delivery: Delivery,
        presence: Presence,
        estimates: Estimates,
    ) -> None:
        self.chat = chat
        self.customers = customers
        self.agents = agents
        self.inbox = inbox
        self.rows = rows
        self.figures = figures
        self.routing = routing
        self.queries = queries
        self.transitions = transitions
        self.delivery = delivery
        self.presence = presence
        self.estimates = estimates

    # -- the bot side --------------------------------------------------------------------------

    async def escalate(
        self, session: Session, *, reason: str, parse: Any, message: Message, inbound_id: str
    ) -> list[Reply]:
        """The bot passes the conversation to people (the caller holds the session lock). Returns what
        to tell the customer: who took it, or their place in the queue, or when people are back."""
        if session.handoff != "bot":
            return []
        queue, rule = self.routing.route(
            intent=parse.intent,
            text=message.text,
            channel=message.channel,
            language=parse.language or session.language,
            attributes=session.attributes,
        )
        now = utcnow()
        hours = self.routing.hours(queue)
        is_open = hours.is_open(now)
        escalation = {
            "reason": str(reason),
            "reason_code": getattr(reason, "code", None),
            "reason_params": dict(getattr(reason, "params", {})),
            "intent": parse.intent,
            "confidence": round(parse.confidence, 4),
            "queue": queue,
            "routed_by": rule,
            "channel": message.channel,
            "message_id": inbound_id,
            "at": now.isoformat(),
            "after_hours": not is_open,
            "by": "bot",
        }
        await self.transitions.move(
            session, "queued", by="bot", reason=reason, queue=queue, agent_id=None, escalation=escalation, queued_at=now
        )
        say, language = self.delivery.say, session.language
        if is_open:
            agent = await self.presence.assign(session, queue)
            if agent is not None:
                return [say("handoff_assigned", language, name=agent.name)]
            position, minutes = await self.estimates.position(session.conversation_id, queue)
            await self.estimates.told(session.conversation_id, position)
            return [say("handoff_queued", language, position=str(position), minutes=str(minutes))]
        back = hours.next_open(now)
        return [
            say(
                "handoff_after_hours",
                language,
                back=back.strftime("%d.%m %H:%M") if back else "?",
                timezone=hours.timezone,
            )
        ]

    async def customer_wrote(self, session: Session, stored: StoredMessage) -> None:
        """Tell the inboxes about a message in a conversation people are on: while it waits, the
        consoles of agents with its queue among their skills; once an agent holds it, theirs (and
        admins', and whoever may read it and has it open)."""
        if session.handoff in WITH_PEOPLE:
            info = await self.queries.conversation(session.conversation_id)
            holder = info.agent_id if session.handoff in BOT_SILENT else None
            await self.inbox.publish(
                {"type": "message", "conversation_id": session.conversation_id, "message": message_event(stored)},
                audience=holder,
                queue=self.queries.queue_of(info),
            )

    async def customer_linked(self, session: Session, channel: str) -> None:
        """The customer proved another channel is theirs: consoles showing them reload the profile."""
        if session.handoff in WITH_PEOPLE:
            await self.inbox.publish(
                {
                    "type": "customer",
                    "conversation_id": session.conversation_id,
                    "customer_id": session.customer_id,
                    "linked": channel,
                }
            )

    async def callback(self, session: Session, phone: str) -> None:
        """The waiting customer left a phone number (E.164) for a call back: on the conversation, so
        the queue shows it, and on the profile."""
        info = await self.queries.conversation(session.conversation_id)
        escalation = {**(info.escalation or {}), "callback": phone}
        await self.rows.set_escalation(info.id, escalation)
        await self.customers.set_attributes(session.customer_id, {"phone": phone}, source="customer")
        await self.chat.record_event("callback_requested", session.customer_id, info.id, {"phone": phone})
        await self.inbox.publish({"type": "conversation", "conversation": {**info.summary(), "escalation": escalation}})

    async def abandon_stale(self, older_than: timedelta) -> int:
        """Queued conversations whose customer has written nothing for ``older_than`` are abandoned:
        they leave the queue, and the customer starts afresh with the bot."""
        cutoff = utcnow() - older_than
        count = 0
        for info in await self.queries.waiting():
            when = await self.figures.last_customer_message(info.id) or info.queued_at
            if when is None or when > cutoff:
                continue
            async with self.transitions.session(info) as session:
                if session.handoff == "queued":
                    await self.transitions.move(
                        session,
                        "abandoned",
                        by="system",
                        reason="the customer left the queue",
                        queue=info.queue,
                        agent_id=None,
                    )
                    conversation = await self.chat.open_conversation_for(info.customer_id)
                    session.conversation_id, session.handoff = conversation.id, "bot"
                    count += 1
        return count

    async def rate(self, session: Session, score: int) -> None:
        conversation_id = session.slots.pop("rating_for", None)
        if conversation_id:
            await self.chat.record_event("csat", session.customer_id, conversation_id, {"score": score})

    # -- agents --------------------------------------------------------------------------------

    async def claim(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        info = await self.queries.conversation(conversation_id)
        if info.state == "with_agent" and info.agent_id == agent.id:
            return info
        if info.state == "with_agent" or (info.state == "transferred" and info.agent_id not in (None, agent.id)):
            raise Forbidden("another agent holds this conversation")
        if info.state not in ("queued", "transferred"):
            raise HandoffError(f"the conversation is {info.state}, not waiting for a person")
        self.queries.allowed(agent, info)
        # in this order, as in escalate
        async with self.transitions.session(info) as session, self.transitions.assigning():
            if await self.queries.load(agent.id) >= agent.capacity and not agent.is_admin:
                raise Forbidden(f"you are at your capacity of {agent.capacity} conversations")
            await self.transitions.move(
                session, "with_agent", by=agent.email, reason="claimed", queue=info.queue, agent_id=agent.id
            )
        await self.delivery.tell(info, "handoff_assigned", name=agent.name)
        await self.estimates.announce_positions(info.queue)
        return await self.queries.conversation(conversation_id)

    async def reply(self, agent: Agent, conversation_id: str, text: str) -> dict[str, Any]:
        info = await self.held(agent, conversation_id)
        return message_event(await self.delivery.send_as_agent(info, text, agent))

    async def note(self, agent: Agent, conversation_id: str, text: str) -> dict[str, Any]:
        info = await self.queries.readable(agent, conversation_id)
        data = {"text": text, "agent": agent.email, "name": agent.name}
        await self.chat.record_event("note", info.customer_id, conversation_id, data)
        await self.inbox.publish(
            {"type": "note", "conversation_id": conversation_id, "note": data},
            audience=info.agent_id if info.state in BOT_SILENT else None,
            queue=self.queries.queue_of(info),
        )
        return data

    async def transfer(
        self,
        agent: Agent,
        conversation_id: str,
        *,
        to_agent: str | None = None,
        to_queue: str | None = None,
        note: str = "",
    ) -> ConversationInfo:
        info = await self.held(agent, conversation_id)
        target = None
        if to_agent:
            target = await self.agents.get(to_agent) or await self.agents.by_email(to_agent)
            if target is None:
                raise NotFound(f"no agent {to_agent}")
        queue = to_queue or info.queue
        if to_queue and to_queue not in self.routing.queue_names:
            raise NotFound(f"no queue {to_queue}")
        async with self.transitions.session(info) as session:
            await self.transitions.move(
                session,
                "transferred",
                by=agent.email,
                reason=note or "transferred",
                queue=queue,
                agent_id=target.id if target else None,
            )
        if note:
            await self.chat.record_event(
                "note", info.customer_id, conversation_id, {"text": note, "agent": agent.email, "name": agent.name}
            )
        await self.delivery.tell(info, "handoff_transferred")
        return await self.queries.conversation(conversation_id)

    async def release(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        info = await self.held(agent, conversation_id, allow_queued=True)
        async with self.transitions.session(info) as session:
            await self.transitions.move(
                session, "bot", by=agent.email, reason="returned to the bot", queue=None, agent_id=None
            )
            session.fallbacks = 0
        await self.delivery.tell(info, "handoff_back_to_bot")
        return await self.queries.conversation(conversation_id)

    async def resolve(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        info = await self.held(agent, conversation_id, allow_queued=True)
        async with self.transitions.session(info) as session:
            await self.transitions.move(
                session, "resolved", by=agent.email, reason="resolved", queue=info.queue, agent_id=info.agent_id
            )
            conversation = await self.chat.open_conversation_for(info.customer_id)
            session.conversation_id, session.handoff, session.fallbacks = conversation.id, "bot", 0
            session.slots["rating_for"] = conversation_id
        rating = self.delivery.say("handoff_rate", await self.delivery.language(info))
        rating = Reply(rating.text, tuple(Button(str(n), f"/rate {n}") for n in range(1, 6)))
        await self.delivery.deliver(info.customer_id, rating, info, conversation.id)
        return await self.queries.conversation(conversation_id)

    async def held(self, agent: Agent, conversation_id: str, *, allow_queued: bool = False) -> ConversationInfo:
        """The conversation, if ``agent`` holds it (or, ``allow_queued``, it waits in their skills)."""
        info = await self.queries.conversation(conversation_id)
        holds = info.state in BOT_SILENT and info.agent_id == agent.id
        if not holds and not agent.is_admin:
            if info.state in BOT_SILENT and info.agent_id:
                raise Forbidden("another agent holds this conversation")
            if not (allow_queued and info.state == "queued"):
                raise Forbidden("claim the conversation first")
            self.queries.allowed(agent, info)  # a waiting one: only of the agent's skills
        if info.state not in WITH_PEOPLE:
            raise HandoffError(f"the conversation is {info.state}")
        return info
