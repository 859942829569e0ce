"""The composition root: the only place that reads settings and wires real stores and channels."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from seamline.bots import channels
from seamline.bots.dialogue import ActionServer, Dialogue, Domain
from seamline.bots.dialogue.domain import load_domain
from seamline.bots.headers import demo_page_policy
from seamline.bots.headers import install as install_headers
from seamline.bots.intake import intakes
from seamline.bots.pipeline import Pipeline
from seamline.bots.protocol_log import quiet_protocol_errors
from seamline.bots.retry import RetryPolicy
from seamline.bots.steps.load import configured_steps
from seamline.handoff.agents import AgentStore
from seamline.handoff.api import AgentApi
from seamline.handoff.canned import load_canned
from seamline.handoff.console import install as install_console
from seamline.handoff.inbox import Inbox, RedisInbox
from seamline.handoff.origin import origin_guard
from seamline.handoff.routing import Routing
from seamline.handoff.service import Handoff
from seamline.handoff.storage import SqlConversationRows
from seamline.nlu.data import fingerprint
from seamline.nlu.data import load as load_data
from seamline.nlu.lifecycle import latest
from seamline.nlu.understanding import Understanding
from seamline.shared.channel import ChannelContext
from seamline.shared.errors import SeamlineError
from seamline.shared.limits import Limiter, MemoryLimiter, RedisLimiter
from seamline.shared.linking import Linker, LinkPolicy
from seamline.shared.session import MemorySessionStore, SessionStore
from seamline.shared.settings import Settings
from seamline.shared.storage.customers import SqlCustomerStore
from seamline.shared.storage.database import create_engine
from seamline.shared.storage.sql import SqlChatStore

log = logging.getLogger(__name__)
DEMO_PAGE = Path(__file__).resolve().parent / "static" / "index.html"  # found once, not in the event loop


@dataclass
class Seamline:
    """Everything one running Seamline holds; ``close()`` releases it."""

    settings: Settings
    store: SqlChatStore
    sessions: SessionStore
    pipeline: Pipeline
    customers: SqlCustomerStore
    linker: Linker
    handoff: Handoff
    limiter: Limiter
    actions: ActionServer | None = None  # the project's custom actions (in process and/or remote)

    async def reload_nlu(self) -> str:
        """Load the newest trained model and serve it from the next message on; returns its file."""
        path = latest(self.settings.models_dir)
        fresh = await asyncio.to_thread(load_understanding, self.settings, path)
        self.pipeline.understanding.swap(fresh)
        log.info("NLU model reloaded from %s", path)
        return str(path)

    async def close(self) -> None:
        await self.handoff.inbox.close()
        await self.store.close()
        self.pipeline.outbox.close()
        await self.sessions.close()
        await self.limiter.close()
        if self.actions is not None:
            await self.actions.close()
        await self.store.engine.dispose()


def build_sessions(settings: Settings) -> SessionStore:
    if not settings.redis_url:
        return MemorySessionStore()

    from seamline.shared.storage.redis_sessions import RedisSessionStore

    return RedisSessionStore(client=redis_client(settings))


def redis_client(settings: Settings):
    """A Redis client whose pool makes a burst wait for a connection (up to 10 s) instead of
    failing: redis-py's default pool raises "Too many connections" past 100 at once."""
    from redis.asyncio import BlockingConnectionPool, Redis

    pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=100, timeout=10)
    return Redis.from_pool(pool)  # owns the pool: closing the client closes it


def build_limiter(settings: Settings) -> Limiter:
    """Abuse budgets (guesses, logins, frames, connections): per process, or shared through Redis."""
    if not settings.redis_url:
        return MemoryLimiter()
    return RedisLimiter(client=redis_client(settings))


def build_inbox(settings: Settings) -> Inbox:
    """Live console updates: in this process, or relayed through Redis to every process using it."""
    if not settings.redis_url:
        return Inbox()

    return RedisInbox(client=redis_client(settings))


