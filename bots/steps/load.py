"""A bot project's own steps, from ``[pipeline] steps`` in its config/seamline.toml:

    [pipeline]
    steps = [{use = "my_bot.steps:ProfanityFilter", before = "understand"},
             {use = "my_bot.crm:Lookup", after = "store", options = {url = "https://crm.example"}}]

``use`` is "module:attribute", imported when the app is built (the project folder is on
sys.path under `seamline run`). A class is instantiated with ``options`` as keyword arguments;
an instance or an async function is used as it is. Every mistake is a ConfigError at start-up.
"""

from __future__ import annotations

import importlib
import inspect
import tomllib
from pathlib import Path

from seamline.bots.steps.order import as_step, place
from seamline.bots.steps.turn import BUILTIN, Next, Step, Turn
from seamline.shared.errors import ConfigError

KEYS = {"use", "before", "after", "options"}


def configured_steps(config_dir: Path) -> list[tuple[Step, str | None, str | None]]:
    """(step, before, after) for each entry of ``[pipeline] steps``, in the file's order."""
    path = config_dir / "seamline.toml"
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"is not valid TOML ({exc})", "Fix the file") from exc
    entries = (table.get("pipeline") or {}).get("steps") or []
    if not isinstance(entries, list):
        raise ConfigError(
            f"{path} [pipeline] steps",
            "is not a list",
            'Write steps = [{use = "my_bot.steps:MyStep", before = "understand"}]',
        )
    loaded = [load_entry(entry, f"{path} [pipeline] steps[{n}]") for n, entry in enumerate(entries)]
    walk: list[Step] = [_Named(name) for name in BUILTIN]
    for n, (step, before, after) in enumerate(loaded):  # placed as build() will: a wrong name fails here
        walk = place(walk, step, before=before, after=after, setting=f"{path} [pipeline] steps[{n}]")
    return loaded


class _Named:
    """A built-in step's place, for checking where the project's steps go before the app is built."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        raise NotImplementedError


def load_entry(entry: object, setting: str) -> tuple[Step, str | None, str | None]:
    if not isinstance(entry, dict) or not isinstance(entry.get("use"), str):
        raise ConfigError(
            setting,
            f'{entry!r} has no use = "module:attribute"',
            'Write {use = "my_bot.steps:MyStep", before = "understand"}',
        )
    unknown = set(entry) - KEYS
    if unknown:
        raise ConfigError(setting, f"has unknown keys {sorted(unknown)}", f"Use only {sorted(KEYS)}")
    for key in ("before", "after"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise ConfigError(setting, f"{key} = {entry[key]!r} is not a step name", "Give the name as a string")
    options = entry.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(setting, f"options = {options!r} is not a table", 'Write options = {key = "value"}')
    return load_step(entry["use"], setting, options), entry.get("before"), entry.get("after")


def load_step(use: str, setting: str, options: dict | None = None) -> Step:
    module_name, _, attribute = use.partition(":")
    if not module_name or not attribute:
        raise ConfigError(
            setting, f'use = {use!r} is not "module:attribute"', 'Write it like "my_bot.steps:ProfanityFilter"'
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            setting,
            f"module {module_name!r} cannot be imported ({exc})",
            "Check the name, and run `seamline run` from the project folder (it puts the "
            "folder on sys.path) or install the package",
        ) from exc
    try:
        found = getattr(module, attribute)
    except AttributeError:
        raise ConfigError(
            setting,
            f"module {module_name!r} has no {attribute!r}",
            f"Check the spelling; it has: {', '.join(n for n in dir(module) if not n.startswith('_'))}",
        ) from None
    if inspect.isclass(found):
        try:
            found = found(**(options or {}))
        except TypeError as exc:
            raise ConfigError(
                setting,
                f"{use} could not be made with options {options or {}} ({exc})",
                "Give the options its __init__ takes",
            ) from exc
    elif options:
        raise ConfigError(setting, f"{use} is not a class, so it takes no options", "Remove options")
    return as_step(found, setting)
