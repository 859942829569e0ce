"""What linking channels says: the code and where to type it, the question to the customer who asked
for it, and how it ended. The pipeline issues and checks the proofs (shared/linking.py); these are the
words, from the project's responses, and, once linked, the active form's question again: the form goes
on on the new channel."""

from __future__ import annotations

from seamline.bots.dialogue import forms
from seamline.bots.dialogue.model import Decision, Domain
from seamline.bots.dialogue.responses import Responses
from seamline.shared.message import Button, Reply
from seamline.shared.session import Session


class LinkWords:
    """Mixed into ``Dialogue`` (engine.py), which sets these attributes."""

    domain: Domain
    _responses: Responses
    labels: dict[str, dict[str, str]]

    def _has(self, key: str, session: Session) -> bool:
        return self._responses.has(key, session.language) or self._responses.has(key, "en")

    def link_code(self, code: str, session: Session, target: str | None = None) -> Decision:
        """The answer to "link my account": the code and the channel it is for, or why there is none
        (asked too often)."""
        if not code:
            return Decision((self._responses.render("link_rate_limited", session.language, {}),))
        values = {"code": code, "channel": self._channel(target or "", session.language)}
        return Decision((self._responses.render("link_account", session.language, values),))

    def link_where(self, targets: list[str], session: Session) -> Decision:
        """Which channel will the code be typed on? A code is valid on that one only. No other
        channel connected: there is nothing to link."""
        if not targets:
            return Decision((self._responses.render("link_nowhere", session.language, {}),))
        reply = self._responses.render("link_where", session.language, {})
        buttons = tuple(
            Button(self._label("channel_buttons", c, session.language), f"/link_account {c}") for c in targets
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
        return self._label("channels", channel, language)

    def _label(self, group: str, channel: str, language: str) -> str:
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
            values = {"minutes": str(minutes or ""), "channel": self._channel(from_channel or "", language)}
            return Decision((self._responses.render(key, language, values),))
        replies = []
        if topic and from_channel:
            name = self._responses.phrase("topics", topic, language, session.slots) or topic
            values = {"topic": name, "channel": self._channel(from_channel, language)}
            replies.append(self._responses.render("link_done_context", language, values))
        else:
            replies.append(self._responses.render("link_done", language, {}))
        form = self.domain.forms.get(session.active_form or "")
        if form is not None and session.handoff != "with_agent":  # the form goes on here: ask again
            slot = session.requested_slot or forms.missing(form, session.slots)
            question = next((k for k in form.ask_key(slot or "") if self._has(k, session)), None)
            if question is not None:
                replies.append(self._responses.render(question, language, session.slots))
        return Decision(tuple(replies))