def load_understanding(settings: Settings, path: Path | None = None) -> Understanding:
    """The newest trained model (``seamline nlu train``); a missing or damaged file is an error
    naming the file and the command. A model older than the training data is served with a warning."""
    path = path or latest(settings.models_dir)
    understanding = Understanding.from_file(
        path, order_pattern=settings.order_pattern, phone_region=settings.phone_region
    )
    try:
        if understanding.model.metadata.get("fingerprint") != fingerprint(load_data(settings.intents_dir)):
            log.warning(
                "NLU model %s was trained on other data than %s now holds; run: seamline nlu train",
                path,
                settings.intents_dir,
            )
    except SeamlineError as exc:  # the model still works; the data is for the next training
        log.warning("cannot read the training data to check the model against it: %s", exc)
    return understanding


def build_actions(settings: Settings, domain: Domain) -> ActionServer | None:
    """The project's custom actions (bots/dialogue/actions.py); every action the domain names that
    neither serves is logged once, at start (a conversation reaching it gets the polite fallback)."""
    try:
        from seamline.bots.dialogue.actions import load_actions
    except ImportError:  # the actions runner is not installed in this build
        return None
    actions: ActionServer | None = load_actions(settings)
    unserved = [name for name in domain.actions if actions is None or not actions.knows(name)]
    if unserved:
        log.warning(
            "custom actions named in %s that no action module or server serves: %s",
            domain.source or settings.config_dir,
            ", ".join(unserved),
        )
    return actions


async def build(settings: Settings, *, understanding: Understanding | None = None) -> Seamline:
    project_steps = configured_steps(settings.config_dir)  # [pipeline] steps: the project's own, checked first
    store = SqlChatStore(engine=create_engine(settings.database_url))
    sessions = build_sessions(settings)
    limiter = build_limiter(settings)
    if settings.rasa_project is not None:  # a Rasa project served as it is (bots/dialogue/rasa.py)
        from seamline.bots.dialogue.rasa import load_rasa, understand

        rasa = load_rasa(settings.rasa_project, settings.environ)
        domain = rasa.domain
        understanding = understanding or await asyncio.to_thread(understand, rasa, settings)
    else:
        domain = load_domain(settings.config_dir)
    responses = domain.responses
    actions = build_actions(settings, domain)
    dialogue = Dialogue(
        domain=domain,
        actions=actions,
        action_timeout=settings.action_timeout,
        fallbacks_before_human=settings.fallbacks_before_human,
    )
    dialogue.labels = channels.labels()  # what a channel is called where the responses do not say
    customers = SqlCustomerStore(store)
    linker = Linker(
        customers=customers,
        sessions=sessions,
        secret_key=settings.secret_key,
        limiter=limiter,
        policy=LinkPolicy(
            guesses_per_address=settings.link_guesses_per_address, guesses_total=settings.link_guesses_per_hour
        ),
    )
    handoff = Handoff(
        store=store,
        customers=customers,
        agents=AgentStore(store),
        sessions=sessions,
        routing=Routing.load(settings.config_dir / "routing.yml"),
        responses=responses,
        inbox=build_inbox(settings),
        canned=load_canned(settings.config_dir / "canned.yml"),
        presence_grace=timedelta(seconds=settings.agent_grace_seconds),
        rows=SqlConversationRows(store),
    )
    pipeline = Pipeline(
        store=store,
        sessions=sessions,
        understanding=understanding or load_understanding(settings),
        dialogue=dialogue,
        handoff=handoff,
        default_language=settings.default_language,
        linker=linker,
        outbox_max_attempts=settings.outbox_max_attempts,
    )
    for step, before, after in project_steps:
        pipeline.add_step(step, before=before, after=after)
    handoff.pipeline = pipeline
    dialogue.to_people = lambda intent, text, session: (
        handoff.trigger(intent=intent, text=text, fallbacks=session.fallbacks, attributes=session.attributes)
        is not None
    )
    return Seamline(
        settings=settings,
        store=store,
        sessions=sessions,
        pipeline=pipeline,
        customers=customers,
        linker=linker,
        handoff=handoff,
        limiter=limiter,
        actions=actions,
    )


