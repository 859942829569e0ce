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

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from seamline.bots.dialogue.model import Domain
from seamline.bots.validate_domain import (
    Finding,
    Where,
    contradicting_rules,
    rule_references,
    slots_and_forms,
    unused,
)
from seamline.nlu.data import TrainingData
from seamline.nlu.data import load as load_data
from seamline.nlu.parse import OUT_OF_SCOPE
from seamline.shared.errors import ConfigError

MIN_EXAMPLES = 10  # fewer examples than this per intent and language: the model guesses
# Intents the framework answers itself, whatever the responses say.
FRAMEWORK_INTENTS = frozenset({OUT_OF_SCOPE, "link_account", "nlu_fallback"})


def validate_project(config_dir: Path, *, code: Iterable[Path] = ()) -> list[Finding]:
    """Every finding for the project whose config is ``config_dir``; ``code``: folders of its Python
    (actions/), whose text counts as using a response it names. A file the bot would refuse to start
    with is one error finding (the reader stops at the first mistake, as the bot does)."""
    from seamline.bots.dialogue.domain import load_domain

    root = config_dir.parent
    where = Where(root, config_dir)
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
    findings = check(domain, data, responses=responses, code=_code_text(code), root=root, declared=declared)
    # (a Rasa project gets these texts from the minimal template: docs/rasa.md)
    return findings + _framework_missing(responses, where)


def validate_rasa(path: Path, env: Mapping[str, str]) -> list[Finding]:
    """The findings for a Rasa 3.x project run as it is (bots/dialogue/rasa.py): its domain, rules and
    nlu data as Seamline reads them. Stories are not run, so an intent only a story answers is named."""
    from seamline.bots.dialogue.rasa import load_rasa

    where = Where(path.resolve(), path.resolve())
    try:
        project = load_rasa(path, env)
    except ConfigError as exc:
        return [Finding("error", where(exc.setting), exc.problem, exc.fix)]
    domain = project.domain
    responses = {project.language: (str(project.path / "domain.yml"), domain.responses.keys(project.language))}
    return check(
        domain, project.nlu, responses=responses, code=_code_text([project.path / "actions"]), root=project.path
    )


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
    where = Where(root, source)
    findings = [Finding("warning", where(w.file), w.what, w.fix) for w in data.warnings]
    findings += _few_examples(data, where)
    findings += _unanswered_intents(domain, data, responses, where)
    findings += rule_references(domain, responses, where, set(domain.actions) if declared is None else declared, code)
    findings += contradicting_rules(domain, where)
    findings += slots_and_forms(domain, responses, where)
    findings += unused(domain, {e.intent for e in data.examples}, responses, code, where)
    return findings


def _framework_missing(responses: dict[str, tuple[str, set[str]]], where: Where) -> list[Finding]:
    """The texts the framework itself says (link codes, handoff notices, a failed action...): missing in
    a language, the customer gets a plain English default there."""
    from seamline.bots.project import FRAMEWORK_RESPONSES

    return [
        Finding(
            "warning",
            where(file),
            f"{language} has no response {key!r}, which Seamline says itself; customers get an English default",
            f"add {key!r} (see the same key in `seamline init`'s templates)",
        )
        for language, (file, keys) in sorted(responses.items())
        for key in FRAMEWORK_RESPONSES
        if key not in keys
    ]


def _few_examples(data: TrainingData, where: Where) -> list[Finding]:
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
    domain: Domain, data: TrainingData, responses: dict[str, tuple[str, set[str]]], where: Where
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
