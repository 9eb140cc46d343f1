"""`sleepcoach run` over TLS (`mqtts://`) against a real Mosquitto with a TLS listener on a free
loopback port: a client certificate as the identity, a CA that did not sign the broker's
certificate, and a user name with a password from `SLEEPCOACH_MQTT_PASSWORD` over TLS.

The certificates are made by the `openssl` command at test time in `tmp_path` (a throwaway CA, a
server certificate for IP 127.0.0.1, a client certificate, and a second CA that signed nothing of
the broker's); nothing here is a committed key. The broker gets copies of its own three files in
its work directory, because Mosquitto, started as root, drops to its own user before it reads
them and cannot enter pytest's `tmp_path`.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.broker import Broker, free_port, make_workdir, mosquitto_or_skip
from tests.e2e.conftest import EXIT_DEADLINE_S, DaemonProcess, config_yaml, eventually

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

PREFIX = "sleepcoach"
PASSWORD = "tls-right-horse-battery"  # the throwaway broker's test password
COFFEE = b'{"event": "brew", "drink": "coffee", "volume_ml": 240}'


# -- a throwaway PKI -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """Paths of the test's certificates and keys (PEM)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed neither the broker's nor the client's certificate


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def _new_ca(directory: Path, name: str) -> None:
    _openssl(
        directory,
        *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
        *("-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}"),
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )


