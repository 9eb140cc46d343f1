"""The README's first command, `scripts/run`, in a fresh copy of the repository: it says what it
installs while it installs (a first install fetches ~75 packages), then runs the coach; the
second time it installs nothing. The copy holds the files git would clone (tracked or new, not
ignored), so the test sees the working tree; its install fetches the dependencies (PyPI, or pip's
cache), so it takes a minute or two.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.broker import ROOT, Broker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def fresh_copy(dest: Path) -> Path:
    """The repository's files as a clone would have them, without .venv or any local state."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return dest


def test_scripts_run_shows_progress_while_it_installs_and_nothing_the_second_time(
    broker: Broker, tmp_path: Path
) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing says which files a clone has")
    clone = fresh_copy(tmp_path / "sleepcoach")
    env = dict(os.environ)
    env.update(
        XDG_DATA_HOME=str(tmp_path / "data"),
        SLEEPCOACH_MQTT_URL=broker.url,
        PYTHONDONTWRITEBYTECODE="1",
    )
    for name in ("SLEEPCOACH_CONFIG", "SLEEPCOACH_STORAGE_URL", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)

    lines = []
    installed_at_first_package = None
    with subprocess.Popen(
        ["scripts/run", "--check"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if installed_at_first_package is None and re.fullmatch(r"\s+1 \S+", lines[-1]):
                # Said while pip is still at work: the command it installs is not there yet.
                installed_at_first_package = (clone / ".venv" / "bin" / "sleepcoach").exists()
        returncode = proc.wait(600)
    output = "\n".join(lines)
    assert returncode == 0, output
    assert lines[0].startswith("sleepcoach: creating .venv with Python 3."), output
    assert lines[1].startswith("sleepcoach: installing . into .venv"), output
    packages = [x for x in lines if re.fullmatch(r"\s+\d+ [A-Za-z0-9._-]+", x)]
    assert len(packages) >= 20, output
    assert installed_at_first_package is False, "the progress came only after the install"
    assert "sleepcoach: installed sleepcoach " in output
    assert "storage: OK" in output
    assert f"broker: OK (mqtt://127.0.0.1:{broker.port}" in output

    again = subprocess.run(
        ["scripts/run", "--check"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sleepcoach: install" not in again.stdout + again.stderr
    assert again.stdout.startswith("storage: OK"), again.stdout
