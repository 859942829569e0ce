"""The channel registry: finds channel plug-ins, reads and checks their settings, builds the enabled
ones and runs them with the server.

Built-in channels are found exactly as a third-party one is, through the ``seamline.channels``
entry-point group, so installing a package is all it takes to add a channel (docs/channels.md). A
channel's settings come from the environment, else from ``[channels.<name>]`` in the bot project's
``config/seamline.toml``, else the declared default; every error names the setting, the problem and
the fix, before anything starts. A channel with an ``enables`` setting is on when one of those is
given; one without is always on.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from aiohttp import web

from seamline.shared.channel import ChannelAdapter, ChannelConfig, ChannelContext, Setting
from seamline.shared.errors import ConfigError

log = logging.getLogger(__name__)

GROUP = "seamline.channels"
NAME = re.compile(r"[a-z0-9_]{1,32}")
CHANNELS = web.AppKey("seamline-channels", dict)  # name → the running adapter, in the registry's order
ChannelClass = type[Any]  # a class implementing ChannelAdapter (a Protocol: checked by _load, not by type)


def discover() -> dict[str, ChannelClass]:
    """Every installed channel class by name; a plug-in that cannot be loaded is a ConfigError naming it."""
    found: dict[str, ChannelClass] = {}
    seen: dict[str, str] = {}
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        if point.name in seen:
            if seen[point.name] != point.value:
                raise ConfigError(
                    f"entry point {GROUP}:{point.name}",
                    f"two installed packages declare the channel {point.name!r} ({seen[point.name]} and {point.value})",
                    "Uninstall one of them (pip list shows what is installed)",
                )
            continue  # the same declaration seen twice (an editable install and its metadata)
        seen[point.name] = point.value
        found[point.name] = _load(point)
    return found


def _load(point: EntryPoint) -> ChannelClass:
    where = f"entry point {GROUP}:{point.name}"
    package = point.dist.name if point.dist is not None else "the package that declares it"
    try:
        cls: Any = point.load()
    except Exception as exc:
        raise ConfigError(
            where,
            f"{point.value} cannot be loaded ({type(exc).__name__}: {exc})",
            f"Reinstall {package} (pip install --force-reinstall {package}) or uninstall it",
        ) from exc
    missing = [
        attr
        for attr in ("name", "labels", "icon", "settings", "to_message", "send", "routes", "start", "stop", "deep_link")
        if not hasattr(cls, attr)
    ]
    if not inspect.isclass(cls) or missing:
        raise ConfigError(
            where,
            f"{point.value} is not a channel adapter (missing {', '.join(missing) or 'a class'})",
            "See docs/channels.md for what a channel class declares, or uninstall " + package,
        )
    named = getattr(cls, "name", None)
    if named != point.name or not NAME.fullmatch(point.name):
        raise ConfigError(
            where,
            f"{point.value} is named {named!r}, not {point.name!r}",
            "Make the entry point's name and the class's name the same ([a-z0-9_], up to 32)",
        )
    return cls


def configure(cls: ChannelClass, environ: Mapping[str, str], table: Mapping[str, Any]) -> ChannelConfig | None:
    """The channel's checked settings, or None when it is off."""
    declared: tuple[Setting, ...] = tuple(cls.settings)
    unknown = sorted(set(table) - {s.key for s in declared})
    if unknown:
        raise ConfigError(
            f"[channels.{cls.name}] {unknown[0]}",
            f"is not a setting of the {cls.name} channel",
            f"Use one of: {', '.join(s.key for s in declared) or '(it has none)'}",
        )
    values: dict[str, Any] = {}
    given: set[str] = set()
    for setting in declared:
        raw = _raw(environ.get(setting.env))
        if raw is None:
            raw = _raw(table.get(setting.key))
        if raw is None:
            values[setting.key] = setting.default
            continue
        given.add(setting.key)
        try:
            values[setting.key] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(setting.env, str(exc), setting.remedy()) from None
    enabling = [s for s in declared if s.enables]
    if enabling and not given & {s.key for s in enabling}:
        if given:
            first = enabling[0]
            others = ", ".join(s.env for s in declared if s.key in given)
            raise ConfigError(
                first.env,
                f"is not set, but other {_label(cls)} settings are ({others})",
                f"{first.remedy()}; or unset {others}",
            )
        return None
    for setting in declared:
        if setting.required and setting.key not in given:
            raise ConfigError(setting.env, f"is not set, and the {_label(cls)} channel needs it", setting.remedy())
    config = ChannelConfig(values, secret=(s.key for s in declared if s.secret), given=given)
    check = getattr(cls, "check", None)
    if callable(check):
        check(config)
    return config


