"""Training a model from examples: hold some out, fit, calibrate on the held-out part, refit on all."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Sequence

from seamline.nlu.classifier import IntentModel, Progress, calibrate, fit
from seamline.nlu.data import Example

HELD_OUT = 0.15


def split(examples: Sequence[Example], share: float = HELD_OUT, seed: int = 13) -> tuple[list[Example], list[Example]]:
    """A stratified split: ``share`` of every intent's examples (at least one, when it has three
    or more) held out, the rest kept for fitting."""
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_intent[example.intent].append(example)
    rng = random.Random(seed)
    kept, held = [], []
    for intent in sorted(by_intent):
        group = by_intent[intent][:]
        rng.shuffle(group)
        n = round(len(group) * share) if len(group) >= 3 else 0
        n = max(n, 1) if len(group) >= 3 else 0
        held += group[:n]
        kept += group[n:]
    return kept, held


def train(
    examples: Sequence[Example],
    *,
    validation: Sequence[Example] | None = None,
    oos_recall: float = 0.6,
    progress: Progress | None = None,
    workers: int = 2,
) -> IntentModel:
    """Train on ``examples``. With ``validation``, calibrate on it; without, hold out a stratified
    share of the examples, calibrate on it, and refit on everything with that calibration."""
    started = time.perf_counter()
    if validation is None:
        fitting, held_out = split(examples)
        steps = 2
    else:
        fitting, held_out, steps = list(examples), list(validation), 1
    total = len({e.intent for e in examples}) * steps

    def stage(offset: int) -> Progress | None:
        return (lambda done, _n: progress(offset + done, total)) if progress else None

    model, _ = fit([e.text for e in fitting], [e.intent for e in fitting], progress=stage(0), workers=workers)
    calibration = calibrate(model, [e.text for e in held_out], [e.intent for e in held_out], oos_recall=oos_recall)
    if steps == 2:
        scale, threshold = model.scale, model.threshold
        model, _ = fit(
            [e.text for e in examples], [e.intent for e in examples], progress=stage(total // 2), workers=workers
        )
        model.scale, model.threshold = scale, threshold
    model.metadata.update(
        calibration=calibration, examples=len(examples), train_seconds=round(time.perf_counter() - started, 2)
    )
    return model
