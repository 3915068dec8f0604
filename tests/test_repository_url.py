"""One repository URL for the whole course (lecturekit.course.notebook.REPO_URL and BRANCH).

Every Colab badge (notebooks, solutions, exercises, the README's table), every install cell and
pyproject's [project.urls] point at it; ``python -m lecturekit.course update-links`` rewrites them
all when it changes (README, "Publishing the course").
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

from lecturekit.course.notebook import (
    BRANCH, LINKED_FILES, REPO, REPO_URL, colab_badge, find_links, install_source, update_links,
)

ROOT = Path(__file__).resolve().parents[1]


def _linked_files(root=ROOT):
    return sorted(p for pattern in LINKED_FILES for p in root.glob(pattern))


def test_repo_url_is_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPO_URL) and not REPO_URL.endswith(".git")
    assert REPO_URL == f"https://github.com/{REPO}" and BRANCH and "/" not in BRANCH


def test_every_link_points_at_the_one_repository():
    wrong = {}
    kinds = set()
    for path in _linked_files():
        for kind, repo, branch in find_links(path.read_text()):
            kinds.add(kind)
            if repo != REPO or (branch is not None and branch != BRANCH):
                wrong.setdefault(str(path.relative_to(ROOT)), []).append((kind, repo, branch))
    assert not wrong, (f"links that do not point at {REPO_URL} @ {BRANCH}: {wrong}; "
                       "run `python -m lecturekit.course update-links`")
    assert kinds == {"colab", "install", "project-url"}
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"] == REPO_URL
    assert update_links(ROOT, check=True) == []


def test_readme_badges_open_the_listed_notebooks():
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- notebooks:start -->", 1)[1].split("<!-- notebooks:end -->", 1)[0]
    for name in re.findall(r"\]\(notebooks/([^)]+\.ipynb)\)", block):
        assert colab_badge(f"notebooks/{name}") in block, f"README: badge of notebooks/{name}"


def test_update_links_rewrites_badges_install_cells_and_metadata(tmp_path):
    for rel in ("README.md", "pyproject.toml", "notebooks/00_tour.ipynb", "solutions/02_fusion.ipynb",
                "exercises/02_fusion.ipynb"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    before = {p: p.read_text() for p in _linked_files(tmp_path)}
    url, branch = "https://github.com/some-university/video-course", "2026"
    changed = update_links(tmp_path, repo_url=url, branch=branch)
    assert sorted(changed) == sorted(before)
    assert update_links(tmp_path, repo_url=url, branch=branch, check=True) == []
    for path in _linked_files(tmp_path):
        text = path.read_text()
        assert {(r, b) for _, r, b in find_links(text)} <= {("some-university/video-course", "2026"),
                                                             ("some-university/video-course", None)}
        # only the links changed
        strip = lambda t: re.sub(r"(github/|github\.com/)[\w.-]+/[\w.-]+?(/blob/|@|\")[\w.-]*", "LINK", t)  # noqa: E731
        assert strip(text) == strip(before[path])
        if path.suffix == ".ipynb":
            nb = json.loads(text)
            rel = path.relative_to(tmp_path).as_posix()
            assert colab_badge(rel, url, branch) in "".join(nb["cells"][0]["source"])
            code = next(c for c in nb["cells"] if c["cell_type"] == "code")
            assert "".join(code["source"]) == install_source(url, branch)
