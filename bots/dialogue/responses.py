"""Responses per key and language, with variants, buttons and placeholders (``config/responses``)."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from seamline.shared.errors import ConfigError
from seamline.shared.message import Button, Reply

# libyaml's parser when PyYAML has it: the responses are read at every start (and every test's app)
_SAFE_YAML = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Slots(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Responses:
    """Response variants per language and key, from ``config/responses/*.yml``."""

    def __init__(self, variants: dict[str, dict[str, list[dict]]], *, choose=random.choice) -> None:
        self._variants = variants
        self._choose = choose

    @classmethod
    def from_dir(cls, directory: Path) -> Responses:
        variants: dict[str, dict[str, list[dict]]] = {}
        for path in sorted(directory.glob("*.yml")):
            try:
                data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_YAML) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(str(path), f"is not valid YAML ({exc})", "Fix the file") from exc
            variants[str(data.get("language", path.stem))] = data.get("responses") or {}
        if not variants:
            raise ConfigError(str(directory), "has no response files", "Restore config/responses from git")
        return cls(variants)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._variants)

    def has(self, key: str, language: str) -> bool:
        return bool(self._variants.get(language, {}).get(key))

    def phrase(self, group: str, key: str, language: str) -> str | None:
        """A named phrase used inside sentences (``topics``, ``channels``), or None."""
        for lang in (language, "en"):
            table = (self._variants.get(lang, {}).get(group) or [{}])[0]
            if key in table:
                return str(table[key])
        return None

    def render(self, key: str, language: str, slots: dict[str, str]) -> Reply:
        options = self._variants.get(language, {}).get(key) or self._variants.get("en", {}).get(key)
        if not options:
            raise ConfigError(f"config/responses/{language}.yml", f"has no response {key!r}", "Add it")
        variant = self._choose(options)
        buttons = tuple(
            Button(str(b["title"]), str(b.get("payload", b["title"])), str(b.get("kind", "action")))
            for b in variant.get("buttons") or []
        )
        return Reply(text=str(variant["text"]).format_map(_Slots(slots)), buttons=buttons)
