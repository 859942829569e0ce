"""What one client may take of the widget's server: sockets per address, frames per visitor and address.

A stranger with a script must not be able to use up the connections, the bandwidth or the log of a
server that other customers are chatting on (issue 10, items 3, 8 and 13):

- Open sockets per client address are *counted*, not rated: a connection holds a lease until it
  closes. In one process that is a counter; with Redis it is a sorted set per address whose members
  are leases that expire unless renewed (``LEASE`` seconds, renewed every third of it), so a process
  killed with its sockets open frees its share by itself instead of locking the address out for ever.
  A sliding-window ``Limiter`` cannot express "currently open": a socket that stays open for an hour
  would count once, and one that closed at once would count for a whole window.
- Frames of every type are *rated* through the shared ``Limiter`` (per visitor and per address, 10 s
  windows); the frames that cost bandwidth (``hello``'s welcome, ``older`` pages) have a tighter
  per-minute budget of their own.
- When Redis fails, the widget stays open (fail open, logged once a minute): the chat is already
  degraded then, and a limit is no reason to turn every customer away.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import itertools
import logging
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from seamline.shared.errors import StoreError
from seamline.shared.limits import Limiter, take_all

log = logging.getLogger(__name__)

FRAME_WINDOW = 10.0  # seconds of the per-visitor and per-address frame budgets
PAGE_WINDOW = 60.0  # seconds of the welcome/older budgets
PAGES_PER_VISITOR = 20  # hellos and older pages per visitor per minute (a page load is one hello)
PAGES_PER_ADDRESS = 120  # ... per client address (an office behind one NAT address)
LEASE = 60.0  # seconds a Redis connection lease lives unless renewed


def address_key(address: str) -> str:
    """The unit a per-address limit counts: an IPv4 address, or the /64 an IPv6 host gets whole."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Connections(Protocol):
    async def acquire(self, address: str, cap: int) -> str | None:
        """A lease for one more open socket of ``address``; None when ``cap`` are open already."""

    async def release(self, address: str, lease: str) -> None: ...

    async def close(self) -> None: ...


class MemoryConnections:
    """Open sockets per address in this process."""

    def __init__(self) -> None:
        self._open: dict[str, set[str]] = {}
        self._ids = itertools.count()

    async def acquire(self, address: str, cap: int) -> str | None:
        leases = self._open.setdefault(address, set())
        if len(leases) >= cap:
            return None
        lease = str(next(self._ids))
        leases.add(lease)
        return lease

    async def release(self, address: str, lease: str) -> None:
        leases = self._open.get(address)
        if leases is not None:
            leases.discard(lease)
            if not leases:
                del self._open[address]

    async def close(self) -> None:
        self._open.clear()


# KEYS[1] the address's set; ARGV: now (ms), lease (ms), cap, member. 1: acquired, 0: full.
_ACQUIRE = """
local key, now, lease, cap = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) >= cap then return 0 end
redis.call('ZADD', key, now + lease, ARGV[4])
redis.call('PEXPIRE', key, lease)
return 1
"""


class RedisConnections:
    """Open sockets per address across every process on one Redis, as leases that expire unless renewed."""

    def __init__(self, *, client: Redis, prefix: str = "seamline:sockets:", lease: float = LEASE) -> None:
        self._redis, self._prefix, self._lease = client, prefix, lease
        self._script = client.register_script(_ACQUIRE)
        self._tag = f"{time.time_ns()}-{id(self)}"
        self._ids = itertools.count()
        self._held: dict[str, str] = {}  # lease → address, renewed while open
        self._renewer: asyncio.Task | None = None

    async def _now(self) -> int:
        seconds, micros = await self._redis.time()
        return seconds * 1000 + micros // 1000

    async def acquire(self, address: str, cap: int) -> str | None:
        lease = f"{self._tag}-{next(self._ids)}"
        try:
            taken = await self._script(
                keys=[self._prefix + address], args=[await self._now(), int(self._lease * 1000), cap, lease]
            )
        except RedisError as exc:
            raise StoreError(f"Redis failed counting the sockets of {address}: {exc}") from exc
        if not int(taken):
            return None
        self._held[lease] = address
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew(), name="seamline-socket-leases")
        return lease

    async def release(self, address: str, lease: str) -> None:
        self._held.pop(lease, None)
        try:
            await self._redis.zrem(self._prefix + address, lease)
        except RedisError:
            pass  # the lease expires by itself within LEASE seconds

    async def _renew(self) -> None:
        while self._held:
            await asyncio.sleep(self._lease / 3)
            try:
                until = await self._now() + int(self._lease * 1000)
                async with self._redis.pipeline(transaction=False) as pipe:
                    for lease, address in list(self._held.items()):
                        pipe.zadd(self._prefix + address, {lease: until}, xx=True)
                        pipe.pexpire(self._prefix + address, int(self._lease * 1000))
                    await pipe.execute()
            except RedisError as exc:
                log.warning("widget socket leases not renewed (Redis: %s); retrying", exc)

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        await self._redis.aclose()


class FrameBudget:
    """Every widget frame takes a unit per client address and, once known, per visitor."""

    def __init__(self, *, limiter: Limiter, per_visitor: int, per_address: int) -> None:
        self._limiter = limiter
        self._per_visitor, self._per_address = per_visitor, per_address
        self._warned = 0.0

    async def frame(self, address: str, visitor: str | None) -> float:
        """0.0 when this frame may be handled, else the seconds to wait."""
        keys = []
        if self._per_address:
            keys.append((f"web:frames:addr:{address}", self._per_address, FRAME_WINDOW))
        if self._per_visitor and visitor:
            keys.append((f"web:frames:visitor:{visitor}", self._per_visitor, FRAME_WINDOW))
        return await self._take(keys)

    async def page(self, address: str, visitor: str | None) -> float:
        """A ``hello`` or ``older`` frame, which answers with up to a page of history."""
        keys = [(f"web:pages:addr:{address}", PAGES_PER_ADDRESS, PAGE_WINDOW)]
        if visitor:
            keys.append((f"web:pages:visitor:{visitor}", PAGES_PER_VISITOR, PAGE_WINDOW))
        return await self._take(keys)

    async def _take(self, keys: list[tuple[str, int, float]]) -> float:
        if not keys:
            return 0.0
        try:
            return await take_all(self._limiter, keys)
        except StoreError as exc:
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                log.warning("widget frame limits are off while Redis fails: %s", exc)
            return 0.0


class AcceptErrorLimit(logging.Filter):
    """At most one "out of file descriptors / memory" accept error per ``every`` seconds, with a count.

    When a client holds every descriptor, asyncio logs a full traceback for each failed accept, tens
    of megabytes a minute: the disk fills while the server can do nothing about it. The first one
    passes; the rest of each period is summed into the next one that passes.
    """

    ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

    def __init__(self, every: float = 60.0) -> None:
        super().__init__()
        self._every, self._last, self._suppressed = every, float("-inf"), 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not (isinstance(exc, OSError) and exc.errno in self.ERRNOS) and "out of system resource" not in str(
            record.msg
        ):
            return True
        now = time.monotonic()
        if now - self._last < self._every:
            self._suppressed += 1
            return False
        self._last = now
        if self._suppressed:
            record.msg = f"{record.msg} ({self._suppressed} more like it in the last {self._every:.0f} s not logged)"
            self._suppressed = 0
        return True


def limit_accept_errors(every: float = 60.0) -> None:
    """Install ``AcceptErrorLimit`` on asyncio's logger, once."""
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, AcceptErrorLimit) for f in logger.filters):
        logger.addFilter(AcceptErrorLimit(every))
