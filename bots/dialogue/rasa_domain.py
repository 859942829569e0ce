"""A Rasa 3.x ``domain.yml`` (or ``domain/`` folder) read into Seamline's shapes: intents, entities,
slots with their mappings, responses, forms and custom actions.

Kept apart from the rules (bots/dialogue/rasa_rules.py) and the project's other files
(bots/dialogue/rasa.py) so each stays readable. What Rasa has and Seamline does not run is not an
error: it goes into ``notes``, the list said once at start. A domain Rasa itself would refuse (a slot
of no known type, a response that is not a list of variants) is a ConfigError naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seamline.bots.dialogue.model import SLOT_TYPES, Form, Slot, SlotMapping
from seamline.shared.errors import ConfigError

_SAFE_YAML = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
FIX = "Fix domain.yml as Rasa 3.x expects it (docs/rasa.md)"
# Rasa's mapping types and what Seamline calls them; from_trigger_intent is read as from_intent.
MAPPINGS = {
    "from_entity": "from_entity",
    "from_intent": "from_intent",
    "from_text": "from_text",
    "from_trigger_intent": "from_intent",
    "custom": "from_action",
}


@dataclass
class RasaDomain:
    """What domain.yml says, in Seamline's shapes; ``responses`` stay Rasa's variants, as written."""

    intents: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    slots: dict[str, Slot] = field(default_factory=dict)
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    forms: dict[str, Form] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def read_yaml(path: Path) -> dict[str, Any]:
    """One YAML file of the project as a mapping; a broken one is a ConfigError naming it."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_YAML)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"is not valid YAML ({exc})", "Fix the file; Rasa would refuse it too") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot be read ({exc})", "Check the file") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "is not a mapping of sections", 'Start it with a key, e.g. version: "3.1"')
    return data


def domain_files(root: Path) -> list[Path]:
    """``domain.yml`` / ``domain.yaml``, or every YAML file of a ``domain/`` folder (Rasa merges them)."""
    for name in ("domain.yml", "domain.yaml"):
        if (root / name).is_file():
            return [root / name]
    folder = root / "domain"
    if folder.is_dir():
        return sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    return []


def read_domain(root: Path) -> RasaDomain:
    files = domain_files(root)
    if not files:
        raise ConfigError(
            str(root / "domain.yml"),
            "does not exist (nor a domain/ folder)",
            "Point --rasa-project at the folder of a Rasa 3.x project (the one holding domain.yml)",
        )
    domain = RasaDomain(files=files)
    for path in files:
        _add(domain, path, read_yaml(path))
    for form in domain.forms.values():
        for slot in form.required_slots:
            if slot not in domain.slots:  # Rasa wants it declared; asked for, it takes the text
                domain.slots[slot] = Slot(slot, "text")
    return domain


def _add(domain: RasaDomain, path: Path, data: dict[str, Any]) -> None:
    where = str(path)
    domain.intents += [_name(i, where, "intents") for i in _list(data.get("intents"), where, "intents")]
    for item in _list(data.get("entities"), where, "entities"):
        name = _name(item, where, "entities")
        domain.entities.append(name)
        if isinstance(item, dict) and any(
            isinstance(v, dict) and ("roles" in v or "groups" in v) for v in item.values()
        ):
            domain.notes.append(f"entity roles and groups ({name})")
    if any("/" in i for i in domain.intents):
        domain.notes.append("retrieval intents (intent/sub-intent): answered as their main intent's rules say")
    for name, spec in _dict(data.get("slots"), where, "slots").items():
        if name != "requested_slot":  # Seamline keeps the form's requested slot itself
            domain.slots[name] = _slot(name, spec, where, domain.notes)
    for key, variants in _dict(data.get("responses"), where, "responses").items():
        if not isinstance(variants, list) or not variants or not all(isinstance(v, dict) for v in variants):
            raise ConfigError(where, f"response {key!r} is not a list of variants", 'Write it as - text: "..."')
        domain.responses[key] = variants
    actions = [_name(a, where, "actions") for a in _list(data.get("actions"), where, "actions")]
    for name, spec in _dict(data.get("forms"), where, "forms").items():
        domain.forms[name] = _form(name, spec, where, actions, domain.notes)
    domain.actions += actions
    if "session_config" in data:
        domain.notes.append("domain.yml session_config (a Seamline session follows the customer across channels)")
    if data.get("e2e_actions"):
        domain.notes.append("domain.yml e2e_actions")