def _raw(value: object) -> str | None:
    """A setting's text, or None when it is not given (absent or blank). TOML values may be numbers or
    booleans: their text is what the environment would hold."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


def _label(cls: ChannelClass) -> str:
    return dict(cls.labels).get("en") or cls.name


@dataclass(frozen=True)
class Enabled:
    """A channel that is on: its class and its checked settings (not built yet)."""

    cls: ChannelClass
    config: ChannelConfig


def enabled(
    environ: Mapping[str, str], tables: Mapping[str, Mapping[str, Any]], found: Mapping[str, ChannelClass] | None = None
) -> dict[str, Enabled]:
    """The channels that are on, by name, their settings checked. ``tables`` is ``[channels]`` of
    seamline.toml; a table for a channel that is not installed is an error (a typo would else be silent)."""
    found = discover() if found is None else found
    for name in tables:
        if name not in found:
            raise ConfigError(
                f"[channels.{name}]",
                f"no channel named {name!r} is installed",
                f"Use one of: {', '.join(found)}; or install the package that provides it",
            )
    on: dict[str, Enabled] = {}
    # Always-on channels (the widget) first, then the configured ones by name: the order the
    # "which channel?" buttons and the widget's "continue in…" show them in.
    for name, cls in sorted(found.items(), key=lambda item: (any(s.enables for s in item[1].settings), item[0])):
        table = tables.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"[channels.{name}]", "is not a table", f"Write it as [channels.{name}] with key = value lines"
            )
        config = configure(cls, environ, table)
        if config is not None:
            on[name] = Enabled(cls, config)
    return on


def build(channels: Mapping[str, Enabled], context: ChannelContext) -> dict[str, ChannelAdapter]:
    """The adapters, built. ``context.extras["channels"]`` is the returned dict, so a channel can
    reach the others (the widget asks them for deep links) once all are built."""
    adapters: dict[str, ChannelAdapter] = {}
    context.extras["channels"] = adapters
    for name, on in channels.items():
        try:
            adapters[name] = on.cls(config=on.config, context=context)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"[channels.{name}]",
                f"the {name} channel could not be built ({type(exc).__name__}: {exc})",
                f"Check its settings; if they are right, report it to the makers of {on.cls.__module__.split('.')[0]}",
            ) from exc
    return adapters


def install(app: web.Application, adapters: Mapping[str, ChannelAdapter], pipeline: Any) -> None:
    """Register the adapters with the pipeline, mount their routes, start them with the server and
    stop them on shutdown, before the stores close (this context is entered after the stores')."""
    app[CHANNELS] = dict(adapters)
    for name, adapter in adapters.items():
        if getattr(adapter, "channel", None) != name:
            adapter.channel = name  # type: ignore[attr-defined]  # Pipeline.register keys adapters by .channel
        pipeline.register(adapter)
        app.router.add_routes(list(adapter.routes()))

    async def running(app: web.Application):
        started: list[ChannelAdapter] = []
        try:
            for adapter in adapters.values():
                started.append(adapter)  # stopped even when its start failed half-way
                await adapter.start()
        except BaseException:
            await _stop(reversed(started))
            raise
        yield
        await _stop(reversed(started))

    async def shutdown(app: web.Application) -> None:  # while the stores are open: in-flight work finishes
        await _stop(reversed(list(adapters.values())))

    app.cleanup_ctx.append(running)
    app.on_shutdown.append(shutdown)


async def _stop(adapters: Iterable[ChannelAdapter]) -> None:
    for adapter in adapters:
        try:
            await adapter.stop()
        except Exception:
            log.warning("channel %s did not stop cleanly", adapter.name, exc_info=True)


def labels(found: Mapping[str, ChannelClass] | None = None) -> dict[str, dict[str, str]]:
    """Every installed channel's labels per language (the dialogue names channels with them)."""
    return {name: dict(cls.labels) for name, cls in (discover() if found is None else found).items()}


def listing(adapters: Mapping[str, ChannelAdapter]) -> list[dict[str, Any]]:
    """What the widget and the console show about the channels: name, labels per language, icon."""
    return [{"name": name, "labels": dict(adapter.labels), "icon": adapter.icon} for name, adapter in adapters.items()]
