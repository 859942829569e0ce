"""One customer across channels, through the pipeline: codes, confirmation, merging, continuity, undo,
privacy. (Guessing and the threat model: tests/security/test_link_*.py.)"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from seamline.bots.app import build
from seamline.shared.message import Message, utcnow
from seamline.shared.storage.models import LinkCodeRow

from tests.support import Recorder


@pytest.fixture(params=["sqlite", "postgres+redis"])
async def seamline(request, settings, understanding):
    if request.param == "postgres+redis":
        url = request.getfixturevalue("postgres_url")
        redis_url = request.getfixturevalue("redis_url")
        settings = replace(settings, database_url=url, redis_url=redis_url)
    seamline = await build(settings, understanding=understanding)
    seamline.adapters = {c: Recorder(c) for c in ("telegram", "web", "vk")}
    for adapter in seamline.adapters.values():
        seamline.pipeline.register(adapter)
    yield seamline
    await seamline.close()


_ids = iter(range(10_000, 10**9))


def say(channel: str, sender: str, text: str, payload: str | None = None) -> Message:
    return Message(
        channel=channel, address=sender, sender=sender, text=text, payload=payload, external_id=str(next(_ids))
    )


async def code_for(seamline, channel: str, sender: str, target: str = "web") -> str:
    """Ask for a code on ``channel`` for ``target`` (the button under "where will you type it?")."""
    await seamline.pipeline.handle(say(channel, sender, "Website chat", f"/link_account {target}"))
    last = seamline.adapters[channel].texts(sender)[-1]
    return re.search(r"\b(\d{6})\b", last).group(1)


async def answer(seamline, channel: str, sender: str, yes: bool = True) -> None:
    """Press Yes (or No) under the last "someone wants to link" question sent to ``sender``."""
    question = [r for a, r in seamline.adapters[channel].sent if a == sender and r.buttons][-1]
    button = question.buttons[0 if yes else 1]
    assert button.payload.startswith("/link_yes " if yes else "/link_no ")
    await seamline.pipeline.handle(say(channel, sender, button.title, button.payload))


async def test_asking_for_a_code_asks_where_it_will_be_typed(seamline):
    await seamline.pipeline.handle(say("telegram", "400", "link my account"))
    _, question = seamline.adapters["telegram"].sent[-1]
    assert not re.search(r"\d{6}", question.text)
    assert [b.payload for b in question.buttons] == ["/link_account web", "/link_account vk"]
    await seamline.pipeline.handle(say("telegram", "400", "VK", "/link_account vk"))
    assert "VK" in seamline.adapters["telegram"].texts("400")[-1]


async def test_a_code_from_telegram_typed_on_the_web_links_history_and_state(seamline):
    tg, web = "telegram", "web"
    await seamline.pipeline.handle(say(tg, "501", "where is my order"))
    await seamline.pipeline.handle(say(tg, "501", "48213"))
    telegram_customer = await seamline.store.find_customer("telegram", "501")
    await seamline.pipeline.handle(say(web, "visitor-1", "hello"))
    code = await code_for(seamline, tg, "501")
    await seamline.pipeline.handle(say(web, "visitor-1", code))
    assert "waiting for confirmation" in seamline.adapters[web].texts("visitor-1")[-1].lower()

    await answer(seamline, tg, "501")

    assert "linked" in seamline.adapters[tg].texts("501")[-1]
    answer_text = seamline.adapters[web].texts("visitor-1")[-1]
    assert "48213" in answer_text and "Telegram" in answer_text  # picks up where the customer was
    web_customer = await seamline.store.find_customer("web", "visitor-1")
    assert web_customer.id == telegram_customer.id
    history = await seamline.pipeline.history(web, "visitor-1")
    assert [m.text for m in history if m.channel == "telegram" and m.direction == "in"][:2] == [
        "where is my order",
        "48213",
    ]
    assert any(m.channel == "web" and m.text == "hello" for m in history)
    assert [m.created_at for m in history] == sorted(m.created_at for m in history)
    assert code not in " ".join(m.text for m in history)  # the code is never kept in clear
    session = await seamline.sessions.load(telegram_customer.id)
    assert session.slots["order_number"] == "48213"
    events = [e["kind"] for e in await seamline.store.events(telegram_customer.id)]
    assert "customers_linked" in events


async def test_an_open_form_carries_over_to_the_new_channel(seamline):
    await seamline.pipeline.handle(say("vk", "77", "где мой заказ"))  # the bot asks for the number
    code = await code_for(seamline, "vk", "77", "telegram")
    await seamline.pipeline.handle(say("telegram", "88", code))
    await answer(seamline, "vk", "77")
    await seamline.pipeline.handle(say("telegram", "88", "55123"))
    session = await seamline.sessions.load((await seamline.store.find_customer("vk", "77")).id)
    assert session.slots.get("order_number") == "55123" and session.active_form is None


@pytest.mark.parametrize("problem", ["wrong", "expired", "reused"])
async def test_wrong_expired_and_reused_codes_link_nothing_and_say_why(seamline, problem):
    code = await code_for(seamline, "telegram", "600")
    if problem == "wrong":
        code = f"{(int(code) + 1) % 10**6:06d}"
    elif problem == "expired":
        async with seamline.store.engine.begin() as conn:
            await conn.execute(update(LinkCodeRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    else:
        await seamline.pipeline.handle(say("web", "first", code))
    await seamline.pipeline.handle(say("web", "intruder", code))
    answer = seamline.adapters["web"].texts("intruder")[-1].lower()
    assert {"wrong": "isn't valid", "expired": "expired", "reused": "already been used"}[problem] in answer
    intruder = await seamline.store.find_customer("web", "intruder")
    assert intruder.id != (await seamline.store.find_customer("telegram", "600")).id
    assert [m.channel for m in await seamline.pipeline.history("web", "intruder")] == ["web", "web"]


async def test_guessing_codes_locks_the_identity_out(seamline):
    real = await code_for(seamline, "telegram", "700")
    wrong = [f"{(int(real) + k) % 10**6:06d}" for k in range(1, 7)]
    for guess in wrong:  # five are checked; the sixth is not
        await seamline.pipeline.handle(say("web", "guesser", guess))
    assert "too many wrong codes" in seamline.adapters["web"].texts("guesser")[-1].lower()
    await seamline.pipeline.handle(say("web", "guesser", real))  # even the right one, now
    assert "too many wrong codes" in seamline.adapters["web"].texts("guesser")[-1].lower()
    assert (await seamline.store.find_customer("web", "guesser")).id != (
        await seamline.store.find_customer("telegram", "700")
    ).id


async def test_asking_for_codes_is_rate_limited(seamline):
    for _ in range(5):
        await code_for(seamline, "telegram", "710")
    await seamline.pipeline.handle(say("telegram", "710", "Website chat", "/link_account web"))
    last = seamline.adapters["telegram"].texts("710")[-1]
    assert not re.search(r"\d{6}", last) and "hour" in last


async def test_six_digits_asked_for_as_an_order_number_are_an_order_number(seamline):
    await seamline.pipeline.handle(say("telegram", "720", "where is my order"))
    await seamline.pipeline.handle(say("telegram", "720", "123456"))
    # the order action answers about order 123456 (unknown: then people take over)
    assert any("123456" in text for text in seamline.adapters["telegram"].texts("720")[-2:])


async def test_unlink_restores_both_customers(seamline):
    await seamline.pipeline.handle(say("telegram", "800", "hello"))
    await seamline.customers.set_attributes(
        (await seamline.store.find_customer("telegram", "800")).id, {"email": "old@example.com"}, source="agent"
    )
    await seamline.pipeline.handle(say("web", "v-800", "where is my order"))
    web_id = (await seamline.store.find_customer("web", "v-800")).id
    await seamline.customers.set_attributes(
        web_id, {"email": "new@example.com", "city": "Kazan"}, source="site", verified=True
    )
    code = await code_for(seamline, "telegram", "800")
    await seamline.pipeline.handle(say("web", "v-800", code))
    await answer(seamline, "telegram", "800")
    survivor = await seamline.store.find_customer("telegram", "800")
    profile = await seamline.customers.profile(survivor.id)
    assert profile.attributes == {"email": "new@example.com", "city": "Kazan"}  # the verified, newer value
    await seamline.pipeline.handle(say("web", "v-800", "thanks"))  # written while linked
    [link] = await seamline.customers.links(survivor.id)
    assert link.conflicts and link.conflicts[0]["key"] == "email"

    await seamline.linker.unlink(link.id, by="admin@test")

    assert (await seamline.store.fresh_customer("web", "v-800")).id == web_id
    assert (await seamline.store.fresh_customer("telegram", "800")).id == survivor.id
    web_history = [m.text for m in await seamline.store.history(web_id)]
    telegram_history = [m.text for m in await seamline.store.history(survivor.id)]
    assert "where is my order" in web_history and "thanks" in web_history
    assert not any(m in telegram_history for m in ("where is my order", "thanks"))
    assert (await seamline.customers.profile(survivor.id)).attributes == {"email": "old@example.com"}
    assert (await seamline.customers.profile(web_id)).attributes == {"email": "new@example.com", "city": "Kazan"}
    # and both go on chatting as two customers
    await seamline.pipeline.handle(say("web", "v-800", "hello again"))
    assert "hello again" in [m.text for m in await seamline.store.history(web_id)]


async def test_same_phone_is_not_a_reason_to_merge(seamline):
    for channel, sender in (("telegram", "900"), ("vk", "901")):
        await seamline.pipeline.handle(say(channel, sender, "my phone is +7 916 123-45-67"))
        customer = await seamline.store.find_customer(channel, sender)
        await seamline.customers.set_attributes(customer.id, {"phone": "+79161234567"}, source="customer")
    a = await seamline.store.find_customer("telegram", "900")
    b = await seamline.store.find_customer("vk", "901")
    assert a.id != b.id
    assert [m.channel for m in await seamline.store.history(a.id)] == ["telegram", "telegram"]


async def test_erase_removes_one_customer_and_nothing_of_another(seamline):
    await seamline.pipeline.handle(say("telegram", "tg-erased-950", "my email is ivan@example.com"))
    await seamline.pipeline.handle(say("telegram", "951", "hello"))
    gone = await seamline.store.find_customer("telegram", "tg-erased-950")
    kept = await seamline.store.find_customer("telegram", "951")
    exported = await seamline.customers.export(gone.id)
    assert exported["messages"][0]["text"] == "my email is ivan@example.com"
    assert exported["identities"] == [{"channel": "telegram", "external_id": "tg-erased-950", "reachable": True}]

    counts = await seamline.customers.erase(gone.id, by="dpo@test")

    assert counts["messages"] == len(exported["messages"]) >= 2 and counts["identities"] == 1
    assert await seamline.store.history(gone.id) == []
    assert await seamline.store.fresh_customer("telegram", "tg-erased-950") is None
    dump = str(await seamline.customers.export(gone.id))
    assert "ivan@example.com" not in dump and "tg-erased-950" not in dump
    assert [m.text for m in await seamline.store.history(kept.id)][0] == "hello"
    # the erased person writing again is a new customer with no past
    await seamline.pipeline.handle(say("telegram", "tg-erased-950", "hi"))
    assert [m.text for m in await seamline.pipeline.history("telegram", "tg-erased-950")][0] == "hi"


async def test_a_code_drawn_again_replaces_a_dead_one_and_never_a_live_one(seamline, monkeypatch):
    from seamline.shared import linking

    draws = iter([123456, 123456, 123456, 654321])
    monkeypatch.setattr(linking.secrets, "randbelow", lambda n: next(draws))
    assert await code_for(seamline, "telegram", "730") == "123456"
    await seamline.pipeline.handle(say("web", "visitor-730", "123456"))  # used: now dead
    assert await code_for(seamline, "telegram", "731") == "123456"  # the dead row is reused
    assert await code_for(seamline, "vk", "732") == "654321"  # 123456 is live again: drawn anew
    await seamline.pipeline.handle(say("web", "visitor-731", "123456"))
    await answer(seamline, "telegram", "731")
    linked = await seamline.store.find_customer("web", "visitor-731")
    assert linked.id == (await seamline.store.find_customer("telegram", "731")).id
    assert linked.id != (await seamline.store.find_customer("telegram", "730")).id


async def test_proofs_dead_for_a_day_are_purged(seamline):
    await code_for(seamline, "telegram", "740")
    await code_for(seamline, "telegram", "741")
    async with seamline.store.engine.begin() as conn:
        await conn.execute(
            update(LinkCodeRow)
            .where(LinkCodeRow.external_id == "740")
            .values(expires_at=utcnow() - timedelta(days=1, minutes=1))
        )
    assert await seamline.customers.purge_proofs(timedelta(days=1)) == 1
    async with seamline.store.engine.connect() as conn:
        left = (await conn.execute(select(LinkCodeRow.external_id))).scalars().all()
    assert left == ["741"]
