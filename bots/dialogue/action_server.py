"""Where a project's rasa-sdk actions run: in this process (``LocalActions``), on a Rasa action server
over its HTTP protocol (``RemoteActions``), or both (``Actions``: local first). Each is an
``ActionServer`` (bots/dialogue/model.py): ``run`` takes exactly the body Rasa posts and returns
``{"events": [...], "responses": [...]}``, or raises ``ActionError`` saying what went wrong.

Why not ``ActionExecutor.run`` as is: it calls a synchronous ``run`` on the event loop, so one action
waiting on an order system would stall every conversation. Synchronous actions run on a thread pool
of their own here (a slow one cannot starve the database's threads); ``async def run`` stays on the
loop. Registration is rasa-sdk's own (``register_action``), but only of the classes defined in the
project's module and its submodules, not of every ``Action`` subclass the process ever imported:
a test run (or a server) may load several projects, each with its own ``actions`` package.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import logging
import os
import pkgutil
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from rasa_sdk.interfaces import ActionExecutionRejection

from seamline.bots.dialogue.model import ActionError, ActionServer
from seamline.shared.errors import ConfigError
from seamline.shared.settings import Settings

log = logging.getLogger(__name__)

# Synchronous actions mostly wait (on an order system, a CRM): threads, not cores, are what they
# use up. Past THREADS at once, the next waits for a thread (and may time out).
THREADS = 32
MAX_ANSWER = 2_000_000  # bytes of an action server's answer; past it, the answer is refused
_PROJECTS: set[str] = set()  # the project folders this process has put on sys.path
# A call carries up to 60 tracker events: the compact form, UTF-8 rather than \u escapes, is ~20% cheaper.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False, default=str)


class LocalActions:
    """The project's rasa-sdk actions, run in this process."""

    def __init__(self, executor: ActionExecutor, module: str = "actions") -> None:
        self._executor = executor
        self.module = module
        self._pool: ThreadPoolExecutor | None = None
        self._async: dict[str, bool] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._executor.actions)

    def knows(self, name: str) -> bool:
        return name in self._executor.actions

    async def run(self, call: dict[str, Any]) -> dict[str, Any]:
        name = str(call.get("next_action") or "")
        action = self._executor.actions.get(name)
        if action is None:
            raise ActionError(name, "unknown", f"no action of that name in module {self.module!r}")
        tracker = Tracker.from_dict(call["tracker"])
        dispatcher = CollectingDispatcher()
        domain = call.get("domain") or {}
        is_async = self._async.get(name)
        if is_async is None:
            is_async = self._async[name] = inspect.iscoroutinefunction(action)
        try:
            if is_async:
                events = await action(dispatcher, tracker, domain)
            else:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="seamline-action")
                loop = asyncio.get_running_loop()
                events = await loop.run_in_executor(self._pool, action, dispatcher, tracker, domain)
                if inspect.isawaitable(events):  # a plain def that returned a coroutine
                    events = await events
        except ActionExecutionRejection as exc:
            raise ActionError(name, "rejected", str(exc.message)) from exc
        except Exception as exc:  # the project's code: whatever it raised is its failure, not ours
            raise ActionError(name, "failed", f"{type(exc).__name__}: {exc}") from exc
        if events is None:
            events = []
        if not isinstance(events, (list, tuple)):
            raise ActionError(name, "malformed", f"run() returned {type(events).__name__}, not a list of events")
        answer = {"events": list(events), "responses": dispatcher.messages}
        try:  # the events are kept with the session (Redis, SQL): they must be JSON
            json.dumps(answer)
        except (TypeError, ValueError) as exc:
            raise ActionError(name, "malformed", f"its events or messages are not JSON ({exc})") from exc
        return answer

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class RemoteActions:
    """A Rasa action server (``python -m rasa_sdk``, or any server speaking its protocol) at ``url``,
    its webhook (``http://host:5055/webhook``). The domain is sent once: later calls carry only its
    digest, and a server that answers 449 (it restarted, or another Seamline changed the domain) is
    sent the domain again."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http: aiohttp.ClientSession | None = None
        self._digest: str | None = None  # the domain digest the server has

    def knows(self, name: str) -> bool:
        return True  # the server says 404 for one it lacks

    async def run(self, call: dict[str, Any]) -> dict[str, Any]:
        name = str(call.get("next_action") or "")
        body = call
        if "domain" in call and call.get("domain_digest") == self._digest:
            body = {k: v for k, v in call.items() if k != "domain"}
        status, answer = await self._post(name, body)
        if status == 449 and body is not call:
            status, answer = await self._post(name, call)
        if status == 200:
            if "domain" in body:
                self._digest = call.get("domain_digest")
            if not isinstance(answer, dict):
                raise ActionError(name, "malformed", f"the action server answered {_short(answer)}")
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        if status == 404:
            raise ActionError(name, "unknown", f"the action server at {self.url} has no such action")
        if status == 400:
            raise ActionError(name, "rejected", str(error or "rejected"))
        raise ActionError(name, "failed", f"the action server at {self.url} answered HTTP {status} {_short(error)}")

    async def _post(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self._http is None:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128))
        data = _ENCODER.encode(body).encode()
        for attempt in (1, 2):
            try:
                status, text = await self._exchange(self._http, name, data)
                break
            except aiohttp.ServerDisconnectedError as exc:
                # A kept-alive connection the server had closed (servers keep idle ones 2-120 s):
                # nothing was answered on it, so the call is made once more on a new connection.
                if attempt == 2:
                    raise ActionError(name, "unreachable", f"the action server at {self.url} hung up ({exc})") from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise ActionError(
                    name, "unreachable", f"the action server at {self.url} is unreachable ({exc})"
                ) from exc
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            if status == 200:
                raise ActionError(name, "malformed", f"the action server answered {_short(text)}") from None
            return status, None

    async def _exchange(self, http: aiohttp.ClientSession, name: str, data: bytes) -> tuple[int, str]:
        async with http.post(self.url, data=data, headers={"Content-Type": "application/json"}) as r:
            raw = bytearray()
            async for chunk in r.content.iter_chunked(65536):
                raw += chunk
                if len(raw) > MAX_ANSWER:  # a server gone wrong must not fill this process's memory
                    raise ActionError(name, "malformed", f"the action server answered more than {MAX_ANSWER} bytes")
            return r.status, raw.decode("utf-8", errors="replace")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


class Actions:
    """Both: an action the project's module defines runs in process, any other on the server."""

    def __init__(self, local: LocalActions, remote: RemoteActions) -> None:
        self.local = local
        self.remote = remote

    def knows(self, name: str) -> bool:
        return self.local.knows(name) or self.remote.knows(name)

    async def run(self, call: dict[str, Any]) -> dict[str, Any]:
        if self.local.knows(str(call.get("next_action") or "")):
            return await self.local.run(call)
        return await self.remote.run(call)

    async def close(self) -> None:
        await self.local.close()
        await self.remote.close()


