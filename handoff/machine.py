"""The handoff state machine: who answers a conversation.

    bot ──escalate──> queued ──claim/assign──> with_agent ──resolve──> resolved
     ^                  │  └──customer left──> abandoned      │ └──release──> bot
     └──────────────────┘(cancelled)          transferred <──┘ (to an agent or a queue)
                                                   └──claim──> with_agent

While a person holds the conversation (with_agent, transferred) the bot stays silent on every
channel. Every transition is an event with who, why and when (see ``handoff/service.py``).
"""

from __future__ import annotations

from seamline.shared.errors import HandoffError
from seamline.shared.handoff_states import BOT_SILENT, STATES, WITH_PEOPLE

__all__ = ["BOT_SILENT", "STATES", "TRANSITIONS", "WITH_PEOPLE", "IllegalTransition", "check"]
TRANSITIONS = frozenset(
    {
        ("bot", "queued"),
        ("queued", "with_agent"),
        ("queued", "abandoned"),
        ("queued", "bot"),
        ("queued", "resolved"),
        ("with_agent", "bot"),
        ("with_agent", "resolved"),
        ("with_agent", "transferred"),
        ("with_agent", "queued"),
        ("transferred", "with_agent"),
        ("transferred", "queued"),
        ("transferred", "bot"),
        ("transferred", "resolved"),
    }
)


class IllegalTransition(HandoffError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a conversation that is {current} cannot become {target}")
        self.current, self.target = current, target


def check(current: str, target: str) -> None:
    if (current, target) not in TRANSITIONS:
        raise IllegalTransition(current, target)
