"""Any other device: its JSON mapped onto a native payload with JMESPath expressions.

Each field of the native payload (docs/contract.md) is a JMESPath expression (https://jmespath.org)
evaluated against the device's JSON; a payload that is not JSON is the string itself, so `@`
reads a plain `ON`. `event` names the native event (`"'movement'"` is the literal string), `when`
filters (a false or null result ignores the message), `ts` reads the device's own time (ISO 8601
with an offset, or Unix seconds or milliseconds), and `values` maps results, field by field
(`{event: {vibration: movement}}`). Every expression is compiled when the config is loaded, and a
bad one is reported with its option path.

JMESPath has no arithmetic, so the coach adds four functions: `divide(a, b)`, `multiply(a, b)`,
`add(a, b)` and `clamp(x, lo, hi)`; `strength / 255` is written `divide(strength, \\`255\\`)`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Final

import jmespath
import jmespath.exceptions
import jmespath.functions
from jmespath.parser import ParsedResult
from pydantic import Field, PrivateAttr

from coach.config import DeviceKind
from coach.decode.native import EVENT_KIND
from coach.decode.profile.base import (
    Message,
    Native,
    OptionPath,
    Options,
    Outcome,
    Profile,
    Refused,
    device_time,
    load_json,
)
from coach.decode.refusal import show


class _Functions(jmespath.functions.Functions):
    """Arithmetic JMESPath lacks, for scaling a device's numbers."""

    @jmespath.functions.signature({"types": ["number"]}, {"types": ["number"]})
    def _func_divide(self, a: float, b: float) -> float | None:
        return None if b == 0 else a / b

    @jmespath.functions.signature({"types": ["number"]}, {"types": ["number"]})
    def _func_multiply(self, a: float, b: float) -> float:
        return a * b

    @jmespath.functions.signature({"types": ["number"]}, {"types": ["number"]})
    def _func_add(self, a: float, b: float) -> float:
        return a + b

    @jmespath.functions.signature(
        {"types": ["number"]}, {"types": ["number"]}, {"types": ["number"]}
    )
    def _func_clamp(self, x: float, lo: float, hi: float) -> float:
        return max(lo, min(hi, x))


_OPTIONS: Final = jmespath.Options(custom_functions=_Functions())
_MAX_EXPRESSION: Final = 1000


def compile_problem(expression: str) -> str | None:
    """Why an expression does not compile, or None when it does."""
    if len(expression) > _MAX_EXPRESSION:
        return f"expression is longer than {_MAX_EXPRESSION} characters"
    try:
        jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as err:
        text = " ".join(str(err).split())
        hint = ""
        if any(op in expression for op in ("/", "*", "+")) and "Unknown token" in text:
            hint = "; JMESPath has no arithmetic: use divide(a, b), multiply(a, b) or add(a, b)"
        return f"not a valid JMESPath expression ({text}){hint}"
    return None


class CustomOptions(Options):
    """Options of custom."""

    event: str = Field(description="JMESPath giving the native event name, e.g. \"'movement'\".")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description='Native field → JMESPath, e.g. {intensity: "divide(strength, `255`)"}.',
    )
    when: str | None = Field(
        None, description="JMESPath filter: a false or null result ignores the message."
    )
    ts: str | None = Field(
        None, description="JMESPath giving the device's time (ISO 8601 with offset, or epoch)."
    )
    values: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per field (or event): result → value, e.g. {event: {vibration: movement}}.",
    )
    # Each expression compiled on its first use; options are validated once per device.
    _compiled: dict[str, ParsedResult] = PrivateAttr(default_factory=dict)

    def compiled(self, expression: str) -> ParsedResult:
        """One of these options' expressions, compiled."""
        parsed = self._compiled.get(expression)
        if parsed is None:
            parsed = self._compiled[expression] = jmespath.compile(expression)
        return parsed


def _evaluate(options: CustomOptions, expression: str, data: Any, what: str) -> Any:
    try:
        return options.compiled(expression).search(data, options=_OPTIONS)
    except jmespath.exceptions.JMESPathError as err:
        text = " ".join(str(err).split())
        msg = f"{what}: {show(expression)} failed on this payload ({text})"
        raise Refused(msg) from None


def _mapped(options: CustomOptions, name: str, value: Any) -> Any:
    table = options.values.get(name)
    if table is None:
        return value
    key = value if isinstance(value, str) else json.dumps(value)
    return table.get(key, value)


class Custom(Profile[CustomOptions]):
    """A payload described in the config with JMESPath field expressions."""

    name: ClassVar[str] = "custom"
    summary: ClassVar[str] = (
        "Any JSON device, described with JMESPath field expressions and value maps"
    )
    kinds: ClassVar[tuple[DeviceKind, ...]] = ("bed_motion", "coffee_maker", "fitness_tracker")
    options_model: ClassVar[type[Options]] = CustomOptions
    expects: ClassVar[str] = "a payload its expressions can read"
    sources: ClassVar[tuple[str, ...]] = ("https://jmespath.org/specification.html",)
    example: ClassVar[dict[str, Any]] = {
        "id": "bed_custom",
        "kind": "bed_motion",
        "topic": "home/bedroom/vibration",
        "person": "alex",
        "profile": "custom",
        "options": {
            "when": "action == 'vibration'",
            "event": "'movement'",
            "fields": {
                "intensity": "clamp(divide(strength, `255`), `0`, `1`)",
                "duration_s": "`2`",
            },
            "ts": "last_seen",
        },
    }

    def check(self, options: CustomOptions) -> list[tuple[OptionPath, str]]:
        """Compile every expression; a failure names its option path."""
        found: list[tuple[OptionPath, str]] = []
        named: list[tuple[OptionPath, str | None]] = [
            (("options", "event"), options.event),
            (("options", "when"), options.when),
            (("options", "ts"), options.ts),
            *((("options", "fields", k), v) for k, v in options.fields.items()),
        ]
        for path, expression in named:
            if expression is None:
                continue
            problem = compile_problem(expression)
            if problem is not None:
                found.append((path, problem))
        for field_name in options.fields:
            if field_name in ("event", "ts"):
                found.append(
                    (
                        ("options", "fields", field_name),
                        f"{field_name} has its own option; set options.{field_name} instead",
                    )
                )
        return found

    def handle(self, message: Message, options: CustomOptions, state: dict[str, Any]) -> Outcome:
        """Evaluate the expressions into a native payload body."""
        payload, at = message.payload, message.at
        try:
            data = load_json(payload)
        except Refused:
            data = payload.decode("utf-8", errors="strict") if _is_text(payload) else None
            if data is None:
                raise
        if options.when is not None and not _evaluate(options, options.when, data, "when"):
            return Outcome(notes=["`when` is false for this payload; ignored"])
        event = _mapped(options, "event", _evaluate(options, options.event, data, "event"))
        if not isinstance(event, str) or event not in EVENT_KIND:
            msg = f"event gave {show(event)}; expected one of {', '.join(EVENT_KIND)}"
            raise Refused(msg)
        body: dict[str, Any] = {"event": event}
        for name, expression in options.fields.items():
            value = _mapped(options, name, _evaluate(options, expression, data, name))
            if value is not None:
                body[name] = value
        own = False
        ts = at
        if options.ts is not None:
            found = device_time(_evaluate(options, options.ts, data, "ts"))
            if found is not None:
                ts, own = found, True
        return Outcome(natives=[Native(body, ts, device_ts=own)])


def _is_text(payload: bytes) -> bool:
    if not payload or len(payload) > 256:
        return False
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
