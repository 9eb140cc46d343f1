"""The live dashboard: a small web server in its own thread, fed by the daemon's consumer.

How it works. `sleepcoach run` starts a `Dashboard` (Starlette on uvicorn, in a thread with its
own asyncio loop) on `dashboard.listen`, 127.0.0.1:8099 by default. The consumer is its only
source: after each batch it hands over, per person whose state it published, a detached copy of
what the page reads (`coach.dashboard.snapshot`) with `publish`, which only schedules the copy on
the server's loop (`call_soon_threadsafe`); from then on the copy belongs to the server thread.
Nothing else crosses the threads, and the server never subscribes to MQTT or touches storage.

On the loop, the `Hub` keeps the latest copy per person and renders the view
(`coach.dashboard.person_view`, at the wall clock's now) for whoever asks: the JSON API, and every
open event stream of that person (server-sent events): `RENDER_DELAY_S` after a change (a burst
of changes is one view), at most every `RENDER_EVERY_S` however fast they come, and again every
`REFRESH_S` so the "now" line and what has passed move on. It is fed the stored nights too, at
start and as the consumer stores each one.

Every URL the page uses is relative, so the dashboard works under any sub-path a reverse proxy or
Home Assistant's ingress gives it:

- `./` lists the people (one person: redirects to their page);
- `./person/<id>`: the page; `./api/person/<id>`: its data as JSON; `./events/person/<id>`: the
  same as a stream of `view` events; `./static/...`: the script, the style sheet and the charts
  (plain SVG drawn by a script in the package: nothing is loaded from the internet);
- an id not in the config answers 404.

The page shows what the coach computed about a person (caffeine, schedule, nudges, nights): no
setting of the broker, the storage or Home Assistant, and never a secret. It listens on loopback
unless the config names another address, and then says so in a warning: the health data has no
password of its own. On loopback, requests must name a loopback host (or one of
`dashboard.hosts`), so a web page elsewhere cannot read it through a DNS-rebound name.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coach.config import Config, Person
from coach.dashboard import TREND_DAYS, person_view
from coach.state import PersonState
from integrations.error import ProjectError
from integrations.settings import DashboardSettings

log = logging.getLogger("integrations.dashboard")

STATIC: Final = Path(__file__).resolve().parent / "dashboard_static"
#: Stored nights kept per person: the trends' fortnight and the night before it.
NIGHTS_KEPT: Final = TREND_DAYS + 1
#: Updates closer together than this are rendered once (a burst of messages is one view).
RENDER_DELAY_S: Final = 0.05
#: A person's open streams get a new view at most this often: a render takes a few ms of the
#: interpreter the consumer shares, and a page needs no more (updates stay within a second).
RENDER_EVERY_S: Final = 0.25
#: Open streams get the view again this often, so the page's "now" and the schedule move on.
REFRESH_S: Final = 30.0
#: A comment on a quiet stream this often keeps proxies from closing it.
KEEPALIVE_S: Final = 15.0
#: Open event streams at most, all people together: each holds a queue and a connection.
MAX_STREAMS: Final = 64
#: Shutdown waits this long for the streams to close.
SHUTDOWN_S: Final = 1
LOOPBACK_HOSTS: Final = ("localhost", "127.0.0.1", "::1", "[::1]")
SECURITY_HEADERS: Final = {
    # Everything comes from the dashboard itself; Home Assistant may frame it (panel_iframe).
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class DashboardError(ProjectError):
    """The dashboard cannot listen where it was asked to."""


# -- the hub: the server thread's side of the hand-off ---------------------------------------------


class Hub:
    """The latest copy of each person's state, and the open event streams; on the loop only."""

    def __init__(self, config: Config, clock: Callable[[], datetime]) -> None:
        """No state yet: each person shows as empty until the consumer's first hand-over."""
        self.config = config
        self.clock = clock
        self.people: dict[str, Person] = {p.id: p for p in config.people}
        self.latest: dict[str, PersonState] = {}
        #: The stored nights of each person, by evening: the trends' and the timeline's source.
        self.nights: dict[str, dict[str, dict[str, Any]]] = {}
        self.streams: dict[str, set[asyncio.Queue[bytes | None]]] = {}
        self._render_due: set[str] = set()
        self._rendered_at: dict[str, float] = {}
        self.closed = False

    def update(self, person_id: str, ps: PersonState) -> None:
        """A new copy from the consumer; streams of that person get a view soon."""
        self.latest[person_id] = ps
        self._changed(person_id)

    def record_night(self, person_id: str, summary: dict[str, Any]) -> None:
        """A night the consumer stored (or read back on start); the oldest beyond the trends go."""
        kept = self.nights.setdefault(person_id, {})
        kept[summary["night"]] = summary
        for old in sorted(kept)[: max(0, len(kept) - NIGHTS_KEPT)]:
            del kept[old]
        self._changed(person_id)

    def _changed(self, person_id: str) -> None:
        """Render the person's view for their streams soon: once for a burst of changes, and at
        most every `RENDER_EVERY_S` however fast they come."""
        if not self.streams.get(person_id) or person_id in self._render_due:
            return
        self._render_due.add(person_id)
        loop = asyncio.get_running_loop()
        last = self._rendered_at.get(person_id, float("-inf"))
        delay = max(RENDER_DELAY_S, last + RENDER_EVERY_S - loop.time())
        loop.call_later(delay, self._render, person_id)

    def refresh(self) -> None:
        """Send every open stream its view again (time has moved on)."""
        for person_id, queues in self.streams.items():
            if queues:
                self._render(person_id)

    def view(self, person_id: str) -> bytes:
        """The person's view now, as JSON."""
        person = self.people[person_id]
        ps = self.latest.get(person_id) or PersonState()
        nights = list(self.nights.get(person_id, {}).values())
        doc = person_view(self.config, person, ps, self.clock(), nights)
        doc["people"] = [{"id": p.id, "name": p.display_name} for p in self.config.people]
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    def _render(self, person_id: str) -> None:
        self._render_due.discard(person_id)
        queues = self.streams.get(person_id)
        if not queues:
            return
        self._rendered_at[person_id] = asyncio.get_running_loop().time()
        try:
            body = self.view(person_id)
        except Exception:  # a bug in the view must not end the server; say which person
            log.exception("the dashboard could not render %s's view", person_id)
            return
        for queue in queues:
            _offer(queue, body)

    def subscribe(self, person_id: str) -> asyncio.Queue[bytes | None] | None:
        """A queue of views for a new stream; None when `MAX_STREAMS` are open already."""
        if self.closed or sum(len(q) for q in self.streams.values()) >= MAX_STREAMS:
            return None
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1)
        self.streams.setdefault(person_id, set()).add(queue)
        return queue

    def unsubscribe(self, person_id: str, queue: asyncio.Queue[bytes | None]) -> None:
        """A stream ended."""
        self.streams.get(person_id, set()).discard(queue)

    def close(self) -> None:
        """End every stream (shutdown)."""
        self.closed = True
        for queues in self.streams.values():
            for queue in queues:
                _offer(queue, None)


