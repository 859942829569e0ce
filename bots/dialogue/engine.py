"""Deciding what to say: responses per intent and language, one small form, fallbacks.

The decision is pure: it reads the parse and changes the session; storing and sending are
the pipeline's job.
"""

from __future__ import annotations

from seamline.bots.dialogue.model import Decision
from seamline.bots.dialogue.responses import Responses, _Slots
from seamline.nlu.parse import Parse
from seamline.shared.message import Button, Reply
from seamline.shared.session import Session


class Dialogue:
    def __init__(
        self, *, responses: Responses, escalate_intents: dict[str, str] | None = None, fallbacks_before_human: int = 2
    ) -> None:
        self._responses = responses
        self._escalate = escalate_intents or {}
        self._fallbacks_before_human = fallbacks_before_human
        # Each channel's labels per language, as its plug-in declares them (set by the composition
        # root): what a channel is called when the project's responses do not name it.
        self.labels: dict[str, dict[str, str]] = {}

    def decide(self, parse: Parse, session: Session) -> Decision:
        if parse.language in self._responses.languages:
            session.language = parse.language
        say = lambda key: self._responses.render(key, session.language, session.slots)  # noqa: E731
        order_number = parse.entity("order_number")

        if session.active_form == "order_status":
            if order_number:
                session.active_form = None
                session.slots["order_number"] = order_number
                session.fallbacks = 0
                return Decision((say("order_status"),))
            if not parse.understood or parse.intent == "order_status":
                return Decision((say("ask_order_number"),))
            session.active_form = None  # the customer moved on to something else

        if not parse.understood:
            session.fallbacks += 1
            if session.fallbacks >= self._fallbacks_before_human:
                return Decision((say("fallback_offer_human"),))
            return Decision((say("fallback"),))
        session.fallbacks = 0

        if parse.intent == "order_status":
            if not order_number:
                session.active_form = "order_status"
                return Decision((say("ask_order_number"),))
            session.slots["order_number"] = order_number
        elif order_number:
            session.slots["order_number"] = order_number

        replies = [say(parse.intent)] if self._responses.has(parse.intent, session.language) else [say("fallback")]
        reason = self._escalate.get(parse.intent)
        if reason and session.handoff == "bot":
            return Decision(tuple(replies), escalate=reason)  # the handoff says what happens next
        return Decision(tuple(replies))

    def say(self, key: str, session: Session) -> Reply:
        return self._responses.render(key, session.language, session.slots)

    # -- linking channels (the pipeline issues and checks the proofs; these are the words) ------

    def link_code(self, code: str, session: Session, target: str | None = None) -> Decision:
        """The answer to "link my account": the code and the channel it is for, or why there is none
        (asked too often)."""
        if not code:
            return Decision((self._responses.render("link_rate_limited", session.language, {}),))
        return Decision(
            (
                self._responses.render(
                    "link_account",
                    session.language,
                    {"code": code, "channel": self._channel(target or "", session.language)},
                ),
            )
        )

    def link_where(self, targets: list[str], session: Session) -> Decision:
        """Which channel will the code be typed on? A code is valid on that one only. No other
        channel connected: there is nothing to link."""
        if not targets:
            return Decision((self._responses.render("link_nowhere", session.language, {}),))
        reply = self._responses.render("link_where", session.language, {})
        buttons = tuple(
            Button(self._named("channel_buttons", c, session.language), f"/link_account {c}") for c in targets
        )
        return Decision((Reply(reply.text, buttons),))

    def link_question(self, channel: str, ref: str, language: str) -> Reply:
        """To the customer who asked for a code: someone typed it on ``channel``; is it them? The
        buttons carry the request's reference ("{ref}" in the response's payloads)."""
        reply = self._responses.render("link_question", language, {"channel": self._channel(channel, language)})
        return Reply(reply.text, tuple(Button(b.title, b.payload.replace("{ref}", ref), b.kind) for b in reply.buttons))

    def link_declined_there(self, language: str) -> Reply:
        return self._responses.render("link_not_confirmed", language, {})

    def _channel(self, channel: str, language: str) -> str:
        return self._named("channels", channel, language)

    def _named(self, group: str, channel: str, language: str) -> str:
        """A channel's name in a sentence or on a button: the project's responses first, then the
        channel plug-in's label, then the bare name."""
        labels = self.labels.get(channel, {})
        return self._responses.phrase(group, channel, language) or labels.get(language) or labels.get("en") or channel

    def has_topic(self, intent: str) -> bool:
        return self._responses.phrase("topics", intent, "en") is not None

    def link_outcome(
        self,
        status: str,
        session: Session,
        *,
        topic: str | None = None,
        from_channel: str | None = None,
        minutes: int | None = None,
    ) -> Decision:
        language = session.language
        if status != "linked":
            key = {
                "already": "link_already",
                "expired": "link_expired",
                "used": "link_used",
                "locked": "link_locked",
                "pending": "link_pending",
                "declined": "link_declined",
                "stale": "link_stale",
                "confirmed": "link_confirmed",
            }.get(status, "link_invalid")
            return Decision(
                (
                    self._responses.render(
                        key,
                        language,
                        {"minutes": str(minutes or ""), "channel": self._channel(from_channel or "", language)},
                    ),
                )
            )
        replies = []
        if topic and from_channel:
            number = session.slots.get("order_number")
            name = (
                self._responses.phrase(
                    "topics", topic if number or topic != "order_status" else "order_status_no_number", language
                )
                or topic
            )
            replies.append(
                self._responses.render(
                    "link_done_context",
                    language,
                    {"topic": name.format_map(_Slots(session.slots)), "channel": self._channel(from_channel, language)},
                )
            )
        else:
            replies.append(self._responses.render("link_done", language, {}))
        if session.active_form == "order_status" and session.handoff != "with_agent":
            replies.append(self._responses.render("ask_order_number", language, session.slots))
        return Decision(tuple(replies))