def _list(value: Any, where: str, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(where, f"{what} is not a list", f"Write {what} as '- name' lines")
    return value


def _dict(value: Any, where: str, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(where, f"{what} is not a mapping of names", f"Write {what} as name: settings")
    return {str(k): v for k, v in value.items()}


def _name(item: Any, where: str, what: str) -> str:
    """A list entry that is a name, or a one-key mapping ``name: {options}`` (Rasa allows both)."""
    if isinstance(item, str) and item:
        return item
    if isinstance(item, dict) and len(item) == 1:
        return str(next(iter(item)))
    raise ConfigError(where, f"{what} has an entry {item!r}", f"Write each of the {what} as a name")


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


def _slot(name: str, spec: Any, where: str, notes: list[str]) -> Slot:
    if not isinstance(spec, dict):
        raise ConfigError(where, f"slot {name!r} is not a mapping", "Write it as name: {type: text, mappings: [...]}")
    kind = str(spec.get("type", "any"))
    if kind not in SLOT_TYPES:
        if "." not in kind:  # Rasa's own types are the same six; anything else is a typo
            raise ConfigError(where, f"slot {name!r} has type {kind!r}", f"Use one of: {', '.join(SLOT_TYPES)}")
        notes.append(f"custom slot type {kind} (slot {name} is kept as any)")
        kind = "any"
    mappings: list[SlotMapping] = []
    for raw in _list(spec.get("mappings"), where, f"slot {name!r} mappings"):
        mappings += _mappings(name, raw, where, notes)
    values = tuple(str(v) for v in spec.get("values") or ())
    return Slot(name, kind, values, spec.get("initial_value"), tuple(mappings))


def _mappings(slot: str, raw: Any, where: str, notes: list[str]) -> list[SlotMapping]:
    """One Rasa mapping; a mapping with several ``conditions`` becomes one per condition (any holds)."""
    if not isinstance(raw, dict) or raw.get("type") not in MAPPINGS:
        raise ConfigError(
            where, f"slot {slot!r} has a mapping {raw!r}", f"Give each mapping a type: {', '.join(MAPPINGS)}"
        )
    kind = MAPPINGS[str(raw["type"])]
    if raw["type"] == "from_trigger_intent":
        notes.append(f"from_trigger_intent (slot {slot}: set on that intent, whichever form starts)")
    if kind == "from_entity" and not raw.get("entity"):
        raise ConfigError(where, f"slot {slot!r}: a from_entity mapping without entity", "Add entity: <name>")
    if raw.get("role") or raw.get("group"):
        notes.append(f"entity roles and groups in slot mappings (slot {slot}: any role fills it)")
    conditions = raw.get("conditions") or [{}]
    if not isinstance(conditions, list) or not all(isinstance(c, dict) for c in conditions):
        raise ConfigError(
            where, f"slot {slot!r}: conditions are not a list", "Write - active_loop: <form> (requested_slot: ...)"
        )
    return [
        SlotMapping(
            type=kind,
            entity=raw.get("entity"),
            intent=_names(raw.get("intent")),
            not_intent=_names(raw.get("not_intent")),
            value=raw.get("value"),
            active_form=condition.get("active_loop"),
            requested_slot=condition.get("requested_slot"),
        )
        for condition in conditions
    ]


def _form(name: str, spec: Any, where: str, actions: list[str], notes: list[str]) -> Form:
    spec = spec or {}
    if not isinstance(spec, dict):
        raise ConfigError(where, f"form {name!r} is not a mapping", "Write it as name: {required_slots: [...]}")
    required = spec.get("required_slots")
    if isinstance(required, dict):  # Rasa 2.x: slot -> its mappings
        notes.append(f"form {name}: Rasa 2 required_slots with mappings (the slots' own mappings are used)")
        required = list(required)
    slots = _names(required)
    if not slots:
        raise ConfigError(where, f"form {name!r} has no required_slots", "List the slots it asks for")
    if spec.get("ignored_intents"):
        notes.append(f"form {name}: ignored_intents")
    for slot in slots:
        if f"action_ask_{slot}" in actions or f"action_ask_{name}_{slot}" in actions:
            notes.append(f"action_ask_{slot} (form {name} asks with utter_ask_{slot})")
    validate = f"validate_{name}"
    return Form(name=name, required_slots=slots, validate_action=validate if validate in actions else None)
