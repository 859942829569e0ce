"""The documented production shape (docs/deploy.md) stays whole: Dockerfile, deploy/compose.yml and
deploy/nginx.conf. No Docker daemon is needed: the files are read as Docker, Compose and nginx read
them, and what an operator would notice breaking is checked: a worker missing, the WebSocket upgrade
lost at the proxy (the widget and the console would fall back to failing), the image running as
root or starting without its model, a secret written into the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
WEBSOCKET_PATHS = ("/chat/ws", "/api/v1/inbox")  # the widget's and the agent console's sockets


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def nginx() -> str:
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    return re.sub(r"#[^\n]*", "", text)  # comments out: only what nginx reads counts


def _workers(compose: dict) -> dict[str, dict]:
    """The services running `seamline run` (the image's command, not a one-off like migrations)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).startswith("seamline") and "command" not in service
    }


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _block(text: str, opening: str) -> str:
    """The body of the ``{ ... }`` block whose header matches the regular expression ``opening``."""
    match = re.search(opening + r"\s*\{", text)
    assert match, f"no block {opening!r}"
    depth, start = 1, match.end()
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    raise AssertionError(f"block {opening!r} is not closed")


def _dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined, comments out), one list per FROM stage."""
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            if current.strip():
                lines.append(current.strip())
            current = ""
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_compose_runs_two_seamline_workers_behind_nginx_with_postgres_and_redis(compose):
    workers = _workers(compose)
    assert len(workers) == 2, f"two Seamline workers, found {sorted(workers)}"
    images = {service["image"] for service in compose["services"].values()}
    assert any(image.startswith("postgres") for image in images)
    assert any(image.startswith("redis") for image in images)
    assert any(image.startswith("nginx") for image in images)
    for name, worker in workers.items():
        env = _environment(worker)
        assert env["SEAMLINE_HOST"] == "0.0.0.0", name
        assert env["SEAMLINE_REDIS_URL"].startswith("redis://"), name
        assert "test" in worker["healthcheck"], f"{name} has no healthcheck"
        # the schema is migrated by a one-shot service before any worker starts
        assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "db" in compose["services"]["migrate"]["command"] and "upgrade" in compose["services"]["migrate"]["command"]


def test_only_nginx_is_published_and_it_is_the_trusted_proxy(compose):
    published = [name for name, service in compose["services"].items() if service.get("ports")]
    assert len(published) == 1 and compose["services"][published[0]]["image"].startswith("nginx")
    proxy = compose["services"][published[0]]
    address = next(iter(proxy["networks"].values()))["ipv4_address"]
    for name, worker in _workers(compose).items():
        assert _environment(worker)["SEAMLINE_TRUSTED_PROXIES"] == address, name


def test_redis_persists_and_never_evicts_locks_or_sessions(compose):
    redis = next(s for s in compose["services"].values() if str(s["image"]).startswith("redis"))
    command = " ".join(redis["command"]) if isinstance(redis["command"], list) else redis["command"]
    assert re.search(r"--appendonly\s+yes", command)
    assert re.search(r"--maxmemory-policy\s+noeviction", command)
    assert any(str(volume).endswith(":/data") for volume in redis["volumes"])


def test_every_service_has_a_healthcheck_but_the_one_shot_migration(compose):
    for name, service in compose["services"].items():
        if name != "migrate":
            assert "test" in service.get("healthcheck", {}), f"{name} has no healthcheck"


def test_no_secret_is_written_in_the_repository(compose):
    secret = re.compile(r"(SECRET|PASSWORD|TOKEN)", re.IGNORECASE)
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            assert not (secret.search(key) and value), f"{name}: {key} has a value in compose.yml"
    for path in DEPLOY.glob("*.env*"):
        assert path.name.endswith(".example"), f"{path.name} must not be in the repository"
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if secret.search(key) and not line.startswith("#"):
                assert value in ("", "CHANGE-ME"), f"{path.name}: {key} holds a value"
    assert "*.env" in (DEPLOY / ".gitignore").read_text(encoding="utf-8")
    assert "*.env" in (ROOT / ".dockerignore").read_text(encoding="utf-8")


def test_nginx_upgrades_both_websocket_paths(nginx):
    assert re.search(r"map\s+\$http_upgrade\s+\$connection_upgrade", nginx)
    server = _block(nginx, r"\bserver")
    for path in WEBSOCKET_PATHS:
        location = _block(server, r"location\s+(=\s+)?" + re.escape(path))
        assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade\s*;", location), path
        assert re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade\s*;", location), path
        assert re.search(r"proxy_http_version\s+1\.1\s*;", location + server.split("location")[0]), path
        # proxy_set_header inside a location replaces every inherited one: the client's address must stay
        assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for\s*;", location), path
        assert re.search(r"proxy_set_header\s+X-Forwarded-Proto\s+\$scheme\s*;", location), path


def test_nginx_balances_over_every_worker(nginx, compose):
    upstream = _block(nginx, r"upstream\s+seamline")
    servers = set(re.findall(r"server\s+([\w.-]+):8080", upstream))
    assert servers == set(_workers(compose))
    assert "ip_hash" not in upstream and "sticky" not in upstream  # no affinity is needed (docs/deploy.md)


def test_the_websocket_paths_are_the_ones_the_widget_and_console_open():
    assert "/chat/ws" in (ROOT / "bots" / "static" / "widget.js").read_text(encoding="utf-8")
    console = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "handoff" / "static").glob("*.js"))
    assert "/api/v1/inbox" in console


def test_the_image_runs_as_a_user_and_trains_the_model_at_build_time():
    stages = _dockerfile_stages()
    final = stages[-1]
    assert final[0].split()[1].startswith("python:3.11-slim")
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the last USER must not be root"
    user_at = max(i for i, line in enumerate(final) if line.upper().startswith("USER "))
    trained = [i for i, line in enumerate(final) if line.upper().startswith("RUN ") and "nlu train" in line]
    assert trained and trained[0] < user_at, "the model is trained in a RUN step of the image"
    assert any(line.upper().startswith("HEALTHCHECK ") and "/healthz" in line for line in final)
    cmd = next(line for line in final if line.upper().startswith("CMD "))
    assert "seamline" in cmd and "run" in cmd and "--workers" in cmd
    assert any("SEAMLINE_HOST=0.0.0.0" in line for line in final if line.upper().startswith("ENV "))
    everything = " ".join(line for stage in stages for line in stage)
    assert "[dev]" not in everything, "the image installs no dev extras"
