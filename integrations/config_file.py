"""Loading the YAML config file: safe YAML, the pydantic models, errors by path and line, secrets.

How it works: the file is composed into PyYAML's node tree with a `SafeLoader` subclass, the
tree is walked once to record the line of every mapping key and sequence item (and to refuse
duplicate keys, which `safe_load` would silently overwrite), then constructed with ordinary
`safe_load` semantics and validated by `ConfigFile.model_validate`: the whole file, the core's
`Config` and the shell's `Settings` side by side. Each pydantic error's `loc` is
looked up in the recorded lines (its longest recorded prefix, for values a validator reshaped),
so every problem names the file, the line, the YAML path and what is expected. Secrets never live
in the file: a literal `mqtt.password` or `homeassistant.token` is refused, and after validation
they are filled from `SLEEPCOACH_MQTT_PASSWORD` / `SLEEPCOACH_HA_TOKEN` or from the files that
`password_file` / `token_file` name (relative paths, like the TLS files', are relative to the
config file). `with_env_overrides` lets the deployment name the broker, the database and the
dashboard's address (`SLEEPCOACH_MQTT_URL`, `SLEEPCOACH_STORAGE_URL`,
`SLEEPCOACH_DASHBOARD_LISTEN`) over what the file says.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, PrivateAttr, SecretStr, ValidationError

from coach.config import Config, Device, plain_error, reference_problems
from coach.decode.profile.registry import PROFILES, ProfileRegistry
from coach.decode.topic import overlaps, own_topic_problem
from integrations import discovery
from integrations.error import ProjectError
from integrations.settings import DashboardSettings, Settings

YamlPath = tuple[str | int, ...]

#: The example config, inside the package (a link to config/example.yaml in the repository, the
#: file itself in a wheel): what `run` and `report` use when given no config, from any folder.
EXAMPLE_CONFIG: Final = Path(__file__).resolve().parent / "example.yaml"


@dataclass(frozen=True, slots=True)
class ConfigChoice:
    """Which config file a command reads, and why that one."""

    path: str
    #: "given" (--config or FILE), "environment" ($SLEEPCOACH_CONFIG) or "example".
    source: str

    @property
    def notice(self) -> str | None:
        """What to tell the reader when they did not name the file themselves."""
        if self.source == "example":
            return f"no --config given: using the example config {self.path}"
        if self.source == "environment":
            return f"no --config given: using $SLEEPCOACH_CONFIG ({self.path})"
        return None


def choose_config(given: str | None, env: Mapping[str, str] | None = None) -> ConfigChoice:
    """The config every command reads, as `run` does: the file given, else $SLEEPCOACH_CONFIG,
    else the example config (so `simulate`, `report`, `check-config` and `devices listen` read
    what a plain `sleepcoach run` coaches with)."""
    if given:
        return ConfigChoice(given, "given")
    from_env = (os.environ if env is None else env).get("SLEEPCOACH_CONFIG")
    if from_env:
        return ConfigChoice(from_env, "environment")
    return ConfigChoice(str(EXAMPLE_CONFIG), "example")


class ConfigFile(Settings, Config):
    """The whole configuration file: the coaching `Config` and the shell's `Settings` in one YAML.

    The shell reads what it needs from here; the core is given `core`, which holds no broker,
    storage or Home Assistant setting, and so no secret.
    """

    _path: Path | None = PrivateAttr(None)

    @property
    def path(self) -> Path | None:
        """The file it was loaded from (None for a config made from text): part of the
        install's identity (`integrations.identity`)."""
        return self._path

    @cached_property
    def core(self) -> Config:
        """The coaching configuration alone: what `decide()` and the message parsers are given."""
        return Config.model_construct(**{name: getattr(self, name) for name in Config.model_fields})

    @cached_property
    def settings(self) -> Settings:
        """The shell's settings alone."""
        return Settings.model_construct(
            **{name: getattr(self, name) for name in Settings.model_fields}
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file: where (file, line, YAML path) and what is expected."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        """`FILE:LINE: path: message`, leaving out the parts that are not known."""
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(ProjectError):
    """The config file cannot be used; `problems` lists every reason found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        """Collect the problems; the message is one problem per line."""
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class _Secret:
    """Where one secret may come from."""

    section: str
    key: str
    file_key: str
    env: str
    noun: str


_SECRETS: Final = (
    _Secret("mqtt", "password", "password_file", "SLEEPCOACH_MQTT_PASSWORD", "password"),
    _Secret("homeassistant", "token", "token_file", "SLEEPCOACH_HA_TOKEN", "token"),
)


# ---------------------------------------------------------------------------------------------
# YAML with lines.


class LineLoader(yaml.SafeLoader):
    """A `yaml.SafeLoader` that records the line of every key and item and refuses duplicates."""

    def __init__(self, stream: str) -> None:
        """Read `stream`; call `load()` once."""
        super().__init__(stream)
        self.lines: dict[YamlPath, int] = {}
        self.duplicates: list[tuple[YamlPath, int, int]] = []

    def load(self) -> Any:
        """The document's data (None when empty), with `lines` and `duplicates` filled in."""
        try:
            node = self.get_single_node()
            if node is None:
                return None
            self.lines[()] = node.start_mark.line + 1
            self._walk(node, (), set())
            return self.construct_document(node)
        finally:
            self.dispose()

    def _walk(self, node: yaml.Node, path: YamlPath, active: set[int]) -> None:
        if id(node) in active:
            return  # an alias that contains itself
        active.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                    key_node, yaml.ScalarNode
                ):
                    continue  # `<<` merges may override keys; complex keys have no path
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                try:
                    seen = first.get(key)
                except TypeError:
                    continue
                if seen is not None:
                    # safe_load keeps the last value: its lines are the ones errors refer to.
                    self.duplicates.append(((*path, key), line, seen))
                    prefix = (*path, key)
                    for stale in [p for p in self.lines if p[: len(prefix)] == prefix]:
                        del self.lines[stale]
                first[key] = line
                self.lines[(*path, key)] = line
                self._walk(value_node, (*path, key), active)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                self._walk(item, (*path, index), active)
        active.discard(id(node))


