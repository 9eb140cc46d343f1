"""Tests of the native payload parser and the command parser, with their error wording."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coach.config import Device
from coach.decode.native import (
    EVENT_KIND,
    MAX_PAYLOAD_BYTES,
    parse_command,
    parse_device_message,
    payload_schema,
)
from coach.decode.refusal import PayloadError
from coach.event import (
    AccelSampled,
    BedtimeChanged,
    CheckinAnswered,
    CoffeeBrewed,
    Event,
    HeartRateMeasured,
    MovementDetected,
    NudgeAcked,
    NudgeSnoozed,
    OccupancyChanged,
    StressMeasured,
    SubstanceLogged,
    SunlightLogged,
    WorkoutEnded,
    WorkoutStarted,
)

BERLIN = ZoneInfo("Europe/Berlin")
ARRIVED = datetime(2026, 11, 24, 21, 5, tzinfo=BERLIN)
BED = Device(id="bed", kind="bed_motion", topic="home/bedroom/bed", person="alex")
COFFEE = Device(id="coffee", kind="coffee_maker", topic="home/kitchen/coffee", person="alex")
WATCH = Device(id="watch", kind="fitness_tracker", topic="tracker/alex", person="alex")
DEVICES = {"bed_motion": BED, "coffee_maker": COFFEE, "fitness_tracker": WATCH}


def raw(obj: Any) -> bytes:
    """A payload as a device would send it."""
    return json.dumps(obj).encode()


def parse(device: Device, obj: Any) -> Event | PayloadError:
    """Parse a JSON-able payload from `device`, arriving at ARRIVED."""
    return parse_device_message(device, raw(obj), ARRIVED)


def expect_error(result: Event | PayloadError) -> str:
    """The error text, failing the test if the payload was accepted."""
    assert isinstance(result, PayloadError), f"accepted: {result!r}"
    return result.error


# -- accepted payloads ------------------------------------------------------------------------


class _Base(TypedDict):
    person: str
    ts: datetime
    key: str | None


BASE: _Base = {"person": "alex", "ts": ARRIVED, "key": None}


@pytest.mark.parametrize(
    ("device", "payload", "expected"),
    [
        pytest.param(
            BED,
            {"event": "movement", "intensity": 0.4, "duration_s": 0.8},
            MovementDetected(**BASE, source="bed", intensity=0.4, duration_s=0.8),
            id="a bed movement becomes MovementDetected",
        ),
        pytest.param(
            BED,
            {"event": "movement", "intensity": 0, "duration_s": 0},
            MovementDetected(**BASE, source="bed", intensity=0.0, duration_s=0.0),
            id="a movement of intensity 0 is accepted",
        ),
        pytest.param(
            BED,
            {"event": "movement", "intensity": 1.0, "duration_s": 3600},
            MovementDetected(**BASE, source="bed", intensity=1.0, duration_s=3600.0),
            id="a movement of intensity 1.0 lasting an hour is accepted",
        ),
        pytest.param(
            BED,
            {"event": "occupancy", "occupied": True},
            OccupancyChanged(**BASE, source="bed", occupied=True),
            id="getting into bed becomes OccupancyChanged",
        ),
        pytest.param(
            BED,
            {"event": "accel", "rate_hz": 50, "samples": [[0, 0, 1], [0.1, -0.2, 0.98]]},
            AccelSampled(
                **BASE, source="bed", rate_hz=50.0, samples=((0.0, 0.0, 1.0), (0.1, -0.2, 0.98))
            ),
            id="raw accelerometer samples become a tuple of triples",
        ),
        pytest.param(
            COFFEE,
            {"event": "brew", "drink": "espresso", "volume_ml": 40},
            CoffeeBrewed(**BASE, source="coffee", drink="espresso", volume_ml=40.0),
            id="an espresso becomes CoffeeBrewed without caffeine_mg",
        ),
        pytest.param(
            COFFEE,
            {"event": "brew", "drink": "other", "caffeine_mg": 80},
            CoffeeBrewed(**BASE, source="coffee", drink="other", caffeine_mg=80.0),
            id="a brew may give caffeine_mg and leave out the volume",
        ),
        pytest.param(
            WATCH,
            {"event": "workout_start", "activity": "running", "intensity": "vigorous"},
            WorkoutStarted(**BASE, source="watch", activity="running", intensity="vigorous"),
            id="a vigorous run becomes WorkoutStarted",
        ),
        pytest.param(
            WATCH,
            {"event": "workout_start", "intensity": "light"},
            WorkoutStarted(**BASE, source="watch", activity="workout", intensity="light"),
            id="a workout without an activity is called workout",
        ),
        pytest.param(
            WATCH,
            {"event": "workout_end"},
            WorkoutEnded(**BASE, source="watch"),
            id="a workout end becomes WorkoutEnded",
        ),
        pytest.param(
            WATCH,
            {"event": "heart_rate", "bpm": 72},
            HeartRateMeasured(**BASE, source="watch", bpm=72.0),
            id="an integer heart rate is accepted as a number",
        ),
        pytest.param(
            WATCH,
            {"event": "stress", "level": 100},
            StressMeasured(**BASE, source="watch", level=100.0),
            id="stress level 100 is the top of the range",
        ),
        pytest.param(
            WATCH,
            {"event": "sunlight", "minutes": 12},
            SunlightLogged(**BASE, source="watch", minutes=12.0),
            id="sunlight minutes become SunlightLogged",
        ),
        pytest.param(
            WATCH,
            {"event": "heart_rate", "bpm": 72, "battery": 12, "firmware": {"v": [1, 2]}},
            HeartRateMeasured(**BASE, source="watch", bpm=72.0),
            id="unknown fields are ignored",
        ),
    ],
)
def test_native_payload_becomes_its_event(device: Device, payload: Any, expected: Event) -> None:
    """Each native payload kind turns into its frozen event, at arrival time without `ts`."""
    assert parse(device, payload) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            {"command": "ack", "nudge_id": "winddown:alex:2026-11-24"},
            NudgeAcked(**BASE, source="command:alex", nudge_id="winddown:alex:2026-11-24"),
            id="ack names the nudge",
        ),
        pytest.param(
            {"command": "snooze", "nudge_id": "n1", "minutes": 10},
            NudgeSnoozed(**BASE, source="command:alex", nudge_id="n1", minutes=10),
            id="snooze takes its minutes",
        ),
        pytest.param(
            {"command": "snooze", "nudge_id": "n1"},
            NudgeSnoozed(**BASE, source="command:alex", nudge_id="n1", minutes=30),
            id="snooze without minutes waits 30 minutes",
        ),
        pytest.param(
            {"command": "log", "what": "caffeine", "caffeine_mg": 80},
            SubstanceLogged(**BASE, source="command:alex", what="caffeine", caffeine_mg=80.0),
            id="log caffeine carries the milligrams",
        ),
        pytest.param(
            {"command": "log", "what": "nicotine"},
            SubstanceLogged(**BASE, source="command:alex", what="nicotine"),
            id="log nicotine needs nothing else",
        ),
        pytest.param(
            {"command": "bedtime_tonight", "time": "23:15"},
            BedtimeChanged(**BASE, source="command:alex", time="23:15"),
            id="bedtime_tonight keeps HH:MM",
        ),
        pytest.param(
            {"command": "bedtime_tonight", "time": "9:05"},
            BedtimeChanged(**BASE, source="command:alex", time="09:05"),
            id="bedtime_tonight pads a one-digit hour so clock code can read it back",
        ),
        pytest.param(
            {"command": "checkin", "rested": 2},
            CheckinAnswered(**BASE, source="command:alex", rested=2),
            id="a check-in may answer only how rested",
        ),
        pytest.param(
            {
                "command": "checkin",
                "rested": 5,
                "daytime_twitching": False,
                "rls": {
                    "urge_to_move": True,
                    "worse_at_rest": True,
                    "better_moving": False,
                    "worse_evening": True,
                },
            },
            CheckinAnswered(
                **BASE,
                source="command:alex",
                rested=5,
                daytime_twitching=False,
                rls={
                    "urge_to_move": True,
                    "worse_at_rest": True,
                    "better_moving": False,
                    "worse_evening": True,
                },
            ),
            id="a full check-in keeps every answer",
        ),
        pytest.param(
            {"command": "checkin", "rls": {"urge_to_move": True, "worse_evening": None}},
            CheckinAnswered(**BASE, source="command:alex", rls={"urge_to_move": True}),
            id="restless-legs questions may be answered one at a time",
        ),
    ],
)
def test_command_becomes_its_event(payload: Any, expected: Event) -> None:
    """Each command turns into its event, for the person of the command topic."""
    assert parse_command("alex", raw(payload), ARRIVED) == expected


# -- refused payloads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "payload", "error"),
    [
        pytest.param(
            BED,
            {"event": "movement", "intensity": 1.7, "duration_s": 0.8},
            "intensity: must be between 0 and 1, got 1.7",
            id="an intensity of 1.7 is refused with the range",
        ),
        pytest.param(
            BED,
            {"event": "movement", "intensity": 1.0001, "duration_s": 0.8},
            "intensity: must be between 0 and 1, got 1.0001",
            id="an intensity just above 1 is refused",
        ),
        pytest.param(
            BED,
            {"event": "movement", "intensity": -0.01, "duration_s": 0.8},
            "intensity: must be between 0 and 1, got -0.01",
            id="a negative intensity is refused",
        ),
        pytest.param(
            BED,
            {"event": "movement", "intensity": "0.5", "duration_s": 0.8},
            'intensity: must be a number, got "0.5"',
            id="a number written as a string is refused",
        ),
        pytest.param(
            BED,
            {"event": "movement", "intensity": 0.5},
            "duration_s: missing (required)",
            id="a movement without duration is refused",
        ),
        pytest.param(
            BED,
            {"event": "occupancy", "occupied": 1},
            "occupied: must be true or false, got 1",
            id="occupancy as 1 instead of true is refused",
        ),
        pytest.param(
            BED,
            {"event": "accel", "rate_hz": 0, "samples": [[0, 0, 1]]},
            "rate_hz: must be above 0 and at most 1000, got 0",
            id="a sample rate of zero is refused",
        ),
        pytest.param(
            BED,
            {"event": "accel", "rate_hz": 50, "samples": []},
            "samples: must not be empty",
            id="an accel chunk without samples is refused",
        ),
        pytest.param(
            BED,
            {"event": "accel", "rate_hz": 50, "samples": [[0, 0, 1], [0, 1]]},
            "samples[1]: must be [x, y, z], three numbers in g, got [0, 1]",
            id="a sample with two axes is refused once, by its index",
        ),
        pytest.param(
            BED,
            {"event": "snore"},
            'event: unknown event "snore"; a bed_motion device sends one of '
            "movement, occupancy, accel",
            id="an unknown bed event lists the known ones",
        ),
        pytest.param(
            BED,
            {"intensity": 0.5},
            "event: missing; a bed_motion device sends one of movement, occupancy, accel",
            id="a payload without event is refused",
        ),
        pytest.param(
            COFFEE,
            {"event": "brew", "drink": "latte"},
            'drink: must be one of "espresso", "coffee", "cold_brew", "tea", "decaf" or "other", '
            'got "latte"',
            id="an unknown drink lists the known ones",
        ),
        pytest.param(
            COFFEE,
            {"event": "tea"},
            'event: unknown event "tea"; a coffee_maker device sends one of brew',
            id="a coffee maker's wrong event is reported alone",
        ),
        pytest.param(
            COFFEE,
            {"event": "brew", "drink": "coffee", "volume_ml": 0},
            "volume_ml: must be above 0 and at most 2000, got 0",
            id="a brew of zero millilitres is refused",
        ),
        pytest.param(
            WATCH,
            {"event": "workout_start", "intensity": "hard"},
            'intensity: must be one of "light", "moderate" or "vigorous", got "hard"',
            id="a workout intensity outside the three levels is refused",
        ),
        pytest.param(
            WATCH,
            {"event": "heart_rate", "bpm": 251},
            "bpm: must be between 20 and 250, got 251",
            id="a heart rate above 250 is a sensor fault",
        ),
        pytest.param(
            WATCH,
            {"event": "stress", "level": 100.5},
            "level: must be between 0 and 100, got 100.5",
            id="stress above 100 is refused",
        ),
        pytest.param(
            WATCH,
            {"event": "sunlight", "minutes": -1},
            "minutes: must be between 0 and 1440, got -1",
            id="negative sunlight is refused",
        ),
        pytest.param(
            WATCH,
            {"event": "heart_rate", "bpm": 72, "ts": "2026-11-24T21:05:00"},
            "ts: must include a UTC offset",
            id="a naive ts is refused",
        ),
        pytest.param(
            WATCH,
            {"event": "heart_rate", "bpm": 72, "ts": 1764014700},
            "ts: must be an ISO 8601 date-time with a UTC offset",
            id="a numeric ts is refused",
        ),
        pytest.param(
            WATCH,
            {"event": "heart_rate", "bpm": 72, "ts": "yesterday"},
            "ts: must be an ISO 8601 date-time with a UTC offset",
            id="a ts in words is refused",
        ),
        pytest.param(
            WATCH,
            {"event": "heart_rate", "bpm": 72, "ts": "9999-12-31T23:59:00-01:00"},
            "ts: must be a date-time between the years 2000 and 2099",
            id="a ts whose UTC time would overflow is refused",
        ),
    ],
)
def test_bad_payload_is_refused_with_its_field_and_reason(
    device: Device, payload: Any, error: str
) -> None:
    """A wrong value names the field and why; the message starts with that explanation."""
    assert expect_error(parse(device, payload)).startswith(error)


def test_every_problem_of_a_payload_is_reported() -> None:
    """Two bad fields: both are named, in order."""
    error = expect_error(parse(BED, {"event": "movement", "intensity": 2, "duration_s": "x"}))
    assert (
        error == 'intensity: must be between 0 and 1, got 2; duration_s: must be a number, got "x"'
    )


def test_a_flood_of_bad_samples_is_summarised() -> None:
    """A chunk with a hundred broken samples reports five and counts the rest."""
    error = expect_error(parse(BED, {"event": "accel", "rate_hz": 50, "samples": [[1]] * 100}))
    assert error.count("samples[") == 5
    assert error.endswith("and 95 more problems")


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        pytest.param(b"", "payload is empty", id="an empty payload is refused"),
        pytest.param(b"   ", "payload is not valid JSON", id="whitespace is not JSON"),
        pytest.param(b"movement 0.4", "payload is not valid JSON", id="plain text is refused"),
        pytest.param(b'{"event": "movement",', "payload is not valid JSON", id="cut-off JSON"),
        pytest.param(b"[1, 2]", "payload must be a JSON object, got an array", id="an array"),
        pytest.param(b"null", "payload must be a JSON object, got null", id="null"),
        pytest.param(b"42", "payload must be a JSON object, got a number", id="a number"),
        pytest.param(b'"hi"', "payload must be a JSON object, got a string", id="a string"),
        pytest.param(
            b'{"event": "occupancy", "occupied": true, "note": "\xff"}',
            "payload is not UTF-8 text (invalid byte at offset 50)",
            id="a non-UTF-8 byte inside a string is refused with its offset",
        ),
        pytest.param(
            b"\xfe\xff{}", "payload is not UTF-8 text", id="a UTF-16 byte-order mark is refused"
        ),
        pytest.param(
            b'{"event": "movement", "intensity": NaN, "duration_s": 1}',
            "intensity: must be a finite number",
            id="NaN is refused",
        ),
        pytest.param(
            b'{"event": "movement", "intensity": 0.5, "duration_s": Infinity}',
            "duration_s: must be a finite number",
            id="Infinity is refused",
        ),
        pytest.param(
            b'{"a": ' + b"[" * 500 + b"]" * 500 + b"}",
            "payload is not valid JSON: recursion limit exceeded",
            id="deeply nested JSON is refused, not a crash",
        ),
    ],
)
def test_malformed_payload_is_refused(payload: bytes, error: str) -> None:
    """Not JSON, not an object, not UTF-8: refused the same way, as a PayloadError."""
    assert expect_error(parse_device_message(BED, payload, ARRIVED)).startswith(error)


def _padded(size: int) -> bytes:
    """A valid occupancy payload of exactly `size` bytes (padding in an unknown field)."""
    head = b'{"event": "occupancy", "occupied": true, "pad": "'
    tail = b'"}'
    payload = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(payload) == size
    return payload


def test_a_payload_of_exactly_64_kib_is_accepted() -> None:
    """65536 bytes is the limit, inclusive."""
    assert MAX_PAYLOAD_BYTES == 65536
    assert isinstance(parse_device_message(BED, _padded(65536), ARRIVED), OccupancyChanged)


def test_a_payload_one_byte_over_64_kib_is_refused() -> None:
    """65537 bytes is refused before parsing."""
    error = expect_error(parse_device_message(BED, _padded(65537), ARRIVED))
    assert error.startswith("payload is larger than 65536 bytes")


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        pytest.param(
            {"command": "nap"},
            'command: unknown command "nap"; a command topic sends one of '
            "ack, snooze, log, bedtime_tonight, checkin, mine",
            id="an unknown command lists the known ones",
        ),
        pytest.param(
            {"nudge_id": "n1"},
            "command: missing; a command topic sends one of ack, snooze, log, bedtime_tonight, "
            "checkin, mine",
            id="a command without its name is refused",
        ),
        pytest.param({"command": "ack"}, "nudge_id: missing (required)", id="ack without nudge id"),
        pytest.param(
            {"command": "ack", "nudge_id": ""}, "nudge_id: must not be empty", id="empty nudge id"
        ),
        pytest.param(
            {"command": "snooze", "nudge_id": "n1", "minutes": 0},
            "minutes: must be between 1 and 1440, got 0",
            id="a snooze of zero minutes is refused",
        ),
        pytest.param(
            {"command": "snooze", "nudge_id": "n1", "minutes": 7.5},
            "minutes: must be a whole number, got 7.5",
            id="a snooze of fractional minutes is refused",
        ),
        pytest.param(
            {"command": "log", "what": "chocolate"},
            'what: must be one of "nicotine", "alcohol", "daytime_twitching" or "caffeine", '
            'got "chocolate"',
            id="logging an unknown substance is refused",
        ),
        pytest.param(
            {"command": "bedtime_tonight", "time": "24:00"},
            'time: must be a time as "HH:MM" (00:00 to 23:59), got "24:00"',
            id="bedtime 24:00 is refused",
        ),
        pytest.param(
            {"command": "bedtime_tonight", "time": 2315},
            "time: must be a string, got 2315",
            id="bedtime as a number is refused",
        ),
        pytest.param(
            {"command": "checkin"},
            "payload: a check-in needs at least one answer: rested, daytime_twitching or rls",
            id="a check-in without an answer is refused",
        ),
        pytest.param(
            {"command": "checkin", "rls": {}},
            "payload: a check-in needs at least one answer: rested, daytime_twitching or rls",
            id="a check-in with empty restless-legs answers is refused",
        ),
        pytest.param(
            {"command": "checkin", "rested": 0},
            "rested: must be between 1 and 5, got 0",
            id="rested 0 is below the scale",
        ),
        pytest.param(
            {"command": "checkin", "rested": 6},
            "rested: must be between 1 and 5, got 6",
            id="rested 6 is above the scale",
        ),
        pytest.param(
            {"command": "checkin", "rested": 3.5},
            "rested: must be a whole number, got 3.5",
            id="rested is a whole number",
        ),
        pytest.param(
            {"command": "checkin", "daytime_twitching": "yes"},
            'daytime_twitching: must be true or false, got "yes"',
            id="daytime twitching is true or false",
        ),
        pytest.param(
            {"command": "checkin", "rls": {"urge_to_move": 1}},
            "rls.urge_to_move: must be true or false, got 1",
            id="a restless-legs answer is true or false",
        ),
        pytest.param(
            {"command": "checkin", "rls": {"urge": True}},
            "rls.urge: extra inputs are not permitted, got true",
            id="an unknown restless-legs question is refused, not ignored",
        ),
    ],
)
def test_bad_command_is_refused(payload: Any, error: str) -> None:
    """Commands are checked like device payloads."""
    assert expect_error(parse_command("alex", raw(payload), ARRIVED)) == error


# -- time and duplicate keys ------------------------------------------------------------------


def test_ts_with_offset_is_used_and_keyed() -> None:
    """A payload's own ts wins over arrival time and gives a duplicate key."""
    payload = raw({"event": "heart_rate", "bpm": 72, "ts": "2026-11-24T20:00:00+01:00"})
    event = parse_device_message(WATCH, payload, ARRIVED)
    assert isinstance(event, HeartRateMeasured)
    assert event.ts == datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
    assert event.ts.utcoffset() == timedelta(hours=1)
    digest = hashlib.sha1(payload).hexdigest()[:16]
    assert event.key == f"watch|2026-11-24T20:00:00+01:00|{digest}"


