"""Home Assistant: nudges as notifications (through a durable outbox) and phone buttons as commands.

How it works. The daemon's consumer hands every nudge to `HomeAssistantBridge.deliver`, which
writes one outbox row per notify service into storage and returns: a nudge is durable before
anything touches the network. A delivery thread sends due rows with homeassistant-api's REST
client (`POST /api/services/notify/<service>`), oldest first:

- delivered: the row is marked delivered (kept two days, so a replayed nudge id is not sent twice);
- Home Assistant down, timing out or refusing: the row is retried with exponential backoff
  (1 s doubling to a minute, with jitter); "Home Assistant unavailable" is logged once, and
  "reachable again" once when a delivery succeeds;
- 401: "Home Assistant token rejected" is logged once (until a call succeeds again) and the
  outbox retries slowly (every five minutes);
- a row whose nudge expired while waiting is marked expired and counted, never sent late.

Each person's nudges go to their own services (`people[].notify`), else to `homeassistant.notify`.
Mobile-app targets (`notify.mobile_app_*`) get the nudge's base id as `tag` (a snoozed repeat
replaces the first notification instead of stacking), a `group`, and a button per action: "Done",
"Snooze 30 min", "Mine" (a shared coffee maker's question), whose action ids carry the person and
the nudge id; the morning check-in gets three buttons instead, how rested the person feels
("2 · poorly", "3 · so-so", "4 · well": a phone shows at most three), each the check-in command
with that answer. With no service configured, `notify.persistent_notification` is used, with the
base id as `notification_id`. A nudge the core withdraws (a question someone else answered) is
cleared: `clear_notification` by its tag on a phone, `persistent_notification.dismiss` otherwise.

A listener thread keeps a websocket open (homeassistant-api's WebsocketClient), subscribed to
`mobile_app_notification_action`, and turns a press into the very command the MQTT command topic
would carry, parsed by `coach.decode.native.parse_command`, then handed to `enqueue_event`: the same
`NudgeAcked`/`NudgeSnoozed`/`DrinkClaimed` events reach the single consumer, for the person the
notification was for. The token lives in a `SecretStr` and is scrubbed from anything logged.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol, cast

import niquests
from homeassistant_api import Client, WebsocketClient
from homeassistant_api.errors import (
    HomeassistantAPIError,
    RequestTimeoutError,
    ResponseError,
    UnauthorizedError,
)
from homeassistant_api.errors import (
    InternalServerError as HAInternalServerError,
)
from homeassistant_api.models.websocket import FiredEvent
from pydantic import SecretStr
from sqlalchemy import (
    delete,
    func,
    insert,
    select,
    update,
)

from coach.decode.native import parse_command
from coach.decode.refusal import PayloadError
from coach.event import Event
from integrations import discovery
from integrations.config_file import ConfigFile
from integrations.error import ProjectError
from integrations.settings import HomeAssistantSettings
from integrations.storage import Storage, ha_discovery_table, ha_outbox_table

log = logging.getLogger(__name__)

#: The event Home Assistant fires when a notification button is pressed on a phone.
ACTION_EVENT: Final = "mobile_app_notification_action"
#: Action ids look like `sleepcoach:snooze:<person>:<nudge id>` (nudge ids contain colons), or
#: `sleepcoach:rested:<person>:<1-5>` for a check-in answer.
ACTION_PREFIX: Final = "sleepcoach"
#: The check-in's buttons: how rested (1-5) and their titles. Android shows at most three
#: notification actions, so three answers; 1 and 5 can be sent by the command topic.
RESTED_BUTTONS: Final = ((2, "2 · poorly"), (3, "3 · so-so"), (4, "4 · well"))
DEFAULT_SERVICE: Final = "notify.persistent_notification"
DISMISS_SERVICE: Final = "persistent_notification.dismiss"
GROUP: Final = "sleepcoach"
#: Nudges the caller gives no expiry are dropped when this much older than their `ts`.
DEFAULT_TTL_S: Final = 2 * 3600.0
#: Delivered and expired rows are kept this long (a replayed nudge id is recognised), then purged.
KEEP_DONE_S: Final = 2 * 24 * 3600.0
REQUEST_TIMEOUT_S: Final = 10.0

PENDING: Final = "pending"
DELIVERED: Final = "delivered"
EXPIRED: Final = "expired"


class HomeAssistantError(ProjectError):
    """Home Assistant could not be used; the message never contains the token."""


class TokenRejectedError(HomeAssistantError):
    """Home Assistant answered 401: the long-lived access token is wrong or was revoked."""


class UnavailableError(HomeAssistantError):
    """Home Assistant did not answer, timed out, or refused the call (retry later)."""


# --- pure parts: what to send, what a button means ------------------------------------------


@dataclass(frozen=True, slots=True)
class NotifyCall:
    """One notify service call: `notify.<name>` and its service data."""

    service: str
    data: dict[str, Any]


def base_id(nudge: dict[str, Any]) -> str:
    """The id of the original nudge (a snoozed repeat names it in its evidence)."""
    evidence = nudge.get("evidence") or {}
    original = evidence.get("original_id") if isinstance(evidence, dict) else None
    return str(original or nudge["id"])


def action_id(command: str, person: str, nudge_id: str) -> str:
    """The action id of a notification button: `sleepcoach:<command>:<person>:<nudge id>`."""
    return f"{ACTION_PREFIX}:{command}:{person}:{nudge_id}"


def is_mobile_app(service: str) -> bool:
    """Whether a notify service is the companion app's (which understands tags and buttons)."""
    return service.removeprefix("notify.").startswith("mobile_app")


