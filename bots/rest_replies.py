"""Where the REST channel's replies go. REST has no push: a reply reaches a sender only in the answer to
one of its requests. So a reply said during a request's turn is collected into that request's answer
(``collecting`` / ``answering``); one said at any other time (an agent's, a link question) waits in
the sender's mailbox for its next request, and the answer to a message with an id is kept a while,
so a client that resends it gets the same answer without a second turn (both in bots/rest_mailbox.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from seamline.shared.message import Reply, image_url


@dataclass
class _Collector:
    """The replies of one request's turn, for its sender only."""

    address: str
    items: list[dict[str, Any]] = field(default_factory=list)
    open: bool = True


# Set by ``collecting`` around a request's turn. The pipeline awaits ``send`` within the same task, so a
# send sees the collector of the request it answers; a send from anywhere else sees none (or one for
# another sender) and goes to the mailbox.
_COLLECTING: ContextVar[_Collector | None] = ContextVar("seamline_rest_collecting", default=None)


@contextmanager
def collecting(address: str) -> Iterator[list[dict[str, Any]]]:
    """Within the block, replies to ``address`` from this task (the pipeline's turn) are collected
    into the yielded list; after it, none are."""
    collector = _Collector(address=address)
    reset = _COLLECTING.set(collector)
    try:
        yield collector.items
    finally:
        collector.open = False
        _COLLECTING.reset(reset)


def answering(address: str, item: dict[str, Any]) -> bool:
    """Add ``item`` to the answer of a request of ``address`` under way in this task; False if none is."""
    collector = _COLLECTING.get()
    if collector is None or not collector.open or collector.address != address:
        return False
    collector.items.append(item)
    return True


def rasa_items(recipient_id: str, reply: Reply) -> list[dict[str, Any]]:
    """One reply as the items Rasa's REST channel answers with (its ``CollectingOutputChannel``, fed
    by ``OutputChannel.send_response``): the text with its buttons as one item; a text without
    buttons cut at blank lines into one item a paragraph; then ``{"custom": ...}`` and then
    ``{"image": url}``, each an item of its own. Keys without a value are left out."""
    items: list[dict[str, Any]] = []
    if reply.buttons:
        buttons = [{"title": b.title, "payload": b.payload or b.title} for b in reply.buttons]
        items.append({"recipient_id": recipient_id, "text": reply.text, "buttons": buttons})
    elif reply.text:
        items.extend({"recipient_id": recipient_id, "text": part} for part in reply.text.strip().split("\n\n"))
    if reply.custom:
        items.append({"recipient_id": recipient_id, "custom": reply.custom})
    if image := image_url(reply.image):
        items.append({"recipient_id": recipient_id, "image": image})
    return items
