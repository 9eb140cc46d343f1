"""A smart plug under the coffee machine: power readings become brews.

How it works: a brew starts when a reading reaches `start_watts` (default 1000 W: espresso
machines and drip brewers heat at 1000-1500 W, while their standby and keep-warm plates draw well
under 500 W). It ends when the power has stayed below `stop_watts` (500 W) for `stop_hold_s`
(60 s): a thermoblock or boiler cycles its heater during a brew, and a short dip, or a reading
that drops out, must not split one brew in two. Energy is integrated from the readings (each
reading holds until the next, at most `max_gap_s`). The finished brew's duration and energy pick
the drink from `drinks`, the first band that fits: by default a short hot burst (≤ 90 s and
≤ 40 Wh) is an espresso and anything up to 20 minutes is a coffee; `drink` fixes it for a device
that only makes one thing. The brew is dated when it started.

The end of a brew is only known once the power has stayed low for the hold time. Plugs that
report only on change (Shelly Gen2, Zigbee) may then stay silent, so the outcome asks to be woken
(`wake_at`) and the daemon calls `tick` then; the next reading closes it otherwise.

Formats, detected per message (or fixed with `format`):
- Shelly Gen1 `shellies/<id>/relay/<n>/power`: a plain number, watts
  (https://shelly-api-docs.shelly.cloud/gen1/#shelly-plug-plugs-mqtt).
- Shelly Gen2 `<prefix>/status/switch:<n>`: `{"id": 0, "apower": 1234.5, ...}`, or the RPC
  notification on `<prefix>/events/rpc`: `{"method": "NotifyStatus", "params": {"ts": …,
  "switch:0": {"apower": …}}}` whose `ts` is the device's time
  (https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch,
  https://shelly-api-docs.shelly.cloud/gen2/General/Notifications).
- Tasmota `tele/<topic>/SENSOR`: `{"Time": …, "ENERGY": {"Power": 1234, ...}}`; `Power` is a list
  on multi-channel plugs. `Time` is local time without an offset unless the device adds one, so it
  is used only when it has an offset (https://tasmota.github.io/docs/JSON-Status-Responses/).
- Zigbee2MQTT plugs `zigbee2mqtt/<name>`: `{"power": 1234, ...}`, with `last_seen` if enabled.

Report rates matter: Tasmota's TelePeriod defaults to 300 s and Shelly Gen1 to 30 s, both too
slow to see a 25-second espresso. Set `TelePeriod 10` (or PowerDelta) and a short Gen1 update
period; `devices listen` shows how often readings arrive.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, Final, Literal

from pydantic import Field, model_validator

from coach.config import Device, DeviceKind
from coach.decode.profile.base import (
    Message,
    Native,
    Options,
    Outcome,
    Profile,
    Refused,
    device_time,
    from_iso,
    iso,
    load_json,
    number,
)
from coach.decode.refusal import show
from coach.event import Drink

# A household plug carries at most 16 A x 230-240 V ≈ 3.8 kW; far more is a sensor fault.
MAX_WATTS: Final = 10_000.0

_NOTIFY_STATUS: Final = ("NotifyStatus", "NotifyFullStatus")

Format = Literal["auto", "shelly_gen1", "shelly_gen2", "tasmota", "zigbee2mqtt"]


class DrinkBand(Options):
    """A band of brews that make one drink: every limit given must hold."""

    drink: Drink = Field(description="espresso, coffee, cold_brew, tea, decaf or other.")
    max_duration_s: float | None = Field(None, gt=0, description="Longest brew in the band.")
    min_duration_s: float | None = Field(None, ge=0, description="Shortest brew in the band.")
    max_energy_wh: float | None = Field(None, gt=0, description="Most energy in the band (Wh).")
    min_energy_wh: float | None = Field(None, ge=0, description="Least energy in the band (Wh).")
    volume_ml: float | None = Field(None, gt=0, le=2000, description="Volume of one drink.")
    caffeine_mg: float | None = Field(
        None, ge=0, le=1000, description="Caffeine of one drink, if known (else by drink)."
    )

    def fits(self, duration_s: float, energy_wh: float) -> bool:
        """Whether a brew of this duration and energy falls in the band."""
        return (
            (self.max_duration_s is None or duration_s <= self.max_duration_s)
            and (self.min_duration_s is None or duration_s >= self.min_duration_s)
            and (self.max_energy_wh is None or energy_wh <= self.max_energy_wh)
            and (self.min_energy_wh is None or energy_wh >= self.min_energy_wh)
        )


# Defaults: an espresso pulls for 25-30 s after a short heat-up, about 1-2 min at 1.2-1.5 kW,
# 20-40 Wh; a drip brewer runs 5-10 min for a pot (about 1 kW, 100-170 Wh). One drink each: a
# person pours a cup (250 ml), not the pot.
DEFAULT_DRINKS: Final = (
    DrinkBand(drink="espresso", max_duration_s=90, max_energy_wh=40, volume_ml=40),
    DrinkBand(drink="coffee", max_duration_s=1200, volume_ml=250),
)


class PlugOptions(Options):
    """Options of smart_plug_power."""

    format: Format = Field("auto", description="Payload format; auto detects it per message.")
    channel: int = Field(
        0, ge=0, le=7, description="Relay/switch number (Shelly switch:N, Tasmota Power[N])."
    )
    start_watts: float = Field(1000.0, gt=0, description="Power at which a brew starts (W).")
    stop_watts: float = Field(500.0, gt=0, description="Power below which a brew may end (W).")
    stop_hold_s: float = Field(
        60.0, ge=0, le=3600, description="How long power stays below stop_watts to end a brew."
    )
    min_brew_s: float = Field(
        5.0,
        ge=0,
        description="Brews shorter than this are ignored (a boiler topping up its heat).",
    )
    max_gap_s: float = Field(
        300.0,
        gt=0,
        description="A reading counts for at most this long; with no reading for longer, a "
        "running brew is closed at its last reading.",
    )
    drink: Drink | None = Field(
        None, description="The drink every brew makes (overrides the bands)."
    )
    volume_ml: float | None = Field(
        None, gt=0, le=2000, description="Volume of that drink (with `drink`)."
    )
    caffeine_mg: float | None = Field(
        None, ge=0, le=1000, description="Caffeine of that drink (with `drink`)."
    )
    drinks: tuple[DrinkBand, ...] = Field(
        DEFAULT_DRINKS,
        min_length=1,
        description="Bands tried in order; a brew fitting none is `other`.",
    )

    @model_validator(mode="after")
    def _stop_below_start(self) -> PlugOptions:
        if self.stop_watts > self.start_watts:
            msg = "stop_watts must not be above start_watts"
            raise ValueError(msg)
        return self


class SmartPlug(Profile[PlugOptions]):
    """Power readings from a Shelly, Tasmota or Zigbee plug, to brews."""

    name: ClassVar[str] = "smart_plug_power"
    summary: ClassVar[str] = (
        "Smart plug under the coffee machine (Shelly Gen1/Gen2, Tasmota, Zigbee2MQTT): "
        "power readings become brews"
    )
    kinds: ClassVar[tuple[DeviceKind, ...]] = ("coffee_maker",)
    options_model: ClassVar[type[Options]] = PlugOptions
    expects: ClassVar[str] = (
        "a power reading: a plain number (Shelly Gen1 relay/0/power), "
        '{"apower": W} (Shelly Gen2 status/switch:0), {"ENERGY": {"Power": W}} '
        '(Tasmota tele/…/SENSOR) or {"power": W} (Zigbee2MQTT)'
    )
    sources: ClassVar[tuple[str, ...]] = (
        "https://shelly-api-docs.shelly.cloud/gen1/#shelly-plug-plugs-mqtt",
        "https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch",
        "https://shelly-api-docs.shelly.cloud/gen2/General/Notifications",
        "https://tasmota.github.io/docs/JSON-Status-Responses/",
        "https://www.zigbee2mqtt.io/devices/ZNCZ02LM.html",
    )
    example: ClassVar[dict[str, Any]] = {
        "id": "coffee",
        "kind": "coffee_maker",
        "topic": "shellyplusplugs-a8032ab12345/status/switch:0",
        "person": "alex",
        "profile": "smart_plug_power",
        "options": {"start_watts": 1000, "stop_watts": 500},
    }

    def handle(self, message: Message, options: PlugOptions, state: dict[str, Any]) -> Outcome:
        """Feed one reading to the brew detector."""
        payload, at = message.payload, message.at
        reading = read_power(options, payload)
        if reading is None:
            return Outcome(notes=["no power reading for this switch in the message; ignored"])
        watts, own_ts = reading
        ts = own_ts or at
        return step(options, state, ts, watts, own=own_ts is not None)

    def tick(
        self, device: Device, options: PlugOptions, now: datetime, state: dict[str, Any]
    ) -> Outcome:
        """Close a brew whose power has stayed low for the hold time, or whose readings stopped."""
        out = Outcome()
        if state.get("phase") != "brewing":
            return out
        last = from_iso(state.get("last_at"))
        below = from_iso(state.get("below_since"))
        hold = timedelta(seconds=options.stop_hold_s)
        if below is not None:
            if now - below >= hold:
                _finish(options, state, below, out)
            else:
                out.wake_at = below + hold
            return out
        if last is not None and now - last > timedelta(seconds=options.max_gap_s):
            out.notes.append("no reading for too long during a brew; closed at the last one")
            _accumulate(options, state, last)
            _finish(options, state, last, out)
        elif last is not None:
            out.wake_at = last + timedelta(seconds=options.max_gap_s)
        return out


def read_power(options: PlugOptions, payload: bytes) -> tuple[float, datetime | None] | None:
    """The reading in a message: watts and the device's time, or None if it has none for us."""
    data = load_json(payload)
    fmt = options.format
    watts: Any = None
    ts: datetime | None = None
    if isinstance(data, bool) or (not isinstance(data, int | float | dict)):
        msg = f"got {show(data)}"
        raise Refused(msg)
    if isinstance(data, int | float):
        if fmt not in ("auto", "shelly_gen1"):
            msg = f"a plain number is Shelly Gen1's format, not {fmt}'s"
            raise Refused(msg)
        watts = data
    elif fmt in ("auto", "shelly_gen2") and "apower" in data:
        if "id" in data and data["id"] != options.channel:
            return None
        watts = data["apower"]
    elif fmt in ("auto", "shelly_gen2") and data.get("method") in _NOTIFY_STATUS:
        params = data.get("params")
        if not isinstance(params, dict):
            msg = f"params must be an object, got {show(params)}"
            raise Refused(msg)
        switch = params.get(f"switch:{options.channel}")
        if not isinstance(switch, dict) or "apower" not in switch:
            return None  # a notification about another component or field
        watts = switch["apower"]
        ts = device_time(params.get("ts"))
    elif fmt in ("auto", "shelly_gen2") and isinstance(data.get("method"), str):
        return None  # NotifyEvent and other RPC frames carry no reading
    elif fmt in ("auto", "tasmota") and "ENERGY" in data:
        energy = data["ENERGY"]
        if not isinstance(energy, dict) or "Power" not in energy:
            msg = f"ENERGY must be an object with Power, got {show(energy)}"
            raise Refused(msg)
        watts = energy["Power"]
        if isinstance(watts, list):
            if options.channel >= len(watts):
                msg = f"ENERGY.Power has {len(watts)} channels, no channel {options.channel}"
                raise Refused(msg)
            watts = watts[options.channel]
        ts = device_time(data.get("Time"))
    elif fmt in ("auto", "zigbee2mqtt") and "power" in data:
        if data["power"] is None:
            return None  # Zigbee2MQTT's cached state before the first power report
        watts = data["power"]
        ts = device_time(data.get("last_seen"))
    elif fmt == "tasmota" and "Time" in data:
        return None  # another tele message (STATE) on the same topic filter
    else:
        msg = "no power reading in it"
        raise Refused(msg)
    value = number(watts, "power")
    if value < -1 or value > MAX_WATTS:
        msg = f"power must be between 0 and {MAX_WATTS:g} W, got {show(watts)}"
        raise Refused(msg)
    return max(0.0, value), ts


