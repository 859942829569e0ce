"""Canned responses (config/canned.yml): loaded with clear errors, served to agents only."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from seamline.bots.app import SEAMLINE
from seamline.handoff.canned import load_canned
from seamline.shared.errors import ConfigError
from seamline.shared.settings import CONFIG_DIR


def test_the_shipped_canned_responses_have_english_and_russian_texts():
    canned = load_canned(CONFIG_DIR / "canned.yml")
    assert len(canned) >= 5
    assert all(set(c.texts) >= {"en", "ru"} for c in canned)
    order = next(c for c in canned if c.title == "Looking at the order")
    assert "{order_number}" in order.texts["en"] and "{order_number}" in order.texts["ru"]


def test_no_file_means_no_canned_responses(tmp_path: Path):
    assert load_canned(tmp_path / "canned.yml") == ()


@pytest.mark.parametrize(
    "text, problem",
    [
        ("canned: [", "is not valid YAML"),
        ("hello: 1", "has no `canned:` list"),
        ("canned:\n  - en: Hi\n", "entry 1 has no title"),
        ("canned:\n  - title: Hi\n", "entry 1 (Hi) has no text"),
        ("canned:\n  - {title: Hi, en: Hello}\n  - {title: Hi, en: Hey}\n", "entry 2: the title 'Hi' is used twice"),
        ("canned:\n  - {title: Hi, en: '" + "x" * 5000 + "'}\n", "longer than 4096"),
    ],
)
def test_a_bad_file_is_refused_naming_the_entry(tmp_path: Path, text: str, problem: str):
    path = tmp_path / "canned.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_canned(path)
    assert problem in str(error.value) and str(path) in str(error.value)


async def test_agents_get_the_canned_responses_and_nobody_else_does(server):
    seamline = server.app[SEAMLINE]
    await seamline.handoff.agents.add("olga@shop.example", name="Olga", password="correct horse battery", queues=[])
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/api/v1/canned") as response:
            assert response.status == 401
        async with http.post(
            server.url + "/api/v1/auth/login", json={"email": "olga@shop.example", "password": "correct horse battery"}
        ) as r:
            token = (await r.json())["token"]
        async with http.get(server.url + "/api/v1/canned", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200
            canned = (await r.json())["canned"]
    assert [c["title"] for c in canned] == [c.title for c in load_canned(CONFIG_DIR / "canned.yml")]
    greeting = next(c for c in canned if c["title"] == "Greeting")
    assert greeting["texts"]["ru"].startswith("Здравствуйте")
