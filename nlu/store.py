"""Model files: one ``.npz`` archive (arrays + JSON), no pickle, so loading runs no code.

The archive holds the weights, the vocabularies, the calibration and a header: the format
version, the fingerprint of the training data, when and with what it was trained. The zip's
checksums catch a damaged file; every problem is a ``ModelFileError`` naming the file and the
command that makes a good one.
"""

from __future__ import annotations

import json
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from seamline.nlu.classifier import Block, IntentModel
from seamline.shared.errors import NluError
from seamline.shared.files import private_dir

FORMAT = "seamline-nlu/1"
TRAIN_COMMAND = "seamline nlu train"


class ModelFileError(NluError):
    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"NLU model {path}: {problem}. Run: {TRAIN_COMMAND}")
        self.path = path


def save(model: IntentModel, path: Path, *, fingerprint: str, extra: dict[str, Any] | None = None) -> Path:
    """Write atomically (a temporary file renamed over the old one): a reader never sees half a model."""
    private_dir(path.parent)  # in the data dir, for Seamline's user only
    header = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "intents": list(model.intents),
        "scale": model.scale,
        "threshold": model.threshold,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "blocks": [{"kind": b.kind, "offset": b.offset} for b in model.blocks],
        "metadata": {**model.metadata, **(extra or {})},
    }
    arrays: dict[str, Any] = {
        "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        "coef": model.coef,
        "intercept": model.intercept,
    }
    for i, block in enumerate(model.blocks):
        terms = sorted(block.vocabulary, key=block.vocabulary.__getitem__)
        arrays[f"terms{i}"] = np.frombuffer("\n".join(terms).encode(), dtype=np.uint8)
        arrays[f"idf{i}"] = block.idf
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        np.savez(handle, **arrays)
    os.replace(temporary, path)
    return path


def read_header(path: Path) -> dict[str, Any]:
    with _open(path) as archive:
        return _header(path, archive)


def load(path: Path) -> IntentModel:
    with _open(path) as archive:
        header = _header(path, archive)
        try:
            blocks = []
            for i, spec in enumerate(header["blocks"]):
                terms = archive[f"terms{i}"].tobytes().decode().split("\n")
                idf = archive[f"idf{i}"]
                if len(terms) != len(idf):
                    raise ValueError("vocabulary and weights differ in length")
                blocks.append(Block(spec["kind"], {t: j for j, t in enumerate(terms)}, idf, spec["offset"]))
            coef, intercept = archive["coef"], archive["intercept"]
        except (KeyError, ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ModelFileError(path, f"is damaged ({exc})") from exc
    intents = tuple(header["intents"])
    if coef.shape[1] != len(intents) or sum(len(b.vocabulary) for b in blocks) != coef.shape[0]:
        raise ModelFileError(path, "is damaged (weights do not match the vocabulary)")
    model = IntentModel(
        intents,
        blocks,
        np.ascontiguousarray(coef),
        intercept,
        scale=float(header["scale"]),
        threshold=float(header["threshold"]),
        metadata=dict(header.get("metadata") or {}),
    )
    model.metadata.update(fingerprint=header["fingerprint"], trained_at=header.get("trained_at"), path=str(path))
    return model


def _open(path: Path) -> np.lib.npyio.NpzFile:
    if not path.exists():
        raise ModelFileError(path, "does not exist")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelFileError(path, f"is not a Seamline model or is damaged ({exc.__class__.__name__})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ModelFileError(path, "is not a Seamline model (a single array, not an archive)")
    return archive


def _header(path: Path, archive: np.lib.npyio.NpzFile) -> dict[str, Any]:
    try:
        header: dict[str, Any] = json.loads(archive["header"].tobytes().decode())
    except (KeyError, ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelFileError(path, f"is damaged ({exc.__class__.__name__})") from exc
    if header.get("format") != FORMAT:
        raise ModelFileError(path, f"has format {header.get('format')!r}, this Seamline reads {FORMAT!r}")
    return header