def notify_services(ha: HomeAssistantSettings, own: Sequence[str] = ()) -> list[str]:
    """The services to call for a person's nudges, `notify.` prefixed: the person's `own`
    (`people[].notify`), else `homeassistant.notify`, else persistent notifications."""
    services = list(own) or ha.notify or [DEFAULT_SERVICE]
    return [s if s.startswith("notify.") else f"notify.{s}" for s in services]


#: The buttons a nudge's actions become on a phone: (action, title).
BUTTONS: Final = (
    ("ack", "Done"),
    ("snooze", f"Snooze {discovery.SNOOZE_MINUTES} min"),
    ("mine", "Mine"),
)


def notification_calls(
    ha: HomeAssistantSettings, nudge: dict[str, Any], own: Sequence[str] = ()
) -> list[NotifyCall]:
    """The notify calls for a nudge (docs/contract.md payload): one per service of its person."""
    tag = base_id(nudge)
    calls = []
    for service in notify_services(ha, own):
        data: dict[str, Any] = {"title": nudge["title"], "message": nudge["message"]}
        if is_mobile_app(service):
            extra: dict[str, Any] = {"tag": tag, "group": GROUP, "channel": "Sleep coach"}
            wanted = nudge.get("actions", ())
            if "checkin" in wanted:
                actions = [
                    {"action": action_id("rested", nudge["person"], str(value)), "title": title}
                    for value, title in RESTED_BUTTONS
                ]
                wanted = [a for a in wanted if a == "snooze"]
            else:
                actions = []
            actions += [
                {"action": action_id(command, nudge["person"], tag), "title": title}
                for command, title in BUTTONS
                if command in wanted
            ]
            if actions:
                extra["actions"] = actions
            data["data"] = extra
        elif service == DEFAULT_SERVICE:
            data["data"] = {"notification_id": f"sleepcoach_{tag}"}
        calls.append(NotifyCall(service, data))
    return calls


