"""Reading a Seamline project's dialogue: ``config/domain.yml`` (slots, forms, custom actions),
``config/rules.yml`` (which intent does what) and ``config/responses/`` into one ``Domain``.

Both YAML files are optional: a project with responses only answers each intent with the response
named after it, as before. Every mistake is a ConfigError naming the file, the entry and the fix, at
start, rather than a surprise in a conversation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from seamline.bots.dialogue.model import (
    MAPPING_TYPES,
    SLOT_TYPES,
    Condition,
    Domain,
    Form,
    Rule,
    RuleStep,
    Slot,
    SlotCheck,
    SlotMapping,
)
from seamline.bots.dialogue.responses import Responses
from seamline.shared.errors import ConfigError

STEP_KINDS = ("response", "action", "form", "handoff", "slot")


def load_domain(config_dir: Path) -> Domain:
    """The domain of the project whose config folder is ``config_dir``."""
    responses = Responses.from_dir(config_dir / "responses")
    domain_file, rules_file = config_dir / "domain.yml", config_dir / "rules.yml"
    data = _read(domain_file)
    actions = tuple(str(a) for a in _list(data.get("actions"), domain_file, "actions"))
    slots = {
        name: _slot(name, spec, domain_file) for name, spec in _dict(data.get("slots"), domain_file, "slots").items()
    }
    form_names = set(_dict(data.get("forms"), domain_file, "forms"))
    steps = _Steps(responses.keys(), form_names)
    forms = {
        name: _form(name, spec, domain_file, steps, actions)
        for name, spec in _dict(data.get("forms"), domain_file, "forms").items()
    }
    for form in forms.values():
        for slot in form.required_slots:
            if slot not in slots:  # a form's slot needs no mapping of its own: asked, it takes the entity or text
                slots[slot] = Slot(slot, "text")
    rules_data = _read(rules_file)
    rules = tuple(
        _rule(i, spec, rules_file, steps) for i, spec in enumerate(_list(rules_data.get("rules"), rules_file, "rules"))
    )
    for rule in rules:
        for name in (rule.when.active_form, rule.after_form):
            if name and name not in forms:
                raise ConfigError(
                    str(rules_file),
                    f"rule {rule.name!r} names form {name!r}, which domain.yml lacks",
                    "Add the form to config/domain.yml or fix the name",
                )
    intents = {r.intent for r in rules if r.intent} | {i for s in slots.values() for m in s.mappings for i in m.intent}
    entities = {m.entity for s in slots.values() for m in s.mappings if m.entity} | {
        c.entity for f in forms.values() for c in f.checks.values() if c.entity
    }
    used = (
        {s.name for r in rules for s in r.then if s.kind == "action"}
        | {s.name for f in forms.values() for s in f.submit if s.kind == "action"}
        | {c.action for f in forms.values() for c in f.checks.values() if c.action}
    )
    return Domain(
        responses=responses,
        intents=tuple(sorted(intents)),
        entities=tuple(sorted(entities)),
        slots=slots,
        forms=forms,
        rules=rules,
        actions=tuple(dict.fromkeys([*actions, *sorted(used - set(actions))])),
        source=str(config_dir),
    )


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            str(path), f"is not valid YAML ({exc})", "Fix the file (docs/dialogue.md shows the format)"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(str(path), "is not a mapping of sections", "Start it with a key, e.g. rules: or slots:")
    return data


def _dict(value: Any, path: Path, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            str(path), f"{where} is not a mapping of names", f"Write {where} as name: settings, one per line"
        )
    return {str(k): v for k, v in value.items()}


def _list(value: Any, path: Path, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        return [value]
    if not isinstance(value, list):
        raise ConfigError(
            str(path), f"{where} is not a list", f"Write {where} as a list: [a, b] or one '- item' per line"
        )
    return value


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))


def _slot(name: str, spec: Any, path: Path) -> Slot:
    spec = spec or {}
    if not isinstance(spec, dict):
        raise ConfigError(
            str(path), f"slot {name!r} is not a mapping", "Write it as name: {type: text, mappings: [...]}"
        )
    kind = str(spec.get("type", "any"))
    if kind not in SLOT_TYPES:
        raise ConfigError(str(path), f"slot {name!r} has type {kind!r}", f"Use one of: {', '.join(SLOT_TYPES)}")
    mappings = tuple(_mapping(name, m, path) for m in _list(spec.get("mappings"), path, f"slot {name!r} mappings"))
    initial = spec.get("initial_value", spec.get("initial"))
    return Slot(name, kind, _names(spec.get("values")), initial, mappings)


def _mapping(slot: str, spec: Any, path: Path) -> SlotMapping:
    if not isinstance(spec, dict) or spec.get("type") not in (*MAPPING_TYPES, "custom"):
        raise ConfigError(
            str(path), f"slot {slot!r} has a mapping {spec!r}", f"Give each mapping a type: {', '.join(MAPPING_TYPES)}"
        )
    kind = "from_action" if spec["type"] == "custom" else str(spec["type"])
    if kind == "from_entity" and not spec.get("entity"):
        raise ConfigError(str(path), f"slot {slot!r}: a from_entity mapping without entity", "Add entity: <type>")
    if kind == "from_profile" and not spec.get("attribute"):
        raise ConfigError(
            str(path),
            f"slot {slot!r}: a from_profile mapping without attribute",
            "Add attribute: email (or name, phone, ...)",
        )
    conditions = spec.get("conditions") or [{}]
    first = conditions[0] if isinstance(conditions, list) and conditions and isinstance(conditions[0], dict) else {}
    return SlotMapping(
        type=kind,
        entity=spec.get("entity"),
        intent=_names(spec.get("intent")),
        not_intent=_names(spec.get("not_intent")),
        value=spec.get("value"),
        attribute=spec.get("attribute"),
        active_form=spec.get("active_form", first.get("active_loop")),
        requested_slot=spec.get("requested_slot", first.get("requested_slot")),
    )


def _form(name: str, spec: Any, path: Path, steps: _Steps, actions: tuple[str, ...]) -> Form:
    if not isinstance(spec, dict):
        raise ConfigError(str(path), f"form {name!r} is not a mapping", "Write it as name: {required_slots: [...]}")
    required = _names(spec.get("required_slots"))
    if not required:
        raise ConfigError(str(path), f"form {name!r} has no required_slots", "List the slots it asks for")
    checks: dict[str, SlotCheck] = {}
    for slot, check in _dict(spec.get("validate"), path, f"form {name!r} validate").items():
        if slot not in required or not isinstance(check, dict):
            raise ConfigError(
                str(path),
                f"form {name!r} validates {slot!r}",
                "Validate a required slot with {pattern, entity, action, invalid}",
            )
        pattern = check.get("pattern")
        if pattern is not None:
            try:
                re.compile(str(pattern))
            except re.error as exc:
                raise ConfigError(
                    str(path), f"form {name!r}: the pattern of {slot!r} is wrong ({exc})", "Fix the regular expression"
                ) from exc
        checks[slot] = SlotCheck(
            pattern=str(pattern) if pattern is not None else None,
            entity=check.get("entity"),
            action=check.get("action"),
            invalid=check.get("invalid"),
        )
    where = f"{path} form {name!r}"
    asks = {str(k): str(v) for k, v in _dict(spec.get("ask"), path, f"form {name!r} ask").items()}
    said = [*asks.values(), *(c.invalid for c in checks.values() if c.invalid)]
    if spec.get("cancelled"):
        said.append(str(spec["cancelled"]))
    for key in said:
        steps.response(key, where)
    return Form(
        name=name,
        required_slots=required,
        ask=asks,
        checks=checks,
        validate_action=f"validate_{name}" if f"validate_{name}" in actions else None,
        submit=tuple(steps.parse(s, where) for s in _list(spec.get("submit"), path, f"form {name!r} submit")),
        cancelled=spec.get("cancelled"),
    )


def _rule(index: int, spec: Any, path: Path, steps: _Steps) -> Rule:
    if not isinstance(spec, dict):
        raise ConfigError(
            str(path), f"rule {index + 1} is not a mapping", "Write it as - name: ..., intent: ..., then: [...]"
        )
    name = str(spec.get("name") or f"rule {index + 1}")
    where = f"{path} rule {name!r}"
    then = tuple(steps.parse(s, where) for s in _list(spec.get("then"), path, f"rule {name!r} then"))
    if not then:
        raise ConfigError(where, "has no then steps", "Say what it does: then: [a_response, {form: f}, {handoff: why}]")
    if not spec.get("intent") and not spec.get("after_form") and not spec.get("conversation_start"):
        raise ConfigError(
            where, "has neither intent, after_form nor conversation_start", "Say when it applies: intent: <name>"
        )
    when = spec.get("when") or {}
    if not isinstance(when, dict):
        raise ConfigError(where, "when is not a mapping", "Write when: {slots: {...}, channel: [...], language: [...]}")
    unknown = set(when) - {"slots", "channel", "channels", "language", "languages", "active_form"}
    if unknown:
        raise ConfigError(where, f"when has {sorted(unknown)}", "Use slots, channel, language, active_form")
    active = when.get("active_form", None)
    condition = Condition(
        slots=dict(when.get("slots") or {}),
        channels=_names(when.get("channel", when.get("channels"))),
        languages=_names(when.get("language", when.get("languages"))),
        active_form=("" if active is None else str(active)) if "active_form" in when else None,
    )
    return Rule(
        name=name,
        then=then,
        intent=spec.get("intent"),
        when=condition,
        after_form=spec.get("after_form"),
        conversation_start=bool(spec.get("conversation_start", False)),
        wait_for_user_input=bool(spec.get("wait_for_user_input", True)),
        source=where,
    )


class _Steps:
    """A ``then`` step as written: a name (a response if one exists, else a form, else an action) or
    ``{response|action|form|handoff|slot: ...}``, or ``listen``."""

    def __init__(self, responses: set[str], forms: set[str]) -> None:
        self._responses, self._forms = responses, forms

    def response(self, key: str, where: str) -> None:
        if key not in self._responses:
            raise ConfigError(
                where, f"says response {key!r}, which config/responses lacks", "Add the response or fix the name"
            )

    def parse(self, raw: Any, where: str) -> RuleStep:
        if isinstance(raw, str):
            if raw == "listen":
                return RuleStep("listen")
            kind = "response" if raw in self._responses else "form" if raw in self._forms else "action"
            return RuleStep(kind, raw)  # type: ignore[arg-type]
        if isinstance(raw, dict) and len(raw) == 1:
            kind, value = next(iter(raw.items()))
            if kind == "slot" and isinstance(value, dict) and len(value) == 1:
                name, slot_value = next(iter(value.items()))
                return RuleStep("slot", str(name), slot_value)
            if kind in STEP_KINDS and kind != "slot" and isinstance(value, str) and value:
                if kind == "response" and value not in self._responses:
                    raise ConfigError(
                        where,
                        f"says response {value!r}, which config/responses lacks",
                        "Add the response or fix the name",
                    )
                if kind == "form" and value not in self._forms:
                    raise ConfigError(
                        where,
                        f"starts form {value!r}, which domain.yml lacks",
                        "Add the form to config/domain.yml or fix the name",
                    )
                return RuleStep(kind, value)
        raise ConfigError(
            where,
            f"has a step {raw!r}",
            "Write a response, form or action name, or {response|action|form|handoff: name}, {slot: {name: value}}, listen",
        )
