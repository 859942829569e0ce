"""Visitor tokens expire when unused and survive a rotation of the secret key (issue 10, item 15)."""

from __future__ import annotations

import time

from seamline.shared.tokens import Signer

from tests.conftest import SECRET
from tests.security.test_web_connections import connect

DAY = 86400
NEW_SECRET = "the-rotated-secret-key-0123456789"


def signer(key: str = SECRET, *, days_ago: float = 0, **options) -> Signer:
    return Signer(secret_key=key, purpose="web-visitor", clock=lambda: time.time() - days_ago * DAY, **options)


async def start_conversation(http, server) -> tuple[str, str]:
    """(visitor, token) of a visitor who said something private."""
    c = await connect(http, server)
    token = (await c.hello())["token"]
    await c.say("my address is 5 Elm Street", id="c-1")
    await c.ws.close()
    return token.rpartition(".")[0], token


async def test_a_token_unused_for_longer_than_its_lifetime_reveals_nothing(http, server):
    visitor, _ = await start_conversation(http, server)
    stale = signer(days_ago=91).sign(visitor)  # the default lifetime is 90 days
    c = await connect(http, server)
    await c.ws.send_json({"type": "hello", "token": stale})
    assert (await c.receive())["code"] == "bad_token"
    welcome = await c.receive("welcome")
    assert welcome["history"] == [] and not welcome["token"].startswith(visitor)


async def test_using_a_token_renews_it(http, server):
    visitor, _ = await start_conversation(http, server)
    old = signer(days_ago=80).sign(visitor)
    welcome = await (await connect(http, server)).hello(old)
    assert [m["text"] for m in welcome["history"] if m["role"] == "customer"] == ["my address is 5 Elm Street"]
    in_30_days = signer(days_ago=-30, max_age=90 * DAY)
    assert in_30_days.verify(old) is None and in_30_days.verify(welcome["token"]) == visitor


async def test_tokens_of_the_old_key_still_work_after_a_rotation(http, make_server, settings):
    before = await make_server(settings)
    visitor, token = await start_conversation(http, before)
    await before.stop()
    rotated = await make_server(settings, secret_key=NEW_SECRET, old_secret_keys=(SECRET,))
    welcome = await (await connect(http, rotated)).hello(token)
    assert [m["text"] for m in welcome["history"] if m["role"] == "customer"] == ["my address is 5 Elm Street"]
    assert signer(NEW_SECRET).verify(welcome["token"]) == visitor  # re-signed with the new key
    await rotated.stop()
    forgotten = await make_server(settings, secret_key=NEW_SECRET)  # the old key dropped: its tokens die
    c = await connect(http, forgotten)
    await c.ws.send_json({"type": "hello", "token": token})
    assert (await c.receive())["code"] == "bad_token"
    assert (await c.receive("welcome"))["history"] == []


def test_settings_refuse_a_short_old_key(tmp_path):
    import pytest

    from seamline.shared.errors import ConfigError
    from seamline.shared.settings import load_settings

    env = {"SEAMLINE_DATA_DIR": str(tmp_path), "SEAMLINE_SECRET_KEY": NEW_SECRET}
    assert load_settings({**env, "SEAMLINE_OLD_SECRET_KEYS": f" {SECRET} ,"}).old_secret_keys == (SECRET,)
    with pytest.raises(ConfigError, match="SEAMLINE_OLD_SECRET_KEYS"):
        load_settings({**env, "SEAMLINE_OLD_SECRET_KEYS": "short"})
    with pytest.raises(ConfigError, match="SEAMLINE_VISITOR_TOKEN_DAYS"):
        load_settings({**env, "SEAMLINE_VISITOR_TOKEN_DAYS": "0"})


def test_a_token_with_text_that_is_not_unicode_is_refused_not_an_error():
    genuine = Signer(secret_key=SECRET, purpose="web-visitor").sign("visitor")
    forged = "\ud800" + genuine[genuine.rindex(".") :]  # a lone surrogate (JSON allows "\ud800") before a real stamp
    assert Signer(secret_key=SECRET, purpose="web-visitor").verify(forged) is None
