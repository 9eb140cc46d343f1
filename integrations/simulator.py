"""`sleepcoach simulate`: replay a scenario through the very same core under a virtual clock.

How it works: a scenario is a JSON-lines file of timestamped MQTT messages (`{"ts":
"2026-11-24T21:05:00+01:00", "topic": "home/kitchen/coffee", "payload": {...}}`, see
docs/contract.md). The first valid `ts` starts a virtual clock and the coach (`CoachStarted`).
Before each line, every timer due at or before its `ts` fires, in time order, each at its own due
time; then the line goes through the daemon's own message step (`coach.decode.decoder.Decoder`: the
native parser, or the device's profile with its per-device state) and `decide()`. The run ends at
the last `ts` plus 12 hours, firing everything due until then, so wind-downs and morning plans
happen.

- The timer queue is a heap keyed by (due time, scheduling order); `ScheduleTimer` replaces a
  pending timer with the same id and `CancelTimer` removes it (stale heap entries are skipped).
- A profile's `wake_at` is a timer of the simulator's own on the same queue (`ProfileWake`, id
  `profile:<device>`): the device's next `wake_at` replaces it, and a result without one leaves it
  pending, as in the daemon. When it fires, the profile's `tick(device, wake_at, state)` runs and
  its events are decided at that virtual time; a profile's error is an error record like a bad
  line's, dated then and naming the device's topic.
- The virtual clock never runs backwards: a line older than the clock is decided at the clock's
  time (the parser still dates it by its own `ts`), as the daemon would for a late message.
- `payload` is an object (serialised to JSON bytes) or a string sent as raw bytes; `\\udc80` to
  `\\udcff` in such a string stand for the raw bytes 0x80-0xff, so non-UTF-8 input can be replayed.
- A bad line (not JSON, no `ts` or `topic`, a `ts` without an offset, a topic no device or command
  matches, a payload the parser refuses, an event the core refuses) becomes an error record
  (`{"ts", "topic", "error"}`) and the run goes on.
- A bug inside `decide()` for one event becomes an error record naming the event; the state goes
  back to what it was before that event and the run goes on. The core's `Runner` does that, as in
  the daemon: it replays the decisions since its last checkpoint, which the simulator takes every
  `CHECKPOINT_EVERY` decisions to bound that replay.

With `--storage URL` the run also stores the history the daemon would have stored, through the
daemon's own `integrations.writer.StorageWriter`: each event a message or a profile gave (the
arrival time is the line's `ts`; a duplicate is not stored), each payload refused, each nudge sent
(marked published, as the broker's confirmation would) or dropped, each night's summary and each
check-in. The core's state is not stored: it is the daemon's to keep. `sleepcoach report` then reads
it.

Same input, byte-identical output: nothing here reads the wall clock or iterates an unordered set.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any, Final

from pydantic_core import PydanticSerializationError, from_json, to_json

from coach import engine
from coach.action import (
    CancelTimer,
    DropNudge,
    PublishNudge,
    RecordCheckin,
    RecordNight,
    RefuseEvent,
    ScheduleTimer,
)
from coach.config import Config
from coach.decode.decoder import Decoder, Profiled, wake_id
from coach.decode.profile.registry import PROFILES, ProfileRegistry
from coach.decode.refusal import PayloadError
from coach.event import CoachStarted, Event, Timer, TimerFired
from coach.nudge import Nudge
from coach.runner import Decide, DecisionError, Runner
from coach.state import CoachState
from integrations.config_file import ConfigError, ConfigFile, choose_config, load_config
from integrations.storage import Storage, StorageError, safe_url
from integrations.subcommand import Command, SubParsers, say
from integrations.writer import StorageWriter

#: The run goes on this long after the last message (docs/contract.md), so morning timers fire.
END_MARGIN: Final = timedelta(hours=12)
#: Decisions between two checkpoints of the state; a failure replays at most this many (well under
#: a second), and a year of messages takes a few dozen checkpoints.
CHECKPOINT_EVERY: Final = 50_000
#: With `--storage`, the history is committed every this many lines (and at the end).
STORE_EVERY: Final = 5_000


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """A refused line or message: the `{"ts", "topic", "error"}` record of docs/contract.md."""

    ts: str | None
    topic: str | None
    error: str

    def to_payload(self) -> dict[str, Any]:
        """The record as a JSON-able dict, keys in contract order."""
        return {"ts": self.ts, "topic": self.topic, "error": self.error}


#: What a run yields, in virtual-time order: nudges sent, nudges dropped, errors.
Output = Nudge | DropNudge | ErrorRecord


# Where an event came from, for its error records: the line's ts and topic and either the line's
# number or a label ("timer …: "). A plain tuple: one is made per line, so it must be cheap.
_Origin = tuple[str | None, str | None, int | str]
_START: Final[_Origin] = (None, None, "start: ")
_NO_ORIGIN: Final[_Origin] = (None, None, "")


def _error(origin: _Origin, text: str, now: datetime | None = None) -> ErrorRecord:
    """An error record for an origin; a line keeps its own ts (or none), a timer is dated `now`."""
    ts, topic, where = origin
    prefix = where if isinstance(where, str) else f"line {where}: " if where else ""
    if ts is None and now is not None:
        ts = now.isoformat()
    return ErrorRecord(ts, topic, prefix + text)


@dataclass(frozen=True, slots=True)
class ProfileWake:
    """A device profile's wake-up (`ProfileResult.wake_at`): the simulator's own timer."""

    device_id: str
    at: datetime

    @property
    def id(self) -> str:
        """One pending wake-up per device, under the daemon's job id."""
        return wake_id(self.device_id)


