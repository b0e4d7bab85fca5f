"""The documentation cites files that exist (a renamed file leaves no stale references)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "docs").glob("*.md"), *(REPO / "benchmarks").glob("*.py")])

# `name.md` in backticks, or a Markdown link to a local file: [text](path#anchor)
CITED_MD = re.compile(r"`([\w./-]+\.md)`")
LINK = re.compile(r"\]\(([^)\s#+-][^)\s#]*)(?:#[^)]*)?\)")  # not "word[?](+0.00)" output


def _exists(cited: str, source: Path) -> bool:
    return any((base / cited).exists() for base in (source.parent, REPO, REPO / "docs"))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_cited_files_exist(source):
    text = source.read_text(encoding="utf-8")
    cited = set(CITED_MD.findall(text))
    cited |= {link for link in LINK.findall(text) if ":" not in link}  # not http:, mailto:
    missing = sorted(c for c in cited if not _exists(c, source))
    assert not missing, f"{source.relative_to(REPO)} cites missing files: {missing}"


def test_the_algorithm_is_cited_by_its_real_name():
    assert (REPO / "docs" / "algorithm.md").is_file()
    for source in SOURCES:
        assert "LRP_FOR_LSTM.md" not in source.read_text(encoding="utf-8"), source
