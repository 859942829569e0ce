"""Canned responses for agents, from ``config/canned.yml``: a title and a text per language. The
console offers them in the customer's language and fills in ``{name}`` and the conversation's slots;
the agent reads and edits the text before sending it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from seamline.shared.errors import ConfigError

# libyaml's parser when PyYAML has it: read at every start (and in every test's app)
_SAFE_YAML = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_TEXT = 4096  # as long as an agent's reply may be


@dataclass(frozen=True)
class Canned:
    title: str
    texts: dict[str, str]  # language -> text

    def to_dict(self) -> dict:
        return {"title": self.title, "texts": dict(self.texts)}


def load_canned(path: Path) -> tuple[Canned, ...]:
    """The canned responses in ``path`` (none when there is no such file)."""
    if not path.exists():
        return ()
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_YAML) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"is not valid YAML ({exc})", "Fix the file") from exc
    entries = data.get("canned") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(str(path), "has no `canned:` list", "See the comments at the top of the file")
    found, titles = [], set()
    for n, entry in enumerate(entries, 1):
        where = f"entry {n}"
        if not isinstance(entry, dict) or not str(entry.get("title") or "").strip():
            raise ConfigError(str(path), f"{where} has no title", "Give every entry a `title:`")
        title = str(entry["title"]).strip()
        if title in titles:
            raise ConfigError(str(path), f"{where}: the title {title!r} is used twice", "Make titles unique")
        titles.add(title)
        texts = {str(k): str(v).strip() for k, v in entry.items() if k != "title" and v is not None}
        if not texts or not all(texts.values()):
            raise ConfigError(
                str(path), f"{where} ({title}) has no text", "Add a text per language, e.g. `en: ...` and `ru: ...`"
            )
        if any(len(t) > MAX_TEXT for t in texts.values()):
            raise ConfigError(str(path), f"{where} ({title}) is longer than {MAX_TEXT} characters", "Shorten it")
        found.append(Canned(title, texts))
    return tuple(found)