def withdrawal_calls(
    ha: HomeAssistantSettings, nudge_id: str, own: Sequence[str] = ()
) -> list[NotifyCall]:
    """The calls that take a nudge's notification back: the companion app clears it by its tag,
    a persistent notification is dismissed; other services cannot take anything back."""
    calls = []
    for service in notify_services(ha, own):
        if is_mobile_app(service):
            calls.append(
                NotifyCall(service, {"message": "clear_notification", "data": {"tag": nudge_id}})
            )
        elif service == DEFAULT_SERVICE:
            calls.append(NotifyCall(DISMISS_SERVICE, {"notification_id": f"sleepcoach_{nudge_id}"}))
    return calls


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """A notification button pressed on a phone, decoded from its action id."""

    command: str
    person: str
    nudge_id: str

    def command_payload(self) -> bytes:
        """The command as the MQTT command topic would carry it (docs/contract.md, commands)."""
        if self.command == "rested":
            return json.dumps({"command": "checkin", "rested": int(self.nudge_id)}).encode()
        body: dict[str, Any] = {"command": self.command, "nudge_id": self.nudge_id}
        if self.command == "snooze":
            body["minutes"] = discovery.SNOOZE_MINUTES
        return json.dumps(body).encode()


def parse_action(action: object) -> ButtonPress | None:
    """Decode a `mobile_app_notification_action` action id; None when it is not the coach's."""
    if not isinstance(action, str):
        return None
    parts = action.split(":", 3)
    commands = ("ack", "snooze", "rested", "mine")
    if len(parts) != 4 or parts[0] != ACTION_PREFIX or parts[1] not in commands:
        return None
    if not parts[2] or not parts[3]:
        return None
    if parts[1] == "rested" and parts[3] not in ("1", "2", "3", "4", "5"):
        return None
    return ButtonPress(parts[1], parts[2], parts[3])


def read_token(ha: HomeAssistantSettings) -> SecretStr | None:
    """The token from the config, else SLEEPCOACH_HA_TOKEN, else `token_file`; None if none."""
    if ha.token is not None and ha.token.get_secret_value().strip():
        return ha.token
    env = os.environ.get("SLEEPCOACH_HA_TOKEN", "").strip()
    if env:
        return SecretStr(env)
    if ha.token_file:
        try:
            text = Path(ha.token_file).read_text().strip()
        except OSError as err:
            msg = f"cannot read homeassistant.token_file {ha.token_file}: {err.strerror}"
            raise HomeAssistantError(msg) from err
        if text:
            return SecretStr(text)
    return None


def websocket_url(url: str) -> str:
    """Home Assistant's websocket endpoint for its base URL."""
    base = url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return f"{base}/api/websocket"


# --- the outbox -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A pending notification."""

    seq: int
    nudge_id: str
    service: str
    data: dict[str, Any]
    expires_at: float
    attempts: int


