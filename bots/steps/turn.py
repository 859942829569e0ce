"""The step contract: one message's turn is walked by an ordered list of steps, each with one job.

As in aiogram's middlewares, a step is called with the turn and the rest of the walk
(``call_next``): it may act before the rest (dedupe, store), stop the walk by not calling it
(a duplicate, a filter that answers itself), or act after it (the ``reply`` step stores and
sends whatever the steps inside it decided). So there is one ending, whatever step answered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    NamedTuple,
    Protocol,
    runtime_checkable,
)

from seamline.shared.history import StoredMessage
from seamline.shared.message import Message, Reply
from seamline.shared.session import Session

if TYPE_CHECKING:
    from seamline.bots.dialogue import Decision
    from seamline.nlu.parse import Parse
    from seamline.shared.linking import Outcome

# The built-in steps, in the order they walk (docs/pipeline.md says what each does).
BUILTIN = (
    "dedupe",
    "store",
    "agents",
    "link",
    "reply",
    "understand",
    "silence",
    "typing",
    "rate",
    "callback",
    "decide",
    "remind",
    "escalate",
)

OnStored = Callable[[StoredMessage], Awaitable[None]]


class Annotation(NamedTuple):
    """What is stored with the customer's message as understood (the agent console shows it; a
    confidence marks the turn as committed, so a resent message is not answered twice)."""

    intent: str | None
    confidence: float
    nlu: dict


@dataclass(eq=False)
class Turn:
    """One message on its way through the steps. Steps read and fill it; ``data`` is free for a
    project's own steps to pass things along."""

    message: Message
    session: Session
    link: Outcome | None = None  # a link proof in the message, redeemed before the turn
    on_stored: OnStored | None = None  # the message is durable (the widget's acknowledgement)
    on_answering: OnStored | None = None  # the bot will answer (a messenger's "typing…")
    inbound: StoredMessage | None = None  # the message as stored ("store")
    parse: Parse | None = None  # what was understood ("understand")
    decision: Decision | None = None  # what the dialogue decided ("decide")
    replies: list[Reply] = field(default_factory=list)  # what the bot will say, in order
    annotation: Annotation | None = None  # stored as understood; by default taken from ``parse``
    secret: str | None = None  # a link code shown in a reply: stored masked
    duplicate: bool = False  # already answered: nothing else happens
    handled: bool = False  # answered by a step before "reply": the steps after "reply" are skipped
    sent: tuple[StoredMessage, ...] = ()  # the replies as stored and sent ("reply")
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def seen_key(self) -> str | None:
        """The platform's id of the message, as the session remembers answered ones."""
        message = self.message
        return f"{message.channel}:{message.external_id}" if message.external_id else None

    def answer(self, *replies: Reply, intent: str | None = None, **nlu: Any) -> None:
        """Say ``replies`` (after any already decided) and record ``intent`` as understood."""
        self.replies.extend(replies)
        if intent is not None or (self.annotation is None and self.parse is None):
            self.annotation = Annotation(intent, 1.0, {"intent": intent, **nlu})


Next = Callable[[Turn], Awaitable[None]]


@runtime_checkable
class Step(Protocol):
    """A step of the walk: ``name`` is how others place steps before or after it."""

    name: str

    async def __call__(self, turn: Turn, call_next: Next) -> None: ...


async def _end(turn: Turn) -> None:
    return None


def chain(steps: Sequence[Step]) -> Next:
    """The walk as one callable: each step gets the rest of the walk as its ``call_next``. Built
    once when the steps change, not per message."""
    walk: Next = _end
    for step in reversed(steps):
        walk = _link(step, walk)
    return walk


def _link(step: Step, rest: Next) -> Next:
    async def run(turn: Turn) -> None:
        await step(turn, rest)

    return run
