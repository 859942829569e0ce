"""Reading conversations for agents: one, a page of them, and whether an agent may read them.

What an agent may read is decided in handoff/permissions.py; here it becomes the filter of a
query (``visible_to``) or a ``Forbidden`` naming why.
"""

from __future__ import annotations

from typing import Any

from seamline.handoff.agents import Agent
from seamline.handoff.permissions import refusal
from seamline.handoff.routing import Routing
from seamline.handoff.storage import ConversationInfo, ConversationQuery, HandoffFigures, HandoffStore
from seamline.shared.errors import HandoffError


class Forbidden(HandoffError):
    pass


class NotFound(HandoffError):
    pass


class Queries:
    def __init__(self, *, rows: HandoffStore, figures: HandoffFigures, routing: Routing) -> None:
        self.rows = rows
        self.figures = figures
        self.routing = routing

    async def conversation(self, conversation_id: str) -> ConversationInfo:
        info = await self.rows.get(conversation_id)
        if info is None:
            raise NotFound(f"no conversation {conversation_id}")
        return info

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
        """``visible_to``: only what that agent may read (handoff/permissions.py)."""
        query = ConversationQuery(state=state, queue=queue, agent_id=agent_id, limit=limit, offset=offset)
        if visible_to is not None and not visible_to.is_admin and visible_to.queues:
            query = ConversationQuery(
                state=state,
                queue=queue,
                agent_id=agent_id,
                limit=limit,
                offset=offset,
                reader=visible_to.id,
                skills=tuple(visible_to.queues),
                unqueued=self.routing.default_queue in visible_to.queues,
            )
        return await self.rows.find(query)

    async def waiting(self, queue: str | None = None) -> list[ConversationInfo]:
        """Every conversation waiting (in ``queue``), in the queue's order."""
        return await self.conversations("queued", queue=queue, limit=10_000)

    async def loads(self, agent_ids: list[str]) -> dict[str, int]:
        return await self.figures.loads(agent_ids)

    async def load(self, agent_id: str) -> int:
        return (await self.figures.loads([agent_id])).get(agent_id, 0)

    async def readable(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        """The conversation, if ``agent`` may read it (else ``Forbidden`` saying why)."""
        info = await self.conversation(conversation_id)
        self.allowed(agent, info)
        return info

    async def customer_readable(self, agent: Agent, customer_id: str) -> None:
        """An agent may see a customer's profile when they may read one of the customer's
        conversations (``Forbidden`` otherwise); an admin always."""
        if agent.is_admin:
            return
        if not any(
            refusal(agent, queue=queue, agent_id=holder, default_queue=self.routing.default_queue) is None
            for queue, holder in await self.rows.placements(customer_id)
        ):
            raise Forbidden("none of this customer's conversations is in a queue among your skills")

    def allowed(self, agent: Agent, info: ConversationInfo) -> None:
        refused = refusal(agent, queue=info.queue, agent_id=info.agent_id, default_queue=self.routing.default_queue)
        if refused:
            raise Forbidden(refused)

    async def notes(self, conversation_id: str) -> list[dict[str, Any]]:
        return await self.rows.notes(conversation_id)

    def queue_of(self, info: ConversationInfo) -> str:
        return info.queue or self.routing.default_queue
