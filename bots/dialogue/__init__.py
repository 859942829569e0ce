"""The dialogue: what the bot says and does, as data (a project's config or a Rasa project) and as the
project's own rasa-sdk actions. ``Dialogue`` decides one turn; ``Domain`` is what it decides from."""

from seamline.bots.dialogue.domain import load_domain
from seamline.bots.dialogue.engine import Dialogue
from seamline.bots.dialogue.model import (
    ActionError,
    ActionServer,
    Condition,
    Decision,
    Domain,
    Form,
    Reminder,
    Rule,
    RuleStep,
    Slot,
    SlotCheck,
    SlotMapping,
)
from seamline.bots.dialogue.responses import Responses

__all__ = [
    "ActionError",
    "ActionServer",
    "Condition",
    "Decision",
    "Dialogue",
    "Domain",
    "Form",
    "Reminder",
    "Responses",
    "Rule",
    "RuleStep",
    "Slot",
    "SlotCheck",
    "SlotMapping",
    "load_domain",
]
