"""Where a step goes in the walk: before or after a step named so, or at the end. An unknown
name is a ConfigError naming the steps there are, so a typo in seamline.toml fails at start-up,
not on the first message."""

from __future__ import annotations

import inspect

from seamline.bots.steps.turn import Next, Step, Turn
from seamline.shared.errors import ConfigError


class FunctionStep:
    """A plain ``async def my_step(turn, call_next)`` used as a step, named after the function."""

    def __init__(self, function) -> None:
        self._function = function
        self.name = function.__name__

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        await self._function(turn, call_next)

    def __repr__(self) -> str:
        return f"FunctionStep({self.name})"


def as_step(candidate: object, setting: str) -> Step:
    """``candidate`` as a step: an object with a ``name`` and an ``async __call__(turn, call_next)``,
    or an async function of (turn, call_next)."""
    if inspect.iscoroutinefunction(candidate):
        return FunctionStep(candidate)
    call = type(candidate).__dict__.get("__call__") or getattr(type(candidate), "__call__", None)  # noqa: B004
    if not inspect.iscoroutinefunction(call) or not isinstance(getattr(candidate, "name", None), str):
        raise ConfigError(
            setting,
            f"{candidate!r} is not a step (it needs a name and an async __call__(self, turn, call_next))",
            'Give the class `name = "..."` and `async def __call__(self, turn, call_next)`, '
            "or point at an `async def step(turn, call_next)` function; see docs/pipeline.md",
        )
    return candidate  # type: ignore[return-value]


def place(
    steps: list[Step],
    step: Step,
    *,
    before: str | None = None,
    after: str | None = None,
    setting: str = "Pipeline.add_step",
) -> list[Step]:
    """A new list with ``step`` placed; the end of the walk when neither ``before`` nor ``after``."""
    names = [s.name for s in steps]
    if before is not None and after is not None:
        raise ConfigError(
            setting, f"step {step.name!r} has both before={before!r} and after={after!r}", "Give one of them"
        )
    if step.name in names:
        raise ConfigError(
            setting,
            f"there is a step named {step.name!r} already",
            "Give your step another name (its `name` attribute)",
        )
    anchor = before if before is not None else after
    if anchor is None:
        return [*steps, step]
    if anchor not in names:
        raise ConfigError(
            setting,
            f"step {step.name!r} is placed {'before' if before else 'after'} {anchor!r}, which is not a step",
            f"Use one of: {', '.join(names)}",
        )
    at = names.index(anchor) + (0 if before is not None else 1)
    return [*steps[:at], step, *steps[at:]]
