"""The composition root: the only place that reads settings and wires real stores and channels."""
from __future__ import annotations

import gc
import logging
from dataclasses import dataclass

from aiohttp import web

from bots.dialogue import Dialogue, Responses
from bots.pipeline import Pipeline
from bots.web import WebChannel
from handoff.escalation import Escalation
from nlu.understanding import Understanding
from shared.session import MemorySessionStore, SessionStore
from shared.settings import Settings
from shared.storage.database import create_engine
from shared.storage.sql import SqlChatStore
from shared.tokens import Signer

log = logging.getLogger(__name__)


@dataclass
class Seamline:
    """Everything one running Seamline holds; ``close()`` releases it."""

    settings: Settings
    store: SqlChatStore
    sessions: SessionStore
    pipeline: Pipeline

    async def close(self) -> None:
        await self.store.close()
        await self.sessions.close()
        await self.store.engine.dispose()


def build_sessions(settings: Settings) -> SessionStore:
    if not settings.redis_url:
        return MemorySessionStore()
    from redis.asyncio import Redis

    from shared.storage.redis_sessions import RedisSessionStore

    return RedisSessionStore(client=Redis.from_url(settings.redis_url))


def build_understanding(settings: Settings) -> Understanding:
    return Understanding.from_config(settings.config_dir)


async def build(settings: Settings, *, understanding: Understanding | None = None) -> Seamline:
    store = SqlChatStore(engine=create_engine(settings.database_url))
    sessions = build_sessions(settings)
    dialogue = Dialogue(
        responses=Responses.from_dir(settings.config_dir / "responses"),
        escalate_intents={intent: f"intent {intent}" for intent in settings.escalate_intents},
        fallbacks_before_human=settings.fallbacks_before_human,
    )
    pipeline = Pipeline(store=store, sessions=sessions, understanding=understanding or build_understanding(settings),
                        dialogue=dialogue, escalation=Escalation(store=store),
                        default_language=settings.default_language)
    return Seamline(settings=settings, store=store, sessions=sessions, pipeline=pipeline)


SEAMLINE = web.AppKey("seamline", Seamline)


async def create_app(settings: Settings, *, understanding: Understanding | None = None) -> web.Application:
    """The aiohttp application serving the widget, its WebSocket and every configured channel."""
    seamline = await build(settings, understanding=understanding)
    app = web.Application(client_max_size=1024 * 1024)
    app[SEAMLINE] = seamline

    async def lifetime(app: web.Application):
        yield
        await seamline.close()  # also after a failed start, unlike on_cleanup

    app.cleanup_ctx.append(lifetime)  # first in, so channels are closed before the stores
    WebChannel(pipeline=seamline.pipeline, signer=Signer(secret_key=settings.secret_key, purpose="web-visitor"),
               rate_limit=settings.web_rate_limit, allowed_origins=settings.web_allowed_origins).install(app)
    app.router.add_get("/healthz", _health)
    if settings.telegram is not None:
        from bots.telegram import TelegramChannel  # aiogram costs seconds to import: only when used

        TelegramChannel(pipeline=seamline.pipeline, settings=settings.telegram).install(app)
    if settings.vk is not None:
        from bots.vk import VkChannel

        VkChannel(pipeline=seamline.pipeline, settings=settings.vk).install(app)
    # The model and the app are built: move them out of the garbage collector's way, so full
    # collections stay short (a tail-latency win measured with the Telegram benchmark).
    gc.freeze()
    return app


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
