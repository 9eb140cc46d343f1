"""The shell's settings: the MQTT broker, storage and Home Assistant, with their secrets.

They sit in the same YAML file as the coaching configuration (`coach.config.Config`), under
`mqtt`, `storage` and `homeassistant`; `integrations.config_file.ConfigFile` is the two together.
The core never sees these: a broker password or a Home Assistant token stays in the shell.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from coach.config import Model


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
        "sleepcoach", pattern=r"^[^#+]+$", description="Prefix of every topic the coach publishes."
    )
    client_id: str = Field(
        "sleepcoach", description="MQTT client id (the persistent session's key)."
    )
    ca_file: str | None = Field(None, description="CA certificate for mqtts://.")
    cert_file: str | None = Field(None, description="Client certificate for mqtts://.")
    key_file: str | None = Field(None, description="Client key for mqtts://.")
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


class Settings(Model):
    """The shell's part of the configuration file: broker, storage, Home Assistant."""

    mqtt: MqttSettings = Field(default_factory=MqttSettings, description=MqttSettings.__doc__)
    storage: StorageSettings = Field(
        default_factory=StorageSettings, description=StorageSettings.__doc__
    )
    homeassistant: HomeAssistantSettings | None = Field(
        None, description="Home Assistant; leave out to not use it."
    )
