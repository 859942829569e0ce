"""The one retry policy of every channel (bots/retry.py): what is retried, how long it waits (full
jitter under an exponential cap, or exactly the platform's retry-after), and when it gives up."""

from __future__ import annotations

import pytest

from seamline.bots import retry as module
from seamline.bots.retry import Again, RetryPolicy
from seamline.shared.errors import ChannelError, Unreachable


class Flaky:
    """Fails with the given errors in turn, then answers "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.calls = list(errors), 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Busy(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("busy")
        self.retry_after = retry_after


def classify(exc: Exception) -> Again:
    if isinstance(exc, Busy):
        return Again("busy", exc.retry_after)
    raise Unreachable(str(exc)) from exc


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The waits asked for, instead of waiting."""
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(module.asyncio, "sleep", sleep)
    return asked


async def test_a_passing_failure_is_retried_until_the_call_succeeds(waits):
    call = Flaky(Busy(), Busy())
    assert await RetryPolicy(attempts=5, base=0.5).run("ping", call, classify) == "ok"
    assert call.calls == 3 and len(waits) == 2


async def test_waits_are_full_jitter_under_an_exponential_cap(waits):
    policy = RetryPolicy(attempts=8, base=0.5, cap=3.0)
    with pytest.raises(ChannelError, match="ping failed 8 times; last: busy"):
        await policy.run("ping", Flaky(*[Busy() for _ in range(8)]), classify)
    ceilings = [min(3.0, 0.5 * 2**n) for n in range(7)]
    assert len(waits) == 7 and all(0 <= wait <= ceiling for wait, ceiling in zip(waits, ceilings, strict=True))


async def test_the_platforms_retry_after_is_waited_exactly(waits):
    assert await RetryPolicy().run("send", Flaky(Busy(retry_after=7)), classify) == "ok"
    assert waits == [7.0]


async def test_a_retry_after_longer_than_allowed_is_a_channel_error_at_once(waits):
    call = Flaky(Busy(retry_after=600))
    with pytest.raises(ChannelError, match="asks to wait 600"):
        await RetryPolicy(max_retry_after=60).run("send", call, classify)
    assert call.calls == 1 and waits == []


async def test_what_classify_translates_is_raised_without_a_retry(waits):
    call = Flaky(ValueError("blocked by the user"))
    with pytest.raises(Unreachable, match="blocked by the user"):
        await RetryPolicy().run("send", call, classify)
    assert call.calls == 1 and waits == []


def test_a_receive_loop_waits_longer_after_more_failures_but_never_past_the_cap():
    policy = RetryPolicy(base=0.5, cap=30.0)
    assert all(0 <= policy.pause(n) <= min(30.0, 0.5 * 2 ** (n - 1)) for n in range(1, 40))
