"""The `sleepcoach` command line: one subcommand per entry, each defined where its work lives.

How it works: the parser is built from `Command` entries (`integrations.subcommand`): name, help,
arguments and handler. `check-config` and `schema` are defined here; the others live in their own
modules (`integrations.daemon` for `run`, `integrations.simulator` for `simulate`,
`integrations.report` for `report`, ...), each exposing `register(subparsers)`. They are imported
plainly: a subcommand whose module or dependency is broken fails the command at once, loudly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import Final

from integrations import daemon, devices, report, simulator, synth_cli
from integrations.config_file import ConfigError, ConfigFile, choose_config, load_config
from integrations.error import ProjectError
from integrations.subcommand import Command, Handler, say

# -- check-config ------------------------------------------------------------------------------


def _check_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help="the YAML config file (default: $SLEEPCOACH_CONFIG, else the example config, as "
        "`run`)",
    )
    parser.add_argument(
        "--no-secrets",
        action="store_true",
        help="do not read password_file / token_file (for CI, where the secrets are absent)",
    )


def check_config(args: argparse.Namespace) -> int:
    """Validate a config file: `OK: …` and exit 0, or every problem as FILE:LINE: path: message."""
    choice = choose_config(args.file)
    if choice.notice is not None:
        say(choice.notice, err=True)
    try:
        config = load_config(choice.path, resolve_secrets=not args.no_secrets)
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
    say(json.dumps(ConfigFile.model_json_schema(by_alias=True), indent=2, ensure_ascii=False))
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
SUBCOMMAND_MODULES: Final = (simulator, daemon, report, devices, synth_cli)


def build_parser() -> argparse.ArgumentParser:
    """The full parser: the built-in commands, then every subcommand module's."""
    parser = argparse.ArgumentParser(
        prog="sleepcoach", description="A local-only sleep coach for the smart home."
    )
    parser.add_argument(
        "--version", action="version", version=f"sleepcoach {version('sleepcoach')}"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in BUILTIN_COMMANDS:
        command.register(subparsers)
    for module in SUBCOMMAND_MODULES:
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
