"""``dedupe``: a message the platform delivered again (a Telegram update retried, a widget frame
resent after a reconnect) is answered once. The session remembers recent platform ids; past its
window the database says whether that message's turn was committed."""

from __future__ import annotations

from seamline.bots.steps.turn import Next, Turn
from seamline.shared.session import SEEN_LIMIT
from seamline.shared.storage.sql import SqlChatStore


class Dedupe:
    name = "dedupe"

    def __init__(self, *, store: SqlChatStore) -> None:
        self._store = store

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        key = turn.seen_key
        if key is not None and await self.seen(turn, key):
            turn.duplicate = True
            return
        await call_next(turn)

    async def seen(self, turn: Turn, key: str) -> bool:
        seen = turn.session.seen
        if key in seen:
            return True
        # A window not full holds every id the customer's messages were answered under: nothing to
        # look up. A full one may have forgotten an old answered message.
        return len(seen) >= SEEN_LIMIT and await self._store.answered(
            turn.message.channel, turn.message.external_id or ""
        )
