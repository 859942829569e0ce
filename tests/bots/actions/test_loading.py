"""Finding a project's actions (its module, an action server, both) and talking to a server that
misbehaves: what the author sees at start, and what the console sees when a server cannot help."""

from __future__ import annotations

import asyncio
import shutil
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

from seamline.bots.dialogue.action_server import Actions, LocalActions, RemoteActions, load_actions
from seamline.bots.dialogue.actions import run_action
from seamline.bots.dialogue.tracker import domain_dict_and_digest
from seamline.shared.errors import ConfigError
from seamline.shared.settings import Settings

from tests.bots.actions.sample import DOMAIN, PROJECT, conversation
from tests.support import free_port


def write_project(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root


ACTION = """
    from rasa_sdk import Action

    class {cls}(Action):
        def name(self):
            return "{name}"

        def run(self, dispatcher, tracker, domain):
            dispatcher.utter_message(text="{text}")
            return []
"""


def settings_for(folder: Path | None, **options) -> Settings:
    return Settings(project_dir=folder, **options)


async def say(actions, name: str) -> list[str]:
    outcome = await run_action(name, server=actions, domain=DOMAIN, session=conversation(), channel="web", timeout=10)
    assert outcome.problem is None, outcome.problem
    return [r.text for r in outcome.replies]


async def test_each_project_gets_its_own_actions_package(tmp_path):
    """Two projects with a package of the same name, loaded in one process: each has only its own
    actions, not every Action subclass the process has seen (nor one it merely imports)."""
    one = write_project(tmp_path / "one", {"actions/__init__.py": ACTION.format(cls="A", name="action_a", text="one")})
    two = write_project(
        tmp_path / "two",
        {
            "actions/__init__.py": "from rasa_sdk.forms import FormValidationAction\n",
            "actions/more/__init__.py": "",
            "actions/more/deep.py": ACTION.format(cls="B", name="action_b", text="two"),
        },
    )
    first = load_actions(settings_for(one))
    second = load_actions(settings_for(two))
    assert isinstance(first, LocalActions) and isinstance(second, LocalActions)
    assert first.names == ("action_a",) and second.names == ("action_b",)
    assert await say(first, "action_a") == ["one"] and await say(second, "action_b") == ["two"]


def test_no_module_is_no_local_actions(tmp_path):
    assert load_actions(settings_for(tmp_path)) is None
    assert load_actions(settings_for(tmp_path, actions_module="")) is None
    assert load_actions(settings_for(tmp_path, actions_module="nowhere.at_all")) is None


@pytest.mark.parametrize(
    ("files", "named", "error"),
    [
        ({"broken/__init__.py": "import not_installed_anywhere\n"}, "'broken'", "No module named"),
        ({"broken/__init__.py": "", "broken/bad.py": "def run(:\n"}, "'broken.bad'", "SyntaxError"),
        ({"broken.py": "raise RuntimeError('no database configured')\n"}, "'broken'", "no database configured"),
        ({"broken/__init__.py": "import not_there\n", "broken/actions.py": ""}, "'broken.actions'", "not_there"),
    ],
)
def test_a_module_that_cannot_be_loaded_is_named_at_start(tmp_path, files, named, error):
    folder = write_project(tmp_path, files)
    module = "broken.actions" if "broken/actions.py" in files else "broken"
    with pytest.raises(ConfigError) as caught:
        load_actions(settings_for(folder, actions_module=module))
    assert named in str(caught.value) and error in str(caught.value)
    for loaded in [m for m in sys.modules if m == "broken" or m.startswith("broken.")]:
        del sys.modules[loaded]


async def test_a_synchronous_action_does_not_stop_other_conversations(tmp_path):
    """A sync ``run`` waiting on a slow system runs on a thread: another action finishes meanwhile."""
    folder = tmp_path / "project"
    shutil.copytree(PROJECT, folder, ignore=shutil.ignore_patterns("__pycache__"))
    actions = load_actions(settings_for(folder))
    module = sys.modules["actions"]
    module.RELEASE.clear()
    try:
        blocked = asyncio.create_task(say(actions, "action_blocking"))
        assert await say(actions, "action_check_order") == ["Order 48213 is shipped."]
        assert not blocked.done()
        module.RELEASE.set()
        assert await blocked == ["released"]
    finally:
        module.RELEASE.set()
        await actions.close()


async def test_the_module_first_then_the_action_server(tmp_path, remote_url):
    """With both, an action the project's module defines runs in process, any other on the server."""
    local = write_project(
        tmp_path / "local", {"actions/__init__.py": ACTION.format(cls="A", name="action_check_order", text="here")}
    )
    actions = load_actions(settings_for(local, action_endpoint=remote_url))
    assert isinstance(actions, Actions)
    try:
        assert await say(actions, "action_check_order") == ["here"]
        assert await say(actions, "action_first") == ["first"]
    finally:
        await actions.close()


async def test_a_server_that_lacks_the_domain_is_sent_it_again(remote_url):
    """The domain goes with the first call only; a server that does not know it (it restarted, or
    another Seamline changed it) answers 449, and the call is repeated with the domain."""
    changed = replace(DOMAIN, intents=(*DOMAIN.intents, "brand_new"))
    server = RemoteActions(remote_url)
    server._digest = domain_dict_and_digest(changed)[1]  # as if it had been sent already
    try:
        outcome = await run_action(
            "action_tracker_echo", server=server, domain=changed, session=conversation(), channel="web", timeout=10
        )
        assert outcome.problem is None and outcome.replies[0].custom["sender_id"] == "customer-7"
    finally:
        await server.close()


# -- a server that misbehaves (a fake: rasa_sdk's own server never answers like this) ---------------


@pytest.fixture
async def fake_server(tmp_path):
    """An aiohttp server answering what ``answers`` says, recording the bodies it was posted."""
    posted: list[dict] = []
    answers: list[web.Response] = []

    async def webhook(request: web.Request) -> web.Response:
        posted.append(await request.json())
        return answers.pop(0)

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/webhook", answers, posted
    await runner.cleanup()


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (web.Response(text="[1, 2]", content_type="application/json"), "the action server answered [1, 2]"),
        (web.Response(text="<html>ok</html>"), "the action server answered <html>ok</html>"),
        (web.json_response({"events": "none"}), 'the answer has no "events" and "responses" lists'),
        (web.json_response({"events": [{"name": "x"}], "responses": []}), "{'name': 'x'} is not an event"),
        (web.json_response({"events": [], "responses": ["hi"]}), "'hi' is not a message"),
        (web.json_response({"error": "boom"}, status=502), "answered HTTP 502 boom"),
        (web.Response(body=b"[" + b"1," * 1_500_000 + b"1]"), "answered more than 2000000 bytes"),
    ],
)
async def test_garbage_from_an_action_server(fake_server, answer, problem):
    url, answers, _ = fake_server
    answers.append(answer)
    session = conversation()
    before = list(session.events)
    server = RemoteActions(url)
    outcome = await run_action("action_x", server=server, domain=DOMAIN, session=session, channel="web", timeout=5)
    await server.close()
    assert problem in outcome.problem and session.events == before


