"""The checks of ``seamline data validate`` (bots/validate.py) on the dialogue: rules, forms, slots,
and what nothing uses. Each takes the ``Domain`` as the bot reads it and the response keys per
language, and returns findings; none of them reads a file."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seamline.bots.dialogue.model import Domain, Rule, RuleStep

# Rasa's own actions: a rule may name them without declaring them.
BUILTIN_ACTIONS = frozenset(
    {
        "action_listen",
        "action_restart",
        "action_session_start",
        "action_default_fallback",
        "action_deactivate_loop",
        "action_revert_fallback_events",
        "action_default_ask_affirmation",
        "action_default_ask_rephrase",
        "action_two_stage_fallback",
        "action_back",
        "action_unlikely_intent",
        "action_extract_slots",
        "utter_default",
    }
)
# Responses the dialogue says without a rule naming them (besides bots/project.py FRAMEWORK_RESPONSES).
DIALOGUE_RESPONSES = ("action_failed", "form_cancelled", "utter_default")


@dataclass(frozen=True)
class Finding:
    level: str  # "error" | "warning"
    file: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.level}: {self.file}: {self.what} — {self.fix}"


class Where:
    """A file's name as the author knows it: relative to the project when it is inside."""

    def __init__(self, root: Path | None, source: Path | None) -> None:
        self.root, self.source = root, source

    def __call__(self, file: str | Path) -> str:
        path = Path(file)
        if self.root is not None and path.is_absolute():
            try:
                return str(path.relative_to(self.root))
            except ValueError:
                pass
        return str(path)

    def config(self, name: str) -> str:
        """config/domain.yml, config/rules.yml: where the domain was read."""
        return self(self.source / name) if self.source is not None else f"config/{name}"

    def rule(self, rule: Rule) -> str:
        return self(_file_of(rule.source)) if rule.source else self.config("rules.yml")


def _file_of(source: str) -> str:
    """The file of a rule's or form's ``source`` ("PATH rule 'name'", "PATH form 'name'")."""
    return re.split(r" (?:rule|form) '", source, maxsplit=1)[0]


def _steps(domain: Domain) -> Iterable[tuple[str, str, RuleStep]]:
    """(file, who: "rule 'x'" or "form 'f'", step) for every step written."""
    for rule in domain.rules:
        for step in rule.then:
            yield _file_of(rule.source) if rule.source else "", f"rule {rule.name!r}", step
    for form in domain.forms.values():
        for step in form.submit:
            yield "", f"form {form.name!r}", step


def rule_references(
    domain: Domain, responses: dict[str, tuple[str, set[str]]], where: Where, declared: set[str], code: str
) -> list[Finding]:
    findings = []
    known = set().union(*(keys for _, keys in responses.values())) if responses else set()
    declared = declared | BUILTIN_ACTIONS
    written = set(re.findall(r"[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']", code))
    for file, who, step in _steps(domain):
        file = where(file) if file else where.config("rules.yml" if who.startswith("rule") else "domain.yml")
        if step.kind == "response":
            missing = [lang for lang, (_, keys) in sorted(responses.items()) if step.name not in keys]
            if step.name not in known:
                findings.append(
                    Finding("error", file, f"{who} says response {step.name!r}, which no language has", "add it")
                )
            elif missing:
                findings.append(
                    Finding(
                        "warning",
                        file,
                        f"{who} says response {step.name!r}, missing in {', '.join(missing)}",
                        f"add it to {', '.join(where(responses[lang][0]) for lang in missing)}",
                    )
                )
        elif step.kind == "form" and step.name not in domain.forms:
            findings.append(Finding("error", file, f"{who} starts form {step.name!r}, which is not defined", _forms()))
        elif step.kind == "action" and step.name not in declared:
            in_code = step.name in written
            findings.append(
                Finding(
                    "warning" if in_code else "error",
                    file,
                    f"{who} runs action {step.name!r}, which domain.yml does not declare"
                    + ("" if in_code else " and no response or form has that name"),
                    f"list it under `actions:` in {where.config('domain.yml')}"
                    + ("" if in_code else " and write it in actions/, or correct a response's name"),
                )
            )
        elif step.kind == "slot" and step.name not in domain.slots:
            findings.append(Finding("error", file, f"{who} sets slot {step.name!r}, which is not defined", _slots()))
    return findings


def _forms() -> str:
    return "define it under `forms:` in config/domain.yml, or correct the name"


def _slots() -> str:
    return "define it under `slots:` in config/domain.yml, or correct the name"


