"""The model lifecycle: train from data into a versioned file, only when the data changed; find
and load the newest model.

Model files live in one directory (``SEAMLINE_NLU_MODELS``, default ``DATA_DIR/models``) as
``nlu-<UTC time>-<fingerprint>.npz``. The fingerprint is of the training data, so ``train``
knows when the newest model already matches the data. The newest few are kept for rollback.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from seamline.nlu import store
from seamline.nlu.classifier import IntentModel, Progress
from seamline.nlu.data import TrainingData, fingerprint
from seamline.nlu.training import train

KEEP = 5
_NAME = re.compile(r"^nlu-\d{8}T\d{12}Z-[0-9a-f]{12}\.npz$")


def train_data(data: TrainingData, *, progress: Progress | None = None, oos_recall: float = 0.6) -> IntentModel:
    model = train(data.all_examples, progress=progress, oos_recall=oos_recall)
    model.metadata["entities"] = {"regexes": data.regexes, "lookups": data.lookups, "synonyms": data.synonyms}
    model.metadata["sources"] = [str(p) for p in data.sources]
    return model


def model_files(directory: Path) -> list[Path]:
    """Model files, newest first (the name starts with its UTC time, so names sort by age)."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.glob("nlu-*.npz") if _NAME.match(p.name)), reverse=True)


def latest(directory: Path) -> Path:
    files = model_files(directory)
    if not files:
        raise store.ModelFileError(directory / "nlu-*.npz", "does not exist (no model has been trained)")
    return files[0]


def is_current(directory: Path, data: TrainingData) -> Path | None:
    """The newest model file when it was trained on exactly this data, else None."""
    files = model_files(directory)
    if not files:
        return None
    try:
        header = store.read_header(files[0])
    except store.ModelFileError:
        return None
    return files[0] if header.get("fingerprint") == fingerprint(data) else None


def train_to(
    directory: Path,
    data: TrainingData,
    *,
    force: bool = False,
    progress: Progress | None = None,
    oos_recall: float = 0.6,
) -> tuple[Path, bool]:
    """(model file, whether it was trained now). Skips training when the newest model matches the data."""
    current = None if force else is_current(directory, data)
    if current is not None:
        return current, False
    model = train_data(data, progress=progress, oos_recall=oos_recall)
    digest = fingerprint(data)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = store.save(model, directory / f"nlu-{stamp}-{digest[:12]}.npz", fingerprint=digest)
    for old in model_files(directory)[KEEP:]:
        old.unlink(missing_ok=True)
    return path, True
