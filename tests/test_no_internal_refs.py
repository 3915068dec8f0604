"""What ships cites only what a reader can open: no trace of how the library was built.

Scanned: every .py file of lecturekit/ and scripts/, README.md, CONTRIBUTING.md, and the source of
every cell (markdown and code) of notebooks/, solutions/ and exercises/. Not allowed there: names
of the authors' working documents (``RECOGNITION.md``, ``COURSE_PLAN.md``, "the digest", ...),
their tags (``[V-comp]``, ``[P]``), issue numbers, machine paths and "in this session". Cite the
paper (title, arXiv link, equation or table) or the official code repository instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PATTERNS: dict[str, re.Pattern] = {
    "RECOGNITION.md": re.compile(r"RECOGNITION\.md"),
    "AGA_IA_HORST.md": re.compile(r"AGA_IA_HORST\.md"),
    "COURSE_PLAN.md": re.compile(r"COURSE_PLAN\.md"),
    "TOYKITCHENS.md": re.compile(r"TOYKITCHENS\.md"),
    "ARCHITECTURE.md": re.compile(r"ARCHITECTURE\.md"),
    "STYLE.md": re.compile(r"\bSTYLE\.md"),
    "HELPER": re.compile(r"\bHELPER(?:_BRIEF|S)?\b"),
    "[V-comp]": re.compile(r"\[V-comp\b"),
    # the tag, not an index: x[P] and m[P][Q] are code
    "[P] tag": re.compile(r"(?<![\w\]\)\[])\[P\]"),
    # the working notes called "the digest" (not a hash: hexdigest(), a checkpoint's "digest" key)
    "the digest": re.compile(r"(?i)(?<![\w.\"'`])(?:the|a|course|recurrent|model|recognition|anticipation|seed)"
                             r"\s+digests?\b(?!\s+of\b)|\bdigests?\s*§|\bdigest's\b"),
    "(issue": re.compile(r"(?i)\(issues?\b"),
    "issue #": re.compile(r"(?i)\bissues?\s+#"),
    "issue N": re.compile(r"(?i)\bissues?[\s-]*\d"),
    "/work/": re.compile(r"/work/"),
    "../shared": re.compile(r"\.\./shared\b"),
    "in this session": re.compile(r"(?i)\bin this session\b"),
}


def _sources():
    """(name shown in a failure, its lines) for everything scanned."""
    for folder in ("lecturekit", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8").splitlines()
    for name in ("README.md", "CONTRIBUTING.md"):
        if (ROOT / name).is_file():
            yield name, (ROOT / name).read_text(encoding="utf-8").splitlines()
    for folder in ("notebooks", "solutions", "exercises"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            for i, cell in enumerate(cells):
                source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
                yield f"{path.relative_to(ROOT)} cell {i} ({cell['cell_type']})", source.splitlines()


def hits(named_lines) -> list[str]:
    """``name:line: [pattern] text`` for every line that matches a pattern."""
    found = []
    for name, lines in named_lines:
        for number, line in enumerate(lines, 1):
            for label, pattern in PATTERNS.items():
                if pattern.search(line):
                    found.append(f"{name}:{number}: [{label}] {line.strip()[:160]}")
    return found


def test_nothing_that_ships_cites_the_working_documents():
    found = hits(_sources())
    assert not found, f"{len(found)} internal references:\n" + "\n".join(found)


def test_the_scan_reads_every_kind_of_source():
    names = [name for name, _ in _sources()]
    assert any(n.startswith("lecturekit/models/") for n in names)
    assert any(n.startswith("scripts/") for n in names)
    assert "README.md" in names
    for folder in ("notebooks", "solutions", "exercises"):
        assert any(n.startswith(folder + "/") and "(markdown)" in n for n in names), folder
        assert any(n.startswith(folder + "/") and "(code)" in n for n in names), folder


@pytest.mark.parametrize("line", [
    "The convention, stated once (RECOGNITION.md §0):",
    "see models/AGA_IA_HORST.md for the derivation",
    "PUBLISHED = {...}  # [V-comp] §5, 400-way head",
    "parameters [V-comp, §10].",
    "the paper body was not available: [P] in the notes",
    "published two-stream numbers are [P], so no count is asserted",
    "not verified in the digest, so no parameter count is asserted.",
    "Example (the course digest's worked example, K = 2):",
    "see the recurrent digest, Sec. 0",
    "as digest § 3 says",
    "# --- parameter tables (issue: recognition) ---",
    "Does the matrix recover the grammar? (issue 14.5)",
    "fixed in issue #12",
    '"""Issue 14.5 measured: does the matrix recover the grammar?',
    "measure the issue-14 levers",
    'DATA = Path("/work/shared/data")',
    "copied from ../shared/reference",
    "as HELPER_BRIEF.md asks",
    "the rules of COURSE_PLAN.md, TOYKITCHENS.md, ARCHITECTURE.md and STYLE.md",
    "no GPU was available in this session",
])
def test_the_patterns_catch_each_trace(line):
    assert hits([("x.py", [line])]), line


@pytest.mark.parametrize("line", [
    "return hashlib.sha256(blob.encode()).hexdigest()[:16]",
    '"digest": _digest(state_dict),',
    "``state_dict`` (CPU tensors), ``digest`` (a sha256 hash of the weights)",
    'if _digest(ck["state_dict"]) != ck["digest"]:',
    "the digest of the weights is compared on load",
    "scores[P] = 0; m[P][Q] += 1; x[idx[P]]",
    "an issue with the stride (see the paper's Sec. 3), issues of memory",
    "work/ folder of the course, ./shared/ drawings",
    "helpers of this module",
])
def test_the_patterns_leave_ordinary_code_alone(line):
    assert not hits([("x.py", [line])]), line