def test_ts_in_z_notation_is_utc() -> None:
    """`Z` is an offset too."""
    event = parse(WATCH, {"event": "workout_end", "ts": "2026-11-24T19:00:00Z"})
    assert isinstance(event, WorkoutEnded)
    assert event.ts == datetime(2026, 11, 24, 19, 0, tzinfo=UTC)


def test_same_message_twice_has_the_same_key_and_different_content_does_not() -> None:
    """A replay is recognised; a second reading at the same instant is not mistaken for one."""
    first = parse(COFFEE, {"event": "brew", "drink": "espresso", "ts": "2026-11-24T16:00:00Z"})
    again = parse(COFFEE, {"event": "brew", "drink": "espresso", "ts": "2026-11-24T16:00:00Z"})
    other = parse(COFFEE, {"event": "brew", "drink": "coffee", "ts": "2026-11-24T16:00:00Z"})
    assert isinstance(first, Event)
    assert isinstance(again, Event)
    assert isinstance(other, Event)
    assert first.key is not None
    assert first.key == again.key
    assert first.key != other.key


def test_same_content_from_two_devices_has_different_keys() -> None:
    """The device id is part of the key."""
    twin = Device(id="watch2", kind="fitness_tracker", topic="tracker/sam", person="sam")
    payload = {"event": "stress", "level": 30, "ts": "2026-11-24T16:00:00Z"}
    a, b = parse(WATCH, payload), parse(twin, payload)
    assert isinstance(a, Event)
    assert isinstance(b, Event)
    assert a.key != b.key


