"""One retry policy for every channel's calls to its platform: exponential backoff with full jitter,
capped, and the platform's own "retry after" obeyed when it gives one.

Full jitter (a random wait between 0 and the exponential step) keeps many chats that failed at the
same moment (a platform hiccup) from all coming back at the same moment. A channel says which errors
may pass on a retry and translates the rest (``classify``); the policy only counts and waits. Written
out rather than built on tenacity: with the translation every channel needs, it is shorter.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from seamline.shared.errors import ChannelError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Again:
    """What ``classify`` returns for an error a retry may fix: why (for the log and the final error),
    and the platform's requested wait in seconds, if it named one (Telegram's 429 ``retry_after``)."""

    reason: str
    retry_after: float | None = None


Classify = Callable[[Exception], Again]  # returns Again, or raises the error translated (not retried)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` calls at most; the wait before call n+1 is uniform in 0..min(cap, base * 2**(n-1)),
    or exactly the platform's retry-after when it gave one (refused when longer than ``max_retry_after``:
    a customer waiting minutes is better told the channel failed)."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait after failed attempt ``attempt`` (1-based)."""
        if retry_after is not None:
            return max(0.0, float(retry_after))
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))

    async def run(self, what: str, call: Callable[[], Awaitable[T]], classify: Classify) -> T:
        """``await call()`` until it succeeds, ``classify`` raises, or the attempts are spent
        (then ChannelError naming ``what`` and the last reason, from the last error)."""
        last: Exception | None = None
        reason = ""
        for attempt in range(1, self.attempts + 1):
            try:
                return await call()
            except Exception as exc:  # noqa: BLE001 - classify raises what is not retried
                again = classify(exc)
                last, reason = exc, again.reason
            if again.retry_after is not None and again.retry_after > self.max_retry_after:
                raise ChannelError(f"{what}: the platform asks to wait {again.retry_after} s") from last
            if attempt < self.attempts:
                wait = self.delay(attempt, again.retry_after)
                log.warning(
                    "%s failed (%s); attempt %d of %d in %.2f s", what, reason, attempt + 1, self.attempts, wait
                )
                await asyncio.sleep(wait)
        raise ChannelError(f"{what} failed {self.attempts} times; last: {reason}") from last

    def pause(self, failures: int) -> float:
        """The wait of a receive loop (long polling) after ``failures`` failures in a row: it never
        gives up, so the wait only grows up to the cap."""
        return self.delay(min(failures, 16))
