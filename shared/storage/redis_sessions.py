"""Session store on Redis, for several Seamline processes sharing customers."""
from __future__ import annotations

import contextlib
import json
from typing import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from shared.errors import StoreError
from shared.session import Session


class RedisSessionStore:
    def __init__(self, *, client: Redis, prefix: str = "seamline:", ttl_seconds: int = 30 * 24 * 3600,
                 lock_timeout: float = 30.0, lock_wait: float = 10.0) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._lock_timeout = lock_timeout
        self._lock_wait = lock_wait

    def _key(self, key: str) -> str:
        return f"{self._prefix}session:{key}"

    async def load(self, key: str) -> Session | None:
        try:
            raw = await self._redis.get(self._key(key))
        except RedisError as exc:
            raise StoreError(f"Redis failed loading session {key}: {exc}") from exc
        return None if raw is None else Session.from_dict(json.loads(raw))

    async def save(self, session: Session) -> None:
        try:
            await self._redis.set(self._key(session.customer_id), json.dumps(session.to_dict()), ex=self._ttl)
        except RedisError as exc:
            raise StoreError(f"Redis failed saving session {session.customer_id}: {exc}") from exc

    async def delete(self, key: str) -> None:
        try:
            await self._redis.delete(self._key(key))
        except RedisError as exc:
            raise StoreError(f"Redis failed deleting session {key}: {exc}") from exc

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        # Polled every 10 ms while taken (redis-py's default is 100 ms): a customer's second message,
        # or an escalation waiting for the assignment lock, goes on as soon as the first is done.
        lock = self._redis.lock(f"{self._prefix}lock:{key}", timeout=self._lock_timeout,
                                blocking_timeout=self._lock_wait, sleep=0.01)
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise StoreError(f"Redis failed locking session {key}: {exc}") from exc
        if not acquired:
            raise StoreError(f"session {key} stayed locked for {self._lock_wait}s")
        try:
            yield
        finally:
            with contextlib.suppress(LockError, RedisError):
                await lock.release()

    async def close(self) -> None:
        await self._redis.aclose()