def _issue(directory: Path, name: str, subject: str, extensions: str) -> None:
    """A key and a certificate signed by `ca`, with the given X.509 v3 extensions."""
    _openssl(
        directory,
        *("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
        *("-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject),
    )
    (directory / f"{name}.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n" + extensions
    )
    _openssl(
        directory,
        *("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext"),
    )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make test certificates")
    directory = tmp_path / "pki"
    directory.mkdir()
    _new_ca(directory, "ca")
    _new_ca(directory, "other-ca")
    _issue(
        directory,
        "server",
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    _issue(directory, "client", "/CN=coach", "extendedKeyUsage=clientAuth\n")
    return Pki(
        ca=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        other_ca=directory / "other-ca.crt",
    )


# -- Mosquitto with a TLS listener -----------------------------------------------------------------


@dataclass
class TlsBroker(Broker):
    """The e2e broker with its one listener on TLS."""

    require_certificate: bool = True

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        # The listener is the config's last one, so these lines belong to it.
        lines = [
            f"cafile {self.workdir}/ca.crt",
            f"certfile {self.workdir}/server.crt",
            f"keyfile {self.workdir}/server.key",
        ]
        if self.require_certificate:
            lines += ["require_certificate true", "use_identity_as_username true"]
        return super().config_text() + "\n".join(lines) + "\n"


def _tls_broker(pki: Pki, *, password: str | None, require_certificate: bool) -> TlsBroker:
    mosquitto_or_skip("needs Mosquitto (a TLS listener; the embedded broker has none here)")
    b = TlsBroker(
        "mosquitto",
        free_port(),
        make_workdir(),
        password=password,
        require_certificate=require_certificate,
    )
    for src, name in ((pki.ca, "ca.crt"), (pki.server_cert, "server.crt")):
        shutil.copy(src, b.workdir / name)
    key = b.workdir / "server.key"
    shutil.copy(pki.server_key, key)
    key.chmod(0o644)  # Mosquitto reads it as its own user; a throwaway key in a throwaway dir
    b.start()
    return b


@pytest.fixture
def cert_broker(pki: Pki) -> Iterator[TlsBroker]:
    """Mosquitto on TLS that requires a client certificate and takes its CN as the user name."""
    b = _tls_broker(pki, password=None, require_certificate=True)
    yield b
    b.stop()
    shutil.rmtree(b.workdir, ignore_errors=True)


@pytest.fixture
def password_broker(pki: Pki) -> Iterator[TlsBroker]:
    """Mosquitto on TLS (server certificate only) that wants user `coach` with a password."""
    b = _tls_broker(pki, password=PASSWORD, require_certificate=False)
    yield b
    b.stop()
    shutil.rmtree(b.workdir, ignore_errors=True)


# -- TLS test clients ------------------------------------------------------------------------------


class TlsClient:
    """A paho MQTT 5 client over TLS that records what arrives on its subscriptions."""

    def __init__(
        self,
        port: int,
        pki: Pki,
        client_id: str,
        topics: list[str],
        *,
        password: str | None = None,
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5)
        self.client.tls_set(
            ca_certs=str(pki.ca), certfile=str(pki.client_cert), keyfile=str(pki.client_key)
        )
        if password is not None:
            self.client.username_pw_set("coach", password)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: ready.set()
        if topics:
            self.client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in topics])
        else:
            self.client.on_connect = lambda *_a: ready.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not ready.wait(5):
            self.close()
            pytest.fail("the TLS test client could not connect")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def json_on(self, topic: str) -> list[Any]:
        with self._lock:
            return [json.loads(p) for t, p in self.messages if t == topic]

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients() -> Iterator[Callable[..., TlsClient]]:
    made: list[TlsClient] = []

    def make(*args: Any, **kwargs: Any) -> TlsClient:
        c = TlsClient(*args, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def _tls_lines(pki: Pki, *, ca: Path | None = None, client_cert: bool = True) -> str:
    lines = f"  ca_file: {ca or pki.ca}\n"
    if client_cert:
        lines += f"  cert_file: {pki.client_cert}\n  key_file: {pki.client_key}\n"
    return lines


def _coffee_gets_the_cutoff_nudge(
    port: int,
    pki: Pki,
    daemon: DaemonProcess,
    clients: Callable[..., TlsClient],
    password: str | None = None,
) -> None:
    rec = clients(port, pki, "recorder", [f"{PREFIX}/#"], password=password)
    assert eventually(lambda: b"online" in rec.on(f"{PREFIX}/status")), daemon.log_text()
    dev = clients(port, pki, "device", [], password=password)
    dev.client.publish("home/kitchen/coffee", COFFEE, qos=1)
    assert eventually(lambda: bool(rec.on(f"{PREFIX}/alex/nudge"))), daemon.log_text()
    nudge = rec.json_on(f"{PREFIX}/alex/nudge")[0]
    assert nudge["rule"] == "caffeine.cutoff"
    assert nudge["person"] == "alex"
    assert nudge["evidence"]["dose_mg"] == 95.0


# -- the tests -------------------------------------------------------------------------------------


def test_mqtts_with_ca_and_client_certificate_connects_and_a_coffee_gets_the_cutoff_nudge(
    cert_broker: TlsBroker,
    pki: Pki,
    daemon_factory: Callable[..., DaemonProcess],
    clients: Callable[..., TlsClient],
    tmp_path: Path,
) -> None:
    cfg = config_yaml(cert_broker, f"sqlite:///{tmp_path / 'coach.db'}", extra_mqtt=_tls_lines(pki))
    daemon = daemon_factory(cfg)
    daemon.start()
    log = daemon.log_text()
    assert f"connected to the broker at mqtts://127.0.0.1:{cert_broker.port}" in log, log
    _coffee_gets_the_cutoff_nudge(cert_broker.port, pki, daemon, clients)


def test_the_broker_wants_a_client_certificate_and_the_coach_without_one_never_connects(
    cert_broker: TlsBroker,
    pki: Pki,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """The control for the test above: the certificate is what let the coach in."""
    cfg = config_yaml(
        cert_broker,
        f"sqlite:///{tmp_path / 'coach.db'}",
        extra_mqtt=_tls_lines(pki, client_cert=False),
    )
    daemon = daemon_factory(cfg)
    daemon.start(wait=False)
    assert eventually(lambda: "broker unavailable" in daemon.log_text(), 10), daemon.log_text()
    time.sleep(2.0)  # a few retries
    log = daemon.log_text()
    assert daemon.proc is not None
    assert daemon.proc.poll() is None, log
    assert "connected to the broker" not in log, log
    # Once, with the broker's TLS alert as the reason: not paho's error line on every retry,
    # and not blamed on the MQTT version.
    lines = [line for line in log.splitlines() if "certificate" in line.lower()]
    assert len(lines) == 1, log
    assert "broker unavailable" in lines[0], log
    assert log.count("broker unavailable") == 1, log
    assert "MQTT 3.1.1" not in log, log
    assert "Traceback" not in log, log
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(10) == 0, daemon.log_text()


def test_a_wrong_ca_is_reported_once_as_a_certificate_error_and_the_coach_keeps_retrying(
    cert_broker: TlsBroker,
    pki: Pki,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """Documented (docs/daemon.md): a broker it cannot reach is retried with backoff, the state
    logged once; only a CONNACK refusal (bad credentials) ends the daemon at start."""
    cfg = config_yaml(
        cert_broker,
        f"sqlite:///{tmp_path / 'coach.db'}",
        extra_mqtt="  username: coach\n" + _tls_lines(pki, ca=pki.other_ca),
    )
    daemon = daemon_factory(cfg, env={"SLEEPCOACH_MQTT_PASSWORD": PASSWORD})
    daemon.start(wait=False)
    assert eventually(lambda: "certificate" in daemon.log_text(), 10), daemon.log_text()
    # Backoff 0.5 s doubling: 3-4 more attempts in the next 3 s, none of them logged again.
    time.sleep(3.0)
    log = daemon.log_text()
    assert daemon.proc is not None
    assert daemon.proc.poll() is None, log  # still running, still retrying
    lines = [line for line in log.splitlines() if "certificate" in line]
    assert len(lines) == 1, log
    assert "CERTIFICATE_VERIFY_FAILED" in lines[0] or "verify failed" in lines[0], lines
    assert f"mqtts://127.0.0.1:{cert_broker.port}" in lines[0], lines
    assert "Traceback" not in log, log
    assert "connected to the broker" not in log, log
    assert PASSWORD not in log
    assert "PRIVATE KEY" not in log
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(10) == 0, daemon.log_text()
    assert time.monotonic() - started < 5
    assert "Traceback" not in daemon.log_text()


def test_user_and_password_from_the_environment_over_tls_work_and_never_reach_the_logs(
    password_broker: TlsBroker,
    pki: Pki,
    daemon_factory: Callable[..., DaemonProcess],
    clients: Callable[..., TlsClient],
    tmp_path: Path,
) -> None:
    cfg = config_yaml(
        password_broker,
        f"sqlite:///{tmp_path / 'coach.db'}",
        extra_mqtt="  username: coach\n" + _tls_lines(pki, client_cert=False),
    )
    daemon = daemon_factory(cfg, "--log-level", "debug", env={"SLEEPCOACH_MQTT_PASSWORD": PASSWORD})
    daemon.start()
    _coffee_gets_the_cutoff_nudge(password_broker.port, pki, daemon, clients, password=PASSWORD)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(10) == 0
    log = daemon.log_text() + daemon.out.read_text()
    assert f"connected to the broker at mqtts://127.0.0.1:{password_broker.port}" in log, log
    assert PASSWORD not in log

    wrong = daemon_factory(cfg, env={"SLEEPCOACH_MQTT_PASSWORD": "not-" + PASSWORD})
    wrong.start(wait=False)
    assert wrong.wait(EXIT_DEADLINE_S) == 1
    log = wrong.log_text() + wrong.out.read_text()
    assert "refused the connection" in log, log
    assert "reason code 134" in log or "reason code 135" in log, log
    assert PASSWORD not in log


def test_check_names_the_certificate_error_of_a_wrong_ca_and_a_good_ca_passes(
    cert_broker: TlsBroker,
    pki: Pki,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'coach.db'}"
    good = daemon_factory(config_yaml(cert_broker, db_url, extra_mqtt=_tls_lines(pki)), "--check")
    good.start(wait=False)
    assert good.wait(EXIT_DEADLINE_S) == 0, good.log_text()
    assert f"broker: OK (mqtts://127.0.0.1:{cert_broker.port})" in good.out.read_text()

    cfg = config_yaml(cert_broker, db_url, extra_mqtt=_tls_lines(pki, ca=pki.other_ca))
    bad = daemon_factory(cfg, "--check")
    bad.start(wait=False)
    assert bad.wait(EXIT_DEADLINE_S) == 1
    out = bad.out.read_text()
    line = next(line for line in out.splitlines() if line.startswith("broker: FAILED"))
    assert "CERTIFICATE_VERIFY_FAILED" in line, out  # not "no answer"
    assert "Traceback" not in bad.log_text()


def test_a_missing_certificate_file_stops_the_coach_at_start_naming_the_option_and_the_path(
    cert_broker: TlsBroker,
    pki: Pki,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere" / "ca.crt"
    cfg = config_yaml(
        cert_broker,
        f"sqlite:///{tmp_path / 'coach.db'}",
        extra_mqtt=_tls_lines(pki, ca=missing),
    )
    daemon = daemon_factory(cfg)
    daemon.start(wait=False)
    assert daemon.wait(EXIT_DEADLINE_S) == 1
    log = daemon.log_text()
    assert f"mqtt.ca_file {missing}: no such file" in log, log
    assert "Traceback" not in log, log
