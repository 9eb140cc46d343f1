"""The `sleepcoach` command line: one subcommand per entry, each defined where its work lives.

How it works: the parser is built from `Command` entries, `(name, help, add_arguments,
handler)`. `check-config` and `schema` are defined here. Other subcommands live in their own
modules (`integrations.simulator` for `simulate`, `integrations.daemon` for `run`,
`integrations.report` for `report`), each exposing `register(subparsers)`, which typically calls
`Command(...).register(subparsers)`. Those modules are imported only when the parser is built,
each inside its own `try`, so one that does not exist yet (or cannot import its dependencies)
never breaks `check-config`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from coach.config import Config
from integrations.config_file import ConfigError, load_config
from integrations.error import ProjectError

Handler = Callable[[argparse.Namespace], int]
SubParsers = Any  # argparse's _SubParsersAction is private; it is what add_subparsers returns


def say(text: object = "", *, err: bool = False) -> None:
    """Write one line of the command's output (stdout) or of its diagnostics (stderr)."""
    print(text, file=sys.stderr if err else sys.stdout)


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: its name, one-line help, how it adds its arguments, and what it runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Handler

    def register(self, subparsers: SubParsers) -> argparse.ArgumentParser:
        """Add this command to `subparsers` (what `add_subparsers()` returned)."""
        parser: argparse.ArgumentParser = subparsers.add_parser(
            self.name, help=self.help, description=self.help
        )
        self.add_arguments(parser)
        parser.set_defaults(handler=self.handler)
        return parser


# -- check-config ------------------------------------------------------------------------------


def _check_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the YAML config file")
    parser.add_argument(
        "--no-secrets",
        action="store_true",
        help="do not read password_file / token_file (for CI, where the secrets are absent)",
    )


def check_config(args: argparse.Namespace) -> int:
    """Validate a config file: `OK: …` and exit 0, or every problem as FILE:LINE: path: message."""
    try:
        config = load_config(args.file, resolve_secrets=not args.no_secrets)
    except ConfigError as err:
        for problem in err.problems:
            say(problem)
        return 1
    people = _count(len(config.people), "person", "people")
    devices = _count(len(config.devices), "device", "devices")
    say(f"OK: {people}, {devices}")
    return 0


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


# -- schema ------------------------------------------------------------------------------------


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def print_schema(args: argparse.Namespace) -> int:
    """Print the config file's JSON Schema (keys as written in YAML, rule ids included)."""
    del args
    say(json.dumps(Config.model_json_schema(by_alias=True), indent=2, ensure_ascii=False))
    return 0


BUILTIN_COMMANDS: Final = (
    Command(
        "check-config",
        "validate a config file; every error names its YAML path and line (exit 1 on errors)",
        _check_config_arguments,
        check_config,
    ),
    Command("schema", "print the config file's JSON Schema", _no_arguments, print_schema),
)

#: Modules that add a subcommand through `register(subparsers)`, in help order.
PLUGIN_MODULES: Final = (
    "integrations.simulator",
    "integrations.daemon",
    "integrations.report",
    "integrations.profile.command",
    "integrations.synth_cli",
)


def build_parser(plugins: Sequence[str] = PLUGIN_MODULES) -> argparse.ArgumentParser:
    """The full parser: the built-in commands, then every plugin module that imports."""
    parser = argparse.ArgumentParser(
        prog="sleepcoach", description="A local-only sleep coach for the smart home."
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in BUILTIN_COMMANDS:
        command.register(subparsers)
    for name in plugins:
        try:
            module = importlib.import_module(name)
        except ImportError as err:
            if err.name != name:
                # The module exists but a dependency is broken: say so, keep the other commands.
                say(f"sleepcoach: {name} is unavailable: {err}", err=True)
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `sleepcoach` command and return its exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except ProjectError as err:
        say(f"sleepcoach: {err}", err=True)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
