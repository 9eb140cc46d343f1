"""Why a payload was refused, in words a person fixing a sensor wants to read.

pydantic reports what it found as error types and locations (`greater_than_equal` at
`("movement", "intensity")`); `Wording.describe` turns them into one line per problem, each naming
the field and what it must be (`intensity: must be between 0 and 1, got 1.7`), at most five. A
wrong or missing tag (`event`, `command`) silences the rest, since every other complaint is then
noise; a range is said from the field's declared bounds, so `ge=0, le=1` reads "between 0 and 1".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import annotated_types
from pydantic import BaseModel, ValidationError


@dataclass(frozen=True, slots=True)
class PayloadError:
    """A message that was refused, and why (for the `<prefix>/errors` record)."""

    error: str


class Wording:
    """How the refusals of one union of payload models are worded."""

    __slots__ = ("expected", "models", "tag", "what")

    def __init__(self, tag: str, models: Mapping[str, type[BaseModel]], what: str) -> None:
        #: The field that picks the model (`event`, `command`).
        self.tag = tag
        #: The models by their tag value, in the order a refusal lists them.
        self.models = dict(models)
        #: Who sends these payloads: "bed_motion device", "command topic".
        self.what = what
        self.expected = ", ".join(self.models)

    def describe(self, err: ValidationError, payload: bytes) -> str:
        """Human-readable text for the problems pydantic found (the first few of them)."""
        errors = err.errors(include_url=False)
        tag_errors = [e for e in errors if _is_tag_error(e, self.tag)]
        if tag_errors:
            # A wrong `event` makes every other complaint noise (single-model kinds report both).
            errors = tag_errors[:1]
        # pydantic counts a container's length after dropping its bad items, so a chunk of bad
        # samples is also "too short": the item errors already say what is wrong.
        inner = {tuple(e["loc"][:n]) for e in errors for n in range(1, len(e["loc"]))}
        errors = [e for e in errors if e["type"] != "too_short" or tuple(e["loc"]) not in inner]
        # A sample missing two axes yields two identical lines: keep one.
        problems = list(dict.fromkeys(self._problem(e, payload) for e in errors))
        if len(problems) > _MAX_PROBLEMS:
            more = len(problems) - _MAX_PROBLEMS
            problems = [*problems[:_MAX_PROBLEMS], f"and {more} more problems"]
        return "; ".join(problems)

    def _problem(self, e: Any, payload: bytes) -> str:
        kind: str = e["type"]
        loc: tuple[int | str, ...] = e["loc"]
        ctx: dict[str, Any] = e.get("ctx") or {}
        value = e.get("input")
        model: type[BaseModel] | None = None
        if loc and loc[0] in self.models:
            # Errors inside a union member are located under its tag; single models are not.
            model = self.models[str(loc[0])]
            loc = loc[1:]
        elif len(self.models) == 1:
            model = next(iter(self.models.values()))
        if kind == "json_invalid":
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as bad:
                return f"payload is not UTF-8 text (invalid byte at offset {bad.start})"
            return f"payload is not valid JSON: {ctx.get('error', e['msg'])}"
        if kind in ("dict_type", "model_type", "model_attributes_type") and not loc:
            return f"payload must be a JSON object, got {_json_kind(value)}"
        if kind == "union_tag_not_found" or (kind == "missing" and loc == (self.tag,)):
            return f"{self.tag}: missing; a {self.what} sends one of {self.expected}"
        if kind == "union_tag_invalid" or (kind == "literal_error" and loc == (self.tag,)):
            tag = ctx.get("tag", value)
            return (
                f"{self.tag}: unknown {self.tag} {show(tag)}; "
                f"a {self.what} sends one of {self.expected}"
            )
        if (
            len(loc) >= 2
            and loc[0] == "samples"
            and (len(loc) == 2 or kind in ("missing", "too_short", "too_long"))
        ):
            # A sample of the wrong shape: say so once for the sample, not per missing axis.
            # (For `missing`, pydantic's input is the short sample itself.)
            return f"{_path(loc[:2])}: must be [x, y, z], three numbers in g, got {show(value)}"
        field = _path(loc)
        return (
            f"{field}: {_explain(kind, msg=e['msg'], ctx=ctx, value=value, model=model, loc=loc)}"
        )


_MAX_PROBLEMS: Final = 5


def _is_tag_error(e: Any, tag: str) -> bool:
    kind = e["type"]
    return kind.startswith("union_tag_") or (
        kind in ("missing", "literal_error") and tuple(e["loc"])[-1:] == (tag,)
    )


def show(value: Any) -> str:
    """A value as JSON for an error message, cut short to 60 characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "payload"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(model: type[BaseModel] | None, loc: tuple[int | str, ...], ctx: dict[str, Any]) -> str:
    """Say "between 0 and 1" from the field's declared bounds, else from the bound pydantic saw."""
    lo: Any = None
    hi: Any = None
    lo_open = hi_open = False
    info = model.model_fields.get(str(loc[0])) if model is not None and len(loc) == 1 else None
    for m in info.metadata if info is not None else ():
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, annotated_types.Le):
            hi = m.le
        elif isinstance(m, annotated_types.Lt):
            hi, hi_open = m.lt, True
    if lo is None and hi is None:
        for key, bound in ctx.items():
            if key in ("ge", "gt"):
                lo, lo_open = bound, key == "gt"
            elif key in ("le", "lt"):
                hi, hi_open = bound, key == "lt"
    if lo is not None and hi is not None and not lo_open and not hi_open:
        return f"must be between {_num(lo)} and {_num(hi)}"
    parts = []
    if lo is not None:
        parts.append(f"above {_num(lo)}" if lo_open else f"at least {_num(lo)}")
    if hi is not None:
        parts.append(f"below {_num(hi)}" if hi_open else f"at most {_num(hi)}")
    return "must be " + " and ".join(parts)


_TYPE_WORDS: Final = {
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be an array",
    "tuple_type": "must be an array",
    "finite_number": "must be a finite number",
    "datetime_type": "must be an ISO 8601 date-time with a UTC offset, "
    "like 2026-11-24T21:05:00+01:00",
    "datetime_parsing": "must be an ISO 8601 date-time with a UTC offset, "
    "like 2026-11-24T21:05:00+01:00",
    "datetime_object_invalid": "must be a valid date-time",
    "timezone_aware": "must include a UTC offset (2026-11-24T21:05:00+01:00 or …Z); "
    "a local time alone is ambiguous",
}


def _explain(
    kind: str,
    *,
    msg: str,
    ctx: dict[str, Any],
    value: Any,
    model: type[BaseModel] | None,
    loc: tuple[int | str, ...],
) -> str:
    if kind == "missing":
        return "missing (required)"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{_range(model, loc, ctx)}, got {show(value)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "?")).replace("'", '"')
        return f"must be one of {expected}, got {show(value)}"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"is too short: {msg}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} items, got {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items, got {ctx.get('actual_length')}"
    if kind == "value_error":
        return str(ctx.get("error", msg.removeprefix("Value error, ")))
    words = _TYPE_WORDS.get(kind)
    if words is not None:
        return f"{words}, got {show(value)}"
    return f"{msg[:1].lower()}{msg[1:]}, got {show(value)}"
