"""Guessing link codes does not pay (issue 10, item 2): budgets per identity, per client address and in
total, taken before a code is checked, on every path, shared by every process through Redis.

The attacker is a script speaking the widget's WebSocket protocol: a new visitor (``hello`` without a
token) for every guess, and, behind a trusted proxy, a new address too.
"""

from __future__ import annotations

import pytest

from seamline.bots.app import SEAMLINE
from seamline.shared.message import Message
from seamline.shared.net import parse_networks

from tests.bots.test_linking import Recorder
from tests.bots.test_web_protocol import Client

PROXY = parse_networks(["127.0.0.1"])  # the test client plays a reverse proxy speaking for many addresses
LOCKED = "too many wrong codes"


async def visitor(http, server, address: str) -> Client:
    """A brand-new widget visitor coming from ``address`` (as the trusted proxy says)."""
    client = Client(http, server.ws_url)
    client.ws = await http.ws_connect(server.ws_url, headers={"X-Forwarded-For": address})
    await client.hello(lang="en")
    return client


async def guess(http, server, address: str, code: str) -> str:
    """One guess by a new visitor: the bot's answer, lower case."""
    client = await visitor(http, server, address)
    frames = await client.say(code, id="g-1")
    await client.ws.close()
    return frames[-1]["text"].lower()


async def live_code(server, sender: str = "501") -> str:
    """A code a Telegram customer asked for, to be typed in the website chat."""
    seamline = server.app[SEAMLINE]
    customer = await seamline.store.resolve_customer("telegram", sender, sender)
    return await seamline.linker.issue_code(customer.id, "telegram", sender, target="web")


def wrong(code: str, k: int) -> str:
    return f"{(int(code) + k) % 10**6:06d}"


async def test_new_visitors_from_one_address_stop_being_checked_and_then_even_the_right_code_is_refused(
    http, make_server, settings
):
    server = await make_server(settings, trusted_proxies=PROXY, link_guesses_per_address=5)
    code = await live_code(server)
    answers = [await guess(http, server, "203.0.113.9", wrong(code, k)) for k in range(1, 6)]
    assert all("isn't valid" in a for a in answers)  # five checked, each by a new visitor
    assert LOCKED in await guess(http, server, "203.0.113.9", wrong(code, 6))
    assert LOCKED in await guess(http, server, "203.0.113.9", code)  # not even looked at
    # Refused guesses take nothing from everyone's budget: one address cannot spend it for all.
    assert await server.app[SEAMLINE].limiter.used("link:all", window=3600) == 5
    # The code was never claimed: its owner's link still works from elsewhere (and asks them first).
    assert "waiting for confirmation" in await guess(http, server, "198.51.100.1", code)


async def test_parallel_guesses_cannot_all_slip_past_the_count(http, make_server, settings):
    server = await make_server(settings, trusted_proxies=PROXY, link_guesses_per_address=4)
    code = await live_code(server)
    clients = [await visitor(http, server, "203.0.113.77") for _ in range(12)]
    for k, client in enumerate(clients, start=1):  # all sent before any answer comes back
        await client.ws.send_json({"type": "message", "id": "p-1", "text": wrong(code, k)})
    answers = []
    for client in clients:
        while (frame := await client.receive("message"))["role"] == "customer":
            pass
        answers.append(frame["text"].lower())
    assert sum("isn't valid" in a for a in answers) == 4 and sum(LOCKED in a for a in answers) == 8


async def test_rotating_addresses_run_into_the_total_budget(http, make_server, settings):
    server = await make_server(settings, trusted_proxies=PROXY, link_guesses_per_address=3, link_guesses_per_hour=8)
    code = await live_code(server)
    answers = [await guess(http, server, f"198.51.100.{k}", wrong(code, k)) for k in range(1, 9)]
    assert all("isn't valid" in a for a in answers)
    assert LOCKED in await guess(http, server, "198.51.100.200", wrong(code, 9))
    assert LOCKED in await guess(http, server, "198.51.100.201", code)
    seamline = server.app[SEAMLINE]
    guesser = await seamline.store.find_customer("telegram", "501")
    assert [i.channel for i in await seamline.store.identities(guesser.id)] == ["telegram"]  # nobody got in


