"""Custom actions written against rasa-sdk, run the two ways a project runs them: in this process
(the project's ``actions`` package) and on a real ``python -m rasa_sdk`` server on 127.0.0.1. Each
test runs both unless the thing tested exists on one side only. What is asserted is what a customer,
an agent or the bot's author would notice: the replies, the slots, the handoff and its reason, the
sentence the console shows when an action fails, and that a failure changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from seamline.bots.dialogue.action_server import RemoteActions
from seamline.bots.dialogue.actions import run_action
from seamline.bots.dialogue.tracker import user_event
from seamline.nlu.parse import Entity, Parse
from seamline.shared.message import Button, Message
from seamline.shared.session import Session

from tests.bots.actions.sample import DOMAIN, conversation


async def run(server, name: str, session: Session, *, channel: str = "telegram", timeout: float = 10.0, **kw):
    return await run_action(name, server=server, domain=DOMAIN, session=session, channel=channel, timeout=timeout, **kw)


# -- what an action does --------------------------------------------------------------------------


async def test_slot_events_are_applied_as_the_slots_types_keep_them(server):
    session = conversation()
    outcome = await run(server, "action_check_order", session)
    assert outcome.problem is None
    assert [r.text for r in outcome.replies] == ["Order 48213 is shipped."]
    assert session.slots == {"order_number": "48213", "order_count": 3.0, "vip": True}
    assert [e["event"] for e in session.events] == ["user", "action", "slot", "slot", "slot"]
    assert session.events[1]["name"] == "action_check_order"


async def test_a_response_is_said_in_the_customers_language(server):
    session = conversation()
    session.language = "ru"
    outcome = await run(server, "action_check_order", session)
    assert [r.text for r in outcome.replies] == ["Заказ 48213: shipped."]


async def test_buttons_an_image_and_a_custom_payload_are_sent(server):
    outcome = await run(server, "action_rich", conversation())
    text, image, custom = outcome.replies
    assert text.text == "Pick one"
    assert text.buttons == (Button("Track", "/track"), Button("Cancel", "/stop"))
    assert image.image == "https://example.com/parcel.png" and image.text == ""
    assert custom.custom == {"card": {"order": "48213"}}


async def test_the_tracker_carries_the_cross_channel_history_the_message_and_the_channel(server):
    session = conversation("hello", channel="web")
    session.record(
        user_event(
            Parse("order_status", 0.9, entities=(Entity("order_number", "48213", "48213", 18, 23),)),
            Message("telegram", "chat-1", "user-1", "where is my order 48213"),
        )
    )
    session.active_form, session.requested_slot = "order_form", "order_number"
    outcome = await run(server, "action_tracker_echo", session)
    seen = outcome.replies[0].custom
    assert seen["sender_id"] == "customer-7"
    assert seen["channel"] == "telegram"
    assert seen["intent"] == "order_status"
    assert seen["text"] == "where is my order 48213"
    assert [(e["entity"], e["value"]) for e in seen["entities"]] == [("order_number", "48213")]
    assert seen["user_channels"] == ["web", "telegram"]
    assert seen["slots"]["order_number"] is None and seen["slots"]["requested_slot"] == "order_number"
    assert seen["active_loop"] == {"name": "order_form"}
    assert seen["latest_action_name"] == "action_listen"
    assert "vip" in seen["domain_slots"] and seen["domain_forms"] == {
        "order_form": {"required_slots": ["order_number"]}
    }


async def test_a_follow_up_action_is_handed_back_to_run_next(server):
    outcome = await run(server, "action_first", conversation())
    assert [r.text for r in outcome.replies] == ["first"] and outcome.followups == ["action_second"]


async def test_conversation_paused_hands_over_with_the_reason_the_action_gave(server):
    session = conversation()
    outcome = await run(server, "action_refund", session)
    assert outcome.escalate == "Refund over the limit"
    assert [r.text for r in outcome.replies] == ["A colleague will look at the refund."]
    plain = await run(server, "action_pause", conversation())
    assert plain.escalate == "Paused by action action_pause"
    assert (await run(server, "action_resume", conversation())).resume is True


async def test_reminders_are_scheduled_and_cancelled(server):
    outcome = await run(server, "action_remind", conversation())
    named, unnamed = outcome.reminders
    assert (named.name, named.intent, named.at) == ("tomorrow", "remind_order", datetime(2030, 1, 2, 9, 30, tzinfo=UTC))
    assert named.entities == (("order_number", "48213"),) and named.kill_on_user_message is False
    assert unnamed.name and unnamed.name != "tomorrow" and unnamed.kill_on_user_message is True
    assert outcome.cancel_reminders == ["old_reminder", "*"]


async def test_reset_session_start_rewind_and_a_form_opened_by_an_action(server):
    session = conversation(order_number="48213", tier="gold")
    await run(server, "action_start_over", session)
    assert session.slots == {"tier": "silver", "vip": True}  # initial values, then the action's own
    assert not any(e["event"] == "user" for e in session.events)  # the customer's message reverted
    await run(server, "action_open_form", session)
    assert (session.active_form, session.requested_slot) == ("order_form", "order_number")
    await run(server, "action_new_session", session)
    assert (session.active_form, session.requested_slot, session.slots) == (None, None, {"tier": "silver"})


async def test_a_validation_action_accepts_or_refuses_the_candidate(server):
    session = conversation("01234", order_number=None)
    session.active_form, session.requested_slot = "order_form", "order_number"
    refused = await run(server, "validate_order_form", session, slots_to_validate={"order_number": "01234"})
    assert [r.text for r in refused.replies] == ["Order numbers never start with 0."]
    assert session.slots["order_number"] is None and session.active_form == "order_form"
    accepted = await run(server, "validate_order_form", session, slots_to_validate={"order_number": " 48213"})
    assert accepted.problem is None and accepted.replies == []
    assert session.slots["order_number"] == "48213"


# -- how an action fails: a sentence for the console, the session as it was -------------------------


def unchanged(session: Session):
    return (dict(session.slots), session.active_form, session.requested_slot, list(session.events))


async def test_an_action_that_raises(server, caplog):
    session = conversation(vip=False)
    before = unchanged(session)
    outcome = await run(server, "action_fail", session)
    assert outcome.replies == [] and unchanged(session) == before
    assert outcome.problem.startswith("action_fail failed")
    if isinstance(server, RemoteActions):
        assert "HTTP 500" in outcome.problem
    else:
        assert "RuntimeError: the order system is down" in outcome.problem
    assert "conversation-7" in caplog.text and "where is my order" not in caplog.text


async def test_an_action_that_takes_too_long(server):
    session = conversation()
    before = unchanged(session)
    outcome = await run(server, "action_slow", session, timeout=0.3)
    assert outcome.problem == "action_slow timed out after 0.3 s" and unchanged(session) == before


async def test_an_answer_with_one_bad_event_changes_nothing(server):
    session = conversation(vip=False)
    before = unchanged(session)
    outcome = await run(server, "action_wrong_type", session)
    assert (
        outcome.problem == "action_wrong_type returned something unusable: slot 'order_count' is float; 'many' is not"
    )
    assert outcome.replies == [] and unchanged(session) == before
    unknown_form = await run(server, "action_unknown_form", session)
    assert "no_such_form" in unknown_form.problem and unchanged(session) == before


async def test_an_unknown_action(server):
    outcome = await run(server, "action_nobody_wrote", conversation())
    assert outcome.problem.startswith("action_nobody_wrote is not a known action")


async def test_a_rejection_is_not_a_failure(server):
    outcome = await run(server, "action_reject", conversation())
    assert outcome.rejected is True and outcome.problem is None


async def test_no_action_server_at_all():
    outcome = await run(None, "action_check_order", conversation())
    assert outcome.problem == "action_check_order is not a known action: no actions module defines it"


async def test_rasas_own_actions_need_no_server():
    """Rasa's default actions (named by Rasa rules or a FollowupAction) are run as Rasa runs them."""
    session = conversation(order_number="48213")
    session.active_form, session.requested_slot = "order_form", "order_number"
    assert (await run(None, "action_deactivate_loop", session)).problem is None
    assert (session.active_form, session.requested_slot) == (None, None)
    fallback = await run(None, "action_default_fallback", session)
    assert [r.text for r in fallback.replies] == ["Sorry?"]
    assert not any(e["event"] == "user" for e in session.events)  # the misunderstood message reverted
    await run(None, "action_restart", session)
    assert session.slots == {"tier": "silver"} and session.events[-1]["event"] == "restart"