def test_a_payload_without_ts_has_no_key() -> None:
    """Identical readings arriving at different times are separate facts."""
    event = parse(WATCH, {"event": "heart_rate", "bpm": 72})
    assert isinstance(event, Event)
    assert event.key is None
    assert event.ts == ARRIVED


def test_commands_with_ts_are_keyed_per_person() -> None:
    """A replayed `log caffeine` is not counted twice."""
    payload = raw({"command": "log", "what": "caffeine", "ts": "2026-11-24T16:00:00+01:00"})
    event = parse_command("sam", payload, ARRIVED)
    assert isinstance(event, SubstanceLogged)
    assert event.key is not None
    assert event.key.startswith("command:sam|2026-11-24T16:00:00+01:00|")


def test_naive_arrival_time_is_a_programming_error() -> None:
    """The caller must pass an aware arrival time; that is a bug, so it raises."""
    with pytest.raises(ValueError, match="aware"):
        parse_device_message(BED, b"{}", datetime(2026, 11, 24, 21, 5))


def test_arrival_time_keeps_its_zone() -> None:
    """Without ts, the event's ts is exactly the arrival time given."""
    arrived = datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2)))
    event = parse_device_message(BED, b'{"event": "occupancy", "occupied": false}', arrived)
    assert isinstance(event, OccupancyChanged)
    assert event.ts is arrived


