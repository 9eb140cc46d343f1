"""Which MQTT broker the coach uses: the configured one, one already answering, or one it starts.

`choose_broker` decides from `mqtt.url` and what answers on 127.0.0.1:1883 (probed with a bare
MQTT CONNECT, so a program that is not a broker is named, not mistaken for one). When nothing
answers, the coach starts a broker there itself: the installed Mosquitto as a child process
(`integrations.mosquitto`) in preference to the embedded amqtt broker, which loses more (see
docs/daemon.md). `start_broker` starts it and says so in the log.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from integrations.config_file import ConfigFile
from integrations.mosquitto import ChildMosquitto, MosquittoError, mosquitto_binary
from integrations.mqtt import MqttError, parse_url

log = logging.getLogger(__name__)

#: Where a first run looks for a broker, and where it starts one.
HOST: Final = "127.0.0.1"
PORT: Final = 1883


def port_state(host: str, port: int, timeout: float = 1.0) -> str:
    """What answers on host:port: "free", "mqtt" (a broker) or "other"."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return "free"
    try:
        # An MQTT 3.1.1 CONNECT, clean session, keepalive 5 s, client id "sleepcoach-probe".
        client_id = b"sleepcoach-probe"
        variable = b"\x00\x04MQTT\x04\x02\x00\x05"
        body = variable + len(client_id).to_bytes(2, "big") + client_id
        sock.sendall(bytes([0x10, len(body)]) + body)
        reply = sock.recv(4)
        if len(reply) >= 2 and reply[0] == 0x20 and reply[1] == 0x02:
            sock.sendall(b"\xe0\x00")  # DISCONNECT
            return "mqtt"
        return "other"
    except OSError:
        return "other"
    finally:
        sock.close()


@dataclass(frozen=True, slots=True)
class BrokerChoice:
    """Where to connect, and which broker the coach must start there first (None: none)."""

    host: str
    port: int
    tls: bool
    start: Literal["mosquitto", "embedded"] | None
    why: str
    #: The `mosquitto` binary to start, when `start` is "mosquitto".
    binary: str | None = None

    @property
    def embedded(self) -> bool:
        """The coach's own amqtt broker: MQTT 3.1.1, sessions kept for named clients only."""
        return self.start == "embedded"

    def starts(self) -> str:
        """What `run` starts, in words (for `run --check`)."""
        if self.start == "mosquitto":
            return f"`run` starts Mosquitto ({self.binary}) on {self.host}:{self.port}"
        return f"`run` starts the embedded broker on {self.host}:{self.port}"


def choose_broker(config: ConfigFile) -> BrokerChoice:
    """mqtt.url; else a broker already on 127.0.0.1:1883; else Mosquitto if it is installed;
    else the embedded one."""
    url = config.mqtt.url
    if url == "embedded":
        return BrokerChoice(HOST, PORT, False, "embedded", "mqtt.url is embedded")
    if url is not None:
        host, port, tls = parse_url(url)
        return BrokerChoice(host, port, tls, None, "mqtt.url")
    found = port_state(HOST, PORT)
    if found == "mqtt":
        return BrokerChoice(HOST, PORT, False, None, f"a broker already answers on {HOST}:{PORT}")
    if found == "other":
        msg = (
            f"port {PORT} on {HOST} is taken by a program that is not an MQTT broker: stop it, "
            "or set mqtt.url to your broker"
        )
        raise MqttError(msg)
    binary = mosquitto_binary()
    if binary is not None:
        why = f"no broker answers on {HOST}:{PORT}"
        return BrokerChoice(HOST, PORT, False, "mosquitto", why, binary)
    why = f"no broker answers on {HOST}:{PORT} and Mosquitto is not installed"
    return BrokerChoice(HOST, PORT, False, "embedded", why)


def start_broker(
    config: ConfigFile, choice: BrokerChoice, data_dir: Path
) -> tuple[BrokerChoice, Any]:
    """Start the broker `choice` asks for (its files in `data_dir`): the choice in effect and
    the started broker (None when it is not ours). Mosquitto that fails to start is said in the
    log, and the embedded broker starts instead."""
    if choice.start == "mosquitto":
        assert choice.binary is not None
        log.info("%s: starting Mosquitto (%s) for the coach", choice.why, choice.binary)
        mosquitto = ChildMosquitto(choice.binary, data_dir, choice.host, choice.port)
        try:
            mosquitto.start()
        except MosquittoError as err:
            log.warning("%s", err)
            why = f"Mosquitto could not start ({choice.binary})"
            choice = BrokerChoice(choice.host, choice.port, False, "embedded", why)
        else:
            return choice, mosquitto
    if choice.start == "embedded":
        from integrations.embedded_broker import EmbeddedBroker  # noqa: PLC0415 - pulls amqtt

        log.info(
            "%s: starting the embedded broker (for trying sleepcoach out; Mosquitto is better)",
            choice.why,
        )
        broker = EmbeddedBroker(data_dir, choice.host, choice.port)
        broker.start()
        return choice, broker
    if config.mqtt.url is None:
        log.info("using the MQTT broker that %s", choice.why.removeprefix("a broker "))
    return choice, None
