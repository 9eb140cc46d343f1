"""A `sleepcoach` subcommand as data: its name, help, arguments and handler, and how it says things.

Each subcommand module (`integrations.daemon` for `run`, `integrations.simulator` for `simulate`,
...) defines a `Command` and a `register(subparsers)` that adds it; `integrations.cli` imports
them all and builds the parser. This module depends on nothing of the project, so a subcommand
module never imports the command line that imports it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[argparse.Namespace], int]
SubParsers = Any  # argparse's _SubParsersAction is private; it is what add_subparsers returns


def say(text: object = "", *, err: bool = False) -> None:
    """Write one line of the command's output (stdout) or of its diagnostics (stderr)."""
    # Flushed: under a service manager stdout is a pipe to the journal, block-buffered, and the
    # daemon's "listening" lines would otherwise show only when it stops.
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


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
