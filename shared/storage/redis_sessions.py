"""Session store on Redis, for several Seamline processes sharing customers.

The lock has a timeout so that a crashed holder cannot block a customer for ever; a live holder
keeps it by re-arming the timeout every third of it while it works (a turn may wait a minute on a
platform's 429). A lock lost anyway (Redis away longer than the timeout, a frozen process) is
logged, and the session is then not saved: the save is fenced on the lock's token, so a stale turn
never overwrites what the lock's new holder wrote (docs/architecture.md).

A session is stored as compact JSON, zlib-compressed when it is longer than COMPRESS_ABOVE bytes:
the tracker events of a few turns (each user event carries its whole parse, as Rasa's do) make
4-5 KB of JSON that compress about 3:1, which keeps an idle conversation well under 4 KB of Redis
memory (benchmarks/scale.py: 1.7-1.9 KB instead of 5.3 KB) without dropping anything an action's
tracker shows. Compact separators make ``json.dumps`` cheaper by about what zlib's fastest level
costs, so a save costs about what it did before (a load, slightly less); short sessions (a new
customer's) are left as JSON, where compressing saves little. Values written before compression
existed (JSON text) still load: a stored value starting with ``{`` is JSON, else zlib."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import zlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from seamline.shared.errors import StoreError
from seamline.shared.session import Session

COMPRESS_ABOVE = 1024  # bytes of JSON
# zlib's fastest level: on a four-turn session (4.9 KB of JSON) it takes ~45 us against ~65 us at
# the default level 6, for 1.5 KB instead of 1.4 KB
_LEVEL = 1


def encode(data: dict[str, Any]) -> bytes:
    """A session's stored value: compact JSON, zlib-compressed above COMPRESS_ABOVE bytes."""
    # UTF-8, not \u escapes (Cyrillic is 2 bytes a letter, not 6); a lone surrogate a client sent
    # survives the round trip ("surrogatepass" both ways)
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    return zlib.compress(raw, _LEVEL) if len(raw) > COMPRESS_ABOVE else raw


def decode(value: bytes | str) -> dict[str, Any]:
    """A stored value back as the dict ``Session.from_dict`` takes: JSON (any version) or zlib
    (whose first byte is 0x78, never ``{``)."""
    if isinstance(value, bytes):
        value = (value if value[:1] == b"{" else zlib.decompress(value)).decode("utf-8", "surrogatepass")
    data = json.loads(value)
    if not isinstance(data, dict):
        raise ValueError("a stored session is not a JSON object")
    return data


log = logging.getLogger(__name__)

# The locks the running task holds, by lock key: a save under one of them is fenced on its token.
_held: ContextVar[dict[str, Lock]] = ContextVar("seamline_session_locks")

# Set the session only while the lock (KEYS[1]) still holds our token (ARGV[1]).
_FENCED_SET = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
"""


# Seconds a lock outlives a holder that stopped re-arming it: a SIGKILLed worker's customers wait at
# most this long. Short is safe, since a live holder re-arms it every third of it (~3.3 s).
LOCK_TIMEOUT = 10.0


class RedisSessionStore:
    def __init__(
        self,
        *,
        client: Redis,
        prefix: str = "seamline:",
        ttl_seconds: int = 30 * 24 * 3600,
        lock_timeout: float = LOCK_TIMEOUT,
        lock_wait: float = 10.0,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._lock_timeout = lock_timeout
        self._lock_wait = lock_wait
        self._fenced_set = client.register_script(_FENCED_SET)

    def _key(self, key: str) -> str:
        return f"{self._prefix}session:{key}"

    def _lock_key(self, key: str) -> str:
        return f"{self._prefix}lock:{key}"

    async def load(self, key: str) -> Session | None:
        try:
            raw = await self._redis.get(self._key(key))
        except RedisError as exc:
            raise StoreError(f"Redis failed loading session {key}: {exc}") from exc
        if raw is None:
            return None
        try:
            return Session.from_dict(decode(raw))
        except (ValueError, zlib.error) as exc:
            raise StoreError(f"session {key} in Redis is unreadable: {exc}") from exc

    async def save(self, session: Session) -> None:
        key, data = session.customer_id, encode(session.to_dict())
        lock = _held.get({}).get(self._lock_key(key))
        token = lock.local.token if lock is not None else None
        try:
            if token is None:
                await self._redis.set(self._key(key), data, ex=self._ttl)
                return
            saved = await self._fenced_set(keys=[self._lock_key(key), self._key(key)], args=[token, data, self._ttl])
        except RedisError as exc:
            raise StoreError(f"Redis failed saving session {key}: {exc}") from exc
        if not saved:
            log.warning("session %s was not saved: its lock was lost, and another turn may hold it now", key)

    async def delete(self, key: str) -> None:
        try:
            await self._redis.delete(self._key(key))
        except RedisError as exc:
            raise StoreError(f"Redis failed deleting session {key}: {exc}") from exc

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        # Polled every 10 ms while taken (redis-py's default is 100 ms): a customer's second message,
        # or an escalation waiting for the assignment lock, goes on as soon as the first is done.
        name = self._lock_key(key)
        lock = self._redis.lock(name, timeout=self._lock_timeout, blocking_timeout=self._lock_wait, sleep=0.01)
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise StoreError(f"Redis failed locking session {key}: {exc}") from exc
        if not acquired:
            raise StoreError(f"session {key} stayed locked for {self._lock_wait}s")
        lost: list[bool] = []
        keepers: list[asyncio.Task[None]] = []  # started only by a turn that lasts a third of the timeout

        def keep() -> None:
            keepers.append(asyncio.create_task(self._keep(lock, key, lost), name=f"session-lock:{key}"))

        started = asyncio.get_running_loop().call_later(self._lock_timeout / 3, keep)
        outer = _held.get({})
        _held.set({**outer, name: lock})
        try:
            yield
        finally:
            _held.set(outer)
            started.cancel()
            for keeper in keepers:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            try:
                await lock.release()
            except LockNotOwnedError:
                if not lost:
                    log.warning(
                        "the lock of session %s was lost before its turn ended (it outlived its "
                        "%.1f s timeout or was taken)",
                        key,
                        self._lock_timeout,
                    )
            except (LockError, RedisError) as exc:
                log.warning("could not release the lock of session %s (%s); it expires by itself", key, exc)

    async def _keep(self, lock: Lock, key: str, lost: list[bool]) -> None:
        """Re-arm the lock's timeout now and every third of it while its holder works."""
        while True:
            try:
                await lock.reacquire()
            except LockNotOwnedError:
                lost.append(True)
                log.warning(
                    "the lock of session %s was lost while its turn was running (expired or taken); "
                    "its session will not be saved",
                    key,
                )
                return
            except (LockError, RedisError) as exc:  # Redis away for a moment: try again next time
                log.warning("could not extend the lock of session %s: %s", key, exc)
            await asyncio.sleep(self._lock_timeout / 3)

    async def close(self) -> None:
        await self._redis.aclose()
