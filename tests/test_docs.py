"""The documents stay a front door and its rooms: README.md fits in a few screens, every section it once held still
has a home (in README.md, RESULTS.md or a docs/*.md file), no relative link points at nothing, and every docs file
says in its first paragraph what it is for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_BYTES = 12_000
BLOCK = r"(#|\||[-*+] |\d+\. |```|<!--|>)"  # a line that starts a heading, table, list, code, comment or quote

# Every heading of README.md as of commit fafe57a (`git show fafe57a:README.md | grep '^#'`), before it was split
# into README.md, RESULTS.md and docs/. That grep also returns "# dataset: columns anchor, positive ...": a comment
# inside the drop-in's Python block, not a heading (it moved with its block to docs/drop-in.md).
OLD_HEADINGS = [
    "hybridir — hybrid batch training for multilingual dense retrieval",
    "Two commands",
    "Notebooks",
    "Hybrid batches in your own sentence-transformers training",
    "Profiles (`params/*.yaml`)",
    "Disk and time",
    "The package `hybridir_utils`",
    "Data and models: provenance and licences",
    "Results",
    "How the answer is made credible (the design of the `cpu` profile)",
    "The answer: the run-level `cpu` design within the budget (measured 2026-12-04)",
    "The paper's own claims: X-X-mono vs X-Y vs hybrid batches (the `sampling` profile)",
    "Earlier designs, read at run level",
    "What it does not show",
    "The `gpu` run (one H200, 2026-11-26)",
    "Performance (measured on the 2-core CPU, 2026-11-25: AMD EPYC, AVX2 without VNNI)",
    "bf16 on a CPU with bf16 units (`bench throughput --backends torch --train-steps 0`, 2026-11-26, 2-core Intel Xeon "
    "with AMX and AVX512-BF16, 2 threads, load average 1)",
    "Throughput options (`bench throughput`, 2026-11-25, idle 2-core AMD EPYC, AVX2 without VNNI, 2 threads)",
    "Reliability",
    "Limits",
]


def documents(root: Path = ROOT) -> list[Path]:
    """README.md, RESULTS.md and every docs/*.md."""
    return [root / "README.md", root / "RESULTS.md", *sorted((root / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def headings(text: str) -> set[str]:
    """The text of every heading (any level) outside code blocks."""
    return {m.group(1).strip() for line in prose_lines(text) if (m := re.match(r"#+\s+(.*)", line))}


def relative_links(text: str) -> list[str]:
    """Targets of the Markdown links and images outside code blocks that are neither URLs nor in-page anchors; the
    link text may span lines."""
    targets = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", "\n".join(prose_lines(text)))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]


def first_paragraph(text: str) -> str:
    """The first paragraph after the title line (``# ...``), joined: up to a blank line or a line that starts another
    block (a list interrupts a paragraph); '' when the text has no title."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        return ""
    rest = [line.strip() for line in lines[1:]]
    while rest and not rest[0]:
        rest.pop(0)
    paragraph = rest[:1]
    for line in rest[1:]:
        if not line or re.match(BLOCK, line):
            break
        paragraph.append(line)
    return " ".join(paragraph)


def is_sentence(paragraph: str) -> bool:
    """Prose that ends as a sentence: not a heading, table, list, code, comment or quote."""
    return bool(paragraph) and not re.match(BLOCK, paragraph) and paragraph[-1] in ".!?"


def test_the_readme_is_a_front_door():
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes (at most {README_MAX_BYTES}): move a section to docs/"


def test_the_readme_keeps_the_two_commands():
    """CI (.ci/run) runs the README's test command: `make test`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make reproduce" in text and "make test" in text


@pytest.mark.parametrize("heading", OLD_HEADINGS)
def test_every_former_readme_section_has_a_home(heading):
    found = {doc.relative_to(ROOT).as_posix(): headings(doc.read_text(encoding="utf-8")) for doc in documents()}
    assert any(heading in hs for hs in found.values()), f"no document has the heading {heading!r} (of {sorted(found)})"


@pytest.mark.parametrize("doc", documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_at_a_file(doc):
    broken = [t for t in relative_links(doc.read_text(encoding="utf-8")) if not (doc.parent / t.split("#")[0]).exists()]
    assert broken == [], f"{doc.relative_to(ROOT)} links to missing files: {broken}"


@pytest.mark.parametrize("doc", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_every_docs_file_says_what_it_is_for(doc):
    paragraph = first_paragraph(doc.read_text(encoding="utf-8"))
    assert is_sentence(paragraph), f"docs/{doc.name}: after its title, a sentence saying what it is for and for whom"


def test_the_checks_see_what_they_check():
    """The helpers on small texts: headings and links in code blocks do not count, link text may span lines."""
    text = "# T\n\nA page.\n\n```python\n# not a heading\n[x](missing.md)\n```\n## Sub `x`\n[two\nlines](a.md#b) [u](https://e.org)\n"
    assert headings(text) == {"T", "Sub `x`"}
    assert relative_links(text) == ["a.md#b"]
    assert is_sentence(first_paragraph(text)) and not is_sentence(first_paragraph("# T\n\n| a |\n"))
    assert not is_sentence(first_paragraph("# T\n\n## Sub\n\nText."))
    assert first_paragraph("# T\n\nWhat it holds:\n- one.\n") == "What it holds:"
