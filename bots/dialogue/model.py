"""The dialogue as data: what a bot project's config (or a Rasa project) says the bot does.

``Domain`` is read once at start, from Seamline's own files (``config/domain.yml``,
``config/rules.yml``, ``config/responses/``: bots/dialogue/domain.py) or from a Rasa 3.x project
(bots/dialogue/rasa.py); both give the same shapes, so one engine (bots/dialogue/engine.py) runs
either. Everything here is frozen: the engine keeps per-conversation state in the ``Session``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from seamline.shared.errors import SeamlineError
from seamline.shared.message import Reply

if TYPE_CHECKING:
    from seamline.bots.dialogue.responses import Responses

SLOT_TYPES = ("text", "bool", "categorical", "float", "list", "any")
MAPPING_TYPES = ("from_entity", "from_intent", "from_text", "from_button", "from_profile", "from_action")

# The customer stops a form with one of these (any case, the whole message), whatever the model says.
CANCEL_WORDS = ("cancel", "stop", "отмена", "отменить", "стоп")
MAX_ACTIONS_PER_TURN = 10  # follow-up actions chained in one turn before the chain is cut (logged)


@dataclass(frozen=True)
class SlotMapping:
    """Where a slot's value comes from (Rasa's slot mappings, plus the customer profile)."""

    type: str  # one of MAPPING_TYPES; from_action = Rasa's "custom": only an action sets it
    entity: str | None = None  # from_entity: the entity type
    intent: tuple[str, ...] = ()  # only when the message has one of these intents (empty: any)
    not_intent: tuple[str, ...] = ()  # never when the message has one of these intents
    value: Any = None  # from_intent / from_button: the value set
    attribute: str | None = None  # from_profile: name, phone, email, language, or a profile attribute
    active_form: str | None = None  # only while this form is active (Rasa: conditions.active_loop)
    requested_slot: str | None = None  # ... and it asks for this slot (Rasa: conditions.requested_slot)


@dataclass(frozen=True)
class Slot:
    name: str
    type: str = "any"  # one of SLOT_TYPES
    values: tuple[str, ...] = ()  # categorical: the allowed values
    initial: Any = None
    mappings: tuple[SlotMapping, ...] = ()


@dataclass(frozen=True)
class SlotCheck:
    """How a form checks a slot's value before keeping it. All that are set must pass."""

    pattern: str | None = None  # a regular expression the whole value must match
    entity: str | None = None  # the value must come from an entity of this type
    action: str | None = None  # a custom action (a FormValidationAction, e.g. validate_<form>)
    invalid: str | None = None  # response key said when the value is refused (else ask again)


@dataclass(frozen=True)
class RuleStep:
    """One thing a rule (or a form's submission) does, in order.

    - ``response``: say response ``name``;
    - ``action``: run custom action ``name`` (in process or on the action server);
    - ``form``: start form ``name`` (it asks for its first missing slot);
    - ``handoff``: pass the conversation to people, ``name`` being the reason;
    - ``slot``: set slot ``name`` to ``value``;
    - ``listen``: stop and wait for the customer (Rasa's action_listen).
    """

    kind: Literal["response", "action", "form", "handoff", "slot", "listen"]
    name: str = ""
    value: Any = None


@dataclass(frozen=True)
class Condition:
    """When a rule applies besides its intent. Empty fields do not constrain.

    ``slots``: each slot must have this value (None: must be unset; the string "*": must be set).
    ``active_form``: "" means "only while no form is active", a name "only while that one is".
    """

    slots: Mapping[str, Any] = field(default_factory=dict)
    channels: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    active_form: str | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    then: tuple[RuleStep, ...]
    intent: str | None = None  # None: a submission rule (``after_form``) or a conversation-start rule
    when: Condition = field(default_factory=Condition)
    after_form: str | None = None  # runs when this form has all its slots (Rasa: form submission)
    conversation_start: bool = False
    wait_for_user_input: bool = True  # False: after ``then``, the next matching rule runs as well
    source: str = ""  # where it was written (file, rule name): for errors and `seamline data validate`