def test_payload_schema_documents_each_kind() -> None:
    """The JSON Schema of a kind names its events."""
    assert "movement" in json.dumps(payload_schema("bed_motion"))
    assert "bedtime_tonight" in json.dumps(payload_schema("command"))


# -- properties: no input crashes the parser --------------------------------------------------

_KINDS = st.sampled_from([BED, COFFEE, WATCH])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
_TAGS = [
    "movement",
    "occupancy",
    "accel",
    "brew",
    "workout_start",
    "workout_end",
    "heart_rate",
    "stress",
    "sunlight",
]
_FIELDS = [
    "intensity",
    "duration_s",
    "occupied",
    "rate_hz",
    "samples",
    "drink",
    "volume_ml",
    "caffeine_mg",
    "activity",
    "bpm",
    "level",
    "minutes",
    "ts",
    "nudge_id",
    "what",
    "time",
]
_VALUES = (
    _JSON
    | st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat())
    | st.lists(st.lists(st.floats(), max_size=4), max_size=4)
    | st.floats()
)
_PLAUSIBLE = st.fixed_dictionaries(
    {"event": st.sampled_from(_TAGS)}, optional=dict.fromkeys(_FIELDS, _VALUES)
)
_PLAUSIBLE_COMMANDS = st.fixed_dictionaries(
    {"command": st.sampled_from(["ack", "snooze", "log", "bedtime_tonight", "x"])},
    optional=dict.fromkeys(_FIELDS, _VALUES),
)


