"""Agents' passwords: the common, repetitive and guessable ones are refused wherever a password is
set (``seamline agents add|set`` and ``AgentStore.add|change``), with the reason."""

from __future__ import annotations

import pytest

from tests.handoff.test_agents_cli import agents, logs_in

WEAK = [
    ("aaaaaaaaaa", "too repetitive"),
    ("abcabcabcabc", "too repetitive"),
    ("1234567890", "sequence"),
    ("qwertyuiop", "sequence"),
    ("abcdefghijk", "sequence"),
    ("йцукенгшщз", "sequence"),
    ("password123", "most common"),
    ("Password2024!", "most common"),
    ("P@ssw0rd2024", "most common"),
    ("iloveyou!!!", "most common"),
    ("1q2w3e4r5t", "most common"),
    ("olga.shop.2024", "e-mail"),
]


@pytest.mark.parametrize("password, problem", WEAK)
async def test_the_cli_refuses_a_weak_password_with_the_reason(server, env, capsys, password, problem):
    env.setenv("SEAMLINE_AGENT_PASSWORD", password)
    code, out, err = await agents(capsys, "add", "olga@shop.example", "--name", "Olga")
    assert code == 2 and problem in err and out == ""
    assert (await agents(capsys, "list"))[1] == ""  # nothing made
    assert await logs_in(server, "olga@shop.example", password) == 401


async def test_a_weak_new_password_is_refused_and_the_old_one_kept(server, env, capsys):
    env.setenv("SEAMLINE_AGENT_PASSWORD", "a long enough password")
    assert (await agents(capsys, "add", "olga@shop.example", "--name", "Olga"))[0] == 0
    env.setenv("SEAMLINE_AGENT_PASSWORD", "aaaaaaaaaaaa")
    code, _, err = await agents(capsys, "set", "olga@shop.example", "--password")
    assert code == 2 and "too repetitive" in err
    assert await logs_in(server, "olga@shop.example", "a long enough password") == 200


@pytest.mark.parametrize("password, problem", WEAK[:4] + WEAK[6:8])
async def test_the_agent_store_refuses_a_weak_password(server, password, problem):
    from seamline.bots.app import SEAMLINE

    store = server.app[SEAMLINE].handoff.agents
    with pytest.raises(ValueError, match=problem):
        await store.add("ivan@shop.example", name="Ivan", password=password, queues=[])
    await store.add("ivan@shop.example", name="Ivan", password="correct horse battery", queues=[])
    with pytest.raises(ValueError, match=problem):
        await store.change("ivan@shop.example", password=password)


@pytest.mark.parametrize(
    "password",
    ["correct horse battery", "a long enough password", "Tr0ub4dor&3x!", "my cat eats 7 lemons", "ёжик в тумане 1975"],
)
def test_good_passwords_pass(password):
    from seamline.handoff.passwords import problem

    assert problem(password, "olga@shop.example") is None


def test_a_password_is_stored_at_the_production_cost(cheap_password_hashes, monkeypatch):
    """The tests hash at a low cost (conftest.py); what Seamline stores outside them is scrypt at
    n=2**14, r=8, p=1, and a hash is checked at the cost it records."""
    from seamline.handoff import agents as store

    monkeypatch.setattr(store, "SCRYPT", dict(cheap_password_hashes))
    stored = store.hash_password("correct horse battery")
    assert stored.startswith("scrypt$16384$8$1$")
    assert store.check_password("correct horse battery", stored)
    assert not store.check_password("correct horse batterz", stored)
