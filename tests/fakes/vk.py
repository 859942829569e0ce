"""A fake VK API on 127.0.0.1 that speaks VK's wire format, for tests and for trying a bot offline.

    async with FakeVk() as vk:                                   # aiohttp on a random port
        settings = replace(settings, channels={"vk": dict(token=vk.token, group_id=vk.group_id, api_base=vk.url)})
        ... start Seamline with those settings (Bots Long Poll) ...
        vk.push(vk.message_new(1001, "hello"))                   # a customer writes
        sent = await vk.wait_for(lambda: vk.sent_to(1001))       # what messages.send delivered
        vk.fail("messages.send", error=6)                        # the next call: too many requests
        await vk.post_callback(url, vk.message_new(1001, "hi"), secret="s3cret")   # Callback API

What it speaks (VK API v5.199):

- ``POST``/``GET /method/<name>`` with form or query parameters including ``access_token`` and ``v``;
  answers ``{"response": ...}`` or, with HTTP 200 like VK, ``{"error": {"error_code", "error_msg",
  "request_params"}}``. A wrong token gets error 5, a missing ``v`` error 8, an unknown method error 3.
- ``groups.getById`` (the token's community, in the 5.194+ shape ``{"groups": [...], "profiles": []}``),
  ``groups.getLongPollServer`` (``{"key", "server", "ts"}``, the server pointing back here),
  ``messages.send`` (returns the new message id; a ``random_id`` repeated for the same peer within
  ``dedupe_window`` seconds returns the first message's id and creates nothing, like VK; checks the
  4096-character limit (error 914) and the keyboard format (error 911)), and
  ``messages.sendMessageEventAnswer``.
- Bots Long Poll: ``GET <server>?act=a_check&key=..&ts=..&wait=..`` holds the request until an event
  is pushed or ``min(wait, hold)`` seconds pass, then answers ``{"ts", "updates": [...]}``; a wrong key
  gets ``{"failed": 2}``, a ts from the future ``{"failed": 1, "ts"}``. ``fail_poll(n)`` makes the next
  check answer ``{"failed": n}`` (2 and 3 also change the key, as VK does when a key expires).
- Callback API: ``post_callback(url, event, secret=...)`` and ``confirm(url)`` post events to a bot the
  way VK does and return ``(status, body)``.

Everything is recorded for assertions: ``calls`` (every method call with its parameters and outcome),
``sent`` (messages created), ``event_answers``, ``pushed`` (when each event was queued). Failures:
``fail(method, error=6)`` (or ``status=502``; ``lose_response=True`` does the call and then answers
the status, as when a connection drops), ``block(peer_id, error=901)``, ``pause(method)`` (its calls
wait until released), ``rps_limit`` (error 6 above N calls a second). ``wait_for(predicate)`` waits,
bounded, until something recorded makes it true.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

API_VERSION = "5.199"
ERRORS = {
    3: "Unknown method passed",
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    8: "Invalid request: v is required",
    9: "Flood control",
    10: "Internal server error",
    15: "Access denied",
    100: "One of the parameters specified was missing or invalid",
    900: "Can't send messages for users from blacklist",
    901: "Can't send messages for users without permission",
    902: "Can't send messages to this user due to their privacy settings",
    911: "Keyboard format is invalid",
    914: "Message is too long",
}
CLIENT_INFO = {
    "button_actions": [
        "text",
        "vkpay",
        "open_app",
        "location",
        "open_link",
        "callback",
        "intent_subscribe",
        "intent_unsubscribe",
    ],
    "keyboard": True,
    "inline_keyboard": True,
    "carousel": True,
    "lang_id": 3,
}


class VkError(Exception):
    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(code)
        self.code, self.message = code, ERRORS.get(code, "Unknown error") + (f": {detail}" if detail else "")


@dataclass
class Call:
    method: str
    params: dict[str, str]
    outcome: str = "pending"  # then: ok, error <code>, http <status>
    at: float = field(default_factory=time.perf_counter)


@dataclass
class _Failure:
    error: int | None
    status: int | None
    lose_response: bool


class FakeVk:
    def __init__(
        self,
        *,
        token: str = "vk1.a.fake-community-token",
        group_id: int = 218755321,
        group_name: str = "Seamline test shop",
        hold: float = 1.0,
        dedupe_window: float = 3600.0,
        rps_limit: int | None = None,
    ) -> None:
        """``hold``: the longest a long poll is held, whatever its ``wait`` (so stopping is quick)."""
        self.token, self.group_id, self.group_name = token, group_id, group_name
        self.hold, self.dedupe_window, self.rps_limit = hold, dedupe_window, rps_limit
        self.calls: list[Call] = []
        self.sent: list[dict] = []
        self._sent_by_peer: dict[int, list[dict]] = defaultdict(list)
        self.event_answers: list[dict] = []
        self.pushed: dict[str, float] = {}  # event_id → time.perf_counter() when queued
        self.polls = 0
        self._updates: list[dict] = []
        self._key = secrets.token_hex(20)
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._poll_failures: deque[int] = deque()
        self._blocked: dict[int, int] = {}
        self._gates: dict[str, asyncio.Event] = {}
        self._by_random_id: dict[tuple[int, int], tuple[int, float]] = {}
        self._recent: deque[float] = deque()
        self._ids = 0
        self._conversation_ids: dict[int, int] = defaultdict(int)
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The API base: give it to Seamline as SEAMLINE_VK_API_BASE."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeVk:
        app = web.Application()
        app.router.add_route("*", "/method/{name}", self._method)
        app.router.add_get("/whp/{group_id}", self._long_poll)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self._closing = True
        self._notify()  # held long polls answer now
        for gate in self._gates.values():
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeVk:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # -- telling it what to do ---------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        error: int | None = None,
        status: int | None = None,
        times: int = 1,
        lose_response: bool = False,
    ) -> None:
        """The next ``times`` calls of ``method`` get VK error ``error``, or HTTP ``status``."""
        if (error is None) == (status is None):
            raise ValueError("give either a VK error code or an HTTP status")
        self._failures[method].extend(_Failure(error, status, lose_response) for _ in range(times))

    def block(self, peer_id: int, error: int = 901) -> None:
        """messages.send to this peer fails with ``error`` (901: the user did not allow messages)."""
        self._blocked[peer_id] = error

    def pause(self, method: str) -> asyncio.Event:
        """Calls of ``method`` wait (held open) until the returned event is set."""
        gate = self._gates[method] = asyncio.Event()
        return gate

    def fail_poll(self, failed: int, times: int = 1) -> None:
        self._poll_failures.extend([failed] * times)

    def push(self, event: dict) -> dict:
        """Queue an event for Bots Long Poll (it is answered to the next or the waiting check)."""
        self._updates.append(event)
        self.pushed[event.get("event_id", str(len(self._updates)))] = time.perf_counter()
        self._notify()
        return event

    async def post_callback(self, url: str, event: dict, *, secret: str | None = None) -> tuple[int, str]:
        """POST an event to a bot's Callback API URL as VK does; returns (HTTP status, body)."""
        body = dict(event, **({"secret": secret} if secret is not None else {}))
        if "event_id" in event:
            self.pushed[event["event_id"]] = time.perf_counter()
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=10)) as response:
                return response.status, await response.text()

    async def confirm(self, url: str, *, secret: str | None = None, group_id: int | None = None) -> tuple[int, str]:
        """VK's request to confirm a Callback API server address; the bot must answer the string."""
        event = {"type": "confirmation", "group_id": group_id or self.group_id}
        return await self.post_callback(url, event, secret=secret)

    # -- events as VK sends them -------------------------------------------------------------------

    def message_new(
        self,
        peer_id: int,
        text: str = "",
        *,
        from_id: int | None = None,
        payload: object = None,
        attachments: list[dict] | None = None,
        geo: dict | None = None,
        lang_id: int = 3,
        ref: str | None = None,
        ref_source: str | None = None,
    ) -> dict:
        """``ref`` (and ``ref_source``): as VK sets them on the message of a user who came by a
        ``vk.me/club<id>?ref=<ref>&ref_source=<source>`` link."""
        self._ids += 1
        self._conversation_ids[peer_id] += 1
        message = {
            "date": int(time.time()),
            "from_id": from_id or peer_id,
            "id": self._ids if peer_id < 2e9 else 0,
            "version": 10_000_000 + self._ids,
            "out": 0,
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "attachments": attachments or [],
            "conversation_message_id": self._conversation_ids[peer_id],
            "text": text,
            "peer_id": peer_id,
            "random_id": 0,
        }
        if payload is not None:
            message["payload"] = payload if isinstance(payload, str) else json.dumps(payload)
        if geo is not None:
            message["geo"] = geo
        if ref is not None:
            message["ref"] = ref
            if ref_source is not None:
                message["ref_source"] = ref_source
        return self._event("message_new", {"message": message, "client_info": dict(CLIENT_INFO, lang_id=lang_id)})

    def message_event(self, peer_id: int, payload: object, *, user_id: int | None = None) -> dict:
        """A callback button press (the button was sent with action type "callback")."""
        return self._event(
            "message_event",
            {
                "user_id": user_id or peer_id,
                "peer_id": peer_id,
                "event_id": secrets.token_hex(6),
                "payload": payload,
                "conversation_message_id": self._conversation_ids[peer_id] or 1,
            },
        )

    def _event(self, kind: str, obj: dict) -> dict:
        return {
            "group_id": self.group_id,
            "type": kind,
            "event_id": secrets.token_hex(20),
            "v": API_VERSION,
            "object": obj,
        }

    # -- looking at what happened ------------------------------------------------------------------

    def sent_to(self, peer_id: int) -> list[dict]:
        return list(self._sent_by_peer.get(peer_id, ()))

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate, timeout: float = 10.0):
        """Wait until ``predicate()`` is truthy (re-checked whenever something is recorded); return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (result := predicate()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"fake VK: condition not met in {timeout}s; calls: "
                    f"{[(c.method, c.outcome) for c in self.calls[-10:]]}"
                )
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass
        return result

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- the API -----------------------------------------------------------------------------------

    async def _method(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        params = {**request.query, **(await request.post())}
        params = {k: str(v) for k, v in params.items()}
        call = Call(name, params)
        self.calls.append(call)
        self._notify()
        if name in self._gates:
            await self._gates[name].wait()
        try:
            failure = self._failures[name].popleft() if self._failures.get(name) else None
            if failure and failure.error is not None:
                raise VkError(failure.error)
            if failure and not failure.lose_response:
                call.outcome = f"http {failure.status}"
                return web.Response(status=failure.status, text="Bad Gateway")
            response = self._answer(name, params)
            if failure:  # done, but the answer is lost on the way
                call.outcome = f"http {failure.status} (after doing it)"
                return web.Response(status=failure.status, text="Bad Gateway")
            call.outcome = "ok"
            return web.json_response({"response": response})
        except VkError as exc:
            call.outcome = f"error {exc.code}"
            request_params = [{"key": "method", "value": name}, {"key": "oauth", "value": "1"}]
            request_params += [{"key": k, "value": v} for k, v in params.items() if k != "access_token"]
            return web.json_response(
                {"error": {"error_code": exc.code, "error_msg": exc.message, "request_params": request_params}}
            )
        finally:
            self._notify()

    def _answer(self, name: str, params: dict[str, str]) -> object:
        if params.get("access_token") != self.token:
            raise VkError(5)
        if not params.get("v"):
            raise VkError(8)
        if self.rps_limit:
            now = time.monotonic()
            while self._recent and now - self._recent[0] > 1:
                self._recent.popleft()
            if len(self._recent) >= self.rps_limit:
                raise VkError(6)
            self._recent.append(now)
        handler = {
            "groups.getById": self._groups_get_by_id,
            "groups.getLongPollServer": self._long_poll_server,
            "messages.send": self._send,
            "messages.sendMessageEventAnswer": self._event_answer,
        }.get(name)
        if handler is None:
            raise VkError(3)
        return handler(params)

    def _groups_get_by_id(self, params: dict[str, str]) -> dict:
        group = {
            "id": self.group_id,
            "name": self.group_name,
            "screen_name": f"club{self.group_id}",
            "is_closed": 0,
            "type": "group",
            "photo_50": "https://sun9-1.userapi.com/camera_50.png",
        }
        return {"groups": [group], "profiles": []}

    def _long_poll_server(self, params: dict[str, str]) -> dict:
        if params.get("group_id") != str(self.group_id):
            raise VkError(100, "group_id is invalid")
        return {"key": self._key, "server": f"{self.url}/whp/{self.group_id}", "ts": str(len(self._updates))}

    def _send(self, params: dict[str, str]) -> int:
        try:
            peer_id, random_id = int(params.get("peer_id", "")), int(params.get("random_id", ""))
        except ValueError:
            raise VkError(100, "peer_id and random_id are required numbers") from None
        text = params.get("message", "")
        if not text and not any(params.get(k) for k in ("attachment", "sticker_id", "lat", "template")):
            raise VkError(100, "message is empty")
        if len(text) > 4096:
            raise VkError(914)
        board = _keyboard(params["keyboard"]) if params.get("keyboard") else None
        if peer_id in self._blocked:
            raise VkError(self._blocked[peer_id])
        now = time.monotonic()
        earlier = self._by_random_id.get((peer_id, random_id))
        if random_id and earlier and now - earlier[1] < self.dedupe_window:
            return earlier[0]  # VK: the same random_id again sends nothing
        self._ids += 1
        self._by_random_id[(peer_id, random_id)] = (self._ids, now)
        message = {
            "id": self._ids,
            "peer_id": peer_id,
            "random_id": random_id,
            "message": text,
            "keyboard": board,
            "at": time.perf_counter(),
        }
        for key in ("attachment", "sticker_id", "lat", "long", "template"):  # as sent (strings)
            if params.get(key):
                message[key] = params[key]
        self.sent.append(message)
        self._sent_by_peer[peer_id].append(message)
        return self._ids

    def _event_answer(self, params: dict[str, str]) -> int:
        if not all(params.get(k) for k in ("event_id", "user_id", "peer_id")):
            raise VkError(100, "event_id, user_id and peer_id are required")
        self.event_answers.append(
            {k: params[k] for k in ("event_id", "user_id", "peer_id")} | {"event_data": params.get("event_data")}
        )
        return 1

    async def _long_poll(self, request: web.Request) -> web.Response:
        self.polls += 1
        query = request.query
        if query.get("act") != "a_check" or query.get("key") != self._key:
            return web.json_response({"failed": 2})
        if self._poll_failures:
            failed = self._poll_failures.popleft()
            if failed in (2, 3):
                self._key = secrets.token_hex(20)
            return web.json_response({"failed": failed, **({"ts": str(len(self._updates))} if failed == 1 else {})})
        try:
            ts, wait = int(query.get("ts", "")), float(query.get("wait", "25"))
        except ValueError:
            return web.json_response({"failed": 1, "ts": str(len(self._updates))})
        if ts > len(self._updates) or ts < 0:
            return web.json_response({"failed": 1, "ts": str(len(self._updates))})
        deadline = time.monotonic() + min(wait, self.hold)
        while ts == len(self._updates) and not self._closing and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        return web.json_response({"ts": str(len(self._updates)), "updates": self._updates[ts:]})


def _keyboard(raw: str) -> dict:
    """Parse and check a keyboard as VK does (error 911 when it is wrong)."""
    try:
        board = json.loads(raw)
        rows = board["buttons"]
        buttons = [b for row in rows for b in row]
        limit_rows, limit_buttons = (6, 10) if board.get("inline") else (10, 40)
        ok = len(rows) <= limit_rows and len(buttons) <= limit_buttons and all(len(row) <= 5 for row in rows)
        for button in buttons:
            action = button["action"]
            ok = ok and action["type"] in ("text", "callback", "open_link", "location", "vkpay", "open_app")
            ok = ok and (action["type"] not in ("text", "callback") or 0 < len(action["label"]) <= 40)
            ok = ok and len(str(action.get("payload", "")).encode()) <= 255
    except (ValueError, KeyError, TypeError):
        raise VkError(911) from None
    if not ok:
        raise VkError(911)
    return board