def _check(result: object) -> None:
    assert isinstance(result, Event | PayloadError)
    if isinstance(result, PayloadError):
        assert result.error
        assert isinstance(result.error, str)
    else:
        assert result.ts.tzinfo is not None


@given(device=_KINDS, payload=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(device: Device, payload: bytes) -> None:
    """Any bytes give an event or a PayloadError."""
    _check(parse_device_message(device, payload, ARRIVED))
    _check(parse_command("alex", payload, ARRIVED))


@given(device=_KINDS, value=_JSON)
def test_arbitrary_json_never_raises(device: Device, value: Any) -> None:
    """Any JSON value gives an event or a PayloadError."""
    payload = json.dumps(value).encode()
    _check(parse_device_message(device, payload, ARRIVED))
    _check(parse_command("alex", payload, ARRIVED))


@settings(max_examples=300)
@given(device=_KINDS, value=_PLAUSIBLE, commands=_PLAUSIBLE_COMMANDS)
def test_nearly_right_payloads_never_raise(
    device: Device, value: dict[str, Any], commands: dict[str, Any]
) -> None:
    """Known events and commands with any field values give an event or a PayloadError."""
    _check(parse_device_message(device, json.dumps(value).encode(), ARRIVED))
    _check(parse_command("alex", json.dumps(commands).encode(), ARRIVED))


def test_each_native_event_name_belongs_to_its_device_kind() -> None:
    """The profiles' table of event names is read from the payload models, in their order."""
    assert EVENT_KIND == {
        "movement": "bed_motion",
        "occupancy": "bed_motion",
        "accel": "bed_motion",
        "brew": "coffee_maker",
        "workout_start": "fitness_tracker",
        "workout_end": "fitness_tracker",
        "heart_rate": "fitness_tracker",
        "stress": "fitness_tracker",
        "sunlight": "fitness_tracker",
    }
    assert list(EVENT_KIND) == _TAGS
