"""Intent classification on CLINC150 (English) and its Russian translation, against the targets.

    python benchmarks/nlu.py [--datasets ../shared/datasets] [--only clinc150]

For each dataset: train the default pipeline on train.csv, tune the out-of-scope threshold on
validation.csv, report on test.csv (the standard of Larson et al. 2019: in-scope accuracy over
the in-scope test rows, out-of-scope recall over the `oos` rows). Also printed: training time,
model file size and load time, parse latency per message (entities and language included), and a
baseline from the same run: plain word TF-IDF + linear SVM with out-of-scope trained as a class
and no threshold (the floor the issue names). Nothing here is tuned on test.csv.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from seamline.nlu import store  # noqa: E402
from seamline.nlu.data import Example  # noqa: E402
from seamline.nlu.evaluate import format_report, report, scores  # noqa: E402
from seamline.nlu.parse import OUT_OF_SCOPE  # noqa: E402
from seamline.nlu.training import train  # noqa: E402
from seamline.nlu.understanding import Understanding  # noqa: E402

TARGETS = {"clinc150": (0.965, 0.60), "clinc150_ru": (0.93, 0.55)}
LIMITS = "training <= 120 s, parse p99 <= 10 ms, model load <= 2 s"


def read(path: Path) -> tuple[list[Example], int]:
    """Rows of a text,intent CSV; rows with an empty text are dropped and counted (the Russian
    translation has a few; `seamline nlu evaluate` refuses such a file instead)."""
    examples, dropped = [], 0
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text, intent = (row.get("text") or "").strip(), (row.get("intent") or "").strip()
            if not text:
                dropped += 1
                continue
            examples.append(Example(text, OUT_OF_SCOPE if intent.lower() in ("oos", OUT_OF_SCOPE) else intent))
    return examples, dropped


def baseline(train_rows: list[Example], test_rows: list[Example]) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    started = time.perf_counter()
    svm = LinearSVC().fit(vectorizer.fit_transform([e.text for e in train_rows]), [e.intent for e in train_rows])
    seconds = time.perf_counter() - started
    predicted = list(svm.predict(vectorizer.transform([e.text for e in test_rows])))
    return scores([e.intent for e in test_rows], predicted, [], train_seconds=seconds)


def run(folder: Path) -> dict:
    train_rows, d1 = read(folder / "train.csv")
    validation, d2 = read(folder / "validation.csv")
    test, d3 = read(folder / "test.csv")
    if d1 + d2 + d3:
        print(f"  (dropped rows with an empty text: train {d1}, validation {d2}, test {d3})")
    started = time.perf_counter()
    model = train(train_rows, validation=validation, progress=None)
    train_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        path = store.save(model, Path(tmp) / "model.npz", fingerprint="benchmark")
        size_mb = path.stat().st_size / 1e6
        started = time.perf_counter()
        loaded = store.load(path)
        load_seconds = time.perf_counter() - started
    understanding = Understanding.from_model(loaded)
    result = report(understanding, test, train_seconds=train_seconds, n_train=len(train_rows))
    result.update(
        load_seconds=round(load_seconds, 3), model_mb=round(size_mb, 1), calibration=model.metadata.get("calibration")
    )
    result["baseline"] = baseline(train_rows, test)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=HERE.parent.parent / "shared" / "datasets")
    parser.add_argument("--only", choices=sorted(TARGETS))
    args = parser.parse_args()
    for name, (accuracy_target, recall_target) in TARGETS.items():
        if args.only and name != args.only:
            continue
        folder = args.datasets / name
        if not (folder / "train.csv").exists():
            print(f"{name}: not found at {folder} (pass --datasets)")
            continue
        print(f"== {name}: train on train.csv, threshold tuned on validation.csv, reported on test.csv")
        result = run(folder)
        print(format_report(result))
        base = result["baseline"]
        print(
            f"model file {result['model_mb']} MB, load {result['load_seconds']:.2f} s; "
            f"calibration {result['calibration']}"
        )
        print(
            f"baseline (word TF-IDF + linear SVM, oos as a class, no threshold): in-scope "
            f"{base['in_scope_accuracy'] * 100:.2f}%, out-of-scope recall {base['oos_recall'] * 100:.2f}%, "
            f"train {base['train_seconds']:.1f} s"
        )
        print(
            f"targets: in-scope >= {accuracy_target * 100:.1f}% (measured {result['in_scope_accuracy'] * 100:.2f}%), "
            f"out-of-scope recall >= {recall_target * 100:.0f}% (measured {result['oos_recall'] * 100:.2f}%); "
            f"{LIMITS}: measured train {result['train_seconds']:.1f} s, p99 {result['latency_ms']['p99']:.2f} ms, "
            f"load {result['load_seconds']:.2f} s"
        )
        print()


if __name__ == "__main__":
    main()
