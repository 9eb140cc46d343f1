"""The Home Assistant bridge without Home Assistant: notify calls, buttons, outbox retries."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant_api.errors import ResponseError
from pydantic import SecretStr

from coach.decode.native import parse_command
from coach.event import CheckinAnswered, DrinkClaimed, Event, NudgeAcked, NudgeSnoozed
from integrations.config_file import ConfigFile
from integrations.home_assistant import (
    DELIVERED,
    EXPIRED,
    PENDING,
    Backoff,
    ButtonPress,
    HomeAssistantBridge,
    RestNotifier,
    TokenRejectedError,
    UnavailableError,
    notification_calls,
    parse_action,
    read_token,
    websocket_url,
)
from integrations.settings import HomeAssistantSettings
from integrations.storage import Storage
from tests.e2e.conftest import eventually

TOKEN = "secret-token-0123456789abcdef"
NOW = datetime(2026, 11, 24, 21, 5, tzinfo=UTC)


def nudge(nudge_id: str = "caffeine.cutoff:alex:2026-11-24:2105", **extra: Any) -> dict[str, Any]:
    """A nudge payload as the core publishes it (docs/contract.md)."""
    return {
        "id": nudge_id,
        "person": "alex",
        "rule": "caffeine.cutoff",
        "ts": NOW.isoformat(),
        "severity": "warning",
        "title": "No caffeine now",
        "message": "That espresso came late.",
        "evidence": {},
        "actions": ["ack", "snooze"],
        **extra,
    }


def make_config(notify: list[str] | None = None, url: str = "http://127.0.0.1:9") -> ConfigFile:
    """A configuration with one person and Home Assistant."""
    return ConfigFile.model_validate(
        {
            "timezone": "Europe/Berlin",
            "homeassistant": {"url": url, "token": TOKEN, "notify": notify or []},
            "people": [{"id": "alex", "bedtime": "22:30", "wake": "06:30"}],
        }
    )


# --- what is sent -------------------------------------------------------------------------------


def test_without_services_a_persistent_notification_replaces_itself_by_nudge_id() -> None:
    calls = notification_calls(HomeAssistantSettings(), nudge())
    assert [(c.service, c.data) for c in calls] == [
        (
            "notify.persistent_notification",
            {
                "title": "No caffeine now",
                "message": "That espresso came late.",
                "data": {"notification_id": "sleepcoach_caffeine.cutoff:alex:2026-11-24:2105"},
            },
        )
    ]


def test_a_phone_gets_tag_group_and_the_two_buttons() -> None:
    ha = HomeAssistantSettings(notify=["notify.mobile_app_phone", "mobile_app_tablet"])
    calls = notification_calls(ha, nudge())
    assert [c.service for c in calls] == ["notify.mobile_app_phone", "notify.mobile_app_tablet"]
    assert calls[0].data == {
        "title": "No caffeine now",
        "message": "That espresso came late.",
        "data": {
            "tag": "caffeine.cutoff:alex:2026-11-24:2105",
            "group": "sleepcoach",
            "channel": "Sleep coach",
            "actions": [
                {
                    "action": "sleepcoach:ack:alex:caffeine.cutoff:alex:2026-11-24:2105",
                    "title": "Done",
                },
                {
                    "action": "sleepcoach:snooze:alex:caffeine.cutoff:alex:2026-11-24:2105",
                    "title": "Snooze 30 min",
                },
            ],
        },
    }


def test_a_snoozed_repeat_replaces_the_first_notification() -> None:
    ha = HomeAssistantSettings(notify=["notify.mobile_app_phone"])
    repeat = nudge("n1:snooze1", evidence={"snoozed": 1, "original_id": "n1"})
    data = notification_calls(ha, repeat)[0].data["data"]
    assert data["tag"] == "n1"
    assert data["actions"][1]["action"] == "sleepcoach:snooze:alex:n1"


def test_other_notify_services_get_title_and_message_only() -> None:
    calls = notification_calls(HomeAssistantSettings(notify=["notify.signal"]), nudge())
    assert calls[0].data == {"title": "No caffeine now", "message": "That espresso came late."}


def test_the_morning_check_in_gets_three_rested_buttons() -> None:
    ha = HomeAssistantSettings(notify=["notify.mobile_app_phone"])
    checkin = nudge("checkin.morning:alex:2026-11-25", actions=["checkin", "ack"])
    assert notification_calls(ha, checkin)[0].data["data"]["actions"] == [
        {"action": "sleepcoach:rested:alex:2", "title": "2 · poorly"},
        {"action": "sleepcoach:rested:alex:3", "title": "3 · so-so"},
        {"action": "sleepcoach:rested:alex:4", "title": "4 · well"},
    ]


def test_a_nudge_without_actions_has_no_buttons() -> None:
    ha = HomeAssistantSettings(notify=["notify.mobile_app_phone"])
    data = notification_calls(ha, nudge(actions=[]))[0].data["data"]
    assert "actions" not in data


# --- buttons ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (
            "sleepcoach:snooze:alex:caffeine.cutoff:alex:2026-11-24:2105",
            ButtonPress("snooze", "alex", "caffeine.cutoff:alex:2026-11-24:2105"),
        ),
        ("sleepcoach:ack:alex:n1", ButtonPress("ack", "alex", "n1")),
        ("sleepcoach:rested:alex:2", ButtonPress("rested", "alex", "2")),
        ("sleepcoach:rested:alex:6", None),
        ("sleepcoach:rested:alex:two", None),
        ("sleepcoach:delete:alex:n1", None),
        ("OPEN_GARAGE", None),
        ("sleepcoach:ack:alex:", None),
        (None, None),
        (42, None),
    ],
    ids=[
        "a snooze carries a nudge id with colons",
        "done acks",
        "a rested button carries its answer",
        "a rested answer off the 1-5 scale is not ours",
        "a rested answer that is no number is not ours",
        "an unknown command is not ours",
        "another automation's action is ignored",
        "a missing nudge id is refused",
        "no action at all",
        "a number is not an action",
    ],
)
def test_action_ids_decode(action: object, expected: ButtonPress | None) -> None:
    assert parse_action(action) == expected


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    """A SQLite database file, opened as the daemon opens its storage."""
    store = Storage.open(f"sqlite:///{tmp_path / 'coach.db'}")
    yield store
    store.close()


def test_a_snooze_button_becomes_the_command_topics_event(storage: Storage) -> None:
    events: list[Event] = []
    bridge = HomeAssistantBridge(make_config(), events.append, storage, listen=False)
    at = NOW + timedelta(minutes=3)
    got = bridge.handle_action({"action": "sleepcoach:snooze:alex:n1", "tag": "n1"}, at)
    same = parse_command("alex", b'{"command": "snooze", "nudge_id": "n1", "minutes": 30}', at)
    assert events == [same]
    assert got == same
    assert isinstance(got, NudgeSnoozed)
    assert got.minutes == 30


def test_a_rested_button_becomes_the_check_in_command(storage: Storage) -> None:
    events: list[Event] = []
    bridge = HomeAssistantBridge(make_config(), events.append, storage, listen=False)
    got = bridge.handle_action({"action": "sleepcoach:rested:alex:2"}, NOW)
    assert got == parse_command("alex", b'{"command": "checkin", "rested": 2}', NOW)
    assert events == [got]
    assert isinstance(got, CheckinAnswered)
    assert got.rested == 2


def test_done_button_acks_and_foreign_actions_do_nothing(storage: Storage) -> None:
    events: list[Event] = []
    bridge = HomeAssistantBridge(make_config(), events.append, storage, listen=False)
    bridge.handle_action({"action": "sleepcoach:ack:alex:n1"}, NOW)
    bridge.handle_action({"action": "sleepcoach:ack:nobody:n1"}, NOW)
    bridge.handle_action({"action": "ALARM_OFF"}, NOW)
    assert len(events) == 1
    assert isinstance(events[0], NudgeAcked)
    assert events[0].nudge_id == "n1"


# --- the outbox ---------------------------------------------------------------------------------


class FakeNotifier:
    """Records calls; fails while `failure` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.attempts = 0
        self.failure: Exception | None = None
        self.lock = threading.Lock()

    def call(self, service: str, data: dict[str, Any]) -> None:
        with self.lock:
            self.attempts += 1
            if self.failure is not None:
                raise self.failure
            self.calls.append((service, data))


