"""Measuring a model: in-scope accuracy, out-of-scope recall, macro F1, confusions, speed.

The standard of Larson et al. (2019): in-scope accuracy over the test rows whose intent is not
out-of-scope, out-of-scope recall over the rows that are. Thresholds are tuned on validation
data or a split of train, never on the test rows.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from seamline.nlu.classifier import Progress
from seamline.nlu.data import Example, TrainingData
from seamline.nlu.parse import OUT_OF_SCOPE
from seamline.nlu.training import train
from seamline.nlu.understanding import Understanding


def predict(understanding: Understanding, test: Sequence[Example]) -> tuple[list[str], list[float]]:
    """Each test example's predicted intent and parse time in milliseconds (entities included)."""
    predicted, latencies = [], []
    for example in test:
        started = time.perf_counter()
        predicted.append(understanding.parse(example.text).intent)
        latencies.append((time.perf_counter() - started) * 1000)
    return predicted, latencies


def report(understanding: Understanding, test: Sequence[Example], **extra: Any) -> dict[str, Any]:
    predicted, latencies = predict(understanding, test)
    return scores([e.intent for e in test], predicted, latencies, threshold=understanding.threshold, **extra)


def scores(gold: Sequence[str], predicted: Sequence[str], latencies: Sequence[float], **extra: Any) -> dict[str, Any]:
    in_scope = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != OUT_OF_SCOPE]
    oos = [p for g, p in zip(gold, predicted, strict=True) if g == OUT_OF_SCOPE]
    confusions = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    result: dict[str, Any] = {
        "in_scope_accuracy": _share(sum(g == p for g, p in in_scope), len(in_scope)),
        "oos_recall": _share(sum(p == OUT_OF_SCOPE for p in oos), len(oos)),
        "macro_f1": macro_f1(gold, predicted),
        "n_test": len(gold),
        "n_in_scope": len(in_scope),
        "n_oos": len(oos),
        "latency_ms": {"p50": _percentile(latencies, 50), "p99": _percentile(latencies, 99)},
        "confused": [{"intent": g, "predicted": p, "count": n} for (g, p), n in confusions.most_common(10)],
    }
    result.update({k: (round(v, 3) if isinstance(v, float) else v) for k, v in extra.items() if v is not None})
    return result


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Mean F1 over the labels of the gold data (out-of-scope included as a label)."""
    labels = sorted(set(gold))
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        if g == p:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
    f1 = [2 * tp[x] / (2 * tp[x] + fp[x] + fn[x]) if tp[x] + fp[x] + fn[x] else 0.0 for x in labels]
    return round(sum(f1) / len(f1), 4) if f1 else 0.0


def fit_understanding(
    data: TrainingData,
    validation: Sequence[Example] | None = None,
    *,
    oos_recall: float = 0.6,
    progress: Progress | None = None,
) -> tuple[Understanding, float]:
    """A model trained on ``data`` (thresholds tuned on ``validation`` or a split of ``data``), and the seconds it took."""
    started = time.perf_counter()
    model = train(data.all_examples, validation=validation, oos_recall=oos_recall, progress=progress)
    model.metadata["entities"] = {"regexes": data.regexes, "lookups": data.lookups, "synonyms": data.synonyms}
    return Understanding.from_model(model), time.perf_counter() - started


def train_and_report(
    data: TrainingData,
    test: Sequence[Example],
    validation: Sequence[Example] | None = None,
    *,
    oos_recall: float = 0.6,
    progress: Progress | None = None,
) -> dict[str, Any]:
    understanding, seconds = fit_understanding(data, validation, oos_recall=oos_recall, progress=progress)
    return report(understanding, test, train_seconds=seconds, n_train=len(data.all_examples))


def cross_validate(
    data: TrainingData, *, folds: int = 5, seed: int = 7, oos_recall: float = 0.6, progress: Progress | None = None
) -> dict[str, Any]:
    """Stratified k-fold over the data; each fold's threshold tuned on a split of its own train part.
    Predictions of all folds are pooled into one report."""
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for example in data.all_examples:
        by_intent[example.intent].append(example)
    rng = random.Random(seed)
    assigned: list[tuple[int, Example]] = []
    for intent in sorted(by_intent):
        group = by_intent[intent][:]
        rng.shuffle(group)
        assigned += [(i % folds, example) for i, example in enumerate(group)]
    gold: list[str] = []
    predicted: list[str] = []
    latencies: list[float] = []
    seconds: list[float] = []
    for k in range(folds):
        rest = [e for fold, e in assigned if fold != k]
        part = TrainingData(
            examples=[e for e in rest if e.intent != OUT_OF_SCOPE],
            out_of_scope=[e for e in rest if e.intent == OUT_OF_SCOPE],
            synonyms=data.synonyms,
            regexes=data.regexes,
            lookups=data.lookups,
            sources=data.sources,
        )
        test = [e for fold, e in assigned if fold == k]
        understanding, took = fit_understanding(part, oos_recall=oos_recall)
        fold_predicted, fold_latencies = predict(understanding, test)
        gold += [e.intent for e in test]
        predicted += fold_predicted
        latencies += fold_latencies
        seconds.append(took)
        if progress:
            progress(k + 1, folds)
    return scores(
        gold, predicted, latencies, folds=folds, train_seconds=statistics.mean(seconds), n_train=len(data.all_examples)
    )


def format_report(result: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "n/a (no such rows)" if value is None else f"{value * 100:.2f}%"

    lines = [
        f"test examples:        {result['n_test']} ({result['n_in_scope']} in scope, {result['n_oos']} out of scope)",
        f"in-scope accuracy:    {pct(result['in_scope_accuracy'])}",
        f"out-of-scope recall:  {pct(result['oos_recall'])}",
        f"macro F1:             {result['macro_f1']:.4f}",
    ]
    if "train_seconds" in result:
        lines.append(
            f"train time:           {result['train_seconds']:.1f} s"
            + (f" per fold ({result['folds']} folds)" if "folds" in result else "")
        )
    lines.append(
        f"latency per message:  p50 {result['latency_ms']['p50']:.2f} ms, p99 {result['latency_ms']['p99']:.2f} ms"
    )
    if result["confused"]:
        lines.append("most confused (expected -> predicted: count):")
        lines += [f"  {c['intent']} -> {c['predicted']}: {c['count']}" for c in result["confused"]]
    return "\n".join(lines)


def _share(n: int, total: int) -> float | None:
    return round(n / total, 4) if total else None


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))], 3)
