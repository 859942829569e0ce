"""What a custom action adds to a turn: in process, and on a Rasa action server.

    python benchmarks/actions.py [--conversations 64] [--seconds 5] [--pace 0.2]

A turn here is ``Dialogue.decide`` (bots/dialogue/engine.py): the first matching rule, slots,
the tracker events recorded, and the rule's step; the NLU and the database are left out, since
they are the same whatever the step is (benchmarks/web_chat.py measures the whole walk). Kinds of
turn, in the same run and with the same sessions' history (the latest 60 tracker events each):

- ``response``: the rule says a response (the baseline);
- ``in-process def``: the rule runs a trivial rasa-sdk action whose ``run`` is a plain ``def``
  (it runs on the actions' thread pool, as most authors' actions will);
- ``in-process async``: the same action written ``async def run`` (runs on the event loop);
- ``action server``: the sync action on a real ``python -m rasa_sdk`` server on 127.0.0.1;
- ``server alone``: the server's own time, without Seamline: the same call body (as Seamline would
  send it for these sessions) posted by a bare aiohttp client, its answer read.

Each kind runs twice (the kinds take turns, in slices of a second, for ``seconds`` each): flat out (``conversations`` conversations each sending its next turn as soon
as the last is answered: turns per second, and latency that is mostly queueing behind the others),
and paced (each conversation waits ``pace`` seconds on average between turns, as people do: latency
that is the turn's own cost). Targets (issue 12): an in-process action adds <= 1 ms to the paced p50
of a response-only turn; a remote one <= the server's own p50 + 5 ms. Bounded: the server has 60 s
to start, each phase runs ``seconds``, the server is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from seamline.bots.dialogue import Dialogue, Domain, Rule, RuleStep  # noqa: E402
from seamline.bots.dialogue.action_server import RemoteActions, load_module  # noqa: E402
from seamline.bots.dialogue.responses import Responses  # noqa: E402
from seamline.bots.dialogue.tracker import action_call  # noqa: E402
from seamline.nlu.parse import Parse  # noqa: E402
from seamline.shared.message import Message  # noqa: E402
from seamline.shared.session import EVENT_LIMIT, Session  # noqa: E402

ACTIONS = """
from rasa_sdk import Action


class Trivial(Action):
    def name(self):
        return "action_trivial"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="done")
        return []


class TrivialAsync(Action):
    def name(self):
        return "action_trivial_async"

    async def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="done")
        return []
"""
RESPONSES = {"en": {"plain": [{"text": "done"}], "fallback": [{"text": "?"}], "action_failed": [{"text": "sorry"}]}}
DOMAIN = Domain(
    responses=Responses(RESPONSES),
    intents=("plain", "act", "act_async"),
    rules=(
        Rule("plain", (RuleStep("response", "plain"),), intent="plain"),
        Rule("act", (RuleStep("action", "action_trivial"),), intent="act"),
        Rule("act async", (RuleStep("action", "action_trivial_async"),), intent="act_async"),
    ),
    actions=("action_trivial", "action_trivial_async"),
)
Turn = Callable[[Session], Awaitable[bool]]
SLICE = 1.0  # seconds a kind runs before the next kind's turn


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    from socket import socket

    with socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SANIC_HOST": "127.0.0.1", "PYTHONPATH": str(folder)}
    log = (folder / "action-server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return server, f"http://127.0.0.1:{port}/webhook"
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise SystemExit("the action server did not start:\n" + (folder / "action-server.log").read_text())
        time.sleep(0.1)


def dialogue_turn(dialogue: Dialogue, intent: str) -> Turn:
    parse = Parse(intent, 0.95)

    async def turn(session: Session) -> bool:
        message = Message("web", session.customer_id, session.customer_id, "hello")
        decision = await dialogue.decide(parse, session, message=message)
        return not decision.problems and [r.text for r in decision.replies] == ["done"]

    return turn


def bare_turn(http: aiohttp.ClientSession, url: str, bodies: dict[str, bytes]) -> Turn:
    async def turn(session: Session) -> bool:
        async with http.post(url, data=bodies[session.customer_id], headers={"Content-Type": "application/json"}) as r:
            answer = await r.json()
        return r.status == 200 and answer["responses"][0]["text"] == "done"

    return turn


class Tally:
    """A kind's turns over all its slices: latencies, the time its slices took, failures."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.elapsed = 0.0
        self.errors = 0

    def figures(self) -> dict:
        ordered = sorted(self.latencies)
        return {
            "turns_per_s": len(ordered) / self.elapsed if self.elapsed else float("nan"),
            "p50_ms": statistics.median(ordered) * 1000 if ordered else float("nan"),
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else float("nan"),
            "errors": self.errors,
        }