FAST = Backoff(initial_s=0.01, maximum_s=0.05, token_rejected_s=0.05, jitter=0.0)


def run_bridge(
    storage: Storage, notifier: FakeNotifier, config: ConfigFile | None = None, **kw: Any
) -> HomeAssistantBridge:
    """A started bridge with a fake notifier and fast retries."""
    bridge = HomeAssistantBridge(
        config or make_config(),
        lambda e: None,
        storage,
        notifier=notifier,
        backoff=FAST,
        listen=False,
        **kw,
    )
    bridge.start()
    return bridge


def titles(notifier: FakeNotifier) -> list[str]:
    return [data["title"] for _, data in notifier.calls]


def test_nudges_are_delivered_once_in_order(storage: Storage) -> None:
    notifier = FakeNotifier()
    bridge = run_bridge(storage, notifier)
    try:
        for i in range(5):
            bridge.deliver(nudge(f"n{i}", title=f"t{i}"), expires_at=NOW + timedelta(days=999))
        bridge.deliver(nudge("n0", title="t0"), expires_at=NOW + timedelta(days=999))
        assert bridge.wait_idle(5)
    finally:
        bridge.stop()
    assert titles(notifier) == ["t0", "t1", "t2", "t3", "t4"]
    assert bridge.outbox.counts() == {PENDING: 0, DELIVERED: 5, EXPIRED: 0}