def _offer(queue: asyncio.Queue[bytes | None], item: bytes | None) -> None:
    """Put the newest view in a one-slot queue: an older one not yet sent is replaced."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


def _sse(body: bytes) -> bytes:
    return b"event: view\ndata: " + body + b"\n\n"


# -- the web application ---------------------------------------------------------------------------


def create_app(
    config: Config, settings: DashboardSettings, hub: Hub, *, keepalive_s: float = KEEPALIVE_S
) -> ASGIApp:
    """The dashboard's ASGI application."""
    page = (STATIC / "dashboard.html").read_bytes()

    def known(request: Request) -> str | None:
        person_id = request.path_params["person"]
        return person_id if person_id in hub.people else None

    def not_found() -> Response:
        return PlainTextResponse("No such person in this coach's config.\n", status_code=404)

    async def index(_request: Request) -> Response:
        if len(config.people) == 1:
            return RedirectResponse(f"person/{config.people[0].id}", status_code=302)
        links = "".join(
            f'<li><a href="person/{html.escape(p.id)}">{html.escape(p.display_name)}</a></li>'
            for p in config.people
        )
        return HTMLResponse(
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>sleepcoach</title><link rel="stylesheet" href="static/dashboard.css">'
            f'</head><body><main class="people"><h1>sleepcoach</h1><ul>{links}</ul></main>'
            "</body></html>"
        )

    async def person_page(request: Request) -> Response:
        if known(request) is None:
            return not_found()
        return Response(page, media_type="text/html; charset=utf-8")

    async def api(request: Request) -> Response:
        person_id = known(request)
        if person_id is None:
            return not_found()
        return Response(hub.view(person_id), media_type="application/json")

    async def events(request: Request) -> Response:
        person_id = known(request)
        if person_id is None:
            return not_found()
        queue = hub.subscribe(person_id)
        if queue is None:
            return PlainTextResponse("Too many open dashboards.\n", status_code=503)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\n" + _sse(hub.view(person_id))
                while True:
                    try:
                        body = await asyncio.wait_for(queue.get(), keepalive_s)
                    except TimeoutError:
                        yield b": keepalive\n\n"
                        continue
                    if body is None:
                        return
                    yield _sse(body)
            finally:
                hub.unsubscribe(person_id, queue)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            # no-transform and X-Accel-Buffering: proxies (nginx) must pass each event at once.
            headers={"cache-control": "no-store, no-transform", "x-accel-buffering": "no"},
        )

    async def not_found_page(_request: Request, _exc: Exception) -> Response:
        return PlainTextResponse("Not found.\n", status_code=404)

    middleware = []
    if settings.is_loopback:
        hosts = [*LOOPBACK_HOSTS, *settings.hosts]
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=hosts))
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/person/{person}", person_page),
            Route("/api/person/{person}", api),
            Route("/events/person/{person}", events),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=middleware,
        exception_handlers={404: not_found_page},
    )
    return _with_headers(app)


