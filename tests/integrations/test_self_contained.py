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


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {
        _anchor(line.lstrip("#"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }


def test_every_relative_link_in_the_docs_leads_somewhere() -> None:
    """A link to a file of the repository, or to a heading in one, finds it."""
    broken = []
    for path in _tracked_text_files():
        if path.suffix != ".md":
            continue
        for target in _LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            name, _, anchor = target.partition("#")
            linked = (path.parent / name).resolve() if name else path
            if not linked.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