def step(
    options: PlugOptions, state: dict[str, Any], ts: datetime, watts: float, *, own: bool = False
) -> Outcome:
    """Advance the brew detector by one reading of `watts` at `ts`."""
    out = Outcome()
    last = from_iso(state.get("last_at"))
    if last is not None and ts < last:
        out.notes.append("reading older than the previous one; ignored")
        return out
    phase = state.get("phase")
    if phase == "brewing":
        if last is not None and ts - last > timedelta(seconds=options.max_gap_s):
            # The plug went quiet mid-brew: close it where the readings stopped, then start over.
            out.notes.append("readings stopped during a brew; closed at the last one")
            _accumulate(options, state, last)
            _finish(options, state, last, out)
            phase = None
        else:
            _accumulate(options, state, ts)
    state["last_at"] = iso(ts)
    state["last_w"] = watts
    if phase != "brewing":
        if watts >= options.start_watts:
            state.update(
                phase="brewing",
                start=iso(ts),
                energy_wh=0.0,
                peak_w=watts,
                below_since=None,
                energy_at_below=None,
                own=own,
            )
            out.notes.append(f"{watts:g} W: a brew starts")
        else:
            state["phase"] = "idle"
            out.notes.append(f"{watts:g} W: idle")
        return out
    state["peak_w"] = max(_f(state.get("peak_w")), watts)
    state["own"] = bool(state.get("own")) and own
    hold = timedelta(seconds=options.stop_hold_s)
    if watts < options.stop_watts:
        below = from_iso(state.get("below_since"))
        if below is None:
            below = ts
            state["below_since"] = iso(ts)
            state["energy_at_below"] = _f(state.get("energy_wh"))
        if ts - below >= hold:
            _finish(options, state, below, out)
        else:
            out.notes.append(f"{watts:g} W: below {options.stop_watts:g} W, brew may be ending")
            out.wake_at = below + hold
    else:
        state["below_since"] = None
        state["energy_at_below"] = None
        out.notes.append(f"{watts:g} W: brewing")
    return out


