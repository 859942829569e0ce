"""The agent REST API (``/api/v1``) and the console's live inbox WebSocket.

Authentication: ``Authorization: Bearer <token>`` (from ``POST /api/v1/auth/login``), or the
console's session cookie plus an ``X-CSRF-Token`` header on every state-changing request.
Errors are JSON ``{"error": "..."}``: 400 bad body, 401 no or wrong token, 403 not yours / not
allowed, 404 unknown id, 409 not now, 415 a body not sent as application/json, 429 too many
logins (``Retry-After``), 503 a login that could not be counted (docs/handoff.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from seamline.handoff.agents import Agent, token_digest
from seamline.handoff.auth import COOKIE, Login
from seamline.handoff.auth import bearer as _bearer
from seamline.handoff.auth import body as _body
from seamline.handoff.auth import error as _error
from seamline.handoff.auth import first_token as _first_token
from seamline.handoff.auth import number as _number
from seamline.handoff.inbox import DROPPED, REVOKED
from seamline.handoff.login import LoginGuard
from seamline.handoff.machine import STATES
from seamline.handoff.service import Forbidden, Handoff, NotFound, message_event
from seamline.shared.errors import HandoffError, StoreError
from seamline.shared.identity import CustomerStore
from seamline.shared.limits import Limiter, MemoryLimiter
from seamline.shared.linking import Linker
from seamline.shared.net import Network

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RECHECK_SECONDS = 30.0  # an open inbox socket checks its login this often
MAX_TEXT = 4096
MAX_ID = 128  # characters of an id in a path; every id this API hands out is far shorter


def _plausible(ident: str) -> bool:
    """Whether a path's id could be one this API handed out: not too long, printable, no lone surrogate.
    PostgreSQL refuses a text holding NUL (a 500 before this check: ``DELETE /customers/%00``)."""
    return 0 < len(ident) <= MAX_ID and ident.isprintable() and ident.encode("utf-8", "replace").decode() == ident


def _checked_id(handler: Handler) -> Handler:
    """``handler`` behind a check of its ``{id}``: one no store could hold is a 404 like an unknown one."""

    async def checked(request: web.Request) -> web.StreamResponse:
        if not _plausible(request.match_info["id"]):
            raise _error(404, "no such id")
        return await handler(request)

    return checked


class AgentApi:
    def __init__(
        self,
        *,
        handoff: Handoff,
        customers: CustomerStore,
        linker: Linker,
        limiter: Limiter | None = None,
        guard: LoginGuard | None = None,
        cookie_secure: str = "auto",
        trusted_proxies: tuple[Network, ...] = (),
    ) -> None:
        self._handoff = handoff
        self._login = Login(
            agents=handoff.agents,
            guard=guard or LoginGuard(limiter=limiter or MemoryLimiter()),
            cookie_secure=cookie_secure,
            trusted_proxies=trusted_proxies,
        )
        self._customers = customers
        self._linker = linker

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/api/v1/auth/login", self._login.login)
        r.add_post("/api/v1/auth/logout", self.logout)
        r.add_get("/api/v1/me", self.me)
        r.add_post("/api/v1/me/status", self.status)
        r.add_get("/api/v1/queues", self.queues)
        r.add_get("/api/v1/canned", self.canned)
        r.add_get("/api/v1/agents", self.agents)
        r.add_post("/api/v1/agents/{id}/status", _checked_id(self.agent_status))
        r.add_get("/api/v1/conversations", self.conversations)
        r.add_get("/api/v1/conversations/{id}", _checked_id(self.conversation))
        for action in ("claim", "messages", "notes", "transfer", "release", "resolve"):
            r.add_post(f"/api/v1/conversations/{{id}}/{action}", _checked_id(getattr(self, f"do_{action}")))
        r.add_get("/api/v1/customers/{id}", _checked_id(self.customer))
        r.add_get("/api/v1/customers/{id}/export", _checked_id(self.export))
        r.add_delete("/api/v1/customers/{id}", _checked_id(self.erase))
        r.add_post("/api/v1/links/{id}/undo", _checked_id(self.unlink))
        r.add_get("/api/v1/inbox", self.inbox)

    # -- auth ----------------------------------------------------------------------------------

    async def _agent(self, request: web.Request, *, write: bool = False) -> Agent:
        bearer = _bearer(request)
        if bearer is not None:
            found = await self._handoff.agents.authenticate(bearer)
            if found is None:
                raise _error(401, "the token is wrong or expired; log in again")
            return found[0]
        found = await self._handoff.agents.authenticate(request.cookies.get(COOKIE, ""))
        if found is None:
            raise _error(401, "log in first (POST /api/v1/auth/login)")
        agent, csrf, _kind = found
        if write and (not csrf or request.headers.get("X-CSRF-Token") != csrf):
            raise _error(403, "missing or wrong X-CSRF-Token header")
        return agent

    async def _admin(self, request: web.Request, *, write: bool = False) -> Agent:
        agent = await self._agent(request, write=write)
        if not agent.is_admin:
            raise _error(403, "only an admin may do this")
        return agent

    async def logout(self, request: web.Request) -> web.Response:
        agent = await self._agent(request, write=True)
        bearer = _bearer(request)
        await self._handoff.log_out(agent, bearer if bearer is not None else request.cookies.get(COOKIE, ""))
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE, path="/")
        return response

    async def me(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        return web.json_response({**agent.to_dict(), "load": await self._handoff.load(agent.id)})

    async def status(self, request: web.Request) -> web.Response:
        agent = await self._agent(request, write=True)
        status = (await _body(request)).get("status")
        if status not in ("online", "away", "offline"):
            raise _error(400, "status must be online, away or offline")
        await self._handoff.set_status(agent, status)
        return web.json_response({"status": status})

    # -- reading -------------------------------------------------------------------------------

    async def queues(self, request: web.Request) -> web.Response:
        await self._agent(request)
        return web.json_response({"queues": await self._handoff.queues()})

    async def canned(self, request: web.Request) -> web.Response:
        await self._agent(request)
        return web.json_response({"canned": [c.to_dict() for c in self._handoff.canned]})

    async def agents(self, request: web.Request) -> web.Response:
        await self._agent(request)
        agents = await self._handoff.agents.all()
        loads = await self._handoff.loads([a.id for a in agents])
        return web.json_response(
            {
                "agents": [
                    {**a.to_dict(), "load": loads.get(a.id, 0), "connected": self._handoff.connected(a)} for a in agents
                ]
            }
        )

    async def agent_status(self, request: web.Request) -> web.Response:
        """An admin sets another agent's status (e.g. offline for someone who left: what they held
        goes back to the queue at once, without waiting for the presence sweep)."""
        admin = await self._admin(request, write=True)
        status = (await _body(request)).get("status")
        if status not in ("online", "away", "offline"):
            raise _error(400, "status must be online, away or offline")
        target = await self._handoff.agents.get(request.match_info["id"])
        if target is None:
            raise _error(404, f"no agent {request.match_info['id']}")
        log.info("admin %s sets agent %s %s", admin.id, target.id, status)
        await self._handoff.set_status(target, status)
        return web.json_response({"id": target.id, "status": status})

    async def conversations(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        state = request.query.get("state")
        if state is not None and state not in STATES:
            raise _error(400, f"state must be one of {', '.join(STATES)}")
        mine = request.query.get("mine") in ("1", "true")
        limit, offset = _number(request, "limit", 200, 1, 1000), _number(request, "offset", 0, 0, 10**9)
        found = await self._handoff.conversations(
            state,
            queue=request.query.get("queue"),
            agent_id=agent.id if mine else None,
            limit=limit + 1,
            offset=offset,
            visible_to=agent,
        )
        page: dict[str, object] = {"conversations": [await self._summary(c) for c in found[:limit]]}
        if len(found) > limit:
            page["next_offset"] = offset + limit
        return web.json_response(page)

    async def _summary(self, info) -> dict:
        profile = await self._customers.profile(info.customer_id)
        return {
            **info.summary(),
            "customer": {
                "id": info.customer_id,
                "name": profile.name if profile else None,
                "last_channel": profile.last_channel if profile else None,
            },
        }

    async def conversation(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        try:
            await self._handoff.readable(agent, request.match_info["id"])
        except NotFound as exc:
            raise _error(404, str(exc)) from None
        except Forbidden as exc:
            raise _error(403, str(exc)) from None
        return web.json_response(await self._context(request.match_info["id"]))

    async def _context(self, conversation_id: str) -> dict:
        try:
            info = await self._handoff.conversation(conversation_id)
        except NotFound as exc:
            raise _error(404, str(exc)) from None
        profile = await self._customers.profile(info.customer_id)
        history = await self._handoff.history(info.customer_id, limit=500)
        session = await self._handoff.customer_session(info.customer_id)
        events = await self._handoff.notes(conversation_id)
        return {
            **info.summary(),
            "escalation": info.escalation,
            "customer": {
                "id": info.customer_id,
                "name": profile.name if profile else None,
                "language": profile.language if profile else None,
                "last_channel": profile.last_channel if profile else None,
                "attributes": profile.attributes if profile else {},
                "identities": [
                    {"channel": i.channel, "external_id": i.external_id, "reachable": i.reachable}
                    for i in (profile.identities if profile else ())
                ],
            },
            "messages": [message_event(m) for m in history],
            "slots": {k: v for k, v in (session.slots if session else {}).items() if k != "rating_for"},
            "active_form": session.active_form if session else None,
            "language": session.language if session else (profile.language if profile else None),
            "notes": [e["data"] | {"at": e["at"]} for e in events if e["kind"] == "note"],
            "events": [e for e in events if e["kind"] != "note"],
        }

    # -- actions -------------------------------------------------------------------------------

    async def _act(self, request: web.Request, action, parse=None) -> web.Response:
        agent = await self._agent(request, write=True)  # 401/403 before anything is read
        conversation_id = request.match_info["id"]
        args = (await parse(request),) if parse else ()
        try:
            result = await action(agent, conversation_id, *args)
        except NotFound as exc:
            raise _error(404, str(exc)) from None
        except Forbidden as exc:
            raise _error(403, str(exc)) from None
        except HandoffError as exc:
            raise _error(409, str(exc)) from None
        return web.json_response(result)

    async def do_claim(self, request):
        return await self._act(request, lambda a, c: self._summarised(self._handoff.claim(a, c)))

    async def do_messages(self, request):
        return await self._act(request, lambda a, c, text: self._handoff.reply(a, c, text), _text)

    async def do_notes(self, request):
        return await self._act(request, lambda a, c, text: self._handoff.note(a, c, text), _text)

    async def do_transfer(self, request):
        return await self._act(
            request,
            lambda a, c, body: self._summarised(
                self._handoff.transfer(
                    a, c, to_agent=body.get("agent"), to_queue=body.get("queue"), note=body.get("note") or ""
                )
            ),
            _transfer,
        )

    async def do_release(self, request):
        return await self._act(request, lambda a, c: self._summarised(self._handoff.release(a, c)))

    async def do_resolve(self, request):
        return await self._act(request, lambda a, c: self._summarised(self._handoff.resolve(a, c)))

    @staticmethod
    async def _summarised(awaitable) -> dict:
        return (await awaitable).summary()

    # -- customers (admin) ---------------------------------------------------------------------

    async def customer(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        profile = await self._customers.profile(request.match_info["id"])
        if profile is None:
            raise _error(404, "no such customer")
        try:
            await self._handoff.customer_readable(agent, profile.id)
        except Forbidden as exc:
            raise _error(403, str(exc)) from None
        return web.json_response(
            {
                "id": profile.id,
                "name": profile.name,
                "language": profile.language,
                "attributes": profile.attributes,
                "last_channel": profile.last_channel,
                "merged_into": profile.merged_into,
                "identities": [
                    {"channel": i.channel, "external_id": i.external_id, "reachable": i.reachable}
                    for i in profile.identities
                ],
                "links": [
                    {
                        "id": link.id,
                        "survivor_id": link.survivor_id,
                        "merged_id": link.merged_id,
                        "method": link.method,
                        "created_at": link.created_at.isoformat(),
                        "undone": link.undone_at is not None,
                    }
                    for link in await self._customers.links(profile.id)
                ],
            }
        )

    async def export(self, request: web.Request) -> web.Response:
        await self._admin(request)
        try:
            return web.json_response(await self._customers.export(request.match_info["id"]))
        except LookupError:
            raise _error(404, "no such customer") from None

    async def erase(self, request: web.Request) -> web.Response:
        agent = await self._admin(request, write=True)
        try:
            counts = await self._customers.erase(request.match_info["id"], by=agent.email)
        except LookupError:
            raise _error(404, "no such customer") from None
        await self._handoff.forget_customer(request.match_info["id"])
        return web.json_response({"erased": counts})

    async def unlink(self, request: web.Request) -> web.Response:
        agent = await self._agent(request, write=True)  # agents and admins may undo a wrong link
        try:
            record = await self._linker.unlink(request.match_info["id"], by=agent.email)
        except LookupError:
            raise _error(404, "no such link") from None
        except ValueError as exc:
            raise _error(409, str(exc)) from None
        return web.json_response(
            {
                "survivor_id": record.survivor_id,
                "merged_id": record.merged_id,
                "undone_at": record.undone_at.isoformat() if record.undone_at else None,
            }
        )

    # -- live inbox ----------------------------------------------------------------------------

    async def _watch(self, agent: Agent, queue: asyncio.Queue, conversation_id: str | None) -> None:
        """A console shows a conversation: it gets that conversation's events only if its agent may
        read it (handoff/permissions.py); otherwise it watches nothing."""
        if conversation_id is not None:
            try:
                await self._handoff.readable(agent, conversation_id)
            except (HandoffError, StoreError):
                conversation_id = None
        self._handoff.inbox.watch(queue, conversation_id)

    async def inbox(self, request: web.Request) -> web.StreamResponse:
        """Every event about conversations with people, as JSON frames. Auth: the session cookie, or
        a first frame ``{"type": "auth", "token": ...}`` for API clients."""
        token = request.cookies.get(COOKIE, "")
        found = await self._handoff.agents.authenticate(token)
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        if found is None:
            token = await _first_token(ws)
            found = await self._handoff.agents.authenticate(token)
            if found is None:
                await ws.send_json({"type": "error", "error": "log in first"})
                await ws.close(code=4401)
                return ws
        agent = found[0]
        inbox = self._handoff.inbox
        queue = inbox.subscribe(agent.id, admin=agent.is_admin, session=token_digest(token), skills=agent.queues)
        await ws.send_json({"type": "hello", "agent": agent.to_dict()})
        reader = asyncio.create_task(_read_watch(ws, lambda conversation: self._watch(agent, queue, conversation)))
        loop = asyncio.get_running_loop()
        check_at = loop.time() + RECHECK_SECONDS
        try:
            while not ws.closed and not reader.done():
                if loop.time() >= check_at:
                    # Still logged in (not expired, not changed by another process)? Also marks the
                    # agent as here, so an open console keeps them from being set offline.
                    check_at = loop.time() + RECHECK_SECONDS
                    try:
                        still = await self._handoff.agents.authenticate(token) is not None
                    except StoreError as exc:  # the database is away: keep serving, ask again later
                        log.warning("could not re-check an inbox login: %s", exc)
                        still = True
                    if not still:
                        await ws.send_str(REVOKED)
                        await ws.close(code=4401, message=b"session ended")
                        break
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait(
                    (getter, reader), timeout=max(0.0, check_at - loop.time()), return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    continue
                try:
                    await ws.send_str(getter.result())
                except ConnectionError:  # the console went away while we wrote
                    break
                if getter.result() is DROPPED:  # it fell behind: it reconnects and reloads
                    await ws.close(code=4408, message=b"fell behind")
                    break
                if getter.result() is REVOKED:  # logged out (here or in another process)
                    await ws.close(code=4401, message=b"session ended")
                    break
        finally:
            self._handoff.inbox.unsubscribe(queue)
            reader.cancel()
        return ws


async def _read_watch(ws: web.WebSocketResponse, watch) -> None:
    """What a console says: only ``{"type": "watch", "conversation_id": id or null}`` (the conversation
    it shows, to get its events whoever holds it); anything else is ignored. Reading also keeps pings
    answered and notices closing."""
    async for frame in ws:
        if frame.type != WSMsgType.TEXT or len(frame.data) > 1000:
            continue
        try:
            said = json.loads(frame.data)
        except (ValueError, RecursionError):
            continue
        if isinstance(said, dict) and said.get("type") == "watch":
            conversation = said.get("conversation_id")
            await watch(conversation if isinstance(conversation, str) else None)


async def _transfer(request: web.Request) -> dict:
    body = await _body(request)
    to_agent, to_queue, note = body.get("agent"), body.get("queue"), body.get("note", "")
    if not (isinstance(to_agent, str) or isinstance(to_queue, str)) or not isinstance(note, (str, type(None))):
        raise _error(400, 'send {"agent": id or e-mail} or {"queue": name}, and optionally "note"')
    if note and len(note) > MAX_TEXT:
        raise _error(400, f"the note is longer than {MAX_TEXT} characters")
    return body


async def _text(request: web.Request) -> str:
    text = (await _body(request)).get("text")
    if not isinstance(text, str) or not text.strip():
        raise _error(400, 'send {"text": "..."} with some text')
    if len(text) > MAX_TEXT:
        raise _error(400, f"the text is longer than {MAX_TEXT} characters")
    return text.strip()
