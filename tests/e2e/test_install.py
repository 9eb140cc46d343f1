"""sleepcoach installed as a person installs it, outside the repository.

The systemd steps of docs/daemon.md run as written, from a wheel built here, with /opt/sleepcoach,
/etc/sleepcoach and /etc/systemd/system moved into a temporary folder (the steps that need root's
powers, `apt`, `useradd` and `systemctl`, are left out; the group is the test's own). Then:
the installed command from an empty folder with no config (it runs the example config inside the
package); the unit's ExecStart line run with the unit's environment, umask and state directory, as
systemd would; the container's command and environment (Dockerfile, docker-compose.yml) run on
this machine, since no Docker engine runs here. Each fresh install fetches the dependencies
(PyPI, or pip's cache), so the module takes a minute or two.
"""

from __future__ import annotations

import configparser
import grp
import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.broker import ROOT, Broker, free_port
from tests.e2e.conftest import Recorder

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
#: What the docs' steps run only as root, with the system's own tools.
ROOT_ONLY = ("apt ", "useradd ", "systemctl ")


@dataclass(frozen=True)
class Installed:
    """A sleepcoach installed by the documented steps under `root`, which stands for /."""

    root: Path

    def path(self, absolute: str) -> Path:
        """Where an absolute path of the docs or the unit lives in this installation."""
        return self.root / absolute.lstrip("/")

    def rewrite(self, text: str) -> str:
        """`text` with the system paths of the docs and the unit moved under `root`."""
        for system in ("/opt/sleepcoach", "/etc/sleepcoach", "/etc/systemd/system", "/var/lib"):
            text = text.replace(system, str(self.path(system)))
        return text

    @property
    def bin(self) -> Path:
        return self.path("/opt/sleepcoach/bin")

    @property
    def unit(self) -> configparser.ConfigParser:
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read(self.path("/etc/systemd/system/sleepcoach.service"))
        return unit


