"""Every library the code imports is declared in pyproject.toml, so a fresh install has it.

A library that arrives only as another one's dependency (niquests through homeassistant-api, say)
works until that one changes its own dependencies; these tests read every import of the project's
code (function-level ones too) and ask which distribution provides it.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: The project's own top-level modules: its packages, the test tree and the benchmarks' helpers.
LOCAL = {"coach", "integrations", "tests"} | {p.stem for p in (ROOT / "bench").glob("*.py")}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return _canonical(match.group(0))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported(folders: list[str]) -> dict[str, str]:
    """Top-level module -> the first file that imports it, over every .py file under `folders`."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _undeclared(folders: list[str], declared: set[str]) -> list[str]:
    providers = packages_distributions()
    missing = []
    for module, where in sorted(_imported(folders).items()):
        if module in sys.stdlib_module_names or module in LOCAL or module == "__future__":
            continue
        dists = {_canonical(d) for d in providers.get(module, [])}
        assert dists, f"{where} imports {module}, which no installed distribution provides"
        if not dists & declared:
            missing.append(f"{where} imports {module} (from {', '.join(sorted(dists))})")
    return missing


RUNTIME = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def test_every_library_the_package_imports_is_a_dependency() -> None:
    assert _undeclared(["coach", "integrations"], RUNTIME) == []


@pytest.mark.parametrize("folder", ["tests", "bench"])
def test_every_library_the_tests_and_benchmarks_import_is_in_the_test_extra(folder: str) -> None:
    declared = RUNTIME | {_name(r) for r in EXTRAS["test"]}
    assert _undeclared([folder], declared) == []
