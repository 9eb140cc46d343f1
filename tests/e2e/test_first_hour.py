"""The README's first hour, run as it is written: its commands, in its order, and its output.

The walkthrough's blocks are marked `<!-- first-hour: NAME -->` in README.md. This test takes the
commands from there (lines starting with `$ `), runs them as a shell would in a folder laid out
like a fresh clone (`scripts/`, `.venv`, `pyproject.toml`, `constraints.txt`; the install done
beforehand, outside, so `scripts/run` starts at once), on the real port 127.0.0.1:1883 the
README uses, inside a private network namespace (see tests/e2e/test_first_run.py), and checks
that what they print still says what the README shows:

- `scripts/run`: every line the README shows, in order, with numbers and paths free;
- `mosquitto_sub -t 'sleepcoach/#' -v` after the two coffees: each line shown is there, on its
  topic, a JSON payload with the same keys (a nudge with the same rule and title, a state with
  the same day's caffeine), any other payload equal;
- the retained state: the same keys, person and day's caffeine, its last nudge one that went out;
- the report and the dashboard: every line shown, in order, with numbers free.

The scenario runs in a child process inside the namespace: this module, run as
`python -m tests.e2e.test_first_hour first-hour <home>`; it prints what it saw as one JSON document.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.broker import ROOT, mosquitto_or_skip
from tests.e2e.test_first_run import _in_namespace

pytestmark = [pytest.mark.timeout(120), pytest.mark.mosquitto]

README = ROOT / "README.md"
_BLOCK = re.compile(r"<!-- first-hour: (\w+) -->\n```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
#: What `scripts/run` is given time to print before the commands after it run.
READY = "is listening"


@dataclass(frozen=True)
class Block:
    """One marked block of the walkthrough: its commands and the output shown under them."""

    commands: list[str]
    output: list[str]


def walkthrough(text: str) -> dict[str, Block]:
    """The marked blocks of the README, by name."""
    blocks: dict[str, Block] = {}
    for name, language, body in _BLOCK.findall(text):
        lines = body.splitlines()
        if language == "console":
            commands = [line[2:] for line in lines if line.startswith("$ ")]
            output = [line for line in lines if not line.startswith("$ ")]
        else:
            commands, output = [], lines
        blocks[name] = Block(commands, output)
    return blocks


# -- comparing what was printed with what the README shows ---------------------------------------

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_PATH = re.compile(r"(?<![\w.])/[^\s'\")]+")
_WEEKDAY = re.compile(r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b")
_FREE: dict[str, str] = {
    "client_id": r"\S+",
    "host": r"\S+",
    "path": r"\S+",
    "number": r"\d+(?:\.\d+)?",
    "weekday": r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)",
    "space": r"\s+",
    "rule": r"-+",
}
_PARTS = re.compile(
    r"(?P<client_id>sleepcoach-[\w.-]+-[0-9a-f]{8}\b)|(?<=host )(?P<host>[\w.-]+)|"
    f"(?P<path>{_PATH.pattern})|(?P<number>{_NUMBER.pattern})|(?P<weekday>{_WEEKDAY.pattern})"
    r"|(?P<space>\s+)|(?P<rule>-{2,})"
)


def _pattern(shown: str) -> re.Pattern[str]:
    """A shown line as a pattern: its words fixed; numbers, dates, weekdays, absolute paths, the
    host's name and the client id derived from it, the width of a table's columns and rules
    free."""
    out, at = "", 0
    for match in _PARTS.finditer(shown):
        out += re.escape(shown[at : match.start()]) + _FREE[str(match.lastgroup)]
        at = match.end()
    out += re.escape(shown[at:])
    # Whether the caffeine left at bedtime is high depends on the hour of the coffees.
    return re.compile(out.replace(r"mg\s+high", r"mg(?:\s+high)?"))


def missing_in_order(shown: list[str], printed: list[str]) -> list[str]:
    """The shown lines (blank ones aside) not found in `printed`, each after the one before."""
    missing, at = [], 0
    for line in (s.strip() for s in shown):
        if not line:
            continue
        pattern = _pattern(line)
        found = next((i for i in range(at, len(printed)) if pattern.search(printed[i])), None)
        if found is None:
            missing.append(line)
        else:
            at = found + 1
    return missing


def _parse(payload: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def _same_message(shown: Any, printed: Any) -> bool:
    """A published payload in substance: an object's keys, a nudge's rule and title, a state's
    person and day's caffeine; anything else equal."""
    if not isinstance(shown, dict):
        return bool(shown == printed)
    if not isinstance(printed, dict) or set(shown) != set(printed):
        return False
    fixed = ("person", "rule", "title", "caffeine_mg_today")
    return all(shown.get(k) == printed.get(k) for k in fixed)


def messages_missing(shown: list[str], printed: list[str]) -> list[str]:
    """The `topic payload` lines shown that no printed line matches (each printed line once)."""
    left = [line.split(" ", 1) for line in printed if " " in line]
    missing = []
    for line in shown:
        if not line.strip():
            continue
        topic, payload = line.split(" ", 1)
        want = _parse(payload)
        found = next(
            (i for i, (t, p) in enumerate(left) if t == topic and _same_message(want, _parse(p))),
            None,
        )
        if found is None:
            missing.append(line)
        else:
            del left[found]
    return missing