class Outbox:
    """Pending Home Assistant notifications in storage (SQLite or PostgreSQL)."""

    def __init__(self, storage: Storage) -> None:
        """Use this storage, whose schema holds the outbox's tables."""
        self._engine = storage.engine

    def add(
        self, nudge_id: str, person: str, calls: Sequence[NotifyCall], now: float, expires_at: float
    ) -> int:
        """Queue the calls of a nudge; a (nudge, service) already known is skipped. Return added."""
        added = 0
        with self._engine.begin() as conn:
            known = set(
                conn.scalars(
                    select(ha_outbox_table.c.service).where(ha_outbox_table.c.nudge_id == nudge_id)
                )
            )
            for call in calls:
                if call.service in known:
                    continue
                conn.execute(
                    insert(ha_outbox_table).values(
                        nudge_id=nudge_id,
                        service=call.service,
                        person=person,
                        data=json.dumps(call.data),
                        created_at=now,
                        expires_at=expires_at,
                        next_attempt_at=now,
                        attempts=0,
                        state=PENDING,
                    )
                )
                added += 1
        return added

    def due(self, now: float, limit: int = 50) -> list[OutboxRow]:
        """Pending rows whose next attempt is due, oldest first."""
        t = ha_outbox_table
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(t.c.seq, t.c.nudge_id, t.c.service, t.c.data, t.c.expires_at, t.c.attempts)
                .where(t.c.state == PENDING, t.c.next_attempt_at <= now)
                .order_by(t.c.seq)
                .limit(limit)
            ).all()
        return [
            OutboxRow(r.seq, r.nudge_id, r.service, json.loads(r.data), r.expires_at, r.attempts)
            for r in rows
        ]

    def next_attempt_at(self) -> float | None:
        """When the earliest pending row is due; None when nothing is pending."""
        t = ha_outbox_table
        with self._engine.connect() as conn:
            value = conn.scalar(select(func.min(t.c.next_attempt_at)).where(t.c.state == PENDING))
        return float(value) if value is not None else None

    def mark(self, seq: int, state: str, now: float) -> None:
        """Mark a row delivered or expired."""
        with self._engine.begin() as conn:
            conn.execute(
                update(ha_outbox_table)
                .where(ha_outbox_table.c.seq == seq)
                .values(state=state, done_at=now, attempts=ha_outbox_table.c.attempts + 1)
            )

    def postpone(self, seqs: Sequence[int], at: float, *, attempted: bool) -> None:
        """Move pending rows' next attempt to `at` (counting an attempt when one was made)."""
        if not seqs:
            return
        values: dict[str, Any] = {"next_attempt_at": at}
        if attempted:
            values["attempts"] = ha_outbox_table.c.attempts + 1
        with self._engine.begin() as conn:
            conn.execute(
                update(ha_outbox_table).where(ha_outbox_table.c.seq.in_(seqs)).values(**values)
            )

    def pending_seqs(self) -> list[int]:
        """Every pending row."""
        with self._engine.connect() as conn:
            return list(
                conn.scalars(
                    select(ha_outbox_table.c.seq).where(ha_outbox_table.c.state == PENDING)
                )
            )

    def counts(self) -> dict[str, int]:
        """Rows per state (pending, delivered, expired) still kept."""
        t = ha_outbox_table
        with self._engine.connect() as conn:
            rows = conn.execute(select(t.c.state, func.count()).group_by(t.c.state)).all()
        counts = {PENDING: 0, DELIVERED: 0, EXPIRED: 0}
        counts.update({state: int(n) for state, n in rows})
        return counts

    def swap_discovery_topics(self, topics: Sequence[str], now: float) -> list[str]:
        """Record the discovery topics published now; return those recorded before but not now."""
        t = ha_discovery_table
        with self._engine.begin() as conn:
            before = set(conn.scalars(select(t.c.topic)))
            conn.execute(delete(t))
            if topics:
                conn.execute(insert(t), [{"topic": x, "published_at": now} for x in topics])
        return sorted(before - set(topics))

    def purge(self, now: float) -> int:
        """Forget delivered and expired rows older than KEEP_DONE_S; return how many."""
        t = ha_outbox_table
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(t).where(t.c.state != PENDING, t.c.done_at < now - KEEP_DONE_S)
            )
        return int(result.rowcount or 0)


# --- talking to Home Assistant --------------------------------------------------------------


class Notifier(Protocol):
    """Calls a notify service; raises TokenRejectedError or UnavailableError."""

    def call(self, service: str, data: dict[str, Any]) -> None:
        """Call `notify.<name>` with this service data."""


