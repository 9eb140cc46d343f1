"""A real browser for the tests: Debian's headless Chromium driven by Playwright, and a reverse
proxy that serves a page under a sub-path, as nginx or Home Assistant's ingress would.

Chromium is the system's (`apt-get install chromium`, /usr/bin/chromium; `.ci/run` installs it),
never a browser a tool downloads. It starts headless with a fresh profile and without the
background connections to Google's services that a machine with no internet refuses. Without
Chromium (or Playwright) the browser tests skip and say so; `SLEEPCOACH_TEST_REQUIRE_BROWSER=1`
(set by .ci/run) makes that a failure.

`Page` wraps a Playwright page and records every console message, uncaught exception and failed
request, so a test can say the page logged no error.

This module is a pytest plugin, registered by `tests/conftest.py`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.broker import free_port

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_binary() -> str | None:
    """The system's Chromium, or None."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _missing(what: str) -> None:
    if os.environ.get("SLEEPCOACH_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{what} is required here (SLEEPCOACH_TEST_REQUIRE_BROWSER=1) but missing")
    pytest.skip(f"needs {what} (apt-get install chromium; pip install playwright)")


@dataclass
class Page:
    """A browser tab that remembers what went wrong in it."""

    page: Any
    console: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.failures.append(f"uncaught: {e}"))
        self.page.on(
            "requestfailed",
            lambda r: (
                self.failures.append(f"request failed: {r.url} {r.failure}")
                if "/events/" not in r.url  # the stream is cut when the page closes
                else None
            ),
        )
        self.page.on(
            "response",
            lambda r: (
                self.failures.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None
            ),
        )

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions, failed requests and 4xx/5xx answers."""
        return [text for kind, text in self.console if kind == "error"] + self.failures


class Browser:
    """One headless Chromium for a test module; a fresh tab for each test."""

    def __init__(self, binary: str) -> None:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415

        self.profile = tempfile.mkdtemp(prefix="sleepcoach-chromium-")
        self._pw = sync_playwright().start()
        self.context = self._pw.chromium.launch_persistent_context(
            self.profile,
            executable_path=binary,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 900},
            timezone_id="America/New_York",  # not the coach's zone: the page must use its own
            locale="en-GB",
        )

    def open(self, url: str) -> Page:
        """A new tab at `url`."""
        page = Page(self.context.new_page())
        page.page.goto(url)
        return page

    def close(self) -> None:
        """Close the browser and remove its profile."""
        self.context.close()
        self._pw.stop()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's), driven by Playwright."""
    binary = chromium_binary()
    if binary is None:
        _missing("Chromium")
    try:
        import playwright  # noqa: F401, PLC0415
    except ImportError:
        _missing("Playwright")
    assert binary is not None
    b = Browser(binary)
    yield b
    b.close()


class SubPathProxy:
    """A reverse proxy on a free loopback port serving `upstream` under `prefix`.

    Like nginx's `location /prefix/ { proxy_pass http://upstream/; }` (or Home Assistant's
    ingress): the prefix is cut off the request path, the Host becomes the upstream's, and the
    answer is passed back as it streams. A path outside the prefix is a 404 from the proxy itself.
    """

    def __init__(self, upstream_port: int, prefix: str = "/api/hassio_ingress/t0k3n/") -> None:
        self.upstream_port = upstream_port
        self.prefix = prefix
        self.port = free_port()
        self.requests: list[str] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "the proxy did not start"

    @property
    def url(self) -> str:
        """The proxied root, with its trailing slash."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()
        for writer in self._writers:
            writer.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._proxy(reader, writer)
        finally:
            writer.close()
            self._writers.discard(writer)

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        self.requests.append(target)
        if not target.startswith(self.prefix):
            writer.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return
        kept = [
            line
            for line in lines
            if line and not line.lower().startswith(("host:", "connection:", "keep-alive:"))
        ]
        kept += [f"Host: 127.0.0.1:{self.upstream_port}", "Connection: close"]
        upstream_target = "/" + target[len(self.prefix) :]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers.add(up_writer)
        up_writer.write(
            f"{method} {upstream_target} {version}\r\n".encode("latin-1")
            + "\r\n".join(kept).encode("latin-1")
            + b"\r\n\r\n"
        )
        await up_writer.drain()
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
            )
        finally:
            up_writer.close()
            self._writers.discard(up_writer)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        finally:
            sink.close()

    def close(self) -> None:
        """Stop the proxy."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