# -- the test ------------------------------------------------------------------------------------


def test_the_readmes_first_hour_runs_as_written_and_prints_what_it_shows(tmp_path: Path) -> None:
    for client in ("mosquitto_sub", "mosquitto_pub", "curl"):
        if shutil.which(client) is None:
            mosquitto_or_skip("")  # fails where Mosquitto is required
            pytest.skip(f"needs {client}, one of the README's commands")
    mosquitto_or_skip("the README's first hour starts the installed Mosquitto")
    blocks = walkthrough(README.read_text(encoding="utf-8"))
    assert list(blocks) == [
        "run",
        "subscribe",
        "publish",
        "subscribed",
        "state",
        "report",
        "dashboard",
    ]
    # The install `scripts/run` begins with, done here where the network is: nothing to do
    # unless pyproject.toml or constraints.txt changed since (the namespace has no network).
    subprocess.run([str(ROOT / "scripts" / "install")], cwd=ROOT, check=True, timeout=600)
    seen = _in_namespace("first-hour", tmp_path, module="tests.e2e.test_first_hour", timeout=100)
    run_out = seen["run"].splitlines()
    assert not missing_in_order(blocks["run"].output, run_out), seen["run"]
    assert blocks["subscribed"].output, "the README shows what mosquitto_sub printed"
    printed = seen["subscribed"].splitlines()
    assert not messages_missing(blocks["subscribed"].output, printed), seen["subscribed"]

    shown_state = json.loads("\n".join(blocks["state"].output))
    state = json.loads(seen["state"])
    assert set(state) == set(shown_state)
    for key in ("person", "caffeine_mg_today"):
        assert state[key] == shown_state[key], key
    # Its last nudge is one that went out (from 13:30 a "No caffeine now" may be the latest).
    sent = [
        _parse(line.split(" ", 1)[1])
        for line in printed
        if line.startswith("sleepcoach/alex/nudge ")
    ]
    assert state["last_nudge"]["id"] in [n["id"] for n in sent], (state, sent)

    for name in ("report", "dashboard"):
        assert blocks[name].output, f"the README shows the {name}'s output"
        assert not missing_in_order(blocks[name].output, seen[name].splitlines()), seen[name]
    assert seen["exit"] == 0, seen["run"]


# -- the scenario, run inside the namespace ------------------------------------------------------


def _clone(home: Path) -> Path:
    """A folder laid out like the clone the README starts in, with the install already done."""
    clone = home / "sleepcoach"
    clone.mkdir()
    for name in ("scripts", ".venv", "pyproject.toml", "constraints.txt"):
        (clone / name).symlink_to(ROOT / name)
    return clone


def _wait(check: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not check() and time.monotonic() < end:
        time.sleep(0.05)


def scenario(home: Path) -> dict[str, Any]:
    """Run the README's first hour in `home`; what each step printed."""
    blocks = walkthrough(README.read_text(encoding="utf-8"))
    clone = _clone(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEEPCOACH_")}
    env.update(XDG_DATA_HOME=str(home / "data"), PYTHONUNBUFFERED="1")
    env["PATH"] = f"{env.get('PATH', '')}:/usr/sbin"
    run_out, sub_out = home / "run.out", home / "sub.out"

    def text(path: Path) -> str:
        return path.read_text(errors="replace") if path.exists() else ""

    def shell(command: str) -> str:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
            check=False,
        )
        out = done.stdout.decode(errors="replace")
        assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{out}"
        return out

    def background(command: str, out: Path) -> subprocess.Popen[bytes]:
        with out.open("wb") as sink:
            return subprocess.Popen(
                ["bash", "-c", command],
                cwd=clone,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    seen: dict[str, Any] = {}
    (run_command,) = blocks["run"].commands
    (sub_command,) = blocks["subscribe"].commands
    coach = background(run_command, run_out)
    sub: subprocess.Popen[bytes] | None = None
    try:
        _wait(lambda: READY in text(run_out) or coach.poll() is not None)
        assert READY in text(run_out), text(run_out)
        sub = background(sub_command, sub_out)
        _wait(lambda: "sleepcoach/status online" in text(sub_out))
        for command in blocks["publish"].commands:
            shell(command)
        # Everything the README shows has come: the nudge and the state with both coffees.
        shown = blocks["subscribed"].output
        _wait(lambda: not messages_missing(shown, text(sub_out).splitlines()))
        time.sleep(0.5)  # and what else comes with them
        seen["subscribed"] = text(sub_out)
        (state_command,) = blocks["state"].commands
        seen["state"] = shell(state_command)
        (report_command,) = blocks["report"].commands
        seen["report"] = shell(report_command)
        (dashboard_command,) = blocks["dashboard"].commands
        seen["dashboard"] = shell(dashboard_command)
        os.killpg(coach.pid, signal.SIGINT)  # Ctrl-C
        seen["exit"] = coach.wait(15)
        return seen
    finally:
        for proc in (sub, coach):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        seen["run"] = text(run_out)


def main(argv: list[str]) -> int:
    """`first-hour HOME`: run the scenario (inside a namespace); print what it saw as JSON."""
    _name, home = argv
    print(json.dumps(scenario(Path(home))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