async def test_the_domain_is_sent_once_then_only_its_digest(fake_server):
    url, answers, posted = fake_server
    server = RemoteActions(url)
    answers.extend(
        [
            web.json_response({"events": [], "responses": []}),
            web.json_response({"error": "domain missing"}, status=449),
            web.json_response({"events": [], "responses": []}),
        ]
    )
    for _ in range(2):
        outcome = await run_action(
            "action_x", server=server, domain=DOMAIN, session=conversation(), channel="web", timeout=5
        )
        assert outcome.problem is None
    await server.close()
    assert ["domain" in body for body in posted] == [True, False, True]
    assert posted[0]["domain"]["forms"] == {"order_form": {"required_slots": ["order_number"]}}
    assert len({body["domain_digest"] for body in posted}) == 1


async def test_an_unreachable_action_server():
    server = RemoteActions(f"http://127.0.0.1:{free_port()}/webhook")
    session = conversation()
    before = list(session.events)
    outcome = await run_action(
        "action_check_order", server=server, domain=DOMAIN, session=session, channel="web", timeout=5
    )
    await server.close()
    assert outcome.problem.startswith("action_check_order could not run: the action server at http://127.0.0.1:")
    assert "is unreachable" in outcome.problem and session.events == before


async def test_a_connection_the_server_closed_is_not_a_failure():
    """The server hangs up on the first request without answering (an idle kept-alive connection it
    had closed looks the same): the call is made again on a new connection and answered."""
    hung_up = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hung_up
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        if not hung_up:
            hung_up += 1
        else:
            body = b'{"events": [], "responses": [{"text": "answered"}]}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    server = RemoteActions(f"http://127.0.0.1:{port}/webhook")
    try:
        assert await say(server, "action_x") == ["answered"]
        assert hung_up == 1
    finally:
        await server.close()
        listener.close()
        await listener.wait_closed()
