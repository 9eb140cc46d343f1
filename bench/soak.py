"""Soak: the suite's mixed-load test (tests/e2e/test_soak.py) for longer than its 60 s.

    .venv/bin/python bench/soak.py [--minutes 10]

Valid readings, garbage, floods, clock games, commands and a broker restart half-way, against
`sleepcoach run` on Mosquitto; it fails as the test does (a crash, a valid reading lost or stored
twice, the resident set beyond its ceiling) and prints the figures: messages by kind, payload
pushed, RSS after the warm-up, at its peak and at the end, and the database's size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Run the soak test for `--minutes` and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    env = {
        **os.environ,
        "SLEEPCOACH_SOAK_S": str(args.minutes * 60),
        "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin",
        "SLEEPCOACH_TEST_REQUIRE_MOSQUITTO": "1",
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/e2e/test_soak.py",
        "-s",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    figures = [line for line in done.stdout.splitlines() if line.startswith("soak: ")]
    for line in figures:
        print(line)
    if done.returncode != 0 or not figures:
        print(done.stdout[-20000:], done.stderr[-5000:], sep="\n", file=sys.stderr)
        return done.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
