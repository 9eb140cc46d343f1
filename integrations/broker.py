"""Which MQTT broker the coach uses: the configured one, one already answering, or one it starts.

`choose_broker` decides from `mqtt.url` and what answers on 127.0.0.1:1883 (probed with a bare
MQTT CONNECT, so a program that is not a broker is named, not mistaken for one); `start_broker`
starts the broker the choice asks for and says so in the log.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from integrations.config_file import ConfigFile
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
    """Where to connect, and whether the embedded broker must be started for it."""

    host: str
    port: int
    tls: bool
    embedded: bool
    why: str


def choose_broker(config: ConfigFile) -> BrokerChoice:
    """mqtt.url; else a broker already on 127.0.0.1:1883; else the embedded one."""
    url = config.mqtt.url
    if url == "embedded":
        return BrokerChoice(HOST, PORT, False, True, "mqtt.url is embedded")
    if url is not None:
        host, port, tls = parse_url(url)
        return BrokerChoice(host, port, tls, False, "mqtt.url")
    found = port_state(HOST, PORT)
    if found == "mqtt":
        return BrokerChoice(HOST, PORT, False, False, f"a broker already answers on {HOST}:{PORT}")
    if found == "other":
        msg = (
            f"port {PORT} on {HOST} is taken by a program that is not an MQTT broker: stop it, "
            "or set mqtt.url to your broker"
        )
        raise MqttError(msg)
    return BrokerChoice(HOST, PORT, False, True, f"no broker answers on {HOST}:{PORT}")


def start_broker(config: ConfigFile, choice: BrokerChoice, data_dir: Path) -> Any:
    """Start the broker `choice` asks for (its files in `data_dir`); None when it is not ours."""
    if choice.embedded:
        from integrations.embedded_broker import EmbeddedBroker  # noqa: PLC0415 - pulls amqtt

        log.info(
            "%s: starting the embedded broker (for a first run and one small home)", choice.why
        )
        broker = EmbeddedBroker(data_dir)
        broker.start()
        return broker
    if config.mqtt.url is None:
        log.info("using the MQTT broker that %s", choice.why.removeprefix("a broker "))
    return None
