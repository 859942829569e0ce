"""Deciding one turn from the domain: slots from mappings, the active form, the first matching rule,
the response named after the intent, fallbacks; custom actions through the action server.

The decision changes only the session (slots, form, tracker events); storing and sending are the
pipeline's job. The session is the customer's, not a channel's, so a form started on the website is
continued on Telegram. The words about linking channels are in link_words.py (``link_*``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seamline.bots.dialogue import forms, rules, slots
from seamline.bots.dialogue.link_words import LinkWords
from seamline.bots.dialogue.model import MAX_ACTIONS_PER_TURN, ActionServer, Decision, Domain, Form, Reminder, RuleStep
from seamline.bots.dialogue.responses import Responses
from seamline.bots.dialogue.tracker import bot_event, user_event
from seamline.nlu.parse import Parse
from seamline.shared.message import Message, Reply
from seamline.shared.session import Session

if TYPE_CHECKING:  # imported when an action runs: the runner brings aiohttp, which deciding needs not
    from seamline.bots.dialogue.actions import Outcome

log = logging.getLogger(__name__)


# The framework's own texts, for a project whose responses lack them.
_SPARE = {
    "fallback": "Sorry, I didn't understand that.",
    "fallback_offer_human": "Sorry, I still don't understand. Shall I pass you to a person?",
    "action_failed": "Sorry, something went wrong on our side; please try again or ask for a person.",
    "form_cancelled": "Okay, stopped.",
}


@dataclass
class _Turn:
    """What one turn has decided so far."""

    session: Session
    channel: str
    parse: Parse
    profile: dict[str, Any]
    found: dict[str, Any] = field(default_factory=dict)  # slot values the message gave (mappings)
    replies: list[Reply] = field(default_factory=list)
    escalate: str | None = None
    resume: bool = False
    reminders: list[Reminder] = field(default_factory=list)
    cancel_reminders: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    budget: int = MAX_ACTIONS_PER_TURN
    stop: bool = False  # a `listen` step or a handoff: nothing else is said this turn

    def decision(self) -> Decision:
        return Decision(
            tuple(self.replies),
            escalate=self.escalate,
            resume=self.resume,
            reminders=tuple(self.reminders),
            cancel_reminders=tuple(self.cancel_reminders),
            problems=tuple(self.problems),
            actions=tuple(self.actions),
        )


class Dialogue(LinkWords):
    def __init__(
        self,
        *,
        domain: Domain | None = None,
        responses: Responses | None = None,
        actions: ActionServer | None = None,
        action_timeout: float = 10.0,
        escalate_intents: dict[str, str] | None = None,
        fallbacks_before_human: int = 2,
    ) -> None:
        if domain is None:
            if responses is None:
                raise TypeError("Dialogue needs a domain (or its responses)")
            domain = Domain(responses=responses)
        self.domain = domain
        self._responses = domain.responses
        self._actions = actions
        self._timeout = action_timeout
        self._escalate = escalate_intents or {}
        self._fallbacks_before_human = fallbacks_before_human
        # Each channel's labels per language, as its plug-in declares them (set by the composition
        # root): what a channel is called when the project's responses do not name it.
        self.labels: dict[str, dict[str, str]] = {}
        # Whether the handoff will take this message to people (set by the composition root from
        # config/routing.yml): an interruption that goes to people does not ask the form's question.
        self.to_people: Callable[[str | None, str, Session], bool] | None = None

    # -- one turn ------------------------------------------------------------------------------

    async def decide(self, parse: Parse, session: Session, *, message: Message | None = None) -> Decision:
        if parse.language in self._responses.languages:
            session.language = parse.language
        channel = message.channel if message is not None else (session.last_channel or "")
        first = not any(e.get("event") == "user" for e in session.events)
        session.record(user_event(parse, message))
        turn = _Turn(session, channel, parse, slots.profile(session, message))
        found = turn.found = slots.candidates(self.domain, parse, session, message=message, known=turn.profile)
        form = self.domain.forms.get(session.active_form or "")
        if session.active_form and form is None:  # a form the config no longer has
            self._leave_form(session)
        if form is not None:
            await self._in_form(turn, form, found, message)
        else:
            self._set(session, found)
            await self._answer(turn, first=first)
        return turn.decision()

    async def _in_form(self, turn: _Turn, form: Form, found: dict[str, Any], message: Message | None) -> None:
        session, parse = turn.session, turn.parse
        if forms.cancelling(message.text if message is not None else "", parse):
            self._leave_form(session)
            self._say(turn, form.cancelled or "form_cancelled")
            return
        mine = {k: v for k, v in found.items() if k in form.required_slots}
        self._set(session, {k: v for k, v in found.items() if k not in mine})
        if mine:
            session.fallbacks = 0
            before, events, values = len(turn.replies), list(session.events), dict(session.slots)
            refused = [slot for slot, value in mine.items() if not await self._accept(turn, form, slot, value)]
            if len(refused) == len(mine) and parse.understood and self._answers(turn):
                # Nothing taken, and the message has an answer of its own ("where is my order" when
                # asked for a phone, taken by from_text): a question, not an answer to the form's.
                del turn.replies[before:]
                session.events[:], session.slots = events, values
                await self._interrupt(turn, form, message)
                return
            if refused:
                self._refused(turn, form, refused[0], said=len(turn.replies) > before)
                self._ask(turn, form, forms.missing(form, session.slots) or refused[0])
                return
            await self._continue(turn, form)
            return
        if parse.understood and self._answers(turn):
            await self._interrupt(turn, form, message)
            return
        if not parse.understood:
            session.fallbacks += 1
            if session.fallbacks >= self._fallbacks_before_human:
                self._say(turn, "fallback_offer_human")
                return
        self._ask(turn, form, session.requested_slot or forms.missing(form, session.slots) or "")

    def _refused(self, turn: _Turn, form: Form, slot: str, *, said: bool) -> None:
        """The form's words for a refused value, unless a validation action ``said`` why itself."""
        check = form.checks.get(slot)
        if check is not None and check.invalid and not said and self._has(check.invalid, turn.session):
            self._say(turn, check.invalid)

    async def _interrupt(self, turn: _Turn, form: Form, message: Message | None) -> None:
        """Another question mid-form: answered, then the form asks its question again (unless the
        answer started another form, or the conversation goes to people)."""
        session, parse = turn.session, turn.parse
        session.fallbacks = 0
        await self._answer(turn, first=False)
        text = message.text if message is not None else ""
        leaving = self.to_people is not None and self.to_people(parse.intent, text, session)
        if not turn.stop and turn.escalate is None and not leaving and session.active_form == form.name:
            self._ask(turn, form, session.requested_slot or forms.missing(form, session.slots) or "")

    def _answers(self, turn: _Turn) -> bool:
        """Whether the message's intent has something to say of its own (a rule, or its response)."""
        intent = turn.parse.intent
        if self._rules(turn, intent):
            return True
        return self.domain.answer_by_intent_name and self._has(intent, turn.session)

    async def _answer(self, turn: _Turn, *, first: bool) -> None:
        session, parse = turn.session, turn.parse
        if first:
            for rule in rules.at_start(
                self.domain.rules,
                intent=parse.intent,
                slots=session.slots,
                channel=turn.channel,
                language=session.language,
            ):
                await self._run(turn, rule.then)
                if turn.stop:
                    return
        if not parse.understood:
            session.fallbacks += 1
            if session.fallbacks >= self._fallbacks_before_human:
                self._say(turn, "fallback_offer_human")
            else:
                self._say(turn, self._fallback_key(session))
            return
        session.fallbacks = 0
        matched = self._rules(turn, parse.intent)
        if matched:
            for rule in matched:
                await self._run(turn, rule.then)
                if rule.wait_for_user_input or turn.stop:
                    break
        elif self.domain.answer_by_intent_name and self._has(parse.intent, session):
            self._say(turn, parse.intent)
        else:
            self._say(turn, self._fallback_key(session))
        reason = self._escalate.get(parse.intent)
        if reason and session.handoff == "bot" and turn.escalate is None:
            turn.escalate = reason  # the handoff says what happens next

    def _rules(self, turn: _Turn, intent: str | None) -> list[Any]:
        session = turn.session
        return rules.matching(
            self.domain.rules,
            intent=intent,
            slots=session.slots,
            channel=turn.channel,
            language=session.language,
            form=session.active_form,
        )

    def _fallback_key(self, session: Session) -> str:
        if not self.domain.answer_by_intent_name and self._has("utter_default", session):
            return "utter_default"
        return "fallback"

    # -- steps ---------------------------------------------------------------------------------

    async def _run(self, turn: _Turn, steps: tuple[RuleStep, ...]) -> None:
        for step in steps:
            if turn.stop:
                return
            if step.kind == "response":
                self._say(turn, step.name)
            elif step.kind == "action":
                await self._action(turn, step.name)
            elif step.kind == "form":
                await self._start(turn, step.name)
            elif step.kind == "handoff":
                turn.escalate = step.name or "rule"
                turn.stop = True
            elif step.kind == "slot":
                self._set(turn.session, {step.name: step.value})
            elif step.kind == "listen":
                turn.stop = True

    async def _named(self, turn: _Turn, name: str) -> None:
        """A follow-up by name: a response, a form or a custom action."""
        if self._has(name, turn.session):
            self._say(turn, name)
        elif name in self.domain.forms:
            await self._start(turn, name)
        elif name not in ("action_listen", "action_restart"):
            await self._action(turn, name)

    async def _action(self, turn: _Turn, name: str) -> Outcome | None:
        """Run custom action ``name`` and apply what it returned; a failure is a polite reply and a
        problem the console shows, never an error of the turn."""
        if turn.budget <= 0:
            log.warning(
                "conversation %s: more than %d actions in one turn; %r not run",
                turn.session.conversation_id,
                MAX_ACTIONS_PER_TURN,
                name,
            )
            return None
        turn.budget -= 1
        from seamline.bots.dialogue.actions import run_action

        outcome = await run_action(
            name,
            server=self._actions,
            domain=self.domain,
            session=turn.session,
            channel=turn.channel,
            timeout=self._timeout,
        )
        turn.actions.append(name)
        await self._apply(turn, name, outcome)
        return outcome

    async def _apply(self, turn: _Turn, name: str, outcome: Outcome) -> None:
        for reply in outcome.replies:
            self._reply(turn, reply)
        if outcome.problem:
            turn.problems.append(f"{name}: {outcome.problem}")
            if len(turn.problems) == 1:  # one apology per turn, however many actions failed
                self._say(turn, "action_failed")
        turn.reminders.extend(outcome.reminders)
        turn.cancel_reminders.extend(outcome.cancel_reminders)
        turn.resume = turn.resume or outcome.resume
        if outcome.escalate:
            turn.escalate = outcome.escalate
            turn.stop = True
        for followup in outcome.followups:
            if turn.stop:
                break
            await self._named(turn, followup)

    # -- forms ---------------------------------------------------------------------------------

    async def _start(self, turn: _Turn, name: str) -> None:
        form = self.domain.forms[name]
        session = turn.session
        if session.active_form != name:
            session.active_form = name
            session.record(slots.active_loop_event(name))
            # What the starting message itself gave the form is checked as any answer would be.
            for slot in form.required_slots:
                if slot in turn.found and session.slots.get(slot) is not None:
                    before = len(turn.replies)
                    if not await self._accept(turn, form, slot, session.slots[slot]):
                        self._set(session, {slot: None})
                        self._refused(turn, form, slot, said=len(turn.replies) > before)
        await self._continue(turn, form)

    async def _continue(self, turn: _Turn, form: Form) -> None:
        """Ask for the next missing slot, or submit when there is none."""
        session = turn.session
        need = forms.missing(form, session.slots)
        if need is not None:
            self._ask(turn, form, need)
            return
        self._leave_form(session)
        await self._run(turn, form.submit)
        for rule in rules.after_form(
            self.domain.rules, form.name, slots=session.slots, channel=turn.channel, language=session.language
        ):
            if turn.stop:
                break
            await self._run(turn, rule.then)

    def _ask(self, turn: _Turn, form: Form, slot: str) -> None:
        session = turn.session
        if slot and session.requested_slot != slot:
            session.requested_slot = slot
            session.record(slots.slot_event("requested_slot", slot))
        key = next((k for k in form.ask_key(slot) if self._has(k, session)), None)
        if key is None:
            log.warning(
                "form %s has no question for slot %r (responses %s)", form.name, slot, ", ".join(form.ask_key(slot))
            )
            return
        self._say(turn, key)

    async def _accept(self, turn: _Turn, form: Form, slot: str, value: Any) -> bool:
        """Check ``value`` for ``slot`` (pattern, entity, then the validation action) and keep it if it
        passes. A validation action refuses by setting the slot to None (rasa-sdk's FormValidationAction)."""
        session = turn.session
        if not forms.passes(form, slot, value, turn.parse):
            return False
        check = form.checks.get(slot)
        action = (check.action if check is not None else None) or form.validate_action
        self._set(session, {slot: value})
        if action is None:
            return True
        if turn.budget <= 0:
            return True
        turn.budget -= 1
        from seamline.bots.dialogue.actions import run_action

        outcome = await run_action(
            action,
            server=self._actions,
            domain=self.domain,
            session=session,
            channel=turn.channel,
            timeout=self._timeout,
            slots_to_validate={slot: value},
        )
        turn.actions.append(action)
        await self._apply(turn, action, outcome)
        if outcome.problem:
            return True  # the checks that could run passed; the customer is not trapped in the form
        return not outcome.rejected and session.slots.get(slot) is not None

    def _leave_form(self, session: Session) -> None:
        if session.active_form is not None:
            session.record(slots.active_loop_event(None))
        session.active_form = None
        session.requested_slot = None

    # -- saying --------------------------------------------------------------------------------

    def _set(self, session: Session, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if session.slots.get(name) != value:
                session.slots[name] = value
                session.record(slots.slot_event(name, value))

    def _say(self, turn: _Turn, key: str) -> None:
        session = turn.session
        if not any(self._responses.has(key, lang) for lang in self._responses.languages):
            # A project without this framework text (a hand-made one): said in plain English rather
            # than failing the turn; `seamline data validate` names what is missing.
            log.warning("no response %r in the project's responses", key)
            if key in _SPARE:
                self._reply(turn, Reply(_SPARE[key]))
            return
        self._reply(
            turn,
            self._responses.render(key, session.language, session.slots, channel=turn.channel, profile=turn.profile),
        )

    def _reply(self, turn: _Turn, reply: Reply) -> None:
        turn.replies.append(reply)
        turn.session.record(bot_event(reply))

    def say(self, key: str, session: Session) -> Reply:
        return self._responses.render(key, session.language, session.slots)
