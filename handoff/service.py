"""Human handoff: escalation into queues, assignment to agents, and what agents do.

The one owner of a conversation's handoff state. The pipeline asks it whether a message goes to
people and tells it what customers write; the agent API and console call the agent actions.
``Handoff`` is the facade over the parts, each with one job: queries.py (reading, who may read),
transitions.py (moving a conversation, under the customer's lock), actions.py (what the bot and
agents do), presence.py (who is there, choosing one), estimates.py (places and waits),
delivery.py (saying it to the customer on their current channel); the rows are read and written
through handoff/storage.py's protocols.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from seamline.handoff.actions import Actions
from seamline.handoff.agents import Agent, Agents
from seamline.handoff.delivery import CustomerSender, Delivery, Phrases, message_event
from seamline.handoff.estimates import Estimates
from seamline.handoff.inbox import ConsoleInbox, Inbox
from seamline.handoff.presence import Presence
from seamline.handoff.queries import Forbidden, NotFound, Queries
from seamline.handoff.routing import Routing
from seamline.handoff.storage import ConversationInfo, ConversationRows
from seamline.handoff.transitions import Transitions
from seamline.shared.history import ChatStore, StoredMessage
from seamline.shared.identity import ProfileStore
from seamline.shared.message import Message, Reply
from seamline.shared.session import Session, SessionStore

__all__ = ["ConversationInfo", "Forbidden", "Handoff", "NotFound", "message_event"]


class Handoff:
    def __init__(
        self,
        *,
        store: ChatStore,
        rows: ConversationRows,
        customers: ProfileStore,
        agents: Agents,
        sessions: SessionStore,
        routing: Routing,
        responses: Phrases,
        inbox: ConsoleInbox | None = None,
        canned: tuple[Any, ...] = (),
        presence_grace: timedelta = timedelta(seconds=90),
    ) -> None:
        """``store``: the chat (messages, conversations, identities); ``rows``: the conversations as
        handoff reads and moves them (``SqlConversationRows(store)`` on the same database)."""
        self.agents = agents
        self._routing = routing
        self.canned = canned  # for the console (config/canned.yml)
        self.inbox: ConsoleInbox = inbox or Inbox()
        self.inbox.on_revoke(lambda agent_id, digest: agents.forget(agent_id, digest))
        self.sessions = sessions
        self.chat = store
        self.queries = Queries(rows=rows, figures=rows, routing=routing)
        self.transitions = Transitions(rows=rows, chat=store, sessions=sessions, inbox=self.inbox)
        self.delivery = Delivery(
            chat=store,
            customers=customers,
            sessions=sessions,
            inbox=self.inbox,
            responses=responses,
            default_queue=routing.default_queue,
        )
        self.presence = Presence(
            agents=agents,
            inbox=self.inbox,
            rows=rows,
            queries=self.queries,
            transitions=self.transitions,
            delivery=self.delivery,
            grace=presence_grace,
        )
        self.estimates = Estimates(
            rows=rows,
            figures=rows,
            queries=self.queries,
            presence=self.presence,
            delivery=self.delivery,
            routing=routing,
        )
        self.actions = Actions(
            chat=store,
            customers=customers,
            agents=agents,
            inbox=self.inbox,
            rows=rows,
            figures=rows,
            routing=routing,
            queries=self.queries,
            transitions=self.transitions,
            delivery=self.delivery,
            presence=self.presence,
            estimates=self.estimates,
        )

    @property
    def pipeline(self) -> CustomerSender | None:
        """Set by the composition root (the pipeline and handoff know each other)."""
        return self.delivery.pipeline

    @pipeline.setter
    def pipeline(self, pipeline: CustomerSender | None) -> None:
        self.delivery.pipeline = pipeline

    @property
    def routing(self) -> Routing:
        return self._routing

    @routing.setter
    def routing(self, routing: Routing) -> None:
        """Every part routes by the new rules at once (a reload, or a test closing a queue)."""
        self._routing = self.queries.routing = self.estimates.routing = self.actions.routing = routing
        self.delivery.default_queue = routing.default_queue

    @property
    def presence_grace(self) -> timedelta:
        return self.presence.grace

    @presence_grace.setter
    def presence_grace(self, grace: timedelta) -> None:
        self.presence.grace = grace

    # -- reading -------------------------------------------------------------------------------

    async def conversation(self, conversation_id: str) -> ConversationInfo:
        return await self.queries.conversation(conversation_id)

    async def conversations(
        self,
        state: str | None = None,
        *,
        queue: str | None = None,
        agent_id: str | None = None,
        limit: int = 200,
        offset: int = 0,
        visible_to: Agent | None = None,
    ) -> list[ConversationInfo]:
        return await self.queries.conversations(
            state, queue=queue, agent_id=agent_id, limit=limit, offset=offset, visible_to=visible_to
        )

    async def queues(self) -> list[dict[str, Any]]:
        return await self.estimates.queues()

    async def loads(self, agent_ids: list[str]) -> dict[str, int]:
        return await self.queries.loads(agent_ids)

    async def load(self, agent_id: str) -> int:
        return await self.queries.load(agent_id)

    async def readable(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        return await self.queries.readable(agent, conversation_id)

    async def customer_readable(self, agent: Agent, customer_id: str) -> None:
        await self.queries.customer_readable(agent, customer_id)

    async def notes(self, conversation_id: str) -> list[dict[str, Any]]:
        return await self.queries.notes(conversation_id)

    async def history(self, customer_id: str, limit: int = 500) -> list[StoredMessage]:
        """The customer's messages on every channel, oldest first (an agent's context)."""
        return await self.chat.history(customer_id, limit=limit)

    async def customer_session(self, customer_id: str) -> Session | None:
        return await self.sessions.load(customer_id)

    async def forget_customer(self, customer_id: str) -> None:
        """The customer was erased: their session goes too."""
        await self.sessions.delete(customer_id)

    async def handling_minutes(self, queue: str) -> float | None:
        return await self.estimates.handling_minutes(queue)

    # -- the bot side --------------------------------------------------------------------------

    def trigger(self, *, intent: str | None, text: str, fallbacks: int, attributes: dict[str, Any]) -> str | None:
        return self.routing.escalation(intent=intent, text=text, fallbacks=fallbacks, attributes=attributes)

    async def escalate(
        self, session: Session, *, reason: str, parse: Any, message: Message, inbound_id: str
    ) -> list[Reply]:
        return await self.actions.escalate(session, reason=reason, parse=parse, message=message, inbound_id=inbound_id)

    async def customer_wrote(self, session: Session, stored: StoredMessage) -> None:
        await self.actions.customer_wrote(session, stored)

    async def customer_linked(self, session: Session, channel: str) -> None:
        await self.actions.customer_linked(session, channel)

    async def callback(self, session: Session, phone: str) -> None:
        await self.actions.callback(session, phone)

    async def abandon_stale(self, older_than: timedelta) -> int:
        return await self.actions.abandon_stale(older_than)

    async def rate(self, session: Session, score: int) -> None:
        await self.actions.rate(session, score)

    # -- agent actions -------------------------------------------------------------------------

    async def claim(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        return await self.actions.claim(agent, conversation_id)

    async def reply(self, agent: Agent, conversation_id: str, text: str) -> dict[str, Any]:
        return await self.actions.reply(agent, conversation_id, text)

    async def note(self, agent: Agent, conversation_id: str, text: str) -> dict[str, Any]:
        return await self.actions.note(agent, conversation_id, text)

    async def transfer(
        self,
        agent: Agent,
        conversation_id: str,
        *,
        to_agent: str | None = None,
        to_queue: str | None = None,
        note: str = "",
    ) -> ConversationInfo:
        return await self.actions.transfer(agent, conversation_id, to_agent=to_agent, to_queue=to_queue, note=note)

    async def release(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        return await self.actions.release(agent, conversation_id)

    async def resolve(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        return await self.actions.resolve(agent, conversation_id)

    # -- presence ------------------------------------------------------------------------------

    async def set_status(self, agent: Agent, status: str) -> None:
        await self.presence.set_status(agent, status)

    async def log_out(self, agent: Agent, token: str) -> None:
        await self.presence.log_out(agent, token)

    def connected(self, agent: Agent, *, now: datetime | None = None) -> bool:
        return self.presence.connected(agent, now=now)

    async def set_gone_offline(self, after: timedelta, *, now: datetime | None = None) -> list[Agent]:
        return await self.presence.set_gone_offline(after, now=now)

    async def offer_waiting(self) -> None:
        await self.presence.offer_waiting()