def _with_headers(app: ASGIApp) -> ASGIApp:
    """Add the security headers to every response."""
    extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


# -- the server thread -----------------------------------------------------------------------------


class Dashboard:
    """The dashboard's web server, in its own thread; `publish` is the consumer's hand-off."""

    def __init__(
        self,
        config: Config,
        settings: DashboardSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Nothing runs until `start`."""
        self.config = config
        self.settings = settings
        self.hub = Hub(config, clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.url = ""

    def start(self) -> None:
        """Listen (or raise DashboardError, e.g. the port is taken) and serve in a thread."""
        host, port = self.settings.address
        sock = _bind(host, port)
        bound_port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound_port}/"
        if not self.settings.is_loopback:
            log.warning(
                "the dashboard listens on %s:%d, beyond this machine: anyone who can reach it "
                "sees the health data, without a password (put an authenticating proxy in front)",
                host,
                bound_port,
            )
        # uvicorn logs every start and stop at info: keep it to warnings, like the other libraries.
        logging.getLogger("uvicorn").setLevel(max(logging.WARNING, logging.getLogger().level))
        server_config = uvicorn.Config(
            create_app(self.config, self.settings, self.hub),
            lifespan="off",
            log_config=None,
            access_log=False,
            http="h11",
            ws="none",
            timeout_graceful_shutdown=SHUTDOWN_S,
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(server_config)
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="dashboard", daemon=True
        )
        self._thread.start()
        self._ready.wait(5.0)
        log.info("dashboard on %s", self.url)

    def _run(self, sock: socket.socket) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            refresher = asyncio.create_task(self._refresh())
            self._ready.set()
            assert self._server is not None
            try:
                await self._server.serve(sockets=[sock])
            finally:
                refresher.cancel()

        try:
            asyncio.run(main())
        except Exception:
            log.exception("the dashboard stopped")
        finally:
            self._ready.set()

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            self.hub.refresh()

    def publish(self, person_id: str, ps: PersonState) -> None:
        """Consumer thread: hand over a detached copy of a person's state; it stays here."""
        self._hand_over(self.hub.update, person_id, ps)

    def record_night(self, person_id: str, summary: dict[str, Any]) -> None:
        """Consumer thread: hand over a night as it was stored (not used there again)."""
        self._hand_over(self.hub.record_night, person_id, summary)

    def _hand_over(self, apply: Callable[[str, Any], None], person_id: str, item: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
            loop.call_soon_threadsafe(apply, person_id, item)

    def stop(self, timeout: float = 2.0) -> None:
        """End the streams, stop serving, and wait for the thread (at most `timeout`)."""
        loop, server = self._loop, self._server
        if loop is not None and server is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.hub.close)
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket; DashboardError saying why when it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as err:
        msg = f"dashboard: cannot resolve {host!r}: {err.strerror or err}"
        raise DashboardError(msg) from err
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        msg = f"dashboard: cannot listen on {host}:{port}: {err.strerror or err}"
        raise DashboardError(msg) from err
    sock.setblocking(False)
    return sock