def documented_steps() -> list[str]:
    """The shell lines of the first `sh` block under "### systemd" in docs/daemon.md."""
    text = (ROOT / "docs" / "daemon.md").read_text()
    section = text[text.index("### systemd") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "docs/daemon.md, systemd: no sh block with the install steps"
    return [line for line in block.group(1).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The documented steps, run as written, from a freshly built wheel into a temporary '/'."""
    work = tmp_path_factory.mktemp("install")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(work), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = work.glob("sleepcoach-*.whl")
    inst = Installed(work / "root")
    for folder in ("/opt", "/etc/systemd/system"):
        inst.path(folder).mkdir(parents=True)
    group = grp.getgrgid(os.getgid()).gr_name
    ran = []
    for line in documented_steps():
        if line.startswith(ROOT_ONLY):
            continue
        command = inst.rewrite(line).replace("-g sleepcoach", f"-g {group}")
        # The clone's `pip install ... .` installs the wheel built from it; here that wheel.
        command = re.sub(r"(pip install .*) \.(\s|$)", rf"\1 {wheel}\2", command)
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
        ran.append(line)
    assert any("pip install" in line for line in ran), ran
    return inst


def test_the_documented_steps_install_the_coach_its_config_unit_and_documentation(
    installed: Installed,
) -> None:
    config = installed.path("/etc/sleepcoach/config.yaml")
    assert config.read_text() == (ROOT / "config" / "example.yaml").read_text()
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert stat.S_IMODE(installed.path("/etc/sleepcoach").stat().st_mode) == 0o750
    unit = installed.unit
    documentation = unit["Unit"]["Documentation"].removeprefix("file://")
    assert installed.path(documentation).read_text() == (ROOT / "docs/daemon.md").read_text()
    [binary, *_] = shlex.split(unit["Service"]["ExecStart"])
    assert installed.path(binary).is_file()
    # The package holds what runs, and the example config as a file of its own.
    [package] = installed.path("/opt/sleepcoach/lib").glob("python3*/site-packages/integrations")
    assert (package / "example.yaml").is_file()
    assert not (package / "example.yaml").is_symlink()
    assert not (package.parent / "coach" / "ruff.toml").exists(), "lint settings in the wheel"


def test_the_installed_command_runs_the_example_inside_the_package_from_an_empty_folder(
    installed: Installed, broker: Broker, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {
        "PATH": f"{installed.bin}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "SLEEPCOACH_MQTT_URL": broker.url,
    }

    def sleepcoach(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(installed.bin / "sleepcoach"), *args],
            cwd=empty,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert sleepcoach("--version").stdout == f"sleepcoach {VERSION}\n"
    check = sleepcoach("run", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "storage: OK" in check.stdout
    assert f"broker: OK (mqtt://127.0.0.1:{broker.port}" in check.stdout
    said = re.search(r"running the example config (\S+)", check.stderr)
    assert said is not None, check.stderr
    example = Path(said.group(1))
    assert example.is_relative_to(installed.path("/opt/sleepcoach")), example
    assert example.read_text() == (ROOT / "config" / "example.yaml").read_text()
    doc = yaml.safe_load(example.read_text())
    ok = f"OK: {len(doc['people'])} people, {len(doc['devices'])} devices\n"
    for path in (example, installed.path("/opt/sleepcoach/share/sleepcoach/example.yaml")):
        checked = sleepcoach("check-config", str(path))
        assert (checked.returncode, checked.stdout) == (0, ok), checked
    assert list(empty.iterdir()) == [], "the coach wrote into the folder it was started in"


def test_everything_installed_is_pinned_in_the_constraints_file(installed: Installed) -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    frozen = subprocess.run(
        [str(installed.bin / "python"), "-m", "pip", "freeze", "--exclude", "sleepcoach"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert frozen
    for line in frozen:
        name, version = line.split("==")
        assert pins.get(re.sub(r"[-_.]+", "-", name).lower()) == version, (
            f"{line} is not pinned in constraints.txt: run scripts/lock"
        )


# -- running it as systemd and a container would ---------------------------------------------------


@dataclass
class Started:
    """A process started as a service manager starts it, its output in files."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    def text(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            if needle in self.text():
                return
            time.sleep(0.05)
        assert needle in self.text(), f"no {needle!r} from the coach:\n{self.text()}"

    def stop(self, sig: int, timeout: float) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


Start = Callable[..., Started]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start a process: `start(argv, env, cwd, umask=-1)`; killed at the end if still running."""
    started: list[Started] = []

    def run(argv: list[str], env: dict[str, str], cwd: Path, umask: int = -1) -> Started:
        n = len(started)
        out, err = tmp_path / f"out{n}.txt", tmp_path / f"err{n}.txt"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=o, stderr=e, umask=umask)
        started.append(Started(proc, out, err))
        return started[-1]

    yield run
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(5)


def test_the_units_exec_start_runs_the_coach_as_systemd_would(
    installed: Installed, broker: Broker, start: Start
) -> None:
    service = installed.unit["Service"]
    state = installed.path("/var/lib") / service["StateDirectory"]
    # systemd's environment for the service user, whose home (useradd in the steps) is the state
    # directory, which systemd makes with StateDirectoryMode.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(state)}
    for assignment in service.get("Environment", "").split():
        name, value = assignment.split("=", 1)
        env[name] = installed.rewrite(value)
    # What an EnvironmentFile would add: the broker (the example config names none) and, so that
    # runs beside each other never meet, the dashboard on a free port.
    env["SLEEPCOACH_MQTT_URL"] = broker.url
    env["SLEEPCOACH_DASHBOARD_LISTEN"] = f"127.0.0.1:{free_port()}"
    state.mkdir(parents=True)
    state.chmod(int(service["StateDirectoryMode"], 8))
    umask = int(service["UMask"], 8)
    recorder = Recorder(broker, ["sleepcoach/status"], client_id="unit-watcher")
    try:
        argv = shlex.split(installed.rewrite(service["ExecStart"]))
        coach = start(argv, env, Path("/"), umask)
        coach.wait_for("sleepcoach is listening")
        assert recorder.wait_for(lambda: b"online" in recorder.on("sleepcoach/status"))
        stop_s = float(service["TimeoutStopSec"])
        assert coach.stop(getattr(signal, service["KillSignal"]), stop_s) == 0, coach.text()
        assert recorder.wait_for(lambda: recorder.on("sleepcoach/status")[-1:] == [b"offline"])
    finally:
        recorder.close()
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".db") for p in files), files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is readable by others"


def container(tmp_path: Path, broker: Broker, installed: Installed) -> tuple[list[str], dict]:
    """The sleepcoach service's command and environment: the image's ENTRYPOINT and ENV, then
    docker-compose.yml's environment, with /config, /data, the compose broker and the addresses
    the container listens on moved here (loopback, free ports)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    env_block = re.search(r"^ENV (.*?)\n(?=\n|[A-Z]+ )", dockerfile, re.S | re.M)
    assert env_block is not None
    assignments = " ".join(
        line.strip().rstrip("\\")
        for line in env_block.group(1).splitlines()
        if not line.strip().startswith("#")
    )
    env = {"PATH": f"{installed.bin}:/usr/bin:/bin", "HOME": str(tmp_path)}
    env.update(item.split("=", 1) for item in shlex.split(assignments))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env.update(compose["services"]["sleepcoach"]["environment"])
    moved = {}
    dashboard = f"127.0.0.1:{free_port()}"  # the container's every address is this loopback port
    for name, value in env.items():
        here = value.replace("/config/", f"{tmp_path}/config/")
        here = re.sub(r"^/data$", f"{tmp_path}/data", here)
        here = re.sub(r"^0\.0\.0\.0:\d+$", dashboard, here)
        moved[name] = here.replace("mqtt://mosquitto:1883", broker.url)
    assert not [v for v in moved.values() if "0.0.0.0" in v], "a test listens on loopback only"
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M)
    assert entrypoint is not None
    (tmp_path / "config").mkdir()
    (tmp_path / "data").mkdir()
    return json.loads(entrypoint.group(1)), moved


def test_the_container_runs_the_example_config_when_none_is_mounted_and_says_so(
    installed: Installed, broker: Broker, start: Start, tmp_path: Path
) -> None:
    argv, env = container(tmp_path, broker, installed)
    coach = start(argv, env, tmp_path)
    coach.wait_for("sleepcoach is listening")
    assert f"no config at {tmp_path}/config/sleepcoach.yaml" in coach.text()
    assert "running the example config" in coach.text()
    assert coach.stop(signal.SIGTERM, 10) == 0, coach.text()  # the image's STOPSIGNAL
    assert list((tmp_path / "data" / "sleepcoach").glob("*.db")), "no database in the volume"


def test_the_container_runs_a_mounted_config(
    installed: Installed, broker: Broker, tmp_path: Path
) -> None:
    argv, env = container(tmp_path, broker, installed)
    # The example with a database of its own, which --check names.
    mine = (ROOT / "config" / "example.yaml").read_text()
    mine = mine.replace(
        "  keep_days: 365", f"  url: sqlite:///{tmp_path}/mine.db\n  keep_days: 365"
    )
    (tmp_path / "config" / "sleepcoach.yaml").write_text(mine)
    result = subprocess.run(
        [*argv, "--check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no config" not in result.stderr
    assert "example config" not in result.stderr
    assert "broker: OK" in result.stdout
    assert f"storage: OK (sqlite:///{tmp_path}/mine.db" in result.stdout
