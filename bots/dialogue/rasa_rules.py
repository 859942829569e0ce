"""Rasa 3.x rules (``rules:`` in data/*.yml) read into Seamline's ``Rule``.

The shapes Rasa's RulePolicy is used for, and how each reads here:

- ``intent: x`` then actions: a rule for intent ``x`` (``or:`` of intents: one rule each);
  ``slot_was_set`` right after the intent, and ``condition`` (``slot_was_set``, ``active_loop``),
  are its conditions;
- ``action: f`` + ``active_loop: f``: start form ``f``;
- ``condition: [active_loop: f]`` with steps ``action: f``, ``active_loop: null``, then actions: what
  runs when ``f`` is submitted (``Rule.after_form``);
- a rule under ``condition: [active_loop: f]`` that answers an intent and then goes back to the form
  (``action: f``, ``active_loop: f``): the answer only, since the engine asks the form's question again
  after any answer given in the middle of a form; one that does not go back ends with ``listen``, so
  the question is not asked (the form stays active, as in Rasa);
- ``wait_for_user_input: false`` with a rule that starts with that rule's last action: the second
  rule's steps are appended to the first (that is what Rasa would run next);
- ``conversation_start: true``: only for the first message of a conversation, and then instead of
  the other rules (it ends with ``listen`` unless it says ``wait_for_user_input: false``).

Stories need Rasa's ML policies: they are counted and reported, not run. Built-in actions Seamline has
no equivalent for (action_two_stage_fallback, action_unlikely_intent, ...) are skipped and reported;
the default ones it runs as Rasa does (action_restart, action_deactivate_loop, action_back, ...) are
kept as actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from seamline.bots.dialogue.model import Condition, Rule, RuleStep
from seamline.shared.errors import ConfigError

# Rasa's default actions Seamline runs as Rasa does (bots/dialogue/actions.py), unless the domain lists
# one as its own; and those it has no equivalent for: skipped where a rule names them (reported).
DEFAULT_ACTIONS = (
    "action_restart",
    "action_session_start",
    "action_deactivate_loop",
    "action_back",
    "action_default_fallback",
)
UNSUPPORTED_ACTIONS = (
    "action_two_stage_fallback",
    "action_unlikely_intent",
    "action_extract_slots",
    "action_revert_fallback_events",
    "action_default_ask_affirmation",
    "action_default_ask_rephrase",
)
CHAIN_LIMIT = 5  # continuation rules appended one after the other at most


@dataclass
class Rules:
    rules: list[Rule] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stories: int = 0


@dataclass(frozen=True)
class _Continuation:
    """A rule that starts with an action: what Rasa runs after that action when the rule before it
    said ``wait_for_user_input: false``."""

    after: str
    then: tuple[RuleStep, ...]
    conditional: bool
    name: str
    wait: bool


class Reader:
    """Reads the rules of every data file with what the domain declares (responses, forms)."""

    def __init__(self, responses: set[str], forms: set[str]) -> None:
        self._responses, self._forms = responses, forms
        self.found = Rules()
        self._continuations: list[_Continuation] = []
        self._used: set[str] = set()

    def add(self, path: str, document: dict[str, Any]) -> None:
        stories = document.get("stories")
        if isinstance(stories, list):
            self.found.stories += len(stories)
        rules = document.get("rules")
        if rules is None:
            return
        if not isinstance(rules, list):
            raise ConfigError(path, "rules is not a list", "Write each rule as - rule: <name> with steps:")
        for index, spec in enumerate(rules):
            self._rule(path, index, spec)

    def result(self) -> Rules:
        """The rules, each ``wait_for_user_input: false`` one followed by its continuation."""
        self.found.rules = [self._chained(rule) for rule in self.found.rules]
        for unused in self._continuations:
            if unused.name not in self._used:
                self.found.notes.append(
                    f"rule {unused.name!r} (it follows {unused.after}, which no rule with "
                    "wait_for_user_input: false ends with)"
                )
        return self.found

    # -- one rule ----------------------------------------------------------------------------------

    def _rule(self, path: str, index: int, spec: Any) -> None:
        if not isinstance(spec, dict) or not isinstance(spec.get("steps"), list) or not spec["steps"]:
            raise ConfigError(path, f"rule {index + 1} has no steps", "Write - rule: <name> with steps: [...]")
        name = str(spec.get("rule") or f"rule {index + 1}")
        where = f"{path} rule {name!r}"
        steps: list[Any] = list(spec["steps"])
        if any(not isinstance(s, dict) for s in steps):
            raise ConfigError(where, "has a step that is not a mapping", "Write steps as - intent: x / - action: y")
        if any(k in s for s in steps for k in ("user", "bot", "checkpoint")):
            self.found.notes.append(f"rule {name!r} (end-to-end user:/bot: steps and checkpoints)")
            return
        slots, active = self._condition(spec.get("condition"), where)
        start = bool(spec.get("conversation_start", False))
        wait = bool(spec.get("wait_for_user_input", True))
        first = steps[0]
        intents = self._intents(first, where)
        if intents:
            rest = steps[1:]
            while rest and "slot_was_set" in rest[0]:  # what the user's message set: a condition
                slots.update(self._slots(rest.pop(0)["slot_was_set"], where))
            then = self._steps(rest, name, where, active_form=active)
            if active and then and not any(s.get("action") == active for s in rest):
                then += (RuleStep("listen"),)  # it does not go back to the form: nor does the engine
            if start and wait and then:
                then += (RuleStep("listen"),)  # the first message's answer: no other rule's as well
            when = Condition(slots=slots, active_form=active)
            for intent in intents:
                self._keep(Rule(name, then, intent, when, None, start, wait, where))
            return
        action = str(first.get("action") or "")
        if not action:
            raise ConfigError(where, f"starts with {first!r}", "Start a rule with - intent: x (or - action: x)")
        submits = len(steps) > 1 and "active_loop" in steps[1] and steps[1]["active_loop"] is None
        if action in self._forms and (active == action or submits):  # the form's submission
            rest = [s for s in steps[1:] if "active_loop" not in s and "slot_was_set" not in s]
            then = self._steps(rest, name, where, active_form=None)
            if then:
                self._keep(Rule(name, then, None, Condition(slots=slots), action, start, wait, where))
            return
        if start:
            then = self._steps(steps, name, where, active_form=active)
            then += (RuleStep("listen"),) if wait and then else ()
            when = Condition(slots=slots, active_form=active)
            self._keep(Rule(name, then, None, when, None, True, wait, where))
            return
        then = self._steps(steps[1:], name, where, active_form=active)
        self._continuations.append(_Continuation(action, then, bool(slots) or active is not None, name, wait))

    def _keep(self, rule: Rule) -> None:
        if rule.then:
            self.found.rules.append(rule)

    def _intents(self, step: dict[str, Any], where: str) -> list[str]:
        if "intent" in step:
            if step.get("entities"):
                self.found.notes.append(f"entities required by a rule step ({where.rsplit(' rule ', 1)[-1]})")
            return [str(step["intent"])]
        if "or" in step:
            options = step["or"]
            if not isinstance(options, list) or not all(isinstance(o, dict) and "intent" in o for o in options):
                raise ConfigError(where, "has an or: that is not a list of intents", "Write or: [{intent: a}, ...]")
            return [str(o["intent"]) for o in options]
        return []

    def _condition(self, raw: Any, where: str) -> tuple[dict[str, Any], str | None]:
        """(slot values, active form: a name, "" for none, None for any) from a rule's ``condition``."""
        slots: dict[str, Any] = {}
        active: str | None = None
        if raw is None:
            return slots, active
        if not isinstance(raw, list):
            raise ConfigError(where, "condition is not a list", "Write - active_loop: f / - slot_was_set: [...]")
        for item in raw:
            if isinstance(item, dict) and "active_loop" in item:
                active = "" if item["active_loop"] is None else str(item["active_loop"])
                if active and active not in self._forms:
                    raise ConfigError(
                        where, f"has the condition active_loop: {active}, not a form of domain.yml", "Fix the name"
                    )
            elif isinstance(item, dict) and "slot_was_set" in item:
                slots.update(self._slots(item["slot_was_set"], where))
            else:
                raise ConfigError(where, f"has a condition {item!r}", "Use active_loop or slot_was_set")
        return slots, active

    def _slots(self, raw: Any, where: str) -> dict[str, Any]:
        """``slot_was_set``: ``- name: value`` (that value) or ``- name`` (any value: "*")."""
        values: dict[str, Any] = {}
        for item in raw if isinstance(raw, list) else [raw]:
            if isinstance(item, str):
                values[item] = "*"
            elif isinstance(item, dict):
                values.update({str(k): v for k, v in item.items()})
            else:
                raise ConfigError(where, f"has slot_was_set {item!r}", "Write - slot_name: value")
        values.pop("requested_slot", None)  # the form keeps it
        return values

    def _steps(
        self, steps: list[dict[str, Any]], rule: str, where: str, *, active_form: str | None
    ) -> tuple[RuleStep, ...]:
        out: list[RuleStep] = []
        for i, step in enumerate(steps):
            if "intent" in step or "or" in step:
                self.found.notes.append(f"rule {rule!r}: the turns after its first (a rule answers one message)")
                break
            if "action" not in step:
                continue  # active_loop / slot_was_set after an action describe what it did
            name = str(step["action"])
            following = steps[i + 1] if i + 1 < len(steps) else {}
            if following.get("active_loop") == name and name not in self._forms:
                raise ConfigError(where, f"starts form {name!r}, which domain.yml's forms lack", "Add it under forms:")
            if name in self._forms:
                if active_form == name:
                    continue  # back to the form it interrupted: the engine asks its question again
                out.append(RuleStep("form", name))
                if following.get("active_loop") == name:
                    break  # the form takes over the conversation
            elif name == "action_listen":
                out.append(RuleStep("listen"))
            elif name in UNSUPPORTED_ACTIONS:
                self.found.notes.append(f"{name} (rule {rule!r}: skipped)")
            elif name in self._responses:
                out.append(RuleStep("response", name))
            elif name.startswith("utter_"):
                raise ConfigError(where, f"says {name!r}, which domain.yml has no response for", "Add the response")
            else:
                out.append(RuleStep("action", name))
        while out and out[-1].kind == "listen":
            out.pop()  # waiting for the customer is what happens after every rule anyway
        return tuple(out)

    def _chained(self, rule: Rule, depth: int = 0) -> Rule:
        if rule.wait_for_user_input or not rule.then or depth >= CHAIN_LIMIT:
            return rule
        last = rule.then[-1].name
        following = [c for c in self._continuations if c.after == last]
        if not following:
            return rule
        chosen = following[0]
        self._used.add(chosen.name)
        if chosen.conditional:
            self.found.notes.append(f"rule {chosen.name!r}: its condition (it runs after {last} whenever that runs)")
        chained = replace(rule, then=rule.then + chosen.then, wait_for_user_input=chosen.wait)
        return self._chained(chained, depth + 1)
