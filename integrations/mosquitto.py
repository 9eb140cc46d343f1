"""Mosquitto as the coach's child process: the first-run broker where Mosquitto is installed.

How it works: `ChildMosquitto.start()` writes a config into `<data dir>/mosquitto/` and starts
the installed `mosquitto` with it: one listener on 127.0.0.1, anonymous clients (loopback only,
so a first run needs no accounts), persistence in that directory, and the settings that
config/mosquitto.conf carries for zero loss and low latency (docs/daemon.md explains each; a test
keeps the two in step). It runs in a session of its own, so Ctrl-C in the terminal reaches the
coach only and the coach stops it in order (after its last acknowledgements); on Linux it also
gets SIGTERM if the coach dies without stopping it, so it never outlives the coach holding 1883.
Its files are created owner-only (umask 077). Its warnings and errors go to the coach's log.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Final

from integrations.data_dir import FILE_MODE, private_dir, private_file, tighten
from integrations.error import ProjectError

log = logging.getLogger(__name__)

#: Where Debian, Fedora and Homebrew put it, outside a normal user's PATH (`/usr/sbin`).
SEARCHED: Final = (
    "/usr/sbin/mosquitto",
    "/usr/local/sbin/mosquitto",
    "/opt/homebrew/sbin/mosquitto",
)
START_TIMEOUT_S: Final = 10.0
#: The settings config/mosquitto.conf explains, the same values (see the module docstring).
TUNED: Final = {
    "persistence": "true",
    "autosave_on_changes": "true",
    "autosave_interval": "100",
    "max_queued_messages": "0",
    "max_inflight_messages": "1000",
    "set_tcp_nodelay": "true",
    "persistent_client_expiration": "14d",
}
_PR_SET_PDEATHSIG: Final = 1


class MosquittoError(ProjectError):
    """Mosquitto could not be started as the coach's broker."""


def mosquitto_binary() -> str | None:
    """The installed `mosquitto`: on PATH or where distributions put it; None when there is none."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in SEARCHED if os.access(p, os.X_OK) and Path(p).is_file()), None)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the coach's process ends (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ChildMosquitto:
    """The installed Mosquitto, started and stopped by the coach, its data in the coach's."""

    def __init__(self, binary: str, data_dir: Path, host: str, port: int) -> None:
        """Prepare; persistence and the config go into `data_dir / "mosquitto"`."""
        self.binary = binary
        self.dir = data_dir / "mosquitto"
        self.host = host
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: deque[str] = deque(maxlen=20)
        self._relay: threading.Thread | None = None

    def config_text(self) -> str:
        """Mosquitto's config: a loopback listener, persistence here, the tuned settings."""
        lines = [
            "# Written by sleepcoach at each start: its first-run broker. Edits are overwritten.",
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            f"persistence_location {self.dir}/",
            *(f"{key} {value}" for key, value in TUNED.items()),
            # Run as the coach's own user: as root Mosquitto would switch to `mosquitto`, which
            # cannot write the coach's owner-only data directory.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_timestamp false",
        ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Start it and wait until it answers MQTT; a MosquittoError (with its words) if not."""
        private_dir(self.dir)
        tighten(self.dir / "mosquitto.db", FILE_MODE)  # written 0600 under its umask of 077
        conf = private_file(self.dir / "mosquitto.conf")
        conf.write_text(self.config_text())
        linux = sys.platform.startswith("linux")
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - our binary, our config
                [self.binary, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=0o077,
                preexec_fn=_die_with_parent if linux else None,  # noqa: PLW1509 - no threads yet
            )
        except OSError as err:
            raise MosquittoError(f"cannot run {self.binary}: {err}") from err
        assert self._proc.stdout is not None
        self._relay = threading.Thread(
            target=self._relay_output, args=(self._proc.stdout,), name="mosquitto-log", daemon=True
        )
        self._relay.start()
        end = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < end:
            if self._proc.poll() is not None:
                self._relay.join(1.0)
                said = "; ".join(self._output) or "no output"
                msg = f"{self.binary} exited at start (code {self._proc.returncode}): {said}"
                self._proc = None
                raise MosquittoError(msg)
            if self._listening():
                log.info(
                    "Mosquitto (%s) listening on %s:%d, its data in %s",
                    self.binary,
                    self.host,
                    self.port,
                    self.dir,
                )
                return
            time.sleep(0.05)
        self.stop()
        raise MosquittoError(f"{self.binary} did not answer within {START_TIMEOUT_S:g} s")

    def _listening(self) -> bool:
        try:
            socket.create_connection((self.host, self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def _relay_output(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in stream:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    self._output.append(line)
                    log.warning("mosquitto: %s", line)

    def stop(self, timeout: float = 2.0) -> None:
        """SIGTERM (it saves its data), then SIGKILL after `timeout` seconds."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("Mosquitto did not stop within %g s: killed", timeout)
            proc.kill()
            proc.wait(1.0)
        if self._relay is not None:
            self._relay.join(1.0)
