"""The shell's settings: the MQTT broker, storage, Home Assistant (with their secrets) and the
dashboard.

They sit in the same YAML file as the coaching configuration (`coach.config.Config`), under
`mqtt`, `storage`, `homeassistant` and `dashboard`; `integrations.config_file.ConfigFile` is the
two together.
The core never sees these: a broker password or a Home Assistant token stays in the shell.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from pydantic import Field, SecretStr, field_validator

from coach.config import Model
from coach.decode.topic import level_problem


class MqttSettings(Model):
    """The MQTT broker connection."""

    url: str | None = Field(
        None,
        description='mqtt://host:port, mqtts://host:port for TLS, or "embedded". Unset: use a '
        "broker answering on 127.0.0.1:1883, else start the embedded one.",
    )
    username: str | None = Field(None, description="User name, if the broker requires one.")
    password_file: str | None = Field(
        None, description="File holding the password (or set SLEEPCOACH_MQTT_PASSWORD)."
    )
    password: SecretStr | None = Field(
        None, description="Filled from SLEEPCOACH_MQTT_PASSWORD or password_file; never logged."
    )
    topic_prefix: str = Field(
        "sleepcoach",
        description="Prefix of every topic the coach publishes and of the command topics it "
        "listens to (no empty level, no leading $, no wildcard).",
    )
    client_id: str | None = Field(
        None,
        min_length=1,
        description="MQTT client id (the persistent session's key): one per coach on a broker. "
        "Unset: sleepcoach-<host>-<key>, the key derived from the host name and the config "
        "file's path, so each install and config has its own (run --check shows it).",
    )
    ca_file: str | None = Field(None, description="CA certificate for mqtts://.")
    cert_file: str | None = Field(None, description="Client certificate for mqtts://.")
    key_file: str | None = Field(None, description="Client key for mqtts://.")

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_valid(cls, v: str) -> str:
        problem = level_problem(v, "the topic prefix")
        if problem is not None:
            raise ValueError(problem)
        return v

    refusals_per_minute: int = Field(
        5,
        ge=1,
        le=10_000,
        description="Refused messages per topic and minute that are logged, stored and published "
        "on <prefix>/errors one by one (at most four times as many over all topics); the rest "
        "are counted and said once when the minute is over, so a flood cannot fill the disk.",
    )
    keepalive_s: int = Field(30, ge=5, le=3600, description="Keepalive interval in seconds.")
    session_expiry_s: int = Field(
        7 * 24 * 3600,
        ge=24 * 3600,
        description="MQTT 5 session expiry: how long the broker queues messages while the coach "
        "is away. At least a day; expiry 0 would drop them silently.",
    )


class StorageSettings(Model):
    """Where history and state are stored."""

    url: str | None = Field(
        None,
        description="sqlite:///path.db or postgresql://…; unset: SQLite in the user's data dir.",
    )
    keep_days: int = Field(365, ge=1, description="Days of history kept; older rows are purged.")


class HomeAssistantSettings(Model):
    """Home Assistant: notifications and entities."""

    url: str = Field("http://127.0.0.1:8123", description="Home Assistant's base URL.")
    token_file: str | None = Field(
        None, description="File holding a long-lived access token (or set SLEEPCOACH_HA_TOKEN)."
    )
    token: SecretStr | None = Field(
        None, description="Filled from SLEEPCOACH_HA_TOKEN or token_file; never logged."
    )
    notify: list[str] = Field(
        default_factory=list,
        description="notify services to call (notify.mobile_app_phone); "
        "persistent_notification when empty.",
    )
    discovery: bool = Field(True, description="Publish MQTT-discovery entities for Home Assistant.")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix.")

    @field_validator("discovery_prefix")
    @classmethod
    def _prefix_valid(cls, v: str) -> str:
        problem = level_problem(v, "the discovery prefix")
        if problem is not None:
            raise ValueError(problem)
        return v


DEFAULT_DASHBOARD_LISTEN: Final = "127.0.0.1:8099"


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) as (host, port); ValueError saying what is expected."""
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        msg = f"expected host:port such as {DEFAULT_DASHBOARD_LISTEN} (port 1-65535), got {value!r}"
        raise ValueError(msg)
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DashboardSettings(Model):
    """The live dashboard that `sleepcoach run` serves."""

    enabled: bool = Field(True, description="Serve the dashboard (false: no web server at all).")
    listen: str = Field(
        DEFAULT_DASHBOARD_LISTEN,
        description="host:port to listen on ([::1]:8099 for IPv6; SLEEPCOACH_DASHBOARD_LISTEN "
        "replaces it). Loopback by default; any other address serves the health data to the "
        "network without a password (a warning says so).",
    )
    hosts: list[str] = Field(
        default_factory=list,
        description="Host names requests may use besides localhost and loopback addresses while "
        "the dashboard listens on loopback (e.g. the name a reverse proxy on this machine passes "
        "on). Other names are refused, so a web page cannot read it by DNS rebinding.",
    )

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, v: str) -> str:
        parse_listen(v)
        return v

    @property
    def address(self) -> tuple[str, int]:
        """The host and port to bind."""
        return parse_listen(self.listen)

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can reach it."""
        return is_loopback(self.address[0])


class Settings(Model):
    """The shell's part of the configuration file: broker, storage, Home Assistant, dashboard."""

    mqtt: MqttSettings = Field(default_factory=MqttSettings, description=MqttSettings.__doc__)
    storage: StorageSettings = Field(
        default_factory=StorageSettings, description=StorageSettings.__doc__
    )
    homeassistant: HomeAssistantSettings | None = Field(
        None, description="Home Assistant; leave out to not use it."
    )
    dashboard: DashboardSettings = Field(
        default_factory=DashboardSettings, description=DashboardSettings.__doc__
    )
