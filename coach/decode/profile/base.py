"""What every device profile is made of: its options model, its outcome, and shared readers.

A profile turns one device's MQTT message into native payload bodies (docs/contract.md) dated
when they happened. The registry hands each body to the native parser (`coach.decode.native`), so
a profile never builds an event itself: range checks, error wording and duplicate keys are the
native format's. Profiles raise `Refused` for a payload they cannot read; the registry turns it
into an error naming the profile. State is the profile's own JSON-able dict, mutated in place here
(the registry passes a copy).
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from coach.config import Device, DeviceKind
from coach.decode.native import MAX_PAYLOAD_BYTES
from coach.decode.refusal import show

# Option paths are relative to the device entry: ("options", "fields", "intensity").
OptionPath = tuple[str | int, ...]


class Options(BaseModel):
    """Base of profile options: unknown keys are errors, and options never change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Refused(Exception):  # noqa: N818 - a refusal is an outcome, not a failure of the profile
    """A payload the profile cannot read; the text says what it expected."""


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message from a device, as a profile reads it."""

    device: Device
    topic: str
    payload: bytes
    at: datetime


@dataclass(frozen=True, slots=True)
class Native:
    """A native payload body a profile made, dated `at`; `device_ts` when the device said so."""

    body: dict[str, Any]
    at: datetime
    device_ts: bool = False


@dataclass(slots=True)
class Outcome:
    """What a profile made of a message or a tick: bodies, notes, a refusal, a wake-up time."""

    natives: list[Native] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wake_at: datetime | None = None


OptionsT = TypeVar("OptionsT", bound=Options)


class Profile(ABC, Generic[OptionsT]):
    """A named payload format: what it reads, which device kinds use it, and how."""

    name: ClassVar[str]
    summary: ClassVar[str]
    kinds: ClassVar[tuple[DeviceKind, ...]]
    options_model: ClassVar[type[Options]]
    expects: ClassVar[str]
    sources: ClassVar[tuple[str, ...]]
    example: ClassVar[dict[str, Any]]

    @abstractmethod
    def handle(self, message: Message, options: OptionsT, state: dict[str, Any]) -> Outcome:
        """Read one message that arrived at `at`; raise `Refused` if it cannot be understood."""

    def tick(
        self, device: Device, options: OptionsT, now: datetime, state: dict[str, Any]
    ) -> Outcome:
        """Close what is due by `now` (a brew held below its stop power, a vibration burst)."""
        return Outcome()

    def check(self, options: OptionsT) -> list[tuple[OptionPath, str]]:
        """Problems pydantic cannot see in valid options (bad expressions), with their paths."""
        return []


# ---------------------------------------------------------------------------------------------
# Readers shared by the profiles. Each raises Refused with a plain reason.


def load_json(payload: bytes) -> Any:
    """Decode a JSON payload; NaN and infinities are refused as they are in the native format."""
    if not payload:
        msg = "the payload is empty"
        raise Refused(msg)
    if len(payload) > MAX_PAYLOAD_BYTES:
        msg = f"the payload is larger than {MAX_PAYLOAD_BYTES // 1024} KiB"
        raise Refused(msg)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as err:
        msg = f"the payload is not UTF-8 text (invalid byte at offset {err.start})"
        raise Refused(msg) from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        msg = f"the payload is not JSON ({_short(str(err))})"
        raise Refused(msg) from None


def load_text(payload: bytes) -> str:
    """A short plain-text payload (ESPHome, Shelly Gen1), stripped; JSON strings are unquoted."""
    if not payload:
        msg = "the payload is empty"
        raise Refused(msg)
    if len(payload) > 256:
        msg = f"the payload is {len(payload)} bytes, too long for a single value"
        raise Refused(msg)
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as err:
        msg = f"the payload is not UTF-8 text (invalid byte at offset {err.start})"
        raise Refused(msg) from None
    if len(text) >= 2 and text[0] == text[-1] == '"':
        # Home Assistant's statestream JSON-encodes states ("on" arrives as "\"on\"").
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, str):
            return value.strip()
    return text


def _no_constant(name: str) -> Any:
    msg = f"{name} is not a number JSON allows"
    raise ValueError(msg)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def number(value: Any, what: str) -> float:
    """A finite JSON number (or a numeric string, as some firmwares send)."""
    if isinstance(value, bool) or value is None:
        msg = f"{what} must be a number, got {show(value)}"
        raise Refused(msg)
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            msg = f"{what} must be a number, got {show(value)}"
            raise Refused(msg) from None
    else:
        msg = f"{what} must be a number, got {show(value)}"
        raise Refused(msg)
    if not math.isfinite(result):
        msg = f"{what} must be a finite number, got {show(value)}"
        raise Refused(msg)
    return result


_ON: Final = frozenset({"on", "true", "1", "occupied", "detected", "present", "home", "yes"})
_OFF: Final = frozenset({"off", "false", "0", "clear", "unoccupied", "absent", "not_home", "no"})


def switch_state(value: Any) -> bool | None:
    """ON/OFF, true/false, 1/0 and the like as a bool; None when it is none of them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _ON:
            return True
        if word in _OFF:
            return False
    return None


def device_time(value: Any) -> datetime | None:
    """A device's own timestamp: ISO 8601 with an offset, or Unix seconds/milliseconds (UTC).

    None when absent, naive (a local time without offset is ambiguous) or implausible (a device
    without network time reports 1970): the message is then dated by its arrival.
    """
    ts: datetime | None = None
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if ts.tzinfo is None or ts.utcoffset() is None:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        if not math.isfinite(seconds):
            return None
        if seconds > 1e11:  # milliseconds (Zigbee2MQTT's last_seen: epoch, Sleep as Android)
            seconds /= 1000.0
        try:
            ts = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if ts is None or not 2000 <= ts.year <= 2099:
        return None
    return ts


def iso(ts: datetime) -> str:
    """A datetime for the JSON state."""
    return ts.isoformat()


def from_iso(value: Any) -> datetime | None:
    """A datetime read back from the state; None if the state does not hold a valid one."""
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


def seconds(delta: timedelta) -> float:
    """A timedelta in seconds."""
    return delta.total_seconds()
