"""``seamline run --workers N``: one supervisor, N worker processes sharing one port (SO_REUSEPORT).

Why a supervisor and not a fork of the server: each worker is a fresh ``python -m seamline run``
(its own model, stores and event loop), the very process ``--workers 1`` runs, so there is one way
to serve. The supervisor stays light (no model, no channel library): it gives the workers one
private ``PROMETHEUS_MULTIPROC_DIR`` (their metrics add up at ``/metrics``), starts the first worker
alone (a configuration error is shown once, by it, not N times), then the others; restarts a worker
that dies (with backoff), forwards SIGTERM / SIGINT / SIGHUP, and gives a stopping worker
``shutdown_grace`` seconds (+ a margin) before SIGKILL.

Each worker holds one end of a socket pair with the supervisor: it writes ``ready`` once it serves,
and it stops by itself (SIGTERM to itself) when the supervisor's end closes, so a supervisor killed
with SIGKILL leaves no orphan serving the port.

Several machines need nothing of this: N separate ``seamline run`` with the same settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("seamline.supervisor")  # JSON or text, as the workers' lines
INDEX_ENV = "SEAMLINE_WORKER_INDEX"  # set in a worker: its number, 0..N-1
CHANNEL_ENV = "SEAMLINE_SUPERVISOR_FD"  # set in a worker: its end of the socket pair
MARGIN = 5.0  # seconds past shutdown_grace before a worker that does not stop is killed
START_FAILURES = 5  # a worker dying before it serves this many times in a row: stop, it is the config
BACKOFF = (0.5, 1, 2, 5, 10, 30)
STABLE = 60.0  # a worker serving this long has its backoff reset


def worker_index() -> int | None:
    """This process's worker number under a supervisor, or None when it serves alone."""
    raw = os.environ.get(INDEX_ENV)
    return int(raw) if raw and raw.isdigit() else None


def worker_ready() -> None:
    """Called by a worker once it serves: tell the supervisor, and stop when the supervisor is gone."""
    raw = os.environ.get(CHANNEL_ENV)
    if not raw or not raw.isdigit():
        return
    link = socket.socket(fileno=int(raw))
    with contextlib.suppress(OSError):
        link.sendall(b"ready\n")

    def watch() -> None:
        with contextlib.suppress(OSError):
            while link.recv(64):
                pass
        os.kill(os.getpid(), signal.SIGTERM)  # the supervisor is gone: stop gracefully

    threading.Thread(target=watch, name="seamline-supervisor-watch", daemon=True).start()