def test_home_assistant_down_queues_and_delivers_all_once_when_back(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="integrations.home_assistant")
    notifier = FakeNotifier()
    notifier.failure = UnavailableError("notify.persistent_notification: ConnectionError")
    bridge = run_bridge(storage, notifier)
    far = NOW + timedelta(days=999)
    try:
        for i in range(3):
            bridge.deliver(nudge(f"n{i}", title=f"t{i}"), expires_at=far)
        # Several retries while it is down (each attempt is counted by the notifier); a deadline
        # for a busy machine, not a speed target.
        assert eventually(lambda: notifier.attempts >= 3, timeout=30)
        assert bridge.outbox.counts()[PENDING] == 3
        notifier.failure = None
        assert bridge.wait_idle(5)
    finally:
        bridge.stop()
    assert titles(notifier) == ["t0", "t1", "t2"]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Home Assistant unavailable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1


def test_a_restart_delivers_what_was_pending(storage: Storage) -> None:
    down = FakeNotifier()
    down.failure = UnavailableError("down")
    first = run_bridge(storage, down)
    first.deliver(nudge("n1"), expires_at=NOW + timedelta(days=999))
    first.stop()
    notifier = FakeNotifier()
    second = run_bridge(storage, notifier)
    try:
        assert second.wait_idle(5)
    finally:
        second.stop()
    assert len(notifier.calls) == 1