async def phase(turn: Turn, sessions: list[Session], seconds: float, pace: float, tally: Tally) -> None:
    deadline = time.perf_counter() + seconds

    async def conversation(session: Session) -> None:
        if pace:
            await asyncio.sleep(random.uniform(0, pace))
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            ok = await turn(session)
            tally.latencies.append(time.perf_counter() - start)
            tally.errors += not ok
            if pace:
                await asyncio.sleep(random.expovariate(1 / pace))

    began = time.perf_counter()
    await asyncio.gather(*(conversation(s) for s in sessions))
    tally.elapsed += time.perf_counter() - began


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="seamline-actions-bench-") as tmp:
        folder = Path(tmp)
        (folder / "actions").mkdir()
        (folder / "actions" / "__init__.py").write_text(textwrap.dedent(ACTIONS))
        server, url = start_server(folder)
        try:
            local = load_module("actions", folder)
            remote = RemoteActions(url)
            in_process = Dialogue(domain=DOMAIN, actions=local)
            remotely = Dialogue(domain=DOMAIN, actions=remote)
            sessions = [Session(f"customer-{i}", f"conversation-{i}") for i in range(args.conversations)]
            warm = dialogue_turn(in_process, "plain")
            for session in sessions:  # a full tracker history, as a conversation of a while has
                while len(session.events) < EVENT_LIMIT:
                    await warm(session)
            bodies = {
                s.customer_id: json.dumps(
                    action_call("action_trivial", domain=DOMAIN, session=s, channel="web")
                ).encode()
                for s in sessions
            }
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128)) as http:
                kinds = {
                    "response": dialogue_turn(in_process, "plain"),
                    "in-process def": dialogue_turn(in_process, "act"),
                    "in-process async": dialogue_turn(in_process, "act_async"),
                    "action server": dialogue_turn(remotely, "act"),
                    "server alone": bare_turn(http, url, bodies),
                }
                for kind in kinds.values():  # warm-up: connections, the domain sent once, thread pool
                    await phase(kind, sessions[:4], 0.3, 0, Tally())
                # The kinds take turns, one slice each, round after round: the machine's other load
                # (it is shared) falls on every kind alike instead of on whichever ran during it.
                tallies = {(name, label): Tally() for name in kinds for label in ("flat out", "paced")}
                rounds = max(1, round(args.seconds / SLICE))
                for _ in range(rounds):
                    for label, pace in (("flat out", 0.0), ("paced", args.pace)):
                        for name, kind in kinds.items():
                            await phase(kind, sessions, args.seconds / rounds, pace, tallies[name, label])
                results = {
                    name: {label: tallies[name, label].figures() for label in ("flat out", "paced")} for name in kinds
                }
            await local.close()
            await remote.close()
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    report(results, args)


def report(results: dict[str, dict[str, dict]], args: argparse.Namespace) -> None:
    print(
        f"{args.conversations} conversations, {args.seconds:g} s per phase; paced: {args.pace:g} s between turns "
        f"on average; a turn is Dialogue.decide (no NLU, no database)"
    )
    print(f"{'':18} | {'flat out: turns/s':>17} {'p50':>8} {'p99':>8} | {'paced: p50':>10} {'p99':>8} | errors")
    for name, by in results.items():
        flat, paced = by["flat out"], by["paced"]
        print(
            f"{name:18} | {flat['turns_per_s']:17.0f} {flat['p50_ms']:6.2f}ms {flat['p99_ms']:6.2f}ms | "
            f"{paced['p50_ms']:8.2f}ms {paced['p99_ms']:6.2f}ms | {flat['errors'] + paced['errors']}"
        )
    base = results["response"]["paced"]["p50_ms"]
    for name in ("in-process def", "in-process async"):
        added = results[name]["paced"]["p50_ms"] - base
        print(f"{name}: adds {added:.2f} ms to the paced p50 (target <= 1 ms): {'met' if added <= 1 else 'NOT met'}")
    own = results["server alone"]["paced"]["p50_ms"]
    over = results["action server"]["paced"]["p50_ms"] - base - own
    print(
        f"action server: a turn's p50 is the response turn's + the server's own {own:.2f} ms + {over:.2f} ms "
        f"(target <= 5 ms): {'met' if over <= 5 else 'NOT met'}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pace", type=float, default=0.2, help="mean seconds between a conversation's turns, paced")
    asyncio.run(main(parser.parse_args()))
