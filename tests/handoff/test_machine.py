"""The handoff state machine: which moves are allowed, and when the bot is quiet."""

from __future__ import annotations

import itertools

import pytest

from seamline.handoff.machine import BOT_SILENT, STATES, TRANSITIONS, WITH_PEOPLE, IllegalTransition, check
from seamline.shared.errors import HandoffError

ALLOWED = [
    ("bot", "queued"),
    ("queued", "with_agent"),
    ("queued", "abandoned"),
    ("queued", "bot"),
    ("queued", "resolved"),
    ("with_agent", "bot"),
    ("with_agent", "resolved"),
    ("with_agent", "transferred"),
    ("with_agent", "queued"),
    ("transferred", "with_agent"),
    ("transferred", "queued"),
    ("transferred", "bot"),
    ("transferred", "resolved"),
]


def test_the_allowed_transitions_are_exactly_the_documented_ones():
    assert set(ALLOWED) == set(TRANSITIONS)


@pytest.mark.parametrize("current,target", ALLOWED)
def test_an_allowed_transition_passes(current, target):
    check(current, target)


DISALLOWED = [pair for pair in itertools.product(STATES, STATES) if pair not in set(ALLOWED)]


@pytest.mark.parametrize("current,target", DISALLOWED)
def test_every_other_transition_is_illegal(current, target):
    with pytest.raises(IllegalTransition) as raised:
        check(current, target)
    assert (raised.value.current, raised.value.target) == (current, target)
    assert current in str(raised.value) and target in str(raised.value)


@pytest.mark.parametrize(
    "current,target",
    [
        ("bot", "with_agent"),
        ("resolved", "bot"),
        ("abandoned", "queued"),
        ("bot", "transferred"),
        ("resolved", "with_agent"),
        ("bot", "bot"),
    ],
)
def test_the_notable_illegal_moves(current, target):
    with pytest.raises(HandoffError):  # IllegalTransition is a HandoffError: the API answers 409
        check(current, target)


def test_resolved_and_abandoned_are_final():
    assert not [t for t in TRANSITIONS if t[0] in ("resolved", "abandoned")]


def test_the_bot_is_silent_only_while_a_person_holds_the_conversation():
    assert BOT_SILENT == {"with_agent", "transferred"}
    assert "queued" not in BOT_SILENT and "bot" not in BOT_SILENT
    assert WITH_PEOPLE == {"queued", "with_agent", "transferred"}
    assert set(STATES) == {"bot", "queued", "with_agent", "transferred", "resolved", "abandoned"}