def load_actions(settings: Settings) -> ActionServer | None:
    """The project's actions: module ``settings.actions_module`` (imported with the project's folder
    on ``sys.path``) and/or the action server at ``settings.action_endpoint``. No such module is no
    local actions; a module that fails to import is a ConfigError naming it and the error."""
    local = load_module(settings.actions_module, settings.project_dir) if settings.actions_module else None
    remote = RemoteActions(settings.action_endpoint) if settings.action_endpoint else None
    if local is not None and remote is not None:
        return Actions(local, remote)
    return local or remote


def load_module(name: str, folder: Path | None = None) -> LocalActions | None:
    """The actions of module ``name``, imported with ``folder`` (the project's) first on sys.path;
    None when there is no such module, or when the only one is another project's."""
    where = str(Path(folder).resolve()) if folder is not None else None
    if where is not None:
        if where in sys.path:
            sys.path.remove(where)
        sys.path.insert(0, where)  # this project's ``actions`` before any other's
        _forget_foreign(name, where)
        _PROJECTS.add(where)
    try:
        spec = importlib.util.find_spec(name)  # imports the parents of a dotted name
    except ModuleNotFoundError as exc:
        if not exc.name or not (name == exc.name or name.startswith(exc.name + ".")):
            raise _broken(name, exc) from exc  # a parent that exists imports something missing
        spec = None  # a parent that does not exist
    except Exception as exc:  # a parent's top level raised
        raise _broken(name, exc) from exc
    if spec is None or _origin(spec) in _PROJECTS - {where}:  # a project without actions/ of its own
        return None
    executor = ActionExecutor()
    for module in _modules(name):
        for value in list(vars(module).values()):
            if _own_action(value, module.__name__):
                try:
                    executor.register_action(value)
                except Exception as exc:  # the project's constructor failed
                    raise _broken(module.__name__, exc) from exc
    log.info("custom actions from module %s: %s", name, ", ".join(sorted(executor.actions)) or "none")
    return LocalActions(executor, name)


def _modules(name: str) -> list[types.ModuleType]:
    """The module and, for a package, every submodule (imported here, as rasa-sdk does)."""
    found: list[types.ModuleType] = []
    pending = [name]
    while pending:
        current = pending.pop(0)
        try:
            module = importlib.import_module(current)
        except Exception as exc:  # SyntaxError, ImportError, anything its top level raised
            raise _broken(current, exc) from exc
        found.append(module)
        path = getattr(module, "__path__", None)
        if path:
            pending.extend(info.name for info in pkgutil.iter_modules(path, prefix=module.__name__ + "."))
    return found


def _own_action(value: object, module: str) -> bool:
    return (
        inspect.isclass(value)
        and issubclass(value, Action)
        and value.__module__ == module
        and not inspect.isabstract(value)
    )


def _origin(spec: importlib.machinery.ModuleSpec) -> str | None:
    """The folder on sys.path a module was found in."""
    if spec.origin in (None, "namespace"):
        locations = list(spec.submodule_search_locations or [])
        if not locations:
            return None
        top = Path(locations[0]).resolve()  # a namespace package's folder
    else:
        top = Path(spec.origin).resolve()
        if spec.submodule_search_locations is not None:
            top = top.parent  # a package: its folder, not its __init__.py
    for _ in range(spec.name.count(".") + 1):
        top = top.parent
    return str(top)


def _forget_foreign(name: str, folder: str) -> None:
    """Drop an already imported ``name`` (and its submodules) that came from another folder, so that
    this project's module of the same name is imported instead."""
    root = name.split(".")[0]
    module = sys.modules.get(root)
    origin = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", []) or []), None)
    if module is None or (origin is not None and str(Path(origin).resolve()).startswith(folder + os.sep)):
        return
    for loaded in [m for m in sys.modules if m == root or m.startswith(root + ".")]:
        del sys.modules[loaded]
    importlib.invalidate_caches()


def _broken(module: str, exc: BaseException) -> ConfigError:
    return ConfigError(
        f"custom actions module {module!r}",
        f"cannot be loaded ({type(exc).__name__}: {exc})",
        "Fix the module (run: python -c 'import "
        + module
        + "'), or point [actions] module / SEAMLINE_ACTIONS_MODULE at another one",
    )


def _short(value: object, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
