"""``dedupe``: a message the platform delivered again (a Telegram update retried, a widget frame
resent after a reconnect) is answered once. The session remembers recent platform ids; past its
window the database says whether that message's turn was committed.

The session is saved after the turn's commit, so a crash between the two leaves a session that
never heard of a committed turn: the message comes again (the inbox takes its row over, the
widget resends) and the session alone would answer it twice. So when the message may have been
walked before (``RECHECK``, set by the pipeline for a redelivery), the database is asked too; a
rebuilt session needs no query (its ids come from the database's answered messages), nor does the
normal case.
"""

from __future__ import annotations

from seamline.bots.steps.turn import Next, Turn
from seamline.shared.metrics import DUPLICATES
from seamline.shared.session import SEEN_LIMIT
from seamline.shared.storage.sql import SqlChatStore

RECHECK = "dedupe.recheck"  # turn.data key: ask the database whether the message was answered


class Dedupe:
    name = "dedupe"

    def __init__(self, *, store: SqlChatStore) -> None:
        self._store = store

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        key = turn.seen_key
        if key is not None and await self.seen(turn, key):
            turn.duplicate = True
            DUPLICATES.labels(turn.message.channel).inc()
            return
        await call_next(turn)

    async def seen(self, turn: Turn, key: str) -> bool:
        seen = turn.session.seen
        if key in seen:
            return True
        # A window not full holds every id the customer's messages were answered under: nothing to
        # look up, unless the session may have missed a committed turn. A full one may have
        # forgotten an old answered message.
        if len(seen) < SEEN_LIMIT and not turn.data.get(RECHECK):
            return False
        return await self._store.answered(turn.message.channel, turn.message.external_id or "")
