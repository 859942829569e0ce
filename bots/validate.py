"""``seamline data validate``: the mistakes a bot project can hold that nothing else would show.

A wrong rule or a missing response does not stop the bot from starting: it shows, much later, as a
customer answered with "sorry, I did not understand" or a form that never asks its question. These
checks read the project as the bot will (the training data, the responses, the domain and rules
through ``load_domain``) and name each problem once, with the file and the fix:

    warning: config/intents/retail.en.yml: intent 'greet' has 4 examples in en — add at least 10 ...

Rasa's ``rasa data validate`` checks are here (intents without data, unknown responses and actions in
rules, contradicting rules, forms without questions) and a few more that Seamline's conventions make
possible (an intent is answered by the response named after it). Errors are what makes the bot do
something else than its author wrote; warnings are what makes it worse than it could be.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seamline.bots.dialogue.model import Domain, Rule, RuleStep
from seamline.nlu.data import TrainingData
from seamline.nlu.data import load as load_data
from seamline.nlu.parse import OUT_OF_SCOPE
from seamline.shared.errors import ConfigError

MIN_EXAMPLES = 10  # fewer examples than this per intent and language: the model guesses
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
# Intents the framework answers itself, whatever the responses say.
FRAMEWORK_INTENTS = frozenset({OUT_OF_SCOPE, "link_account", "nlu_fallback"})
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


def validate_project(config_dir: Path, *, code: Iterable[Path] = ()) -> list[Finding]:
    """Every finding for the project whose config is ``config_dir``; ``code``: folders of its Python
    (actions/), whose text counts as using a response it names. A file the bot would refuse to start
    with is one error finding (the reader stops at the first mistake, as the bot does)."""
    from seamline.bots.dialogue.domain import load_domain

    root = config_dir.parent
    where = _Where(root, config_dir)
    try:
        data = load_data(config_dir / "intents")
    except ConfigError as exc:
        return [Finding("error", where(exc.setting), exc.problem, exc.fix)]
    try:
        domain = load_domain(config_dir)
    except ConfigError as exc:
        findings = [Finding("warning", where(w.file), w.what, w.fix) for w in data.warnings]
        return [*findings, Finding("error", where(exc.setting), exc.problem, exc.fix)]
    declared = _declared_actions(config_dir / "domain.yml")
    responses = _response_keys(config_dir / "responses")
    return check(domain, data, responses=responses, code=_code_text(code), root=root, declared=declared)


def _declared_actions(path: Path) -> set[str] | None:
    """The `actions:` of domain.yml as written (the domain adds the ones rules name)."""
    if not path.is_file():
        return None
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    actions = document.get("actions") if isinstance(document, dict) else None
    return {str(a) for a in actions} if isinstance(actions, list) else set()


def _response_keys(directory: Path) -> dict[str, tuple[str, set[str]]]:
    """language -> (its file, the response keys it has)."""
    keys: dict[str, tuple[str, set[str]]] = {}
    for path in sorted(directory.glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        keys[str(document.get("language", path.stem))] = (str(path), set(document.get("responses") or {}))
    return keys


def _code_text(folders: Iterable[Path]) -> str:
    return "\n".join(
        file.read_text(encoding="utf-8", errors="replace")
        for folder in folders
        if folder.is_dir()
        for file in sorted(folder.rglob("*.py"))
    )


def check(
    domain: Domain,
    data: TrainingData,
    *,
    responses: dict[str, tuple[str, set[str]]],
    code: str = "",
    root: Path | None = None,
    declared: set[str] | None = None,
) -> list[Finding]:
    """The findings for one domain and its training data. ``responses``: language -> (file, keys);
    ``declared``: the custom actions the domain file lists (default: the domain's actions)."""
    source = Path(domain.source) if domain.source else None
    where = _Where(root, source)
    findings = [Finding("warning", where(w.file), w.what, w.fix) for w in data.warnings]
    findings += _few_examples(data, where)
    findings += _unanswered_intents(domain, data, responses, where)
    findings += _rule_references(domain, responses, where, set(domain.actions) if declared is None else declared, code)
    findings += _contradicting_rules(domain, where)
    findings += _slots_and_forms(domain, responses, where)
    findings += _unused(domain, {e.intent for e in data.examples}, responses, code, where)
    return findings


class _Where:
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


def _few_examples(data: TrainingData, where: _Where) -> list[Finding]:
    counts: Counter[tuple[str, str]] = Counter((e.intent, e.language or "?") for e in data.examples)
    file = where(data.sources[0].parent) if len(data.sources) > 1 else where(data.sources[0]) if data.sources else "?"
    return [
        Finding(
            "warning",
            file,
            f"intent {intent!r} has {count} example{'s' * (count != 1)} in {language}",
            f"add at least {MIN_EXAMPLES}, worded as customers write",
        )
        for (intent, language), count in sorted(counts.items())
        if count < MIN_EXAMPLES
    ]


def _answers(domain: Domain, intent: str, language: str, keys: set[str]) -> bool:
    for rule in domain.rules:
        if rule.intent == intent and (not rule.when.languages or language in rule.when.languages):
            return True
    return domain.answer_by_intent_name and intent in keys


def _unanswered_intents(
    domain: Domain, data: TrainingData, responses: dict[str, tuple[str, set[str]]], where: _Where
) -> list[Finding]:
    intents = sorted({e.intent for e in data.examples} - FRAMEWORK_INTENTS)
    return [
        Finding(
            "warning",
            where(file),
            f"intent {intent!r} has no response and no rule in {language}: the bot answers it with `fallback`",
            f"add a response {intent!r} to {where(file)} or a rule for it to {where.config('rules.yml')}",
        )
        for language, (file, keys) in sorted(responses.items())
        for intent in intents
        if not _answers(domain, intent, language, keys)
    ]


def _steps(domain: Domain) -> Iterable[tuple[str, str, RuleStep]]:
    """(file, who: "rule 'x'" or "form 'f'", step) for every step written."""
    for rule in domain.rules:
        for step in rule.then:
            yield _file_of(rule.source) if rule.source else "", f"rule {rule.name!r}", step
    for form in domain.forms.values():
        for step in form.submit:
            yield "", f"form {form.name!r}", step


def _rule_references(
    domain: Domain, responses: dict[str, tuple[str, set[str]]], where: _Where, declared: set[str], code: str
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


def _contradicting_rules(domain: Domain, where: _Where) -> list[Finding]:
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


def _slots_and_forms(domain: Domain, responses: dict[str, tuple[str, set[str]]], where: _Where) -> list[Finding]:
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


def _unused(
    domain: Domain, intents: set[str], responses: dict[str, tuple[str, set[str]]], code: str, where: _Where
) -> list[Finding]:
    findings = []
    used = _used_responses(domain, intents)
    named_in_code = set(re.findall(r"[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']", code))
    seen: dict[str, list[str]] = defaultdict(list)
    for file, keys in responses.values():
        for key in sorted(keys):
            if key not in used and key not in named_in_code:
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
