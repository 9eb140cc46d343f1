"""The coach's limits, through `sleepcoach run` on a real Mosquitto: device topics that would feed
the coach its own messages are refused at start, timestamps outside the time policy are refused,
refusals are rate-limited per topic (and counted), and accelerometer samples are bounded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.broker import Broker
from tests.e2e.conftest import DaemonProcess, Recorder, config_yaml, eventually, publisher

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

PREFIX = "sleepcoach"


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("topic", "says"),
    [
        pytest.param(f"{PREFIX}/errors", "overlaps sleepcoach/#", id="the coach's error topic"),
        pytest.param("+/alex/command", "overlaps sleepcoach/#", id="over the command topics"),
        pytest.param("'#'", "a bare # takes every message", id="a bare #"),
        pytest.param("$SYS/#", "are the broker's own", id="the broker's $SYS"),
    ],
)
def test_run_refuses_a_device_on_the_coachs_own_topics_naming_the_line(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
    topic: str,
    says: str,
) -> None:
    """A device on `<prefix>/errors` made an endless loop: each refusal published on the error
    topic came back as a message of the device, refused again (8,000 refusals in 10 s). `run`
    (and `check-config`) now refuse such a config at start, naming its YAML line."""
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    text = config_yaml(broker, f"sqlite:///{tmp_path / 'coach.db'}").replace(
        "topic: home/kitchen/coffee", f"topic: {topic}"
    )
    daemon = daemon_factory(text)
    daemon.start(wait=False)
    assert daemon.wait(30) == 1, daemon.log_text()
    line = _line_of(text, f"topic: {topic}")
    assert f"config.yaml:{line}: devices[1].topic: " in daemon.log_text()
    assert says in daemon.log_text()
    # It never got as far as the broker: nothing was published, so nothing can loop.
    dev = publisher(broker)
    dev.publish(f"{PREFIX}/errors", b"not json", qos=1).wait_for_publish(5)
    assert not eventually(lambda: len(rec.on(f"{PREFIX}/errors")) > 1, timeout=1.0)
    assert rec.on(f"{PREFIX}/status") == []
    dev.loop_stop()
