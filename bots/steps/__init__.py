"""The walk of a message as an ordered list of small steps (docs/pipeline.md).

The contract (``Step``, ``Turn``, ``Next``) is public and re-exported by ``seamline``; the
built-in steps live one job per module here.
"""

from __future__ import annotations

from seamline.bots.steps.turn import BUILTIN, Annotation, Next, OnStored, Step, Turn, chain

__all__ = ["BUILTIN", "Annotation", "Next", "OnStored", "Step", "Turn", "chain"]