def _f(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 0.0


def _accumulate(options: PlugOptions, state: dict[str, Any], until: datetime) -> None:
    """Add the energy of the last reading, held from its time until `until` (capped)."""
    last = from_iso(state.get("last_at"))
    if last is None:
        return
    held = min((until - last).total_seconds(), options.max_gap_s)
    if held > 0:
        state["energy_wh"] = _f(state.get("energy_wh")) + _f(state.get("last_w")) * held / 3600


def _finish(options: PlugOptions, state: dict[str, Any], end: datetime, out: Outcome) -> None:
    """Close the running brew at `end`: a brew event, or a note if it was too short."""
    start = from_iso(state.get("start"))
    energy = state.get("energy_at_below")
    energy_wh = _f(energy) if energy is not None else _f(state.get("energy_wh"))
    own = bool(state.get("own"))
    for key in ("start", "energy_wh", "peak_w", "below_since", "energy_at_below", "own"):
        state.pop(key, None)
    state["phase"] = "idle"
    if start is None:
        return
    duration = max(0.0, (end - start).total_seconds())
    if duration < options.min_brew_s:
        out.notes.append(f"a {duration:.0f} s burst is too short for a brew; ignored")
        return
    body: dict[str, Any] = {"event": "brew"}
    if options.drink is not None:
        body["drink"] = options.drink
        if options.volume_ml is not None:
            body["volume_ml"] = options.volume_ml
        if options.caffeine_mg is not None:
            body["caffeine_mg"] = options.caffeine_mg
    else:
        band = next((b for b in options.drinks if b.fits(duration, energy_wh)), None)
        body["drink"] = band.drink if band is not None else "other"
        if band is not None and band.volume_ml is not None:
            body["volume_ml"] = band.volume_ml
        if band is not None and band.caffeine_mg is not None:
            body["caffeine_mg"] = band.caffeine_mg
    out.notes.append(f"brew ended: {duration:.0f} s, {energy_wh:.1f} Wh → {body['drink']}")
    out.natives.append(Native(body, start, device_ts=own))
