"""/healthz, /readyz and /metrics as a load balancer and a Prometheus scraper see them (bots/ops.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from seamline.shared.net import parse_networks
from seamline.shared.storage.database import upgrade

from tests.support import free_port


async def test_healthz_and_readyz_answer_on_a_migrated_database(server, http):
    async with http.get(server.url + "/healthz") as health:
        assert health.status == 200 and await health.json() == {"status": "ok"}
    async with http.get(server.url + "/readyz") as ready:
        body = await ready.json()
    assert ready.status == 200, body
    assert body == {"status": "ready", "checks": {"database": {"status": "ok"}}}


async def test_readyz_is_503_naming_redis_when_redis_is_away(make_server, settings, http):
    closed = free_port()  # nothing listens there
    server = await make_server(settings, redis_url=f"redis://127.0.0.1:{closed}/0")
    async with http.get(server.url + "/readyz") as ready:
        body = await ready.json()
    assert ready.status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["redis"]["status"] == "failed"
    assert "onnect" in body["checks"]["redis"]["error"]  # "Connection refused" / "ConnectionError"
    async with http.get(server.url + "/healthz") as health:
        assert health.status == 200  # alive all the same: nothing to restart


async def test_readyz_is_503_when_a_migration_is_missing(make_server, settings, tmp_path, http):
    behind = f"sqlite+aiosqlite:///{tmp_path}/behind.db"
    await asyncio.to_thread(upgrade, behind, "0001")  # alembic runs its own loop
    server = await make_server(settings, database_url=behind)
    async with http.get(server.url + "/readyz") as ready:
        body = await ready.json()
    assert ready.status == 503
    assert body["checks"]["database"]["status"] == "failed"
    assert "seamline db upgrade" in body["checks"]["database"]["error"]


async def test_metrics_answer_a_loopback_scraper_in_prometheus_format(server, http):
    async with http.post(server.url + "/api/v1/nothing-here") as _:
        pass
    async with http.get(server.url + "/metrics") as answer:
        text = await answer.text()
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE seamline_messages_total counter" in text or "# TYPE seamline_messages counter" in text
    assert "seamline_nlu_seconds_bucket" in text or "seamline_nlu_seconds" in text


@pytest.mark.parametrize(
    "forwarded, proxies, status",
    [
        ("203.0.113.9", "127.0.0.1", 403),  # a trusted proxy forwarding a public client
        ("10.1.2.3", "127.0.0.1", 200),  # a trusted proxy forwarding a private scraper
        ("10.1.2.3", "", 403),  # a proxy nobody listed: who is behind it is unknown
    ],
)
async def test_metrics_go_only_to_private_clients_without_a_token(
    make_server, settings, http, forwarded, proxies, status
):
    server = await make_server(settings, trusted_proxies=parse_networks(proxies.split(",")))
    async with http.get(server.url + "/metrics", headers={"X-Forwarded-For": forwarded}) as answer:
        assert answer.status == status
        if status == 403:
            assert (await answer.json())["error"] == "forbidden"


async def test_metrics_ask_for_the_bearer_token_when_one_is_set(make_server, settings, http):
    server = await make_server(settings, metrics_token="s3cret-scrape")
    async with http.get(server.url + "/metrics") as answer:
        assert answer.status == 403  # even from loopback
    async with http.get(server.url + "/metrics", headers={"Authorization": "Bearer wrong"}) as answer:
        assert answer.status == 403
    async with http.get(server.url + "/metrics", headers={"Authorization": "Bearer s3cret-scrape"}) as answer:
        assert answer.status == 200


async def test_readyz_is_503_naming_the_database_when_it_does_not_answer(make_server, settings, http):
    closed = free_port()
    server = await make_server(
        settings, database_url=f"postgresql+asyncpg://seamline:hunter2-secret@127.0.0.1:{closed}/x"
    )
    async with http.get(server.url + "/readyz") as ready:
        body = await ready.json()
    assert ready.status == 503
    assert body["checks"]["database"]["status"] == "failed"
    assert "hunter2-secret" not in json.dumps(body)  # the reason never shows the password
