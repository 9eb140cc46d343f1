"""The deployment files say what docs/daemon.md promises (no Docker engine needed to check)."""

from __future__ import annotations

import configparser
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_mosquitto_and_the_coach_with_a_read_only_config_and_a_data_volume() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"mosquitto", "sleepcoach", "homeassistant"} <= set(services)
    coach = services["sleepcoach"]
    assert "./config:/config:ro" in coach["volumes"]
    assert any(v.startswith("sleepcoach-data:") for v in coach["volumes"])
    assert coach["environment"]["SLEEPCOACH_MQTT_URL"] == "mqtt://mosquitto:1883"
    assert (
        "./config/mosquitto-container.conf:/mosquitto/config/mosquitto.conf:ro"
        in (services["mosquitto"]["volumes"])
    )
    assert services["mosquitto"]["ports"] == ["127.0.0.1:1883:1883"]
    assert services["homeassistant"]["profiles"] == ["homeassistant"]
    # The dashboard is published on the host's loopback only.
    assert coach["environment"]["SLEEPCOACH_DASHBOARD_LISTEN"] == "0.0.0.0:8099"
    assert coach["ports"] == ["127.0.0.1:8099:8099"]
    assert set(compose["volumes"]) >= {"mosquitto-data", "sleepcoach-data"}


def test_the_dockerfile_runs_the_daemon_unprivileged_with_data_in_a_volume() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "exec sleepcoach run" in text
    assert "USER sleepcoach" in text
    assert 'VOLUME ["/data"]' in text
    assert "STOPSIGNAL SIGTERM" in text


def test_the_systemd_unit_runs_the_daemon_with_a_state_directory() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "config" / "sleepcoach.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("sleepcoach run --config /etc/sleepcoach/config.yaml")
    assert service["StateDirectory"] == "sleepcoach"
    # Health data: the state directory and every file the coach makes are the service user's.
    assert service["StateDirectoryMode"] == "0700"
    assert service["UMask"] == "0077"
    assert service["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_shipped_mosquitto_conf_has_the_settings_zero_loss_and_low_latency_need() -> None:
    lines = {
        line.split()[0]: line.split(maxsplit=1)[1]
        for line in (ROOT / "config" / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert lines["persistence"] == "true"
    assert lines["autosave_on_changes"] == "true"
    assert int(lines["autosave_interval"]) <= 100
    assert lines["max_queued_messages"] == "0"
    assert lines["set_tcp_nodelay"] == "true"
    assert int(lines["max_inflight_messages"]) >= 1000


def test_the_dockerfile_installs_with_the_constraints_and_copies_what_the_wheel_needs() -> None:
    """pip builds the wheel inside the image: every file the wheel takes from outside coach/ and
    integrations/ (the example config behind its link, the shared data) must be copied in."""
    text = (ROOT / "Dockerfile").read_text()
    assert 'pip install -c constraints.txt ".[postgres]"' in text
    copied = set()
    for line in text.splitlines():
        if line.startswith("COPY "):
            *sources, _dest = line.split()[1:]
            copied.update(sources)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    link = (ROOT / "integrations" / "example.yaml").resolve().relative_to(ROOT)
    for needed in [*wheel["shared-data"], str(link), "constraints.txt"]:
        assert needed in copied or any(needed.startswith(f"{c}/") for c in copied), needed


def test_git_ignores_local_configs_and_data() -> None:
    """The README's quick start (`cp config/example.yaml my.yaml`) and a first run leave nothing
    untracked behind; nor do compose's config, Mosquitto users, secrets and reports."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    local = [
        "my.yaml",
        "config/sleepcoach.yaml",
        "config/mosquitto.passwd",
        ".env",
        "sleepcoach.db",
        "sleepcoach.db-wal",
        "sleepcoach-report/index.html",
    ]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *local],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.split() == local
    shipped = ["config/example.yaml", "docker-compose.yml", "config/mosquitto-container.conf"]
    kept = subprocess.run(
        ["git", "check-ignore", "--no-index", *shipped],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert kept.stdout == ""