def contradicting_rules(domain: Domain, where: Where) -> list[Finding]:
    """Two rules for the same intent under the same conditions: the first wins, the second never runs."""
    first: dict[Any, Rule] = {}
    findings = []
    for rule in domain.rules:
        when = rule.when
        key = (
            rule.intent,
            rule.after_form,
            rule.conversation_start,
            tuple(sorted((k, repr(v)) for k, v in when.slots.items())),
            tuple(sorted(when.channels)),
            tuple(sorted(when.languages)),
            when.active_form,
        )
        earlier = first.setdefault(key, rule)
        if earlier is rule:
            continue
        same = earlier.then == rule.then
        findings.append(
            Finding(
                "warning" if same else "error",
                where.rule(rule),
                f"rule {rule.name!r} {'repeats' if same else 'contradicts'} rule {earlier.name!r} "
                f"(same intent and conditions{'' if same else ', other steps'}); the first one wins, "
                "this one never runs",
                "delete one, or tell them apart with `when:` (slots, channel, language, active_form)",
            )
        )
    return findings


def slots_and_forms(domain: Domain, responses: dict[str, tuple[str, set[str]]], where: Where) -> list[Finding]:
    findings = []
    file = where.config("domain.yml")
    asked = {slot for form in domain.forms.values() for slot in form.required_slots}
    for slot in domain.slots.values():
        if not slot.mappings and slot.name not in asked:  # a form's slot takes the answer to its question
            findings.append(
                Finding(
                    "warning",
                    file,
                    f"slot {slot.name!r} has no mapping: nothing the customer says fills it",
                    "add `mappings:` (from_entity, from_intent, from_text, from_profile; from_action if an action sets it)",
                )
            )
    for form in domain.forms.values():
        for slot_name in form.required_slots:
            if slot_name not in domain.slots:
                findings.append(
                    Finding(
                        "error", file, f"form {form.name!r} needs slot {slot_name!r}, which is not defined", _slots()
                    )
                )
            asks = form.ask_key(slot_name)
            custom = {f"action_ask_{form.name}_{slot_name}", f"action_ask_{slot_name}"} & set(domain.actions)
            for language, (response_file, keys) in sorted(responses.items()):
                if not custom and not any(key in keys for key in asks):
                    findings.append(
                        Finding(
                            "error",
                            file,
                            f"form {form.name!r} cannot ask for {slot_name!r} in {language}: no response "
                            f"{' or '.join(repr(k) for k in asks)}",
                            f"add {asks[-1]!r} to {where(response_file)}",
                        )
                    )
    return findings


def _used_responses(domain: Domain, intents: set[str]) -> set[str]:
    from seamline.bots.project import FRAMEWORK_RESPONSES

    used = set(FRAMEWORK_RESPONSES) | set(DIALOGUE_RESPONSES)
    if domain.answer_by_intent_name:
        used |= set(domain.intents) | intents
    used |= {step.name for _, _, step in _steps(domain) if step.kind == "response"}
    for form in domain.forms.values():
        for slot in form.required_slots:
            used |= set(form.ask_key(slot))
        used |= {check.invalid for check in form.checks.values() if check.invalid}
        used.add(form.cancelled or "form_cancelled")
    return used


def unused(
    domain: Domain, intents: set[str], responses: dict[str, tuple[str, set[str]]], code: str, where: Where
) -> list[Finding]:
    findings = []
    used = _used_responses(domain, intents)
    named_in_code = set(re.findall(r"[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']", code))
    built_in_code = tuple(re.findall(r"f[\"']([A-Za-z_][A-Za-z0-9_]*)\{", code))  # response=f"order_{status}"
    seen: dict[str, list[str]] = defaultdict(list)
    for file, keys in responses.values():
        for key in sorted(keys):
            if key not in used and key not in named_in_code and not key.startswith(built_in_code or ("\0",)):
                seen[key].append(where(file))
    for key, files in sorted(seen.items()):
        findings.append(
            Finding(
                "warning",
                ", ".join(files),
                f"response {key!r} is never said: no intent, rule, form or action names it",
                "delete it, or name it in a rule of config/rules.yml",
            )
        )
    used_actions = {step.name for _, _, step in _steps(domain) if step.kind == "action"}
    for form in domain.forms.values():
        used_actions |= {c.action for c in form.checks.values() if c.action}
        used_actions |= {form.validate_action or "", f"validate_{form.name}"}
        used_actions |= {f"action_ask_{form.name}_{s}" for s in form.required_slots}
        used_actions |= {f"action_ask_{s}" for s in form.required_slots}
    for action in domain.actions:
        if action not in used_actions and not _named_in_other_code(action, code):
            findings.append(
                Finding(
                    "warning",
                    where.config("domain.yml"),
                    f"action {action!r} is declared and nothing runs it",
                    "name it in a rule or a form's `submit:`, or take it out of `actions:`",
                )
            )
    return findings


def _named_in_other_code(action: str, code: str) -> bool:
    """An action another action follows up with (``FollowupAction("x")``) is used; its own
    ``name()`` returning the string does not count."""
    return bool(re.search(r"FollowupAction\(\s*(?:name\s*=\s*)?[\"']" + re.escape(action) + r"[\"']", code))
