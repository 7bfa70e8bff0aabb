"""Every relative link in the project's Markdown reaches a file, and its #fragment a
heading of that file (GitHub's anchors: lower case, punctuation dropped, spaces to
hyphens, a repeated heading numbered -1, -2, ...). Links with a scheme are not fetched."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin

ROOT = Path(__file__).resolve().parents[2]
# The top README, docs/, and every folder's README; vendor/ is upstream's.
DOCS = sorted(
    p
    for pattern in ("*.md", "docs/*.md", "*/README.md", "*/*/README.md")
    for p in ROOT.glob(pattern)
    if p.relative_to(ROOT).parts[0] != "vendor"
)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)

MARKDOWN = MarkdownIt("commonmark").enable("table").use(anchors_plugin, max_level=6)


def tokens(path: Path):
    return MARKDOWN.parse(path.read_text(encoding="utf-8"))


@cache
def anchors(path: Path) -> frozenset[str]:
    return frozenset(t.attrs["id"] for t in tokens(path) if t.type == "heading_open")


def links(path: Path) -> list[str]:
    found = []
    for token in tokens(path):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(str(child.attrs["href"]))
            elif child.type == "image":
                found.append(str(child.attrs["src"]))
    return found


def broken_links(path: Path) -> list[str]:
    broken = []
    for link in links(path):
        if SCHEME.match(link):
            continue
        target, _, fragment = link.partition("#")
        resolved = (path.parent / unquote(target)).resolve() if target else path
        if not resolved.exists():
            broken.append(f"{link}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{link}: no heading #{fragment}")
    return broken


def test_the_docs_are_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in DOCS}
    assert {"README.md", "docs/DELIVERY.md", "cloudformation/README.md"} <= names
    assert sum(len(links(p)) for p in DOCS) > 50


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_the_check_names_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Cost\n\n## Cost\n\n## Three zones?\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[a](other.md#cost) [b](other.md#cost-1) [c](other.md#three-zones) [d](#page)\n"
        "[e](https://example.com/x#y) `[f](missing.md)`\n\n"
        "```\n[g](missing.md)\n```\n\n"
        "[h](other.md#costs) [i](gone.md) [j](#nowhere) ![k](figure.png)\n"
    )
    assert broken_links(page) == [
        "other.md#costs: no heading #costs",
        "gone.md: no such file",
        "#nowhere: no heading #nowhere",
        "figure.png: no such file",
    ]
