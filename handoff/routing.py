"""When the bot passes a conversation to people (triggers), to which queue (rules), and whether
people are there (business hours). Read from ``config/routing.yml``; pure, no I/O after loading."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from seamline.shared.errors import ConfigError

# libyaml's parser when PyYAML has it: read at every start (and in every test's app)
_SAFE_YAML = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower().replace("ё", "е")))


@dataclass(frozen=True)
class Rule:
    queue: str
    intents: frozenset[str] = frozenset()
    keywords: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    attributes: tuple[tuple[str, object], ...] = ()

    def matches(
        self, *, intent: str | None, words: set[str], channel: str, language: str | None, attributes: dict
    ) -> bool:
        return (
            (not self.intents or intent in self.intents)
            and (not self.keywords or bool(self.keywords & words))
            and (not self.channels or channel in self.channels)
            and (not self.languages or language in self.languages)
            and all(attributes.get(k) == v for k, v in self.attributes)
        )


@dataclass(frozen=True)
class Hours:
    """Opening hours of one queue: per weekday a list of (start, end) in the queue's time zone."""

    timezone: str = "UTC"
    week: tuple[tuple[tuple[time, time], ...], ...] = ()  # 7 entries, Monday first; empty: always open

    def is_open(self, now: datetime) -> bool:
        if not self.week:
            return True
        local = now.astimezone(ZoneInfo(self.timezone))
        return any(start <= local.time() < end for start, end in self.week[local.weekday()])

    def next_open(self, now: datetime) -> datetime | None:
        """When people are next there (in the queue's time zone); None when always open or never."""
        if not self.week:
            return None
        local = now.astimezone(ZoneInfo(self.timezone))
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            for start, _end in sorted(self.week[day.weekday()]):
                at = datetime.combine(day, start, tzinfo=ZoneInfo(self.timezone))
                if at > local:
                    return at
        return None


@dataclass(frozen=True)
class Triggers:
    ask_for_human_intents: frozenset[str] = frozenset({"human_agent"})
    ask_for_human_words: frozenset[str] = frozenset()
    fallbacks_in_a_row: int = 2
    always_to_people: frozenset[str] = frozenset()
    keywords: frozenset[str] = frozenset()
    vip_attribute: str | None = None


class Reason(str):
    """Why a conversation goes to people: the readable text (what is stored and logged), plus a code
    and values that a console can say in its own language."""

    code: str
    params: dict

    def __new__(cls, text: str, code: str, **params) -> Reason:
        reason = super().__new__(cls, text)
        reason.code, reason.params = code, params
        return reason


@dataclass(frozen=True)
class Routing:
    default_queue: str = "support"
    triggers: Triggers = Triggers()
    rules: tuple[Rule, ...] = ()
    queues: dict[str, Hours] = field(default_factory=dict)
    abandon_after: timedelta = timedelta(hours=24)  # waiting this long without a word: abandoned
    agent_offline_after: timedelta = timedelta(minutes=5)  # no console, no API call: the agent is offline

    @classmethod
    def load(cls, path: Path) -> Routing:
        if not path.exists():
            return cls()
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_YAML) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(str(path), f"is not valid YAML ({exc})", "Fix the file") from exc
        try:
            return _parse(data)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ConfigError(str(path), str(exc), "See the comments at the top of the file") from None

    def escalation(self, *, intent: str | None, text: str, fallbacks: int, attributes: dict) -> Reason | None:
        """Why this message goes to people, or None. Checked in the order a person would care."""
        words, t = _words(text), self.triggers
        if intent in t.ask_for_human_intents or words & t.ask_for_human_words:
            return Reason("the customer asked for a person", "asked_for_human")
        if t.vip_attribute and attributes.get(t.vip_attribute):
            return Reason(f"VIP customer ({t.vip_attribute})", "vip", attribute=t.vip_attribute)
        if intent in t.always_to_people:
            return Reason(f"intent {intent} always goes to people", "always_to_people", intent=intent)
        found = sorted(words & t.keywords)
        if found:
            return Reason(f"keyword {found[0]!r}", "keyword", keyword=found[0])
        if t.fallbacks_in_a_row and fallbacks >= t.fallbacks_in_a_row:
            return Reason(f"the bot did not understand {fallbacks} messages in a row", "fallbacks", count=fallbacks)
        return None

    def route(
        self, *, intent: str | None, text: str, channel: str, language: str | None, attributes: dict
    ) -> tuple[str, str]:
        """(queue, why): the first rule that matches, else the default queue."""
        words = _words(text)
        for number, rule in enumerate(self.rules, start=1):
            if rule.matches(intent=intent, words=words, channel=channel, language=language, attributes=attributes):
                return rule.queue, f"rule {number}"
        return self.default_queue, "default queue"

    def hours(self, queue: str) -> Hours:
        return self.queues.get(queue, Hours())

    @property
    def queue_names(self) -> list[str]:
        return sorted({self.default_queue, *self.queues, *(r.queue for r in self.rules)})


def _set(value) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {value!r}")
    return frozenset(str(v).lower().replace("ё", "е") for v in value)


def _parse(data: dict) -> Routing:
    t = data.get("triggers") or {}
    triggers = Triggers(
        ask_for_human_intents=_set(t.get("ask_for_human_intents", ["human_agent"])),
        ask_for_human_words=_set(t.get("ask_for_human_words")),
        fallbacks_in_a_row=int(t.get("fallbacks_in_a_row", 2)),
        always_to_people=_set(t.get("always_to_people")),
        keywords=_set(t.get("keywords")),
        vip_attribute=t.get("vip_attribute"),
    )
    rules = []
    for n, r in enumerate(data.get("rules") or [], start=1):
        if "queue" not in r:
            raise ValueError(f"rule {n} has no queue")
        unknown = set(r) - {"queue", "intents", "keywords", "channels", "languages", "attributes"}
        if unknown:
            raise ValueError(f"rule {n} has unknown keys {sorted(unknown)}")
        rules.append(
            Rule(
                str(r["queue"]),
                _set(r.get("intents")),
                _set(r.get("keywords")),
                _set(r.get("channels")),
                _set(r.get("languages")),
                tuple(sorted((r.get("attributes") or {}).items())),
            )
        )
    queues = {str(name): _hours(str(name), spec or {}) for name, spec in (data.get("queues") or {}).items()}
    minutes = _minutes(data, "abandon_after_minutes", 24 * 60)
    offline = _minutes(data, "agent_offline_after_minutes", 5)
    return Routing(
        str(data.get("default_queue", "support")),
        triggers,
        tuple(rules),
        queues,
        timedelta(minutes=minutes),
        timedelta(minutes=offline),
    )


def _minutes(data: dict, key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a whole number of minutes, at least 1 (got {value!r})")
    return value


def _hours(queue: str, spec: dict) -> Hours:
    zone = str(spec.get("timezone", "UTC"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"queue {queue}: unknown time zone {zone!r} (use e.g. Europe/Moscow)") from None
    if not spec.get("hours"):
        return Hours(zone)
    week: list[list[tuple[time, time]]] = [[] for _ in DAYS]
    for days, spans in spec["hours"].items():
        first, _, last = str(days).partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"queue {queue}: {days!r} is not a day or range like mon-fri")
        a, b = DAYS.index(first), DAYS.index(last or first)
        for span in str(spans).split(","):
            start, _, end = span.strip().partition("-")
            try:
                opening = (time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))
            except ValueError:
                raise ValueError(f"queue {queue}: {span!r} is not like 09:00-18:00") from None
            for day in range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)]:
                week[day].append(opening)
    return Hours(zone, tuple(tuple(d) for d in week))
