"""The repository speaks for itself: no file points a reader at a document they cannot open.

Code comments, docs, config descriptions and tests cite the repository's own pages
(docs/contract.md, docs/architecture.md, ...) or public sources a reader can look up (a paper,
a project's public page). They never cite working documents kept outside the repository, nor
numbers of the project's own issue tracker, which a reader of a copy may not have.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: What a reader of the repository cannot open.
FORBIDDEN = re.compile(
    r"CONTRACT\s*§"  # the wire contract is docs/contract.md
    r"|CONTRACT\.md"
    r"|STYLE\.md"
    r"|shared/notes|\.\./shared"
    r"|sleep-science(?:\.md| notes)"
    r"|\bnotes [A-D]\.\d"
    r"|\b[Ii]ssue #?\d+\b",
)
#: This file names the patterns it forbids.
EXEMPT = {"tests/integrations/test_self_contained.py"}


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    files = []
    for name in out.decode().split("\0"):
        if not name or name in EXEMPT:
            continue
        path = ROOT / name
        if path.suffix in {".png", ".jpg", ".ico", ".woff2", ".gz"} or not path.is_file():
            continue
        files.append(path)
    return files


def test_no_file_cites_a_document_outside_the_repository() -> None:
    found = []
    for path in _tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "references a reader cannot open:\n" + "\n".join(found)


def test_the_pattern_catches_what_it_is_meant_to() -> None:
    for bad in [
        "(CONTRACT §5)",
        "see STYLE.md",
        "notes D.2 step 1",
        "issue 5: 30 min",
        "../shared/notes/x.md",
        "sleep-science notes C.3",
    ]:
        assert FORBIDDEN.search(bad), bad
    for good in ["docs/contract.md", "github.com/Koenkk/zigbee2mqtt/issues/21432", "footnotes"]:
        assert not FORBIDDEN.search(good), good
