"""What every step test builds on: a Turn for a message in one line, and a ``call_next`` that
records whether the rest of the walk ran."""

from __future__ import annotations

from seamline.bots.steps import Turn
from seamline.shared.message import Message, Reply


class Recorder:
    """An adapter that keeps what it was asked to send."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[tuple[str, Reply]] = []

    async def send(self, address: str, reply: Reply) -> None:
        self.sent.append((address, reply))


class Rest:
    """A ``call_next`` that records the turns that reached it (and can act like a later step)."""

    def __init__(self, act=None) -> None:
        self.turns: list[Turn] = []
        self._act = act

    async def __call__(self, turn: Turn) -> None:
        self.turns.append(turn)
        if self._act is not None:
            self._act(turn)

    @property
    def ran(self) -> bool:
        return bool(self.turns)


def telegram(text: str, update_id: int | None = None, sender: str = "100", payload: str | None = None) -> Message:
    return Message(
        channel="telegram",
        address=sender,
        sender=sender,
        text=text,
        payload=payload,
        external_id=str(update_id) if update_id is not None else None,
    )


async def turn_for(seamline, message: Message, **fields) -> Turn:
    """A Turn as the pipeline starts it: the customer found, their session loaded or rebuilt."""
    store = seamline.store
    customer = await store.resolve_customer(message.channel, message.sender, message.address, None, None)
    session = await seamline.sessions.load(customer.id) or await seamline.pipeline._rebuild_session(customer, message)
    return Turn(message=message, session=session, **fields)


def step(seamline, name: str):
    """The built-in step called ``name``, as the app wired it."""
    return next(s for s in seamline.pipeline.steps if s.name == name)


async def stored_turn(seamline, message: Message, **fields) -> Turn:
    """A Turn whose message has been through the "store" step (as every step after it sees it)."""
    turn = await turn_for(seamline, message, **fields)
    await step(seamline, "store")(turn, Rest())
    return turn
