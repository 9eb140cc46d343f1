"""`sleepcoach synth`: write a scenario of seeded synthetic nights for `sleepcoach simulate`.

How it works: `integrations.night_synth` draws each night from a seed (bed entry, settling,
hypnic jerks, periodic limb-movement trains, posture changes, twitches, sensor noise) and knows its
truth; this command writes consecutive nights as scenario lines for the bed device's topic, as the
native `movement`/`occupancy` events a bed device publishes, or with `--accel` also as raw 50 Hz
`accel` chunks (about 60 MB a night). The truth of every night (PLM index per hour asleep by WASM
2016, hypnic jerks) is printed, one line per night, so a run's summaries can be checked against it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Final

from integrations.subcommand import Command, SubParsers, say

#: A winter evening in Berlin: the recording of the first night starts then.
DEFAULT_START: Final = "2026-11-24T21:30:00+01:00"


def _aware(text: str) -> datetime:
    """An ISO 8601 date-time with a UTC offset, for argparse."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from err
    if value.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset")
    return value


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="SCENARIO.jsonl", help='"-" for stdout')
    parser.add_argument("--nights", type=int, default=1, help="consecutive nights (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first night (default 1)")
    parser.add_argument(
        "--start",
        type=_aware,
        default=_aware(DEFAULT_START),
        help=f"when the first night's recording starts, with offset (default {DEFAULT_START})",
    )
    parser.add_argument("--topic", default="home/bedroom/bed", help="the bed device's topic")
    parser.add_argument(
        "--noise", choices=("low", "medium", "high"), default="medium", help="sensor noise level"
    )
    parser.add_argument(
        "--plm-index", type=float, help="PLM index per hour asleep of every night (default: drawn)"
    )
    parser.add_argument(
        "--hypnic-jerks", type=int, help="hypnic jerks at sleep onset per night (default: drawn)"
    )
    parser.add_argument(
        "--accel", action="store_true", help="include raw 50 Hz accel chunks (large files)"
    )


def run_command(args: argparse.Namespace) -> int:
    """Write the scenario; print each night's truth. 0 on success, 1 when it cannot be written."""
    # Imported here: numpy-heavy, and only this command needs it (every other command starts
    # faster without it).
    from integrations import night_synth  # noqa: PLC0415

    if args.nights < 1:
        say("sleepcoach synth: --nights must be at least 1", err=True)
        return 2
    starts = night_synth.nightly_starts(args.start, args.nights)
    nights = [
        night_synth.random_night(
            args.seed + i,
            start,
            noise=args.noise,
            plm_index=args.plm_index,
            hypnic_jerks=args.hypnic_jerks,
            with_accel=args.accel,
        )
        for i, start in enumerate(starts)
    ]
    try:
        if args.out == "-":
            lines = night_synth.write_scenario(
                sys.stdout, nights, topic=args.topic, include_accel=args.accel
            )
        else:
            lines = night_synth.write_scenario(
                args.out, nights, topic=args.topic, include_accel=args.accel
            )
    except OSError as err:
        say(f"sleepcoach synth: cannot write {args.out}: {err.strerror}", err=True)
        return 1
    report = sys.stderr if args.out == "-" else sys.stdout
    for i, night in enumerate(nights):
        truth = night.truth
        print(
            f"night {i + 1} (seed {args.seed + i}): in bed {truth.time_in_bed_s / 3600:.1f} h, "
            f"PLM index {truth.plm_index:.1f}/h (WASM), {truth.hypnic_jerks} hypnic jerks",
            file=report,
        )
    print(f"wrote {lines} lines, {len(nights)} nights", file=report)
    return 0


COMMAND: Final = Command(
    "synth",
    "write a scenario of seeded synthetic nights (bed movements and occupancy, optionally raw "
    "accel) with known truth, for `sleepcoach simulate`",
    _arguments,
    run_command,
)


def register(subparsers: SubParsers) -> None:
    """Add `synth` to the `sleepcoach` command (called by `integrations.cli`)."""
    COMMAND.register(subparsers)
