"""The documentation a newcomer reads (issue 21): the README stays a five-minute read, and
no relative link in it, in docs/ or in bench/README.md points nowhere. A link is
``[text](path)`` or ``![alt](path)``, optionally ``path#anchor``; the path must exist, and an
anchor into a markdown file must name one of its headings (as GitHub spells them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

README_MAX_LINES = 250
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:", "ftp://")


def _prose(text: str) -> str:
    """The text without code: a link shown in a code block or a code span is not a link."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    return [m.group(1) for m in LINK.finditer(_prose(text))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for m in HEADING.finditer(FENCE.sub("", path.read_text())):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(doc: Path) -> list[str]:
    """Every relative link in ``doc`` that points at no file, or at no heading of one."""
    wrong = []
    for target in links(doc.read_text()):
        if target.startswith(EXTERNAL):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        if not dest.exists():
            wrong.append(f"{doc.name}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            wrong.append(f"{doc.name}: {target} (no heading #{anchor} in {dest.name})")
    return wrong


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_somewhere(doc: Path) -> None:
    assert doc.exists(), doc
    assert not broken_links(doc), "\n".join(broken_links(doc))


def test_the_readme_is_a_short_read() -> None:
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_the_check_sees_the_links_it_checks() -> None:
    """The links are really found: the README links every docs file and both screenshots,
    and the docs link each other by heading."""
    readme = links((ROOT / "README.md").read_text())
    for name in ("architecture", "operations", "security", "reliability", "testing"):
        assert f"docs/{name}.md" in readme, name
    assert {"docs/approver-statement.png", "docs/approver-decided.png"} <= set(readme)
    relative = [t for d in DOCS for t in links(d.read_text()) if not t.startswith(EXTERNAL)]
    assert len(relative) >= 60, len(relative)
    assert sum("#" in t for t in relative) >= 30


@pytest.mark.parametrize(("text", "why"), [
    ("see [the guide](missing.md)", "no such file"),
    ("![shot](img/none.png)", "no such file"),
    ("see [a part](other.md#no-such-heading)", "no heading #no-such-heading"),
    ("see [here](#nowhere)", "no heading #nowhere"),
    ("[a](other.md#a-heading-with-code) and [b](other.md) then [c](missing/)", "missing/"),
])
def test_a_broken_link_is_found(tmp_path: Path, text: str, why: str) -> None:
    (tmp_path / "other.md").write_text("# A heading with `code`\n\ntext\n")
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Doc\n\n{text}\n")
    found = broken_links(doc)
    assert len(found) == 1 and why in found[0], found


def test_links_in_code_and_outside_the_repository_are_not_checked(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Trust model: who decides (issue 20)\n## Again\n"
                                       "## Again\n")
    doc = tmp_path / "doc.md"
    doc.write_text("```\n[x](nowhere.md)\n```\n`[y](nowhere.md)` [z](https://example.com/x)\n"
                   "[t](other.md#trust-model-who-decides-issue-20) [u](other.md#again-1)\n")
    assert broken_links(doc) == []
