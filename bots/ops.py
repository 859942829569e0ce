"""What an operator and a load balancer ask a worker: is it alive, can it serve, how is it doing.

``/healthz`` is liveness (the process answers; a load balancer restarts nothing on a slow database).
``/readyz`` is readiness: the database answers, its schema is the one this code needs, Redis answers
when configured; each check has a short timeout, and a 503 names the check that failed and why,
so a load balancer takes a worker out of rotation while its database or Redis is away.
``/metrics`` is Prometheus's text format (shared/metrics.py), every worker's numbers added up under
``seamline run --workers N``. It names no customer, yet it tells how busy the service is: with
``SEAMLINE_METRICS_TOKEN`` set it asks for ``Authorization: Bearer <token>``; without, it answers
only loopback and private-network clients. The client is the real peer, or the address a trusted
proxy (``SEAMLINE_TRUSTED_PROXIES``) forwarded; a forwarded request from a proxy not listed is
refused, since whatever is behind it may be the internet (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from seamline.shared import metrics
from seamline.shared.net import Network, client_address

log = logging.getLogger(__name__)

Refresh = Callable[[], Awaitable[None]]
METRICS_REFRESH = web.AppKey("seamline.metrics_refresh", list)
# Loopback and the private ranges (RFC 1918, carrier-grade NAT as in some clusters, IPv6 unique-local
# and link-local); not Python's is_private, which counts documentation ranges too.
PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
CHECK_TIMEOUT = 2.0  # seconds per readiness check: a load balancer probes often and must not pile up


class Checks:
    """The readiness checks of one worker: the database (reachable, at the head migration), Redis."""

    def __init__(self, *, engine: AsyncEngine, database_url: str, redis: Any | None = None) -> None:
        self.engine, self.database_url, self.redis = engine, database_url, redis
        self._head: str | None = None

    async def head(self) -> str | None:
        """The migration this code needs (read once; alembic is slow to import)."""
        if self._head is None:
            self._head = await asyncio.to_thread(_head_revision, self.database_url)
        return self._head

    async def database(self) -> str:
        async with self.engine.connect() as connection:
            current = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        head = await self.head()
        if current != head:
            raise LookupError(f"schema at {current or 'nothing'}, this Seamline needs {head}; run: seamline db upgrade")
        return "ok"

    async def redis_ping(self) -> str:
        assert self.redis is not None
        await self.redis.ping()
        return "ok"

    async def run(self) -> tuple[bool, dict[str, dict[str, str]]]:
        checks: dict[str, Callable[[], Awaitable[str]]] = {"database": self.database}
        if self.redis is not None:
            checks["redis"] = self.redis_ping
        results = await asyncio.gather(*(_timed(check()) for check in checks.values()))
        report = dict(zip(checks, results, strict=True))
        return all(r["status"] == "ok" for r in report.values()), report

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def _head_revision(url: str) -> str | None:
    from alembic.script import ScriptDirectory

    from seamline.shared.storage.database import alembic_config

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def _timed(check: Awaitable[str]) -> dict[str, str]:
    try:
        return {"status": await asyncio.wait_for(check, CHECK_TIMEOUT)}
    except TimeoutError:
        return {"status": "failed", "error": f"no answer within {CHECK_TIMEOUT:g} s"}
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency is the answer, never a 500
        return {"status": "failed", "error": _reason(exc)}


def _reason(exc: BaseException) -> str:
    """The failure in one line, without a password a URL might hold."""
    if isinstance(exc, LookupError):
        return str(exc.args[0]) if exc.args else "failed"
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {detail}"[:300] if detail else exc.__class__.__name__


def _private(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in PRIVATE)


def _trusted_peer(peer: str | None, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address((peer or "").strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def metrics_allowed(request: web.Request, *, token: str, proxies: tuple[Network, ...]) -> bool:
    """Bearer ``token`` when one is set; else a loopback or private client (see the module's note)."""
    if token:
        given = request.headers.get("Authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode())
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded and not _trusted_peer(request.remote, proxies):
        return False  # an unlisted proxy: whoever is behind it is unknown
    return _private(client_address(request.remote, forwarded, proxies))


def install(
    app: web.Application,
    *,
    checks: Checks,
    token: str = "",
    proxies: tuple[Network, ...] = (),
    refresh: list[Refresh] | None = None,
) -> None:
    """Mount /healthz, /readyz and /metrics; ``app[METRICS_REFRESH]`` takes the gauges read at scrape time."""
    app[METRICS_REFRESH] = list(refresh or [])
    index = os.environ.get("SEAMLINE_WORKER_INDEX", "")  # under ``seamline run --workers N``
    alive: dict[str, Any] = {"status": "ok"}
    if index.isdigit():  # which worker answered: the supervisor and an operator can tell them apart
        alive["worker"] = {"index": int(index), "pid": os.getpid()}

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response(alive)

    async def readyz(request: web.Request) -> web.Response:
        ready, report = await checks.run()
        if ready:
            return web.json_response({"status": "ready", "checks": report})
        failed = ", ".join(f"{name}: {r.get('error', 'failed')}" for name, r in report.items() if r["status"] != "ok")
        log.warning("not ready: %s", failed)
        return web.json_response({"status": "unavailable", "checks": report}, status=503)

    async def scrape(request: web.Request) -> web.Response:
        if not metrics_allowed(request, token=token, proxies=proxies):
            reason = "a Bearer token is needed" if token else "only private-network clients may read metrics"
            return web.json_response({"error": "forbidden", "reason": reason}, status=403)
        for refresh_one in request.app[METRICS_REFRESH]:
            try:
                await asyncio.wait_for(refresh_one(), CHECK_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - a gauge that cannot be read keeps its last value
                metrics.ERRORS.labels(kind="metrics_refresh").inc()
                log.warning("a metrics gauge could not be read: %s", _reason(exc))
        body = await asyncio.to_thread(metrics.exposition)  # files of every worker: off the loop
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def closing(_app: web.Application) -> None:
        await checks.close()

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", scrape)
    app.on_cleanup.append(closing)


class AccessLog(AbstractAccessLogger):
    """One line per request: method, path (never the query string: ``?token=`` is a credential),
    status, duration; no Referer or User-Agent (a page's address may name its visitor). In JSON
    lines the same as fields: ``method``, ``path``, ``status``, ``ms``."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        ms = round(time * 1000, 1)
        self.logger.info(
            "%s %s %s %d %.1f ms",
            request.remote,
            request.method,
            request.path,
            response.status,
            ms,
            extra={"method": request.method, "path": request.path, "status": response.status, "ms": ms},
        )


def queue_waiting(counts: Callable[[tuple[str, ...]], Awaitable[dict[tuple[str | None, str], int]]]) -> Refresh:
    """A refresh setting ``seamline_queue_waiting{queue}`` from the conversations waiting per queue."""
    seen: set[str] = set()

    async def refresh() -> None:
        waiting = await counts(("queued",))
        now: dict[str, int] = {}
        for (queue, _state), n in waiting.items():
            now[queue or "default"] = now.get(queue or "default", 0) + n
        for queue in seen - now.keys():
            metrics.QUEUE_WAITING.labels(queue=queue).set(0)  # emptied since the last scrape
        for queue, n in now.items():
            metrics.QUEUE_WAITING.labels(queue=queue).set(n)
        seen.update(now)

    return refresh
