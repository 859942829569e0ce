"""Responses per key and language, with variants, buttons, images and placeholders (``config/responses``).

A variant may be only for one channel (``channel: telegram``) or only when slots have values
(``condition: [{type: slot, name: vip, value: true}]``, Rasa's syntax); such variants win over the
plain ones when they apply, as in Rasa. Placeholders (``{order_number}``, ``{name}``) are filled from
the slots and the customer's profile; among the variants, those whose placeholders are all known are
preferred, so "Hello, {name}!" is said only to a customer whose name is known.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from seamline.shared.errors import ConfigError
from seamline.shared.message import Button, Reply

# libyaml's parser when PyYAML has it: the responses are read at every start (and every test's app)
_SAFE_YAML = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FORMATTER = string.Formatter()


class _Slots(dict[str, Any]):
    """Placeholder values; an unknown one stays as written, "{name}", rather than failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def placeholders(text: str) -> set[str]:
    """The names in ``text``'s ``{...}`` placeholders (none when the braces do not parse)."""
    try:
        return {name.split(".")[0].split("[")[0] for _, name, _, _ in _FORMATTER.parse(text) if name}
    except ValueError:
        return set()


def fill(text: str, values: Mapping[str, Any]) -> str:
    """``text`` with its placeholders filled from ``values``; unknown ones (and stray braces) kept."""
    known = _Slots({k: _shown(v) for k, v in values.items() if v is not None})
    try:
        return text.format_map(known)
    except (ValueError, IndexError, AttributeError, KeyError):
        return text


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


class Responses:
    """Response variants per language and key, from ``config/responses/*.yml``."""

    def __init__(
        self,
        variants: dict[str, dict[str, list[dict[str, Any]]]],
        *,
        choose: Callable[[Sequence[dict[str, Any]]], dict[str, Any]] = random.choice,
    ) -> None:
        self._variants = variants
        self._choose = choose

    @classmethod
    def from_dir(cls, directory: Path) -> Responses:
        variants: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for path in sorted(directory.glob("*.yml")):
            try:
                data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_YAML) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(str(path), f"is not valid YAML ({exc})", "Fix the file") from exc
            responses = data.get("responses") or {}
            for key, options in responses.items():
                if not isinstance(options, list) or not all(isinstance(o, dict) for o in options):
                    raise ConfigError(
                        str(path),
                        f"response {key!r} is not a list of variants",
                        'Write it as a list: - text: "..." (with optional buttons, image, channel, condition)',
                    )
            variants[str(data.get("language", path.stem))] = responses
        if not variants:
            raise ConfigError(str(directory), "has no response files", "Restore config/responses from git")
        return cls(variants)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._variants)

    def keys(self, language: str | None = None) -> set[str]:
        """Every response key (of one language, or of all)."""
        chosen = [language] if language else list(self._variants)
        return {key for lang in chosen for key in self._variants.get(lang, {})}

    def has(self, key: str, language: str) -> bool:
        return bool(self._variants.get(language, {}).get(key))

    def phrase(self, group: str, key: str, language: str, values: Mapping[str, Any] | None = None) -> str | None:
        """A named phrase used inside sentences (``topics``, ``channels``), or None. A phrase may be a
        list of alternatives: the first whose placeholders ``values`` all know is used (else the last),
        filled in when ``values`` are given."""
        for lang in (language, "en"):
            table = (self._variants.get(lang, {}).get(group) or [{}])[0]
            if key not in table:
                continue
            found = table[key]
            options = [str(o) for o in found] if isinstance(found, list) else [str(found)]
            if values is None:
                return options[0] if options else None
            known = {k for k, v in values.items() if v is not None}
            chosen = next((o for o in options if placeholders(o) <= known), options[-1] if options else "")
            return fill(chosen, values)
        return None

    def render(
        self,
        key: str,
        language: str,
        slots: Mapping[str, Any],
        *,
        channel: str | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> Reply:
        options = self._variants.get(language, {}).get(key) or self._variants.get("en", {}).get(key)
        if not options:
            options = next((v[key] for v in self._variants.values() if v.get(key)), None)
        if not options:
            raise ConfigError(f"config/responses/{language}.yml", f"has no response {key!r}", "Add it")
        values: dict[str, Any] = {**(profile or {}), **{k: v for k, v in slots.items() if v is not None}}
        variant = self._choose(self._fitting(options, channel, slots, values))
        buttons = tuple(
            Button(str(b["title"]), str(b.get("payload", b["title"])), str(b.get("kind", "action")))
            for b in variant.get("buttons") or []
            if isinstance(b, dict) and "title" in b
        )
        image = variant.get("image")
        custom = variant.get("custom")
        return Reply(
            text=fill(str(variant.get("text") or ""), values),
            buttons=buttons,
            image=str(image) if image else None,
            custom=dict(custom) if isinstance(custom, dict) else None,
        )

    @staticmethod
    def _fitting(
        options: list[dict[str, Any]], channel: str | None, slots: Mapping[str, Any], values: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The variants to choose from: those for this channel or with a condition that holds, when
        any (Rasa's precedence), else the plain ones; then, of those, the fully known ones."""
        special = [
            o
            for o in options
            if (o.get("channel") or o.get("condition"))
            and (not o.get("channel") or o.get("channel") == channel)
            and _holds(o.get("condition"), slots)
        ]
        plain = [o for o in options if not o.get("channel") and not o.get("condition")]
        pool = special or plain or options
        known = {k for k, v in values.items() if v is not None}
        complete = [o for o in pool if placeholders(str(o.get("text") or "")) <= known]
        return complete or pool


def _holds(condition: Any, slots: Mapping[str, Any]) -> bool:
    """Rasa's response condition: every ``{type: slot, name, value}`` matches the slot's value."""
    if not condition:
        return True
    for item in condition if isinstance(condition, list) else [condition]:
        if not isinstance(item, dict) or item.get("type", "slot") != "slot":
            return False
        if not same(slots.get(str(item.get("name"))), item.get("value")):
            return False
    return True


def same(actual: Any, expected: Any) -> bool:
    """A slot's value against a value written in YAML: true and "true", 5 and "5" are the same."""
    if actual == expected:
        return True
    if actual is None or expected is None:
        return False
    return str(actual).strip().lower() == str(expected).strip().lower()