@dataclass
class Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    link: socket.socket | None = None
    started: float = 0.0
    ready: bool = False
    failures: int = 0  # deaths before serving, in a row
    restarts: int = 0
    waiter: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(
        self,
        *,
        count: int,
        argv: list[str],
        url: str,
        probe: tuple[str, int],
        grace: float,
        env: dict[str, str] | None = None,
    ) -> None:
        self.count, self.argv, self.url, self.probe, self.grace = count, argv, url, probe, grace
        self.env = dict(os.environ if env is None else env)
        self.workers = [Worker(index=i) for i in range(count)]
        self.stopping = asyncio.Event()
        self.exit_code = 0
        self.metrics_dir: Path | None = None
        self._own_metrics_dir = False

    async def run(self) -> int:
        self._prepare_metrics_dir()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._signal_all(signal.SIGHUP))
        try:
            # The first alone: a configuration error is printed once, by it, and ends the start.
            if not await self._start_first() or not await self._start_others():
                return self.exit_code or (0 if self.stopping.is_set() else 1)
            await self._healthy()
            print(f"Seamline is running. Open {self.url} in your browser (Ctrl+C to stop).", flush=True)
            print(f"Seamline: {self.count} workers (pids {', '.join(self._pids())}).", flush=True)
            for worker in self.workers:
                worker.waiter = asyncio.create_task(self._keep(worker))
            await self.stopping.wait()
        finally:
            await self._stop_all()
            self._cleanup_metrics_dir()
        return self.exit_code

    def _pids(self) -> list[str]:
        return [str(w.process.pid) for w in self.workers if w.process is not None]

    def _prepare_metrics_dir(self) -> None:
        """One folder for every worker's metric files, emptied so a former run's counts do not add up."""
        given = self.env.get("PROMETHEUS_MULTIPROC_DIR")
        if given:
            self.metrics_dir = Path(given)
            self.metrics_dir.mkdir(parents=True, exist_ok=True)
            for old in self.metrics_dir.glob("*.db"):
                old.unlink(missing_ok=True)
        else:
            self.metrics_dir = Path(tempfile.mkdtemp(prefix="seamline-metrics-"))
            self._own_metrics_dir = True
        self.env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)

    def _cleanup_metrics_dir(self) -> None:
        if self._own_metrics_dir and self.metrics_dir is not None:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    async def _spawn(self, worker: Worker) -> None:
        ours, theirs = socket.socketpair()
        env = dict(self.env, SEAMLINE_WORKERS="1")
        env[INDEX_ENV] = str(worker.index)
        env[CHANNEL_ENV] = str(theirs.fileno())
        worker.process = await asyncio.create_subprocess_exec(
            *self.argv, env=env, pass_fds=(theirs.fileno(),), process_group=0
        )
        theirs.close()
        ours.setblocking(False)
        worker.link, worker.started, worker.ready = ours, time.monotonic(), False

    async def _ready(self, worker: Worker) -> bool:
        """True once the worker says it serves; False when it dies first (its end closes)."""
        assert worker.link is not None
        loop = asyncio.get_running_loop()
        try:
            data = await loop.sock_recv(worker.link, 64)
        except OSError:
            data = b""
        worker.ready = bool(data)
        return worker.ready

    async def _start_first(self) -> bool:
        first = self.workers[0]
        await self._spawn(first)
        if await self._until_stopping(self._ready(first)):
            return True
        await self._failed_start(first)
        return False

    async def _start_others(self) -> bool:
        await asyncio.gather(*(self._spawn(w) for w in self.workers[1:]))
        results = await asyncio.gather(*(self._until_stopping(self._ready(w)) for w in self.workers[1:]))
        for worker, ready in zip(self.workers[1:], results, strict=True):
            if not ready:
                await self._failed_start(worker)
                return False
        return True

    async def _until_stopping(self, waiting) -> bool:
        """The awaited result, or False as soon as a stop is asked for."""
        task = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not task.done():
            task.cancel()
            self.exit_code = 0
            return False
        return bool(task.result())

    async def _failed_start(self, worker: Worker) -> None:
        if self.stopping.is_set():
            return
        assert worker.process is not None
        code = await worker.process.wait()
        log.error("worker %d stopped before serving (exit code %d)", worker.index, code)
        self.exit_code = code if code > 0 else 1

    async def _healthy(self) -> None:
        """One answered /healthz on the shared port (every worker has said it serves)."""
        host, port = self.probe
        for _ in range(50):
            try:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), 5)
                writer.close()
                if b" 200 " in line:
                    return
            except (OSError, TimeoutError):
                pass
            await asyncio.sleep(0.1)

    async def _keep(self, worker: Worker) -> None:
        """Restart the worker whenever it dies, with backoff; give up when it cannot start any more."""
        from prometheus_client import multiprocess

        while not self.stopping.is_set():
            assert worker.process is not None
            code = await worker.process.wait()
            if self.stopping.is_set():
                return
            pid = worker.process.pid
            with contextlib.suppress(Exception):
                multiprocess.mark_process_dead(pid, str(self.metrics_dir))
            if worker.link is not None:
                worker.link.close()
            if worker.ready and time.monotonic() - worker.started > STABLE:
                worker.failures = worker.restarts = 0  # it had been serving a while: start afresh
            elif not worker.ready:
                worker.failures += 1
            if worker.failures >= START_FAILURES:
                log.error("worker %d failed to start %d times in a row; stopping", worker.index, worker.failures)
                self.exit_code = 1
                self.stopping.set()
                return
            delay = BACKOFF[min(worker.restarts, len(BACKOFF) - 1)]
            worker.restarts += 1
            log.warning("worker %d (pid %d) exited with %d; restarting", worker.index, pid, code)
            await asyncio.sleep(delay)
            if self.stopping.is_set():
                return
            await self._spawn(worker)
            if not await self._until_stopping(self._ready(worker)):
                continue  # died before serving (or stopping): the loop sees its exit
            print(f"Seamline: worker {worker.index} serving again (pid {worker.process.pid}).", flush=True)

    def _signal_all(self, number: int) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(number)

    async def _stop_all(self) -> None:
        """SIGTERM to every worker; SIGKILL to those still running after the grace and a margin."""
        self.stopping.set()
        for worker in self.workers:
            if worker.waiter is not None:
                worker.waiter.cancel()
        self._signal_all(signal.SIGTERM)
        running = [w.process for w in self.workers if w.process is not None and w.process.returncode is None]
        if running:
            _, late = await asyncio.wait(
                [asyncio.ensure_future(p.wait()) for p in running], timeout=self.grace + MARGIN
            )
            if late:
                self._signal_all(signal.SIGKILL)
                await asyncio.gather(*(p.wait() for p in running))
        for worker in self.workers:
            if worker.link is not None:
                worker.link.close()


def supervise(
    *, count: int, host: str, port: int, grace: float, argv: list[str] | None = None, prepare: Callable[[], None]
) -> int:
    """Run ``count`` workers of ``python -m seamline run`` (the same line) until SIGTERM/SIGINT."""
    prepare()  # the database brought up to date (or checked) once, not by N workers at once
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    url = f"http://{host}:{port}/"  # the line a single server prints, word for word
    line = [sys.executable, "-m", "seamline", *(sys.argv[1:] if argv is None else argv)]
    print(f"Seamline is starting {count} workers on {host}:{port}.", flush=True)
    supervisor = Supervisor(count=count, argv=line, url=url, probe=(probe, port), grace=grace)
    return asyncio.run(supervisor.run())