class RestNotifier:
    """Notify through Home Assistant's REST API with homeassistant-api's Client."""

    def __init__(self, url: str, token: SecretStr, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        """Prepare a client for `url` (Home Assistant's base URL)."""
        kwargs = cast("dict[str, str]", {"timeout": timeout_s})
        self._client = Client(
            f"{url.rstrip('/')}/api", token.get_secret_value(), global_request_kwargs=kwargs
        )

    def call(self, service: str, data: dict[str, Any]) -> None:
        """POST /api/services/notify/<name>; library errors become the project's."""
        domain, _, name = service.partition(".")
        try:
            self._client.trigger_service(domain, name, **data)
        except UnauthorizedError as err:
            raise TokenRejectedError("Home Assistant token rejected") from err
        except (RequestTimeoutError, HAInternalServerError) as err:
            raise UnavailableError(f"{service}: {type(err).__name__}") from err
        except HomeassistantAPIError as err:
            # 400 (unknown service, bad data), 404, 405: refused. Retried with backoff too, since
            # a service may appear later (Home Assistant still starting, a phone not yet paired).
            raise UnavailableError(f"{service} refused: {type(err).__name__}") from err
        except niquests.exceptions.RequestException as err:
            raise UnavailableError(f"{service}: {type(err).__name__}") from err

    def close(self) -> None:
        """Close the HTTP session."""
        self._client._session.close()  # the client exposes no close()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry delays: `initial` doubling up to `maximum`, with ±`jitter` (a fraction)."""

    initial_s: float = 1.0
    maximum_s: float = 60.0
    token_rejected_s: float = 300.0
    jitter: float = 0.2

    def delay(self, failures: int) -> float:
        """The delay after `failures` consecutive failures (≥ 1)."""
        base = min(self.maximum_s, self.initial_s * 2.0 ** max(0, failures - 1))
        return base * (1 + random.uniform(-self.jitter, self.jitter))


class _Health:
    """Logs Home Assistant's transitions once each: token rejected, unavailable, back."""

    def __init__(self, token: SecretStr | None) -> None:
        self._token = token
        self._lock = threading.Lock()
        self.state = "ok"
        self.told_not_admin = False

    def scrub(self, text: str) -> str:
        """The text with the token replaced, should a library ever echo it."""
        if self._token is not None:
            secret = self._token.get_secret_value()
            if secret:
                text = text.replace(secret, "**********")
        return text

    def token_rejected(self) -> None:
        """Say it once, clearly."""
        with self._lock:
            if self.state != "token_rejected":
                self.state = "token_rejected"
                log.error(
                    "Home Assistant token rejected (401): nudges stay queued and are retried "
                    "slowly; set a valid long-lived access token (homeassistant.token_file or "
                    "SLEEPCOACH_HA_TOKEN)"
                )

    def not_admin(self) -> None:
        """Say once that the token's user may not subscribe to button presses."""
        with self._lock:
            if not self.told_not_admin:
                self.told_not_admin = True
                log.error(
                    "Home Assistant refused to send phone button presses: the token's user must "
                    "be an administrator to subscribe to %s (notifications still work)",
                    ACTION_EVENT,
                )

    def unavailable(self, reason: str) -> None:
        """Say it once per outage."""
        with self._lock:
            if self.state == "ok":
                self.state = "unavailable"
                log.warning(
                    "Home Assistant unavailable (%s): nudges are queued and retried",
                    self.scrub(reason),
                )

    def ok(self) -> None:
        """A call went through."""
        with self._lock:
            if self.state != "ok":
                log.info("Home Assistant reachable again, token accepted")
                self.state = "ok"


def _version() -> str:
    """sleepcoach's installed version, shown on the devices in Home Assistant."""
    try:
        return importlib.metadata.version("sleepcoach")
    except importlib.metadata.PackageNotFoundError:
        return "0"


# --- the bridge -----------------------------------------------------------------------------


class HomeAssistantBridge:
    """Everything the daemon needs from Home Assistant: deliver nudges, hear buttons, discovery.

    `enqueue_event` must be safe to call from another thread (the daemon's inbox `put`).
    """

    def __init__(
        self,
        config: ConfigFile,
        enqueue_event: Callable[[Event], None],
        storage: Storage,
        *,
        notifier: Notifier | None = None,
        backoff: Backoff | None = None,
        listen: bool = True,
        clock: Callable[[], float] = time.time,
        version: str | None = None,
    ) -> None:
        """Keep the outbox in `storage`; nothing connects before `start()`."""
        if config.homeassistant is None:
            msg = "HomeAssistantBridge needs a homeassistant block in the configuration"
            raise HomeAssistantError(msg)
        self._config = config
        self._ha = config.homeassistant
        self._enqueue = enqueue_event
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._version = version or _version()
        self._token = read_token(self._ha)
        self._health = _Health(self._token)
        self.outbox = Outbox(storage)
        self._notifier = notifier
        if self._notifier is None and self._token is not None:
            self._notifier = RestNotifier(self._ha.url, self._token)
        self._listen = listen and self._token is not None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._failures = 0
        self._threads: list[threading.Thread] = []
        self._ws: WebsocketClient | None = None
        self._ws_lock = threading.Lock()
        self.listening = threading.Event()

    # -- daemon-facing API ------------------------------------------------------------------

    def deliver(self, nudge: dict[str, Any], expires_at: datetime | float | None = None) -> None:
        """Queue a nudge (docs/contract.md payload) for every notify service; durable on return.

        `expires_at` is when it stops being worth sending (the core's NudgeRecord.expires_at);
        without it, DEFAULT_TTL_S after the nudge's `ts`.
        """
        now = self._clock()
        if expires_at is None:
            expires = datetime.fromisoformat(nudge["ts"]).timestamp() + DEFAULT_TTL_S
        elif isinstance(expires_at, datetime):
            expires = expires_at.timestamp()
        else:
            expires = float(expires_at)
        calls = notification_calls(self._ha, nudge, self._own_services(str(nudge["person"])))
        self.outbox.add(str(nudge["id"]), str(nudge["person"]), calls, now, expires)
        self._wake.set()

    def withdraw(self, person: str, nudge_id: str) -> None:
        """Queue taking a nudge's notification back (after its delivery, in outbox order)."""
        now = self._clock()
        calls = withdrawal_calls(self._ha, nudge_id, self._own_services(person))
        if calls:
            self.outbox.add(f"{nudge_id}:withdrawn", person, calls, now, now + DEFAULT_TTL_S)
            self._wake.set()

    def _own_services(self, person_id: str) -> list[str]:
        person = self._config.person(person_id)
        return list(person.notify) if person is not None else []

    def discovery_messages(self) -> list[discovery.Message]:
        """The retained discovery configs to publish now (at start and on Home Assistant's birth).

        Topics published by an earlier run that this config no longer produces come first, with
        an empty retained payload: Home Assistant removes those entities.
        """
        current = discovery.discovery_messages(self._config, self._version)
        gone = self.outbox.swap_discovery_topics([t for t, _, _ in current], self._clock())
        return [(topic, "", True) for topic in gone] + current

    def start(self) -> None:
        """Start the delivery thread and, with a token, the button listener."""
        if self._token is None:
            log.warning(
                "no Home Assistant token (homeassistant.token_file or SLEEPCOACH_HA_TOKEN): "
                "nudges are queued but not sent"
            )
        self.outbox.purge(self._clock())
        self._stop.clear()
        targets: list[tuple[str, Callable[[], None]]] = [("sleepcoach-ha-outbox", self._run)]
        if self._listen:
            targets.append(("sleepcoach-ha-actions", self._run_listener))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads; pending nudges stay in the outbox for the next start."""
        self._stop.set()
        self._wake.set()
        self._close_ws()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        close = getattr(self._notifier, "close", None)
        if callable(close):
            close()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending (for tests and a clean shutdown); True when idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.counts()[PENDING] == 0:
                return True
            time.sleep(0.05)
        return False

    # -- delivery ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._deliver_due()
            except Exception:  # a bug or a storage failure: log it, keep the thread alive
                log.exception("Home Assistant delivery failed unexpectedly; retrying")
                self._stop.wait(self._backoff.maximum_s)
            self._sleep_until_due()

    def _sleep_until_due(self) -> None:
        next_at = self.outbox.next_attempt_at()
        timeout = 60.0 if next_at is None else max(0.0, next_at - self._clock())
        if timeout > 0:
            self._wake.wait(min(timeout, 60.0))
        self._wake.clear()

    def _deliver_due(self) -> None:
        """Send every due row; stop at the first failure and postpone the rest."""
        if self._notifier is None:
            return
        now = self._clock()
        for row in self.outbox.due(now):
            if self._stop.is_set():
                return
            now = self._clock()
            if now >= row.expires_at:
                self.outbox.mark(row.seq, EXPIRED, now)
                log.warning(
                    "nudge %s expired before Home Assistant took it; dropped (%s)",
                    row.nudge_id,
                    row.service,
                )
                continue
            try:
                self._notifier.call(row.service, row.data)
            except TokenRejectedError:
                self._health.token_rejected()
                self._failures += 1
                self._postpone_all(now + self._backoff.token_rejected_s, row.seq)
                return
            except UnavailableError as err:
                self._health.unavailable(str(err))
                self._failures += 1
                self._postpone_all(now + self._backoff.delay(self._failures), row.seq)
                return
            self._failures = 0
            self._health.ok()
            self.outbox.mark(row.seq, DELIVERED, self._clock())
            log.debug("nudge %s delivered to %s", row.nudge_id, row.service)

    def _postpone_all(self, at: float, attempted_seq: int) -> None:
        """Home Assistant failed: every pending row waits (the next try tells for all)."""
        seqs = self.outbox.pending_seqs()
        self.outbox.postpone([s for s in seqs if s != attempted_seq], at, attempted=False)
        self.outbox.postpone([attempted_seq], at, attempted=True)

    # -- buttons ----------------------------------------------------------------------------

    def handle_action(self, data: dict[str, Any], received_at: datetime) -> Event | None:
        """Turn a `mobile_app_notification_action` event's data into a command event."""
        press = parse_action(data.get("action"))
        if press is None:
            return None
        if self._config.person(press.person) is None:
            log.warning("button for unknown person %r ignored", press.person)
            return None
        event = parse_command(press.person, press.command_payload(), received_at)
        if isinstance(event, PayloadError):
            log.warning("button %s ignored: %s", press.command, event.error)
            return None
        self._enqueue(event)
        return event

    def _run_listener(self) -> None:
        assert self._token is not None
        failures = 0
        url = websocket_url(self._ha.url)
        while not self._stop.is_set():
            ws = WebsocketClient(url, self._token.get_secret_value())
            with self._ws_lock:
                self._ws = ws  # from here on, stop() can close it
            try:
                ws.__enter__()
                if self._stop.is_set():
                    break
                failures = 0
                self._health.ok()
                self._listen_on(ws)
            except UnauthorizedError:
                self._health.token_rejected()
                failures = 0
            except Exception as err:  # any failure means: reconnect later
                if self._stop.is_set():
                    break
                if isinstance(err, ResponseError) and "[unauthorized]" in str(err):
                    # Only administrators may subscribe to this event (SUBSCRIBE_ALLOWLIST).
                    self._health.not_admin()
                    failures = 0
                else:
                    failures += 1
                    self._health.unavailable(f"websocket: {type(err).__name__}")
            finally:
                self.listening.clear()
                self._close_ws()
            delay = self._backoff.delay(failures) if failures else self._backoff.token_rejected_s
            self._stop.wait(delay)

    def _listen_on(self, ws: WebsocketClient) -> None:
        """Hand every button press to `handle_action` until the connection ends."""
        with ws.listen_events(ACTION_EVENT) as events:
            self.listening.set()
            for fired in events:
                if not isinstance(fired, FiredEvent):
                    continue
                received_at = fired.time_fired
                if received_at.tzinfo is None:
                    received_at = datetime.fromtimestamp(self._clock()).astimezone()
                self.handle_action(dict(fired.data), received_at)

    def _close_ws(self) -> None:
        with self._ws_lock:
            ws, self._ws = self._ws, None
        if ws is None:
            return
        try:
            if hasattr(ws, "_ws"):  # set once the HTTP upgrade succeeded
                ws._ws.close()  # unblocks the listener's read from another thread
        except Exception:  # already closed or broken: nothing left to do
            log.debug("closing the websocket failed", exc_info=True)
        finally:
            ws._session.close()
