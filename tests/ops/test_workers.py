"""``seamline run --workers N`` as an operator runs it: real worker processes on one port, on
PostgreSQL and Redis; a killed worker is replaced; /metrics adds every worker's numbers up."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time

import aiohttp
import pytest

from tests.ops.running import Running, Visitor, environment

pytestmark = [pytest.mark.slow, pytest.mark.services]

SECRET_WORDS = "zebra quartz 5550142"  # what the customer writes: never in a log line


async def _pids_serving(http: aiohttp.ClientSession, url: str, want: int, tries: int = 200) -> set[int]:
    """Worker pids seen answering /healthz on new connections (the kernel spreads them)."""
    seen: set[int] = set()
    for _ in range(tries):
        async with aiohttp.ClientSession() as fresh, fresh.get(url + "/healthz") as answer:
            assert answer.status == 200
            seen.add((await answer.json())["worker"]["pid"])
        if len(seen) >= want:
            break
    return seen


def _nlu_count(metrics: str) -> float:
    found = re.search(r"^seamline_nlu_seconds_count (\S+)$", metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_two_workers_share_the_port_are_restarted_and_add_up_their_metrics(
    tmp_path, models_dir, config_dir, postgres_url, redis_url
):
    env = environment(
        tmp_path, models_dir, config_dir, SEAMLINE_DATABASE_URL=postgres_url, SEAMLINE_REDIS_URL=redis_url
    )
    server = Running(["run", "--workers", "2"], env, tmp_path / "log.jsonl").started()
    try:
        async with aiohttp.ClientSession() as http:
            pids = await _pids_serving(http, server.url, 2)
            assert len(pids) == 2, pids  # both workers answer on the one port
            async with http.get(server.url + "/healthz?token=query-secret-123") as answer:
                assert answer.status == 200  # its access line names the path, not the query

            # Customers on both workers (one socket each, spread by the kernel) until each worker served one.
            visitors, served_by = [], set()
            for n in range(40):
                visitor = await Visitor.open(http, server.url)
                await visitor.say(f"hello {SECRET_WORDS}", id=f"c-{n}")
                assert await visitor.bot_says()
                await visitor.ws.close()  # its access log line is written when it closes
                visitors.append(visitor)
                served_by = {
                    r["pid"] for r in server.records() if "/chat/ws" in r.get("message", "") and r["pid"] in pids
                }
                if served_by == pids:
                    break
            assert served_by == pids
            async with http.get(server.url + "/metrics") as answer:
                assert answer.status == 200
                assert _nlu_count(await answer.text()) == len(visitors)  # both workers' turns, summed

            # Failed logins spread over both workers count against one budget (Redis): 5, one slow-lane try, refused.
            statuses = []
            for _ in range(10):
                async with (
                    aiohttp.ClientSession() as fresh,
                    fresh.post(
                        server.url + "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong"}
                    ) as answer,
                ):
                    statuses.append(answer.status)
                if answer.status == 429:
                    break
            assert statuses[-1] == 429 and len(statuses) <= 7, statuses  # per process it would take up to 13

            # SIGKILL one worker: it is replaced, and the port is served by two workers again.
            victim = sorted(pids)[0]
            os.kill(victim, signal.SIGKILL)
            server.wait_for("serving again")
            after = await _pids_serving(http, server.url, 2)
            assert victim not in after and len(after) == 2
            async with http.get(server.url + "/metrics") as answer:
                assert _nlu_count(await answer.text()) == len(visitors)  # the dead worker's counts stay

        assert server.stop() == 0
        records = server.records()  # every line is a JSON object (json.loads would have failed)
        assert {"time", "level", "logger", "message", "pid", "conversation_id"} <= records[0].keys()
        assert SECRET_WORDS not in server.log.read_text()  # no customer text at INFO
        assert "zebra" not in server.log.read_text()
        assert "query-secret-123" not in server.log.read_text()
        assert any(r.get("path") == "/chat/ws" and r.get("status") == 101 for r in records)
    finally:
        server.close()


def test_a_worker_that_cannot_start_is_reported_once_and_the_command_fails(tmp_path, models_dir, config_dir):
    env = environment(tmp_path, models_dir, config_dir, SEAMLINE_NLU_MODELS=str(tmp_path / "no-models"))
    env["SEAMLINE_LOG_FORMAT"] = "text"
    server = Running(["run", "--workers", "3"], env, tmp_path / "log.txt")
    code = server.process.wait(timeout=120)
    server.close()
    log = server.log.read_text()
    assert code != 0
    assert log.count("no model has been trained") == 1, log  # once, not once per worker
    assert "Traceback" not in log


def _gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return True


async def test_workers_stop_by_themselves_when_their_supervisor_is_killed(tmp_path, models_dir, config_dir):
    env = environment(tmp_path, models_dir, config_dir)
    server = Running(["run", "--workers", "2"], env, tmp_path / "log.jsonl").started()
    try:
        async with aiohttp.ClientSession() as http:
            pids = await _pids_serving(http, server.url, 2)
        assert len(pids) == 2
        server.process.kill()  # SIGKILL: the supervisor cannot pass anything on
        server.process.wait(timeout=30)
        deadline = time.monotonic() + 60
        while not all(_gone(pid) for pid in pids):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            await asyncio.sleep(0.1)
        with pytest.raises(OSError):  # nobody serves the port any more
            socket.create_connection(("127.0.0.1", int(env["SEAMLINE_PORT"])), timeout=2).close()
    finally:
        server.close()
