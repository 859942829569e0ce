"""Loading training data: our YAML (``config/intents/*.yml``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from shared.errors import ConfigError


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    language: str | None = None


def load_intents(directory: Path) -> tuple[list[Example], list[Example]]:
    """(in-scope examples, out-of-scope examples) from every ``*.yml`` in ``directory``."""
    examples: list[Example] = []
    out_of_scope: list[Example] = []
    files = sorted(directory.glob("*.yml"))
    if not files:
        raise ConfigError(str(directory), "has no intent files (*.yml)", "Restore config/intents from git")
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(str(path), f"is not valid YAML ({exc})", "Fix the file") from exc
        language = data.get("language")
        for intent, body in (data.get("intents") or {}).items():
            for text in (body or {}).get("examples") or []:
                examples.append(Example(str(text), str(intent), language))
        for text in data.get("out_of_scope_examples") or []:
            out_of_scope.append(Example(str(text), "out_of_scope", language))
    return examples, out_of_scope