SEAMLINE = web.AppKey("seamline", Seamline)
RECOVERED_AT_START = web.AppKey("recovered_at_start", tuple)
PROOFS_KEPT = timedelta(days=1)


async def create_app(settings: Settings, *, understanding: Understanding | None = None) -> web.Application:
    """The aiohttp application serving the widget, its WebSocket and every configured channel."""
    seamline = await build(settings, understanding=understanding)
    app = web.Application(client_max_size=1024 * 1024)
    app[SEAMLINE] = seamline
    # The console's cookie only from the console's own page (cross-site WebSocket hijacking, CSRF).
    app.middlewares.append(origin_guard(allowed=settings.console_allowed_origins, proxies=settings.trusted_proxies))

    async def lifetime(app: web.Application):
        await seamline.handoff.inbox.start()
        yield
        await seamline.close()  # also after a failed start, unlike on_cleanup

    app.cleanup_ctx.append(lifetime)  # first in, so channels are closed before the stores
    app.cleanup_ctx.append(_sweeping)
    app.cleanup_ctx.append(_answering_unanswered)
    AgentApi(
        handoff=seamline.handoff,
        customers=seamline.customers,
        linker=seamline.linker,
        limiter=seamline.limiter,
        cookie_secure=settings.cookie_secure,
        trusted_proxies=settings.trusted_proxies,
    ).install(app)
    install_console(app)
    install_headers(app, pages={"/": demo_page_policy(DEMO_PAGE, settings.web_allowed_origins)})
    quiet_protocol_errors()  # a malformed request is the client's error: one line, no traceback
    install_ops(app, settings, seamline)
    app.on_startup.append(_reload_on_sighup)
    install_channels(app, settings, seamline)
    # After the channels: started once they can send, stopped before they close.
    app.cleanup_ctx.append(_reminding)
    app.cleanup_ctx.append(_dispatching)
    # The model and the app are built: move them out of the garbage collector's way, so full
    # collections stay short (a tail-latency win measured with the Telegram benchmark).
    gc.freeze()
    return app


def install_channels(app: web.Application, settings: Settings, seamline: Seamline) -> None:
    """Every installed channel that is on (bots/channels.py), built and mounted; ``GET
    /api/v1/channels`` tells the console (and anyone) which are served, with their labels and icons."""
    # With Redis, re-deliveries are dropped before the database is asked (bots/intake.py).
    intake = intakes(seamline.store, (lambda: redis_client(settings)) if settings.redis_url else None)
    context = ChannelContext(
        conversations=seamline.pipeline,
        limiter=seamline.limiter,
        data_dir=settings.data_dir,
        extras={
            "settings": settings,
            "store": seamline.store,
            "linker": seamline.linker,
            "intake": intake,
            "retry": RetryPolicy(),
            "redis": (lambda: redis_client(settings)) if settings.redis_url else None,
        },
    )
    adapters = channels.build(channels.enabled(settings.environ, settings.channels), context)
    channels.install(app, adapters, seamline.pipeline)
    # Whatever a channel without the durable inbox stored (and acknowledged) but never answered
    # before a crash is answered at the next start; the inbox's channels recover through it.
    app[RECOVERED_AT_START] = tuple(name for name in adapters if name not in intake.channels)

    async def listed(request: web.Request) -> web.Response:
        return web.json_response({"channels": channels.listing(adapters)})

    app.router.add_get("/api/v1/channels", listed)


async def _reminding(app: web.Application):
    """Reminders scheduled by custom actions fire while the app runs; those that came due while no
    server ran fire at start (bots/dialogue/reminders.py)."""
    from seamline.bots.dialogue.reminders import Due, Scheduler

    pipeline = app[SEAMLINE].pipeline

    async def fire(due: Due) -> bool:
        return await pipeline.trigger(due.customer_id, due.intent, due.entities, reminder=due.name) is not None

    scheduler = Scheduler(reminders=pipeline.reminders, fire=fire)
    scheduler.start()
    yield
    await scheduler.stop()


