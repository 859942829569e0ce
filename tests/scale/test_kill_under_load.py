"""Issue 13, SIGKILL of a worker under load: nothing lost, nothing doubled that the platform can dedupe.

Two real workers share PostgreSQL and Redis; 30 customers (10 in Telegram, 10 in VK, 10 in the web
widget), half "homed" on each worker as a load balancer would spread them, each write 3 messages,
each waiting for the bot's answer before the next, as people do. Once a third of the answers are
out, worker 1 is killed with SIGKILL and started again. Meanwhile the platforms do what they do:
a webhook POST that got no 200 is delivered again (here: to the other worker), and a widget whose
socket dropped reconnects to the other worker and resends what the history does not show answered.

Counted at the fakes and on the sockets:
- every customer message answered (zero lost), on every channel;
- VK: exactly one message per customer message (the outbox resends with the same ``random_id``,
  which VK, and the fake, turn into no new message);
- widget: exactly one reply id shown per customer message, live or in the history after a reload;
- Telegram has no idempotency key: a send that reached Telegram just before the kill, not yet
  recorded as sent, is sent again by whoever finishes the work. That is one double per chat whose
  send was under way at the kill (each chat sends one reply at a time), so the bound asserted is
  one per chat, each the same reply repeated right after itself; how many there were is printed
  (measured 1, 3 and 4 of 10 chats in runs on a loaded 2-core machine, where a send and its
  "sent" record are far apart).
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.scale.cluster import TEXTS, Cluster, Widget, processed, until

pytestmark = [pytest.mark.slow, pytest.mark.services]

PER_CHANNEL, ROUNDS = 10, 3
TELEGRAM_CHATS = [7600 + i for i in range(PER_CHANNEL)]
VK_PEERS = [8600 + i for i in range(PER_CHANNEL)]


async def deliver(post, home: int, timeout: float = 60.0) -> None:
    """Deliver until a worker says 200, as a platform re-delivers: the home worker first, then the
    other (the load balancer's choice once the home worker stops answering)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    worker = home
    while not await post(worker):
        assert loop.time() < deadline, f"no worker took the update in {timeout} s"
        worker = 1 - worker
        await asyncio.sleep(0.1)


async def telegram_customer(workers: Cluster, chat: int, home: int) -> None:
    for k in range(ROUNDS):
        update = workers.telegram.update("message_text", chat_id=chat, text=TEXTS[k])
        await deliver(lambda w, u=update: _ok(workers.telegram_post(w, u)), home)
        await until(lambda n=k + 1: len(workers.telegram.texts(chat)) >= n, 90, f"answer {k + 1} in chat {chat}")


async def vk_customer(workers: Cluster, peer: int, home: int) -> None:
    for k in range(ROUNDS):
        event = workers.vk.message_new(peer, TEXTS[k])
        await deliver(lambda w, e=event: _vk_ok(workers.vk_post(w, e)), home)
        await until(lambda n=k + 1: len(workers.vk.sent_to(peer)) >= n, 90, f"answer {k + 1} to VK peer {peer}")


async def widget_customer(workers: Cluster, widget: Widget, home: int) -> list[str]:
    sent = []
    for k in range(ROUNDS):
        sent.append(await widget.ask(TEXTS[k], others=lambda: workers[1 - home]))
    return sent


async def _ok(status) -> bool:
    return await status == 200


async def _vk_ok(answer) -> bool:
    return await answer == (200, "ok")


async def test_a_worker_killed_mid_load_loses_nothing_and_doubles_nothing_vk_or_the_widget_can_tell(cluster):
    workers = await cluster(count=2)
    telegram, vk = workers.telegram, workers.vk
    widgets = [await workers.widget(i % 2) for i in range(PER_CHANNEL)]
    total = PER_CHANNEL * ROUNDS * 3

    def answered() -> int:
        return (
            sum(len(telegram.texts(c)) for c in TELEGRAM_CHATS)
            + sum(len(vk.sent_to(p)) for p in VK_PEERS)
            + sum(len(w.shown_replies()) for w in widgets)
        )

    customers = [
        *(asyncio.create_task(telegram_customer(workers, chat, i % 2)) for i, chat in enumerate(TELEGRAM_CHATS)),
        *(asyncio.create_task(vk_customer(workers, peer, i % 2)) for i, peer in enumerate(VK_PEERS)),
        *(asyncio.create_task(widget_customer(workers, w, i % 2)) for i, w in enumerate(widgets)),
    ]
    try:
        await until(lambda: answered() >= total // 3 or all(c.done() for c in customers), 90, "a third answered")
        killed_at, loop = answered(), asyncio.get_running_loop()
        kill_time = loop.time()
        await workers[1].kill()
        await workers[1].start()
        restarted = loop.time() - kill_time
        results = await asyncio.gather(*customers)
        finished = loop.time() - kill_time
    finally:
        for task in customers:
            task.cancel()
        await asyncio.gather(*customers, return_exceptions=True)
    widget_sent = results[2 * PER_CHANNEL :]

    for channel, chats in (("telegram", TELEGRAM_CHATS), ("vk", VK_PEERS)):
        for chat in chats:
            arrival, _, _ = await processed(workers.database_url, channel, str(chat), ROUNDS, timeout=60)
            assert len(arrival) == ROUNDS, (channel, chat, arrival)  # each update stored once, all done
    await asyncio.sleep(1)  # anything sent twice would arrive now

    doubles = {c: len(telegram.texts(c)) - ROUNDS for c in TELEGRAM_CHATS if len(telegram.texts(c)) != ROUNDS}
    print(
        f"killed after {killed_at} of {total} answers; restarted in {restarted:.1f} s; every answer out "
        f"{finished:.1f} s after the kill; Telegram doubles: {sum(doubles.values())} {doubles}"
    )
    for chat in doubles:
        print(f"chat {chat} got: {[text[:30] for text in telegram.texts(chat)]}")
    assert all(n > 0 for n in doubles.values()), doubles  # none lost
    assert set(doubles.values()) <= {1}, doubles  # at most one per chat whose send was under way
    for chat in doubles:  # a double is the same reply sent again right after itself, never a second answer
        texts = telegram.texts(chat)
        assert any(a == b for a, b in itertools.pairwise(texts)), texts
    assert {p: len(vk.sent_to(p)) for p in VK_PEERS} == dict.fromkeys(VK_PEERS, ROUNDS)
    for widget, sent in zip(widgets, widget_sent, strict=True):
        welcome = await widget.reopen(workers[0])  # a reload: what the page shows now
        history = [(m["role"], m["id"]) for m in welcome["history"] if m.get("type") == "message"]
        assert [i for role, i in history if role == "customer"] == sent  # every message stored once
        assert [role for role, _ in history] == ["customer", "bot"] * ROUNDS, history  # one answer each
        assert widget.shown_replies() == {i for role, i in history if role == "bot"}  # none shown twice
        await widget.close()