async def test_the_budgets_hold_across_two_processes_sharing_redis(
    http, make_server, settings, postgres_url, redis_url
):
    shared = dict(
        database_url=postgres_url,
        redis_url=redis_url,
        trusted_proxies=PROXY,
        link_guesses_per_address=100,
        link_guesses_per_hour=6,
    )
    first, second = await make_server(settings, **shared), await make_server(settings, **shared)
    code = await live_code(first)
    for k in range(1, 7):  # the script spreads its guesses over both processes
        assert "isn't valid" in await guess(http, first if k % 2 else second, f"192.0.2.{k}", wrong(code, k))
    assert LOCKED in await guess(http, first, "192.0.2.100", wrong(code, 7))
    assert LOCKED in await guess(http, second, "192.0.2.101", code)


async def test_six_digits_typed_as_an_order_number_are_counted_too(http, make_server, settings):
    server = await make_server(settings, trusted_proxies=PROXY, link_guesses_per_address=3)
    code = await live_code(server)
    for k in range(1, 4):  # the bot asks for an order number; the script answers with guesses
        client = await visitor(http, server, "203.0.113.50")
        await client.say("where is my order", id="o-1")
        answer = (await client.say(wrong(code, k), id="o-2"))[-1]["text"]
        assert wrong(code, k) in answer  # no live code: taken as the order number
        await client.ws.close()
    # The address's budget is spent: a live code typed there now is not checked on either path.
    client = await visitor(http, server, "203.0.113.50")
    await client.say("where is my order", id="o-1")
    assert code in (await client.say(code, id="o-2"))[-1]["text"]  # just an order number now
    assert LOCKED in await guess(http, server, "203.0.113.50", code)
    seamline = server.app[SEAMLINE]
    issuer = await seamline.store.find_customer("telegram", "501")
    assert len(await seamline.store.identities(issuer.id)) == 1


@pytest.mark.parametrize("typed_on", ["web", "vk"])
async def test_a_code_typed_on_another_channel_than_it_was_asked_for_is_refused_and_counted(
    make_server, settings, http, typed_on
):
    server = await make_server(settings)
    seamline = server.app[SEAMLINE]
    vk = Recorder("vk")
    seamline.pipeline.register(vk)
    customer = await seamline.store.resolve_customer("telegram", "601", "601")
    code = await seamline.linker.issue_code(customer.id, "telegram", "601", target="vk" if typed_on == "web" else "web")
    if typed_on == "web":
        client = Client(http, server.ws_url)
        client.ws = await http.ws_connect(server.ws_url)
        await client.hello(lang="en")
        answer = (await client.say(code, id="w-1"))[-1]["text"]
    else:
        await seamline.pipeline.handle(
            Message(channel="vk", address="7001", sender="7001", text=code, external_id="vk-1", language="en")
        )
        answer = vk.texts("7001")[-1]
    assert "isn't valid" in answer
    assert await seamline.limiter.used("link:all", window=3600) == 1  # a wrong guess like any other
    assert [i.channel for i in await seamline.store.identities(customer.id)] == ["telegram"]


async def test_a_deep_link_made_for_telegram_links_nothing_when_its_token_arrives_from_vk(make_server, settings):
    server = await make_server(settings)
    seamline = server.app[SEAMLINE]
    vk = Recorder("vk")
    seamline.pipeline.register(vk)
    web = await seamline.store.resolve_customer("web", "visitor-1", "visitor-1")
    token = await seamline.linker.issue_token(web.id, "web", "visitor-1", target="telegram")
    await seamline.pipeline.handle(
        Message(
            channel="vk",
            address="7002",
            sender="7002",
            text="Начать",
            payload=f"/start {token}",
            external_id="vk-2",
            language="en",
        )
    )
    assert "isn't valid" in vk.texts("7002")[-1]
    assert [i.channel for i in await seamline.store.identities(web.id)] == ["web"]


def test_the_guessing_budgets_are_settings_and_a_bad_value_is_refused_by_name(tmp_path):
    from seamline.shared.errors import ConfigError
    from seamline.shared.settings import load_settings

    base = {"SEAMLINE_SECRET_KEY": "k" * 32, "SEAMLINE_DATA_DIR": str(tmp_path)}
    defaults = load_settings(base)
    assert (defaults.link_guesses_per_address, defaults.link_guesses_per_hour) == (20, 1000)
    chosen = load_settings({**base, "SEAMLINE_LINK_GUESSES_PER_ADDRESS": "5", "SEAMLINE_LINK_GUESSES_PER_HOUR": "50"})
    assert (chosen.link_guesses_per_address, chosen.link_guesses_per_hour) == (5, 50)
    for name, value in (("SEAMLINE_LINK_GUESSES_PER_ADDRESS", "0"), ("SEAMLINE_LINK_GUESSES_PER_HOUR", "many")):
        with pytest.raises(ConfigError) as error:
            load_settings({**base, name: value})
        assert error.value.setting == name