async def _dispatching(app: web.Application):
    """The outbox's sweep (bots/outbox.py): replies a stopped worker left, and those due again after
    a failure, are sent; started after the channels, stopped (finishing the sends under way) before
    them. The backlog gauge is read at each scrape of /metrics."""
    from seamline.bots.ops import METRICS_REFRESH
    from seamline.shared.metrics import OUTBOX_BACKLOG

    seamline = app[SEAMLINE]
    dispatcher = seamline.pipeline.dispatcher

    async def backlog() -> None:
        OUTBOX_BACKLOG.set(await dispatcher.outbox.backlog())

    if METRICS_REFRESH in app:
        app[METRICS_REFRESH].append(backlog)
    dispatcher.start()
    yield
    await dispatcher.stop(seamline.settings.shutdown_grace)


async def _sweeping(app: web.Application):
    """Once a minute: conversations left waiting too long are abandoned (config/routing.yml), agents
    gone without logging out are set offline (what they held is queued again), and
    link codes and tokens dead for a day are forgotten (until then "expired"/"used" can be told)."""
    handoff, customers = app[SEAMLINE].handoff, app[SEAMLINE].customers

    async def sweep() -> None:
        while True:
            await asyncio.sleep(60)
            try:
                abandoned = await handoff.abandon_stale(handoff.routing.abandon_after)
                if abandoned:
                    log.info("%d waiting conversations abandoned", abandoned)
                await handoff.set_gone_offline(handoff.routing.agent_offline_after)
                await customers.purge_proofs(PROOFS_KEPT)
            except Exception:
                log.warning("the minute's sweep (stale conversations, dead link codes) failed", exc_info=True)

    task = asyncio.create_task(sweep(), name="seamline-handoff-sweeper")
    yield
    task.cancel()


async def _answering_unanswered(app: web.Application):
    """At start: messages a crash left stored (acknowledged) but unanswered are answered now, on
    every channel without the durable inbox (the widget, REST, plug-ins that store then acknowledge);
    Telegram and VK recover through their inbox (bots/intake.py)."""
    pipeline = app[SEAMLINE].pipeline

    async def answer() -> None:
        for channel in app.get(RECOVERED_AT_START, ("web",)):
            try:
                answered = await pipeline.answer_unanswered(channel)
                if answered:
                    log.info("%d %s messages left unanswered by the last run were answered", answered, channel)
            except Exception:
                log.warning("answering the %s messages left by the last run failed", channel, exc_info=True)

    task = asyncio.create_task(answer(), name="seamline-answer-unanswered")
    yield
    # Let a query under way finish before the stores close: a task cancelled mid-query leaves the
    # database driver's thread calling back into a closed loop (a traceback at a failed start).
    await asyncio.wait([task], timeout=5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.gather(task, return_exceptions=True)


async def _reload_on_sighup(app: web.Application) -> None:
    """``kill -HUP <pid>`` loads the newest model without a restart (when serving from the main thread)."""
    seamline, loop = app[SEAMLINE], asyncio.get_running_loop()

    async def reload() -> None:
        try:
            await seamline.reload_nlu()
        except SeamlineError as exc:
            log.error("NLU model not reloaded, the old one stays: %s", exc)

    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(reload()))
    except (RuntimeError, ValueError, NotImplementedError):  # not the main thread, or no signals here
        return

    async def remove(_app: web.Application) -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    app.on_cleanup.append(remove)


def install_ops(app: web.Application, settings: Settings, seamline: Seamline) -> None:
    """/healthz, /readyz and /metrics (bots/ops.py); the handoff queues' lengths read at each scrape."""
    from seamline.bots import ops

    checks = ops.Checks(
        engine=seamline.store.engine,
        database_url=settings.database_url,
        redis=redis_client(settings) if settings.redis_url else None,
    )
    waiting = ops.queue_waiting(seamline.handoff.queries.figures.counts)
    ops.install(app, checks=checks, token=settings.metrics_token, proxies=settings.trusted_proxies, refresh=[waiting])