# ---------------------------------------------------------------------------------------------
# Paths and messages.

_BARE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def yaml_path(parts: Sequence[str | int]) -> str:
    """A path as messages write it: `people[0].bedtime`, `rules."caffeine.cutoff".cutoff_hours`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if _BARE_KEY.match(part) else json.dumps(part, ensure_ascii=False)
        out += f".{name}" if out else name
    return out


def _line_of(lines: Mapping[YamlPath, int], loc: YamlPath) -> tuple[YamlPath, int | None]:
    """The longest prefix of `loc` that the file spells out, and its line."""
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return loc[:end], line
    return (), None


def _model_fields_at(loc: YamlPath) -> list[str] | None:
    """The keys allowed by the model that `loc` (a mapping in the file) is validated against."""
    annotation: Any = ConfigFile
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = annotation.model_fields
            field = next(
                (f for n, f in fields.items() if part in (n, f.alias)),
                None,
            )
            if field is None:
                return None
            annotation = field.annotation
        elif typing.get_origin(annotation) in (list, tuple) and isinstance(part, int):
            annotation = typing.get_args(annotation)[0]
        else:
            return None
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return None


def _unwrap(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` to X (the first model among a union's members)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0] if len(members) == 1 else annotation
            if len(members) != 1:
                return annotation
        else:
            return annotation


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


#: Keys the config once had, with what replaces them: a file written for an earlier version gets
#: told what to write now instead of "unknown key". Keyed by the path without list indexes.
RENAMED: Final[Mapping[YamlPath, str]] = {
    ("rules", "insight.correlation", "bootstrap_samples"): (
        "renamed: the weekly insight now uses a permutation test; set `permutations` (shuffles "
        "per comparison, default 2000) and `false_discovery_rate` (default 0.10) instead"
    ),
    ("rules", "exercise.late_intense", "moderate_hours_before_bed"): (
        "renamed: moderate exercise no longer counts; `alert_minutes_before_bed` (default 60) "
        "now sets how long before bedtime vigorous exercise gets the alert"
    ),
}


def _message(error: Mapping[str, Any]) -> str:
    """The error in plain words (`coach.config.plain_error`), unknown keys with a suggestion."""
    loc: YamlPath = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        renamed = RENAMED.get(tuple(p for p in loc if isinstance(p, str)))
        if renamed is not None:
            return renamed
        allowed = _model_fields_at(loc[:-1]) or []
        unknown = str(loc[-1])
        close = difflib.get_close_matches(unknown, allowed, n=1)
        if close:
            return f"unknown key; did you mean {close[0]!r}?"
        return f"unknown key; expected one of: {', '.join(allowed)}" if allowed else "unknown key"
    return plain_error(error)


# ---------------------------------------------------------------------------------------------
# Loading.


def load_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    resolve_secrets: bool = True,
    profiles: ProfileRegistry = PROFILES,
) -> ConfigFile:
    """Read, validate and complete a config file; raise ConfigError listing every problem.

    Device entries are checked against `profiles` (the shipped ones unless a caller adds its own).
    """
    file = os.fspath(path)
    try:
        raw = Path(file).read_bytes()
    except OSError as err:
        raise ConfigError(
            [Problem(file, None, "", f"cannot read the file: {err.strerror}")]
        ) from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        problem = Problem(file, None, "", f"the file is not UTF-8 text (byte {err.start})")
        raise ConfigError([problem]) from err
    config = config_from_yaml(
        text,
        file=file,
        base_dir=Path(file).parent,
        env=env,
        resolve_secrets=resolve_secrets,
        profiles=profiles,
    )
    config._path = Path(file).absolute()  # set once, where the file is read
    return config


def config_from_yaml(
    text: str,
    *,
    file: str = "<config>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    resolve_secrets: bool = True,
    profiles: ProfileRegistry = PROFILES,
) -> ConfigFile:
    """Validate YAML text as a config (errors name `file`); secret files are under `base_dir`."""
    loader = LineLoader(text)
    try:
        data = loader.load()
    except yaml.MarkedYAMLError as err:
        raise ConfigError([_yaml_problem(file, err)]) from err
    except yaml.YAMLError as err:
        raise ConfigError([Problem(file, None, "", f"not valid YAML: {err}")]) from err
    lines = loader.lines
    if data is None:
        msg = "the file is empty; expected a mapping with at least `timezone` and `people`"
        raise ConfigError([Problem(file, None, "", msg)])
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({_show(data)})"
        msg = f"the top level must be a mapping (key: value lines), got {kind}"
        raise ConfigError([Problem(file, lines.get(()), "", msg)])

    problems = [
        Problem(
            file,
            line,
            yaml_path(dup),
            f"duplicate key (also given on line {first}; only the last one would count)",
        )
        for dup, line, first in loader.duplicates
    ]
    data, refused = _refuse_literal_secrets(data, file, lines)
    problems += refused
    references = _reference_problems(data, file, lines)
    problems += references
    problems += _raw_device_problems(data, file, lines, profiles)
    config: ConfigFile | None = None
    try:
        config = ConfigFile.model_validate(data)
    except ValidationError as err:
        problems += _validation_problems(err, file, lines, data, skip_references=bool(references))
    if config is not None:
        problems += _shared_topic_problems(config, file, lines)
        problems += _own_topic_problems(config, file, lines)
    if problems or config is None:
        raise ConfigError(_in_line_order(problems))
    config = _anchor_tls_files(config, base_dir or Path())
    if resolve_secrets:
        config = _fill_secrets(
            config, file, base_dir or Path(), os.environ if env is None else env, lines
        )
    return config


def _anchor_tls_files(config: ConfigFile, base_dir: Path) -> ConfigFile:
    """TLS files, like secret files, are relative to the config file, not the working directory."""
    names = ("ca_file", "cert_file", "key_file")
    update = {
        name: str(base_dir / value)
        for name in names
        if (value := getattr(config.mqtt, name)) is not None and not Path(value).is_absolute()
    }
    if not update:
        return config
    return config.model_copy(update={"mqtt": config.mqtt.model_copy(update=update)})


def _yaml_problem(file: str, err: yaml.MarkedYAMLError) -> Problem:
    mark = err.problem_mark or err.context_mark
    what = err.problem or "unreadable"
    if err.context:
        what += f" ({err.context})"
    return Problem(file, mark.line + 1 if mark is not None else None, "", f"not valid YAML: {what}")


def _refuse_literal_secrets(
    data: dict[Any, Any], file: str, lines: Mapping[YamlPath, int]
) -> tuple[dict[Any, Any], list[Problem]]:
    """Take `password:`/`token:` out of the data (unseen by pydantic) with a problem for each."""
    problems: list[Problem] = []
    for secret in _SECRETS:
        section = data.get(secret.section)
        if isinstance(section, dict) and secret.key in section:
            where = (secret.section, secret.key)
            msg = (
                f"a {secret.noun} does not belong in the config file: put it in a file named by "
                f"`{secret.file_key}`, or set the environment variable {secret.env}"
            )
            problems.append(Problem(file, lines.get(where), yaml_path(where), msg))
            data = {**data, secret.section: {k: v for k, v in section.items() if k != secret.key}}
    return data, problems


def _raw_device_problems(
    data: Mapping[Any, Any], file: str, lines: Mapping[YamlPath, int], profiles: ProfileRegistry
) -> list[Problem]:
    """Each device's profile and options as its profile checks them (a bad JMESPath, …).

    Checked for every device entry that is valid by itself, so these come out beside the other
    problems of the file, not only once everything else is fixed.
    """
    devices = data.get("devices")
    if not isinstance(devices, list):
        return []
    found: list[Problem] = []
    for index, raw in enumerate(devices):
        try:
            device = Device.model_validate(raw)
        except ValidationError:
            continue  # reported by the whole file's validation
        for problem in profiles.option_problems(device):
            loc: YamlPath = ("devices", index, *problem.path)
            _, line = _line_of(lines, loc)
            found.append(Problem(file, line, yaml_path(loc), problem.message))
    return found


def _reference_problems(
    data: Mapping[Any, Any], file: str, lines: Mapping[YamlPath, int]
) -> list[Problem]:
    """Ids given twice and devices naming someone not in `people`, each at its own line.

    Read from the file's data, so they are reported even when other parts of the file are wrong
    (the model's own check runs only once everything else is valid).
    """
    people = data.get("people")
    devices = data.get("devices")
    if not isinstance(people, list):
        return []
    person_ids = [p.get("id") if isinstance(p, dict) else None for p in people]
    device_refs = [
        (d.get("id"), d.get("person")) if isinstance(d, dict) else (None, None)
        for d in (devices if isinstance(devices, list) else [])
    ]
    found: list[Problem] = []
    for problem in reference_problems(person_ids, device_refs):
        message = problem.message
        if len(problem.at) > 1:
            at = [str(lines[loc]) for loc in problem.at if loc in lines]
            message += f", lines {', '.join(at[:-1])} and {at[-1]}"
            path = yaml_path(problem.loc[:1])
        else:
            path = yaml_path(problem.loc)
        found.append(Problem(file, _line_of(lines, problem.loc)[1], path, message))
    return found


def _in_line_order(problems: Sequence[Problem]) -> list[Problem]:
    """The problems as the file reads, top to bottom (those without a line first)."""
    return sorted(problems, key=lambda p: -1 if p.line is None else p.line)


def _shared_topic_problems(
    config: ConfigFile, file: str, lines: Mapping[YamlPath, int]
) -> list[Problem]:
    """Two devices on the same topic: only the first would ever hear it, the other is silent."""
    found: list[Problem] = []
    first_on: dict[str, int] = {}
    for index, device in enumerate(config.devices):
        first = first_on.setdefault(device.topic, index)
        if first == index:
            continue
        other = config.devices[first]
        loc: YamlPath = ("devices", index, "topic")
        _, line = _line_of(lines, loc)
        _, other_line = _line_of(lines, ("devices", first, "topic"))
        here = f"line {other_line}" if other_line is not None else "above"
        msg = (
            f"device {device.id!r} listens on {device.topic!r}, the topic of device {other.id!r} "
            f"({here}): only {other.id!r} would ever get its messages."
        )
        if device.kind == other.kind == "coffee_maker":
            people = list(dict.fromkeys((*other.people, *device.people)))
            msg += (
                f" A coffee maker several people use is one device with a list of people: "
                f"person: [{', '.join(people)}] (each brew then asks whose it was)"
            )
        elif device.kind == other.kind:
            msg += f" A {device.kind} measures one person: give each its own topic"
        else:
            msg += " Give each device its own topic"
        found.append(Problem(file, line, yaml_path(loc), msg))
    return found


def own_filters(config: ConfigFile) -> list[tuple[str, str]]:
    """The filters the coach publishes on or listens to, each with what it is."""
    prefix = config.mqtt.topic_prefix
    own = [(f"{prefix}/#", "the coach's own topics, under mqtt.topic_prefix")]
    ha = config.homeassistant
    if ha is not None:
        own.append((discovery.birth_topic(config), "where Home Assistant says it is online"))
        if ha.discovery:
            node = discovery.node_id(config)
            own.append(
                (f"{ha.discovery_prefix}/+/{node}/+/config", "the coach's Home Assistant discovery")
            )
    return own


def _own_topic_problems(
    config: ConfigFile, file: str, lines: Mapping[YamlPath, int]
) -> list[Problem]:
    """Device topics on the coach's own topics (or on everything), and a topic prefix on Home
    Assistant's; the rules are `coach.decode.topic`'s."""
    found: list[Problem] = []
    own = own_filters(config)
    for index, device in enumerate(config.devices):
        problem = own_topic_problem(device.topic, own)
        if problem is not None:
            loc: YamlPath = ("devices", index, "topic")
            _, line = _line_of(lines, loc)
            found.append(Problem(file, line, yaml_path(loc), problem))
    prefix = config.mqtt.topic_prefix
    for own_filter, what in own[1:]:
        if overlaps(f"{prefix}/#", own_filter):
            loc = ("mqtt", "topic_prefix")
            _, line = _line_of(lines, loc)
            msg = (
                f"the coach's topics ({prefix}/...) would mix with {own_filter} ({what}): "
                "choose another prefix"
            )
            found.append(Problem(file, line, yaml_path(loc), msg))
            break
    return found


def _validation_problems(
    err: ValidationError,
    file: str,
    lines: Mapping[YamlPath, int],
    data: Mapping[Any, Any],
    *,
    skip_references: bool,
) -> Iterator[Problem]:
    """Each pydantic error at its line; the model's id checks are left out when `skip_references`
    (`_reference_problems` has reported them at their own lines already)."""
    for error in err.errors(include_url=False, include_context=True):
        loc: YamlPath = tuple(error["loc"])
        message = _message(error)
        if not loc:
            if skip_references and error["type"] == "value_error":
                continue
            # A whole-config check (config.py words them "devices: …"): point at that section.
            head, sep, rest = message.partition(": ")
            if sep and head in data:
                loc, message = (head,), rest
        found, line = _line_of(lines, loc)
        shown = loc if error["type"] == "missing" else found
        yield Problem(file, line, yaml_path(shown) or "(top level)", message)


def _fill_secrets(
    config: ConfigFile,
    file: str,
    base_dir: Path,
    env: Mapping[str, str],
    lines: Mapping[YamlPath, int],
) -> ConfigFile:
    """Config with the password and token filled from the environment or their files."""
    problems: list[Problem] = []
    updates: dict[str, BaseModel] = {}
    for secret in _SECRETS:
        section: BaseModel | None = getattr(config, secret.section)
        if section is None:
            continue
        value = env.get(secret.env) or None
        secret_file: str | None = getattr(section, secret.file_key)
        if value is None and secret_file is not None:
            where = (secret.section, secret.file_key)
            try:
                value = _read_secret_file(base_dir / secret_file, secret.noun)
            except ValueError as err:
                problems.append(Problem(file, lines.get(where), yaml_path(where), str(err)))
                continue
        if value is not None:
            updates[secret.section] = section.model_copy(update={secret.key: SecretStr(value)})
    if problems:
        raise ConfigError(problems)
    return config.model_copy(update=updates) if updates else config


def _read_secret_file(path: Path, noun: str) -> str:
    """The secret in `path`, trailing newline cut; errors name the file, never the content."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        msg = f"cannot read the {noun} file {str(path)!r}: {err.strerror}"
        raise ValueError(msg) from None
    try:
        value = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        msg = f"the {noun} file {str(path)!r} is not UTF-8 text"
        raise ValueError(msg) from None
    if not value:
        msg = f"the {noun} file {str(path)!r} is empty"
        raise ValueError(msg)
    return value


def with_env_overrides(config: ConfigFile, env: Mapping[str, str]) -> ConfigFile:
    """`SLEEPCOACH_MQTT_URL` and `SLEEPCOACH_STORAGE_URL` replace the file's URLs, and
    `SLEEPCOACH_DASHBOARD_LISTEN` the dashboard's address.

    For containers and service managers, where the broker's and the database's addresses and the
    dashboard's belong to the deployment (docker-compose.yml sets the first and the last), not to
    the coaching config.
    """
    mqtt_url = env.get("SLEEPCOACH_MQTT_URL")
    storage_url = env.get("SLEEPCOACH_STORAGE_URL")
    listen = env.get("SLEEPCOACH_DASHBOARD_LISTEN")
    if mqtt_url:
        config = config.model_copy(
            update={"mqtt": config.mqtt.model_copy(update={"url": mqtt_url})}
        )
    if storage_url:
        storage = config.storage.model_copy(update={"url": storage_url})
        config = config.model_copy(update={"storage": storage})
    if listen:
        # Validated like the file's value: a bad address is a config error, not a crash.
        try:
            dashboard = DashboardSettings.model_validate(
                {**config.dashboard.model_dump(), "listen": listen}
            )
        except ValidationError as err:
            why = err.errors()[0]["msg"].removeprefix("Value error, ")
            raise ConfigError([Problem("SLEEPCOACH_DASHBOARD_LISTEN", None, "", why)]) from err
        config = config.model_copy(update={"dashboard": dashboard})
    return config