class TimerQueue:
    """Pending timers by id, in due-time order; ties keep the order they were scheduled in."""

    __slots__ = ("_heap", "_pending", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._pending: dict[str, tuple[int, Timer | ProfileWake]] = {}
        self._seq = 0

    def __len__(self) -> int:
        """How many timers are pending."""
        return len(self._pending)

    def schedule(self, timer: Timer | ProfileWake) -> None:
        """Add a timer, replacing a pending one with the same id."""
        self._seq += 1
        timer_id = timer.id
        self._pending[timer_id] = (self._seq, timer)
        heapq.heappush(self._heap, (timer.at.timestamp(), self._seq, timer_id))

    def cancel(self, timer_id: str) -> None:
        """Forget a pending timer (no error when there is none)."""
        self._pending.pop(timer_id, None)

    def pop_due(self, until: float) -> Timer | ProfileWake | None:
        """The earliest timer due at or before `until` (POSIX seconds), removed; else None."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            _, seq, timer_id = heapq.heappop(heap)
            entry = self._pending.get(timer_id)
            if entry is None or entry[0] != seq:
                continue  # cancelled, or replaced by a later schedule of the same id
            del self._pending[timer_id]
            return entry[1]
        return None


class Simulation:
    """One replay: the core's state, the virtual clock and the timer queue.

    Feed it lines with `feed_line` (or parsed events with `feed_event`), then call `finish`; each
    returns the outputs it produced, in time order. `simulate()` wraps this for whole files.
    `profiles` are the device profiles the decoder knows (the shipped ones unless given).
    """

    def __init__(
        self,
        file: ConfigFile,
        state: CoachState | None = None,
        *,
        decide: Decide | None = None,
        profiles: ProfileRegistry = PROFILES,
        writer: StorageWriter | None = None,
    ) -> None:
        """A replay of `file`'s coaching config from `state` (a fresh one by default); with a
        `writer`, the history goes into its storage as the daemon writes it."""
        #: What the core is given: the coaching config alone, no broker or storage settings.
        self.config = config = file.core
        self.tz = config.tz
        #: The core's state and its rollback; `decide` (tests and benchmarks may wrap the core's,
        #: to fail or to record) is what it calls.
        self.runner = Runner(config, state, decide=decide or engine.decide)
        #: The daemon's message step: routing, the native parser, profiles and their states.
        self.ingest = Decoder(config, file.mqtt.topic_prefix, profiles=profiles)
        self._message = self.ingest.message
        self.timers = TimerQueue()
        #: Virtual now (POSIX seconds); None until the first valid line starts the clock.
        self.clock: float | None = None
        self._clock_dt: datetime | None = None
        self._last_t = float("-inf")
        self._last_ts: datetime | None = None
        #: Events decided so far (messages, timer firings and the start).
        self.events = 0
        #: Where the history goes (`--storage`): the daemon's own writer, or nowhere.
        self.writer = writer

    @property
    def state(self) -> CoachState:
        """The core's state as it is now."""
        return self.runner.state

    # -- lines ---------------------------------------------------------------------------------

    def feed_line(self, line: str | bytes, number: int = 0) -> list[Output]:
        """Apply one scenario line; a bad line becomes an error record. Blank lines are skipped."""
        out: list[Output] = []
        line = line.strip()
        if not line:
            return out
        record, problem = _record(line)
        if record is None:
            out.append(_error((None, None, number), problem))
            return out
        raw_ts = record.get("ts")
        topic = record.get("topic")
        shown_ts = raw_ts if isinstance(raw_ts, str) else None
        shown_topic = topic if isinstance(topic, str) and topic else None
        origin = (shown_ts, shown_topic, number)
        ts, problem = _line_ts(raw_ts)
        if ts is not None:
            # Any line with a valid ts moves the clock (and fires the timers due by then), even
            # one refused later: a message did arrive at that time.
            self._advance(ts, out)
            if shown_topic is None:
                problem = "topic: missing; expected the MQTT topic the message arrived on"
            else:
                payload, problem = _payload_bytes(record)
                if payload is not None:
                    parsed = self._message(shown_topic, payload, ts)
                    if parsed is None:
                        problem = f"topic: no device or command topic matches {shown_topic!r}"
                    elif isinstance(parsed, PayloadError):
                        problem = parsed.error
                        if self.writer is not None:
                            self.writer.refused(shown_topic, payload, problem, ts, None)
                    elif isinstance(parsed, Profiled):
                        self._profiled(parsed, out, origin, ts, payload)
                        return out
                    else:
                        assert self._clock_dt is not None
                        self._accept(parsed, out, origin, shown_topic, ts)
                        return out
        out.append(_error(origin, problem))
        return out

    def feed_event(self, event: Event, received_at: datetime) -> list[Output]:
        """Apply an already parsed event that arrived at `received_at`."""
        out: list[Output] = []
        self._advance(received_at, out)
        self._accept(event, out, _NO_ORIGIN, event.source or "external", received_at)
        return out

    def finish(self) -> list[Output]:
        """End the run: fire every timer due up to the last `ts` plus 12 hours."""
        out: list[Output] = []
        if self._last_ts is not None:
            end = self._last_ts + END_MARGIN
            self._fire_due(end.timestamp(), out)
            if self.clock is not None and end.timestamp() > self.clock:
                self._set_clock(end, end.timestamp())
        return out

    # -- the clock and the timers ----------------------------------------------------------------

    def _set_clock(self, now: datetime, t: float) -> None:
        self._clock_dt = now
        self.clock = t

    def _advance(self, ts: datetime, out: list[Output]) -> None:
        """Start the clock on the first message, fire the timers due by `ts`, then move to it."""
        t = ts.timestamp()
        if t > self._last_t:
            self._last_t = t
            self._last_ts = ts
        if self.clock is None:
            self._set_clock(ts, t)
            self._apply(CoachStarted(person="*", ts=ts), ts, out, _START)
        heap = self.timers._heap
        if heap and heap[0][0] <= t:  # most lines have no timer due: skip the call
            self._fire_due(t, out)
        if t > self.clock:  # type: ignore[operator]  # set above
            self._set_clock(ts, t)

    def _fire_due(self, until: float, out: list[Output]) -> None:
        while (timer := self.timers.pop_due(until)) is not None:
            at = timer.at
            t = at.timestamp()
            if self.clock is not None and t < self.clock:
                at = self._clock_dt  # type: ignore[assignment]  # planned a little in the past: now
            else:
                self._set_clock(at, t)
            if isinstance(timer, ProfileWake):
                done = self.ingest.tick(timer.device_id, timer.at)
                if done is not None:
                    origin = (None, done.device.topic, f"profile wake-up of {done.device.id}: ")
                    self._profiled(done, out, origin, timer.at, b"")
                continue
            event = TimerFired(person=timer.person, ts=timer.at, timer=timer)
            self._apply(event, at, out, (None, None, f"timer {timer.id}: "))

    def _profiled(
        self, done: Profiled, out: list[Output], origin: _Origin, arrived: datetime, payload: bytes
    ) -> None:
        """A profile's result, as the daemon takes it: its error, its events, its wake-up."""
        now = self._clock_dt
        assert now is not None
        result = done.result
        topic = done.device.topic
        if result.error is not None:
            out.append(_error(origin, result.error, self._local(now)))
            if self.writer is not None:
                self.writer.refused(topic, payload, result.error, arrived, None)
        for event in result.events:
            self._accept(event, out, origin, topic, arrived)
        if result.wake_at is not None:
            self.timers.schedule(ProfileWake(done.device.id, result.wake_at))

    # -- the core ------------------------------------------------------------------------------

    def _accept(
        self, event: Event, out: list[Output], origin: _Origin, topic: str, arrived: datetime
    ) -> None:
        """An event from a message: stored as the daemon stores it (a duplicate is not), then
        decided at the clock's time."""
        now = self._clock_dt
        assert now is not None
        writer = self.writer
        if writer is not None and not self.runner.is_duplicate(event):
            writer.event(event, topic, None, arrived)
        self._apply(event, now, out, origin)

    def _apply(self, event: Event, now: datetime, out: list[Output], origin: _Origin) -> None:
        """Decide one event and carry out its actions; a crash in the core restores the state."""
        runner = self.runner
        try:
            actions = runner.decide(event, now)
        except DecisionError as err:  # a bug in one event must not stop the run
            cause = err.__cause__
            text = (
                f"internal error in the coach on {event!r}: {type(cause).__name__}: {cause}; "
                f"the event was skipped and the state restored"
            )
            out.append(_error(origin, text, self._local(now)))
            return
        self.events += 1
        if len(runner.journal) >= CHECKPOINT_EVERY:
            runner.checkpoint()
        writer = self.writer
        for action in actions:
            if isinstance(action, ScheduleTimer):
                self.timers.schedule(action.timer)
            elif isinstance(action, PublishNudge):
                out.append(action.nudge)
                if writer is not None:
                    nudge = action.nudge
                    writer.nudge(nudge, nudge.to_payload(self.tz))
                    writer.published(nudge.id)  # as a broker's confirmation would mark it
            elif isinstance(action, CancelTimer):
                self.timers.cancel(action.timer_id)
            elif isinstance(action, DropNudge):
                out.append(action)
                if writer is not None:
                    writer.dropped(action)
            elif isinstance(action, RefuseEvent):
                out.append(_error(origin, action.reason, self._local(now)))
            elif isinstance(action, RecordNight) and writer is not None:
                writer.night(action)
            elif isinstance(action, RecordCheckin) and writer is not None:
                writer.checkin(action)
            # UpdateState: the simulator publishes nothing.

    def _local(self, now: datetime) -> datetime:
        return now.astimezone(self.tz).replace(microsecond=0)

    def store(self) -> None:
        """Commit the history written so far (with `writer`); StorageError when it fails."""
        writer = self.writer
        if writer is not None and not writer.commit(self.runner, give_up_on_stop=True):
            raise StorageError(f"cannot write the history to {safe_url(writer.storage.url)}")


def _record(line: str | bytes) -> tuple[dict[str, Any] | None, str]:
    """A scenario line as a JSON object, or why not.

    pydantic-core's JSON parser is four times faster than `json.loads`; it refuses a few things
    `json.loads` takes (lone surrogate escapes, which stand for raw bytes here, and a BOM), so
    anything it refuses gets a second look from `json.loads`, which also words the error.
    """
    try:
        record = from_json(line)
    except ValueError:
        try:
            record = json.loads(line)
        except ValueError as err:  # UnicodeDecodeError included
            return None, f"not a JSON line: {err}"
    if not isinstance(record, dict):
        return None, "a scenario line must be a JSON object"
    return record, ""


def _line_ts(raw: object) -> tuple[datetime | None, str]:
    """A line's `ts` as an aware datetime, or why not."""
    if raw is None:
        return (
            None,
            "ts: missing; expected ISO 8601 with a UTC offset, like 2026-11-24T21:05:00+01:00",
        )
    if not isinstance(raw, str):
        return None, f"ts: must be an ISO 8601 string, got {json.dumps(raw)[:60]}"
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        return None, f"ts: not an ISO 8601 date-time: {raw!r}"
    if ts.tzinfo is None:  # fromisoformat gives a fixed offset or none at all
        return None, f"ts: {raw!r} has no UTC offset; a local time alone is ambiguous"
    return ts, ""


def _payload_bytes(record: dict[str, Any]) -> tuple[bytes | None, str]:
    """The message's payload as the bytes the broker would deliver, or why not."""
    if "payload" not in record:
        return None, "payload: missing; expected a JSON object, or a string sent as raw bytes"
    payload = record["payload"]
    if isinstance(payload, str):
        return _raw_bytes(payload), ""
    # Objects, and anything else the parser will refuse with its own words, as compact JSON.
    try:
        return to_json(payload, inf_nan_mode="constants"), ""
    except PydanticSerializationError:  # a string with a lone surrogate somewhere inside
        return _raw_bytes(json.dumps(payload, ensure_ascii=False, separators=(",", ":"))), ""


def _raw_bytes(text: str) -> bytes:
    """A string as the bytes it stands for: UTF-8, with \\udc80-\\udcff as raw bytes 0x80-0xff."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A lone surrogate outside \udc80-\udcff: send its (invalid UTF-8) encoding as is.
        return text.encode("utf-8", "surrogatepass")


def simulate(
    config: ConfigFile,
    lines: Iterable[str | bytes],
    state: CoachState | None = None,
    *,
    decide: Decide | None = None,
    writer: StorageWriter | None = None,
) -> Iterator[Output]:
    """Replay scenario lines through the core; yield nudges, dropped nudges and errors in order.

    With a `writer`, the history is stored as it goes (a commit every `STORE_EVERY` lines and at
    the end); a write that fails raises `StorageError`."""
    sim = Simulation(config, state, decide=decide, writer=writer)
    for number, line in enumerate(lines, start=1):
        yield from sim.feed_line(line, number)
        if writer is not None and number % STORE_EVERY == 0:
            sim.store()
    yield from sim.finish()
    if writer is not None:
        sim.store()


def nudge_line(nudge: Nudge, config: Config) -> str:
    """One nudge as the JSON line `sleepcoach simulate` writes (docs/contract.md's payload)."""
    return json.dumps(nudge.to_payload(config.tz), ensure_ascii=False)


def error_line(error: ErrorRecord) -> str:
    """One error record as the JSON line written to stderr."""
    return json.dumps(error.to_payload(), ensure_ascii=False)


def write_run(
    config: ConfigFile,
    lines: Iterable[str | bytes],
    out: IO[str],
    err: IO[str],
    writer: StorageWriter | None = None,
) -> int:
    """Run a scenario, nudges to `out` and errors to `err` as JSON lines; return the nudge count.

    With a `writer`, the history goes into its storage too."""
    count = 0
    for item in simulate(config, lines, writer=writer):
        if isinstance(item, Nudge):
            out.write(nudge_line(item, config) + "\n")
            count += 1
        elif isinstance(item, ErrorRecord):
            err.write(error_line(item) + "\n")
    return count


# ---------------------------------------------------------------------------------------------
# The command line.

#: Exit codes: a run (bad lines included) is a success; an unusable config or file is not.
EXIT_OK: Final = 0
EXIT_FILE: Final = 1
EXIT_CONFIG: Final = 2


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the config file (YAML) to simulate (default: $SLEEPCOACH_CONFIG, else the example "
        "config, as `run`)",
    )
    parser.add_argument(
        "scenario",
        metavar="SCENARIO.jsonl",
        help='JSON lines {"ts", "topic", "payload"}, oldest first; "-" reads stdin',
    )
    parser.add_argument(
        "--out", metavar="NUDGES.jsonl", help="write the nudges here instead of stdout"
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="also store the history (events, nudges, nights, check-ins) in this database, as "
        "`sleepcoach run` stores it, for `sleepcoach report`: sqlite:///FILE or postgresql://…",
    )


def run_command(args: argparse.Namespace) -> int:
    """`sleepcoach simulate`: 0 after a run, bad lines included; 2 bad config; 1 unusable file
    or storage."""
    try:
        # Secrets (broker password, Home Assistant token) are not needed to simulate.
        choice = choose_config(args.config)
        if choice.notice is not None:
            say(choice.notice, err=True)
        config = load_config(choice.path, resolve_secrets=False)
    except ConfigError as err:
        for problem in err.problems:
            say(problem, err=True)
        return EXIT_CONFIG
    try:
        source: IO[bytes] = (
            sys.stdin.buffer if args.scenario == "-" else open(args.scenario, "rb")  # noqa: SIM115
        )
    except OSError as err:
        say(f"sleepcoach simulate: cannot read {args.scenario}: {err.strerror}", err=True)
        return EXIT_FILE
    writer = None
    if args.storage is not None:
        try:
            storage = Storage.open(args.storage, config.storage.keep_days)
        except StorageError as err:
            source.close()
            say(f"sleepcoach simulate: {err}", err=True)
            return EXIT_FILE
        writer = StorageWriter(storage, threading.Event(), keep_state=False)
    try:
        with source:
            if args.out is None:
                _replay(config, source, sys.stdout, writer)
                sys.stdout.flush()
                return EXIT_OK
            try:
                target = open(args.out, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
            except OSError as err:
                say(f"sleepcoach simulate: cannot write {args.out}: {err.strerror}", err=True)
                return EXIT_FILE
            with target:
                _replay(config, source, target, writer)
    except StorageError as err:
        say(f"sleepcoach simulate: {err}", err=True)
        return EXIT_FILE
    finally:
        if writer is not None:
            writer.storage.close()
    return EXIT_OK


def _replay(
    config: ConfigFile, source: IO[bytes], target: IO[str], writer: StorageWriter | None
) -> None:
    """`write_run` with the collector tuned for a replay."""
    with tuned_collector():
        write_run(config, source, target, sys.stderr, writer)


@contextmanager
def tuned_collector() -> Iterator[None]:
    """Garbage collection tuned for a replay inside the block, set back after it."""
    # A replay makes millions of short-lived objects and keeps few: leave what exists before it
    # (modules, validators, the config) out of collections and collect the young generation
    # less often. The benchmark year runs about a sixth faster.
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


COMMAND: Final = Command(
    "simulate",
    "replay a scenario of timestamped MQTT messages through the coach under a virtual clock and "
    "write the nudges as JSON lines in time order; bad lines go to stderr and never stop the run",
    _arguments,
    run_command,
)


def register(subparsers: SubParsers) -> None:
    """Add `simulate` to the `sleepcoach` command (called by `integrations.cli`)."""
    COMMAND.register(subparsers)