@dataclass(frozen=True)
class Form:
    name: str
    required_slots: tuple[str, ...]
    ask: Mapping[str, str] = field(default_factory=dict)  # slot -> response key; default below
    checks: Mapping[str, SlotCheck] = field(default_factory=dict)
    validate_action: str | None = None  # validate_<name> when the project defines it
    submit: tuple[RuleStep, ...] = ()  # when every slot is filled (also: rules with after_form)
    cancelled: str | None = None  # response key said when the customer cancels (else "form_cancelled")

    def ask_key(self, slot: str) -> tuple[str, ...]:
        """The response keys that may ask for ``slot``, best first (Rasa's names, then the short one)."""
        if slot in self.ask:
            return (self.ask[slot],)
        return (f"utter_ask_{self.name}_{slot}", f"utter_ask_{slot}", f"ask_{slot}")


@dataclass(frozen=True)
class Domain:
    """Everything the bot can say and do, as read from config (or a Rasa project)."""

    responses: Responses
    intents: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    slots: Mapping[str, Slot] = field(default_factory=dict)
    forms: Mapping[str, Form] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    actions: tuple[str, ...] = ()  # custom actions declared (in-process or on the action server)
    # Responses said without a rule: the response named after the intent (Seamline's convention) when
    # True; a Rasa project answers only what its rules say (and ``utter_default`` when nothing matches).
    answer_by_intent_name: bool = True
    ignored: tuple[str, ...] = ()  # what was read and is not supported, said once at start
    source: str = ""  # the folder it was read from


# -- what an action returns, and how it fails ---------------------------------------------------------


class ActionError(SeamlineError):
    """A custom action did not give a usable answer. ``kind``: failed (raised), timeout, unknown (no
    such action), malformed (the answer is not events/responses), rejected (a form validation refused:
    Rasa's ActionExecutionRejection), unreachable (the action server)."""

    def __init__(self, action: str, kind: str, detail: str) -> None:
        super().__init__(f"action {action!r} {kind}: {detail}")
        self.action = action
        self.kind = kind
        self.detail = detail


class ActionServer(Protocol):
    """Runs rasa-sdk actions: in process (bots/dialogue/actions.py ``LocalActions``) or over Rasa's
    action server HTTP protocol (``RemoteActions``). ``call`` is exactly the JSON body Rasa posts
    (next_action, sender_id, tracker, domain, version); the answer is ``{"events": [...],
    "responses": [...]}`` as Rasa's action server returns it."""

    def knows(self, name: str) -> bool: ...

    async def run(self, call: dict[str, Any]) -> dict[str, Any]: ...

    async def close(self) -> None: ...


# -- what a turn decided, beyond the replies ------------------------------------------------------


@dataclass(frozen=True)
class Reminder:
    """A message scheduled by an action (Rasa's ReminderScheduled): at ``at``, intent ``intent`` is
    triggered for the customer as if they had said it, and the answer goes out on the channel that
    reaches them then. Stored, so it survives a restart (bots/dialogue/reminders.py)."""

    name: str
    intent: str
    at: datetime
    entities: tuple[tuple[str, Any], ...] = ()
    kill_on_user_message: bool = True


@dataclass(frozen=True)
class Decision:
    replies: tuple[Reply, ...]
    escalate: str | None = None  # why a person should take over (a rule, an intent, ConversationPaused)
    events: tuple[str, ...] = ()
    resume: bool = False  # ConversationResumed: the conversation goes back to the bot
    reminders: tuple[Reminder, ...] = ()  # to schedule
    cancel_reminders: tuple[str, ...] = ()  # reminder names to cancel ("*": all of this customer)
    problems: tuple[str, ...] = ()  # why an action failed, in a sentence (the agent console shows it)
    actions: tuple[str, ...] = ()  # custom actions run this turn, in order (conversation tests, logs)
