"""Counted budgets ("at most N in a window") that hold across processes when Redis is configured.

Every limit that protects Seamline from a stranger with a script (link-code guesses, login
attempts, widget frames, connections) is a key in one ``Limiter``. ``take`` *reserves* a unit
before the guarded work runs, so a burst of parallel requests cannot all pass the check before
any of them is counted (the race that a check-then-count throttle has). The window slides: a
unit taken at ``t`` is given back at ``t + window``.

Two backends behind one protocol: ``MemoryLimiter`` (one process, the embedded default) and
``RedisLimiter`` (a sorted set per key, changed by one Lua script, so every process shares the
budget). Both are checked by one contract test (tests/shared/test_limits.py).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from seamline.shared.errors import StoreError


class Limiter(Protocol):
    async def take(self, key: str, *, limit: int, window: float) -> float:
        """Reserve one unit of ``key``'s budget: 0.0 when taken, else the seconds until one is free
        (nothing is taken then)."""

    async def peek(self, key: str, *, limit: int, window: float) -> float:
        """Like ``take`` but takes nothing: 0.0 while the budget has room."""

    async def used(self, key: str, *, window: float) -> int:
        """Units taken within the last ``window`` seconds."""

    async def clear(self, key: str) -> None:
        """Forget every unit of ``key`` (a successful login clears its failures)."""

    async def close(self) -> None: ...


class MemoryLimiter:
    """In this process only; bounded to ``capacity`` keys (the stalest are dropped first)."""

    def __init__(self, *, capacity: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._capacity = capacity
        self._units: dict[str, deque[float]] = {}

    def _live(self, key: str, window: float) -> deque[float]:
        now = self._clock()
        units = self._units.get(key)
        if units is None:
            if len(self._units) >= self._capacity:
                self._evict()
            units = self._units[key] = deque()
        while units and units[0] <= now - window:
            units.popleft()
        return units

    def _evict(self) -> None:
        stalest = sorted(self._units, key=lambda k: self._units[k][-1] if self._units[k] else 0.0)
        for key in stalest[: max(1, len(stalest) // 10)]:
            del self._units[key]

    async def take(self, key: str, *, limit: int, window: float) -> float:
        units = self._live(key, window)
        if len(units) >= limit:
            return max(0.001, units[0] + window - self._clock()) if units else window
        units.append(self._clock())
        return 0.0

    async def peek(self, key: str, *, limit: int, window: float) -> float:
        units = self._live(key, window)
        if len(units) >= limit:
            return max(0.001, units[0] + window - self._clock()) if units else window
        return 0.0

    async def used(self, key: str, *, window: float) -> int:
        return len(self._live(key, window))

    async def clear(self, key: str) -> None:
        self._units.pop(key, None)

    async def close(self) -> None:
        self._units.clear()


# KEYS[1] the key; ARGV: now (ms), window (ms), limit, member, take (1/0). Returns the wait in ms (0: room).
_TAKE = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local wait = window
  if oldest[2] then wait = tonumber(oldest[2]) + window - now end
  if wait < 1 then wait = 1 end
  return wait
end
if ARGV[5] == '1' then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, window)
end
return 0
"""


class RedisLimiter:
    """Shared by every process on one Redis. The clock is Redis's own (``TIME``), so machines
    with skewed clocks agree."""

    def __init__(self, *, client: Redis, prefix: str = "seamline:limit:") -> None:
        self._redis = client
        self._prefix = prefix
        self._script = client.register_script(_TAKE)
        self._ids = itertools.count()
        self._tag = f"{time.time_ns()}-{id(self)}"

    async def _run(self, key: str, limit: int, window: float, take: bool) -> float:
        try:
            seconds, micros = await self._redis.time()
            now = seconds * 1000 + micros // 1000
            member = f"{now}-{self._tag}-{next(self._ids)}"
            wait = await self._script(
                keys=[self._prefix + key], args=[now, int(window * 1000), limit, member, "1" if take else "0"]
            )
        except RedisError as exc:
            raise StoreError(f"Redis failed counting {key}: {exc}") from exc
        return int(wait) / 1000

    async def take(self, key: str, *, limit: int, window: float) -> float:
        return await self._run(key, limit, window, True)

    async def peek(self, key: str, *, limit: int, window: float) -> float:
        return await self._run(key, limit, window, False)

    async def used(self, key: str, *, window: float) -> int:
        try:
            seconds, micros = await self._redis.time()
            now = seconds * 1000 + micros // 1000
            return int(await self._redis.zcount(self._prefix + key, now - int(window * 1000) + 1, "+inf"))
        except RedisError as exc:
            raise StoreError(f"Redis failed counting {key}: {exc}") from exc

    async def clear(self, key: str) -> None:
        try:
            await self._redis.delete(self._prefix + key)
        except RedisError as exc:
            raise StoreError(f"Redis failed clearing {key}: {exc}") from exc

    async def close(self) -> None:
        await self._redis.aclose()


async def take_all(limiter: Limiter, keys: list[tuple[str, int, float]]) -> float:
    """Take one unit from each of several budgets (key, limit, window): 0.0 when every one had
    room, else the longest wait. A budget that had room keeps its unit even when another was
    spent: these guard attackers' attempts, and counting a refused attempt errs on the safe side."""
    waits = await asyncio.gather(*(limiter.take(key, limit=limit, window=window) for key, limit, window in keys))
    return max(waits, default=0.0)