def test_an_expired_nudge_is_dropped_and_counted_never_sent_late(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [NOW.timestamp()]
    notifier = FakeNotifier()
    notifier.failure = UnavailableError("down")
    bridge = run_bridge(storage, notifier, clock=lambda: clock[0])
    try:
        bridge.deliver(nudge("late"), expires_at=NOW + timedelta(minutes=10))
        bridge.deliver(nudge("fresh"), expires_at=NOW + timedelta(hours=10))
        threading.Event().wait(0.1)
        clock[0] += 11 * 60  # Home Assistant was away for eleven minutes
        notifier.failure = None
        assert bridge.wait_idle(5)
    finally:
        bridge.stop()
    assert [d["data"]["notification_id"] for _, d in notifier.calls] == ["sleepcoach_fresh"]
    assert bridge.outbox.counts() == {PENDING: 0, DELIVERED: 1, EXPIRED: 1}
    assert any("late expired" in r.getMessage() for r in caplog.records)


def test_without_expiry_a_nudge_lives_two_hours_after_its_ts(storage: Storage) -> None:
    clock = [NOW.timestamp() + 2 * 3600 + 1]
    notifier = FakeNotifier()
    bridge = run_bridge(storage, notifier, clock=lambda: clock[0])
    try:
        bridge.deliver(nudge("old"))
        assert bridge.wait_idle(5)
    finally:
        bridge.stop()
    assert notifier.calls == []
    assert bridge.outbox.counts()[EXPIRED] == 1


def test_a_rejected_token_is_said_once_and_retried_slowly(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = FakeNotifier()
    notifier.failure = TokenRejectedError("Home Assistant token rejected")
    bridge = run_bridge(storage, notifier)
    try:
        bridge.deliver(nudge("n1"), expires_at=NOW + timedelta(days=999))
        threading.Event().wait(0.4)
        assert notifier.attempts >= 3  # still trying
        assert bridge.outbox.counts()[PENDING] == 1
    finally:
        bridge.stop()
    rejected = [r for r in caplog.records if "token rejected" in r.getMessage()]
    assert len(rejected) == 1
    assert rejected[0].levelno == logging.ERROR
    assert TOKEN not in caplog.text


def test_token_comes_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLEEPCOACH_HA_TOKEN", raising=False)
    assert read_token(HomeAssistantSettings()) is None
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    from_file = read_token(HomeAssistantSettings(token_file=str(token_file)))
    assert from_file is not None
    assert from_file.get_secret_value() == TOKEN
    monkeypatch.setenv("SLEEPCOACH_HA_TOKEN", "from-env")
    from_env = read_token(HomeAssistantSettings(token_file=str(token_file)))
    assert from_env is not None
    assert from_env.get_secret_value() == "from-env"
    assert TOKEN not in repr(HomeAssistantSettings(token=SecretStr(TOKEN)))


def test_websocket_url_follows_the_base_url() -> None:
    assert websocket_url("http://ha.local:8123/") == "ws://ha.local:8123/api/websocket"
    assert websocket_url("https://ha.example") == "wss://ha.example/api/websocket"


# --- the REST notifier against a tiny HTTP server -----------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200
    seen: list[tuple[str, str | None, dict[str, Any]]] = []  # noqa: RUF012 - test recorder

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        _Handler.seen.append((self.path, self.headers.get("Authorization"), body))
        payload = b"[]" if self.status == 200 else b"401: Unauthorized"
        self.send_response(self.status)
        ctype = "application/json" if self.status == 200 else "text/plain"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        del format, args


@pytest.fixture
def http_server() -> Iterator[str]:
    """A loopback HTTP server that answers like Home Assistant's service endpoint."""
    _Handler.seen = []
    _Handler.status = 200
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_rest_notifier_posts_to_the_notify_service(http_server: str) -> None:
    notifier = RestNotifier(http_server, SecretStr(TOKEN))
    notifier.call("notify.mobile_app_phone", {"title": "T", "message": "M", "data": {"tag": "n1"}})
    notifier.close()
    assert _Handler.seen == [
        (
            "/api/services/notify/mobile_app_phone",
            f"Bearer {TOKEN}",
            {"title": "T", "message": "M", "data": {"tag": "n1"}},
        )
    ]


def test_rest_notifier_turns_401_into_token_rejected_without_the_token(http_server: str) -> None:
    _Handler.status = 401
    notifier = RestNotifier(http_server, SecretStr(TOKEN))
    with pytest.raises(TokenRejectedError) as info:
        notifier.call("notify.persistent_notification", {"title": "T", "message": "M"})
    notifier.close()
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value.__cause__)


def test_rest_notifier_says_unavailable_when_nothing_listens() -> None:
    notifier = RestNotifier("http://127.0.0.1:9", SecretStr(TOKEN), timeout_s=2)
    with pytest.raises(UnavailableError):
        notifier.call("notify.persistent_notification", {"title": "T", "message": "M"})
    notifier.close()


# --- discovery through the bridge ---------------------------------------------------------------


def two_people(people: tuple[str, ...]) -> ConfigFile:
    """A config with these people and discovery on."""
    return ConfigFile.model_validate(
        {
            "timezone": "Europe/Berlin",
            "homeassistant": {"token": TOKEN},
            "people": [{"id": p, "bedtime": "22:30", "wake": "06:30"} for p in people],
        }
    )


def test_a_person_removed_between_runs_gets_empty_retained_configs(storage: Storage) -> None:
    first = HomeAssistantBridge(two_people(("alex", "sam")), lambda e: None, storage, listen=False)
    before = first.discovery_messages()
    assert all(payload and retain for _, payload, retain in before)
    assert first.discovery_messages() == before  # a birth re-sends the same, removes nothing
    second = HomeAssistantBridge(two_people(("alex",)), lambda e: None, storage, listen=False)
    after = second.discovery_messages()
    removed = [topic for topic, payload, _ in after if payload == ""]
    assert removed == sorted(t for t, _, _ in before if "/sam_" in t)
    assert all(retain for _, _, retain in after)
    kept = [topic for topic, payload, _ in after if payload]
    assert kept == [t for t, _, _ in before if "/alex_" in t]
    assert second.discovery_messages() == [m for m in after if m[1]]  # removed once


def test_discovery_switched_off_removes_everything(storage: Storage) -> None:
    on = HomeAssistantBridge(two_people(("alex",)), lambda e: None, storage, listen=False)
    published = [t for t, _, _ in on.discovery_messages()]
    off_config = two_people(("alex",)).model_copy(
        update={"homeassistant": HomeAssistantSettings(token=SecretStr(TOKEN), discovery=False)}
    )
    off = HomeAssistantBridge(off_config, lambda e: None, storage, listen=False)
    assert off.discovery_messages() == [(t, "", True) for t in sorted(published)]


class _NotAdminWebsocket:
    """A websocket whose subscription Home Assistant refuses, as for a non-admin user."""

    opened = 0

    def __init__(self, url: str, token: str) -> None:
        del url, token
        self._session = self

    def __enter__(self) -> _NotAdminWebsocket:
        _NotAdminWebsocket.opened += 1
        return self

    def listen_events(self, event_type: str) -> Any:
        raise ResponseError("[unauthorized] Unauthorized")

    def close(self) -> None:
        """The session's close."""


def test_a_non_admin_token_is_told_once_and_the_listener_keeps_trying(
    storage: Storage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("integrations.home_assistant.WebsocketClient", _NotAdminWebsocket)
    _NotAdminWebsocket.opened = 0
    bridge = HomeAssistantBridge(
        make_config(), lambda e: None, storage, notifier=FakeNotifier(), backoff=FAST
    )
    bridge.start()
    try:
        wait = threading.Event()
        for _ in range(50):
            if _NotAdminWebsocket.opened >= 3:
                break
            wait.wait(0.05)
    finally:
        bridge.stop()
    assert _NotAdminWebsocket.opened >= 3
    told = [r for r in caplog.records if "must be an administrator" in r.getMessage()]
    assert len(told) == 1
    assert not any("unavailable" in r.getMessage() for r in caplog.records)


# --- households ---------------------------------------------------------------------------------


def household_config() -> ConfigFile:
    """Alex with a phone of their own, Sam on the household default."""
    return ConfigFile.model_validate(
        {
            "timezone": "Europe/Berlin",
            "homeassistant": {"url": "http://127.0.0.1:9", "token": TOKEN, "notify": ["notify.tv"]},
            "people": [
                {
                    "id": "alex",
                    "bedtime": "22:30",
                    "wake": "06:30",
                    "notify": ["notify.mobile_app_alexs_phone"],
                },
                {"id": "sam", "bedtime": "23:15", "wake": "07:15"},
            ],
        }
    )


def test_each_persons_nudges_go_to_their_own_services_and_the_rest_to_the_default(
    storage: Storage,
) -> None:
    notifier = FakeNotifier()
    bridge = run_bridge(storage, notifier, household_config())
    try:
        bridge.deliver(nudge("a1", title="Alex: one"), expires_at=NOW + timedelta(days=999))
        bridge.deliver(
            nudge("s1", title="Sam: one", person="sam"), expires_at=NOW + timedelta(days=999)
        )
        assert bridge.wait_idle(5)
    finally:
        bridge.stop()
    assert [(service, data["title"]) for service, data in notifier.calls] == [
        ("notify.mobile_app_alexs_phone", "Alex: one"),
        ("notify.tv", "Sam: one"),
    ]


def test_a_question_gets_the_mine_button_for_its_person() -> None:
    ha = HomeAssistantSettings(notify=["notify.mobile_app_phone"])
    qid = "household.whose:sam:2026-11-24:1505"
    question = nudge(qid, person="sam", rule="household.whose", actions=["mine"])
    data = notification_calls(ha, question)[0].data["data"]
    assert data["actions"] == [{"action": f"sleepcoach:mine:sam:{qid}", "title": "Mine"}]
    assert data["tag"] == qid


def test_the_mine_button_becomes_the_command_topics_event(storage: Storage) -> None:
    events: list[Event] = []
    bridge = HomeAssistantBridge(household_config(), events.append, storage, listen=False)
    qid = "household.whose:sam:2026-11-24:1505"
    got = bridge.handle_action({"action": f"sleepcoach:mine:sam:{qid}"}, NOW)
    assert events == [
        parse_command("sam", json.dumps({"command": "mine", "nudge_id": qid}).encode(), NOW)
    ]
    assert isinstance(got, DrinkClaimed)
    assert (got.person, got.nudge_id) == ("sam", qid)


def test_a_withdrawn_question_is_cleared_by_its_tag_or_dismissed(storage: Storage) -> None:
    notifier = FakeNotifier()
    config = household_config()
    config = config.model_copy(
        update={"homeassistant": config.homeassistant.model_copy(update={"notify": []})}  # type: ignore[union-attr]
    )
    bridge = run_bridge(storage, notifier, config)
    try:
        bridge.withdraw("alex", "household.whose:alex:2026-11-24:1505")
        bridge.withdraw("sam", "household.whose:sam:2026-11-24:1505")
        assert bridge.wait_idle(5)
    finally:
        bridge.stop()
    assert notifier.calls == [
        (
            "notify.mobile_app_alexs_phone",
            {
                "message": "clear_notification",
                "data": {"tag": "household.whose:alex:2026-11-24:1505"},
            },
        ),
        (
            "persistent_notification.dismiss",
            {"notification_id": "sleepcoach_household.whose:sam:2026-11-24:1505"},
        ),
    ]
