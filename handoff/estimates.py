"""How long a waiting customer will wait, their place in the queue, and the queues' figures.

The wait per place is measured: how long people held the queue's last resolved conversations
(the median), divided by how many conversations the online agents with the skill hold at once.
Before there is any history, MINUTES_PER_CUSTOMER per online agent.
"""

from __future__ import annotations

import math
import statistics
from datetime import timedelta
from typing import Any

from seamline.handoff.delivery import Delivery
from seamline.handoff.machine import WITH_PEOPLE
from seamline.handoff.presence import Presence
from seamline.handoff.queries import Queries
from seamline.handoff.routing import Routing
from seamline.handoff.storage import HandoffFigures, HandoffStore, iso
from seamline.shared.message import utcnow

MINUTES_PER_CUSTOMER = 4  # the wait estimate before any is measured: per customer ahead, per online agent
HANDLING_WINDOW = timedelta(days=7)  # measured handling times: resolved conversations of this long
HANDLING_SAMPLES, HANDLING_MIN_SAMPLES = 50, 5


class Estimates:
    def __init__(
        self,
        *,
        rows: HandoffStore,
        figures: HandoffFigures,
        queries: Queries,
        presence: Presence,
        delivery: Delivery,
        routing: Routing,
    ) -> None:
        self.rows = rows
        self.figures = figures
        self.queries = queries
        self.presence = presence
        self.delivery = delivery
        self.routing = routing

    async def queues(self) -> list[dict[str, Any]]:
        """Every queue: who waits, who is with agents, agents online, open now or when it opens."""
        counts: dict[str, dict[str, int]] = {}
        for (queue, state), n in (await self.figures.counts(tuple(WITH_PEOPLE))).items():
            per_state = counts.setdefault(queue or self.routing.default_queue, {})
            per_state[state] = per_state.get(state, 0) + n
        now, agents = utcnow(), await self.presence.agents.all()
        result = []
        for name in sorted(set(self.routing.queue_names) | set(counts)):
            hours = self.routing.hours(name)
            online = await self.presence.online(name, now=now, agents=agents)
            result.append(
                {
                    "name": name,
                    "waiting": counts.get(name, {}).get("queued", 0),
                    "with_agents": counts.get(name, {}).get("with_agent", 0),
                    "transferred": counts.get(name, {}).get("transferred", 0),
                    "agents_online": len(online),
                    "open": hours.is_open(now),
                    "opens_at": iso(None if hours.is_open(now) else hours.next_open(now)),
                }
            )
        return result

    async def handling_minutes(self, queue: str) -> float | None:
        """How long people hold a conversation of ``queue``: the median of its last resolved ones
        (at most 50, of the last 7 days); None with fewer than 5 to go by."""
        minutes = await self.figures.handling_minutes(queue, utcnow() - HANDLING_WINDOW, HANDLING_SAMPLES)
        if len(minutes) < HANDLING_MIN_SAMPLES:
            return None
        return statistics.median(minutes)

    async def wait_per_place(self, queue: str) -> float:
        online = await self.presence.online(queue)
        handling = await self.handling_minutes(queue)
        if handling is None:
            return MINUTES_PER_CUSTOMER / max(1, len(online))
        return handling / max(1, sum(a.capacity for a in online))

    async def position(self, conversation_id: str, queue: str) -> tuple[int, int]:
        """(place in ``queue``, minutes to wait) of a waiting conversation."""
        ids = [c.id for c in await self.queries.waiting(queue)]
        position = ids.index(conversation_id) + 1 if conversation_id in ids else len(ids) + 1
        return position, max(1, math.ceil(position * await self.wait_per_place(queue)))

    async def announce_positions(self, queue: str | None) -> None:
        """Tell every customer still waiting in ``queue`` whose place moved up."""
        if queue is None:
            return
        waiting = await self.queries.waiting(queue)
        per_place = await self.wait_per_place(queue) if waiting else 0.0
        for position, info in enumerate(waiting, start=1):
            minutes = max(1, math.ceil(position * per_place))
            if position < (info.position_told or position + 1):
                await self.told(info.id, position)
                await self.delivery.tell(info, "handoff_position", position=str(position), minutes=str(minutes))

    async def told(self, conversation_id: str, position: int) -> None:
        """Kept with the conversation, so that no process tells a customer the same place twice."""
        await self.rows.set_position_told(conversation_id, position)
