"""The pieces every course notebook shares: the Colab badge and the guarded install cell.

Keeping them here (not copied by hand into each notebook) lets a test check that every
notebook of notebooks/, solutions/ and exercises/ opens in Colab at its own path and installs
lecturekit only when it is missing, never touching Colab's torch. Both point at one repository,
``REPO_URL``; :func:`update_links` rewrites every link when it changes.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

# The course's public repository: the ONE place to change when the course is published elsewhere.
# Every Colab badge, every install cell, the README's table and the package metadata derive from
# it; after changing it run ``python -m lecturekit.course update-links`` (rewrites them all), and
# tests/test_repository_url.py checks that they agree. Colab opens notebooks from GitHub only.
REPO_URL = "https://github.com/lecturekit/lecturekit"
BRANCH = "main"
REPO = REPO_URL.removeprefix("https://github.com/")  # "owner/name"
COLAB_BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"

# The kernelspec JupyterLab itself writes for the default Python kernel: stored this way, opening
# and saving a notebook does not mark it modified (no diff in git).
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

_INSTALL_TEMPLATE = '''\
# Set-up: installs the course library only where it is missing (e.g. on Colab).
# It never reinstalls torch: Colab's own build (with CUDA) stays as it is.
import importlib.util
if importlib.util.find_spec("lecturekit") is None:
    %pip install -q "lecturekit @ git+{repo_url}@{branch}"'''


def install_source(repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """The guarded install cell of every notebook (pip-installs lecturekit from ``repo_url``)."""
    return _INSTALL_TEMPLATE.format(repo_url=repo_url, branch=branch)


INSTALL_SOURCE = install_source()


def colab_url(path: str, repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """Colab URL opening ``path`` (relative to the repository root, e.g. notebooks/00_tour.ipynb)."""
    repo = repo_url.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/{PurePosixPath(path)}"


def colab_badge(path: str, repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """Markdown for the 'Open in Colab' badge of the notebook at ``path``."""
    return f"[![Open In Colab]({COLAB_BADGE_IMG})]({colab_url(path, repo_url, branch)})"


# ------------------------------------------------------------------ links to the repository
# Where the repository appears: Colab badges, the install cell, pyproject's [project.urls].
_NAME = r"[A-Za-z0-9_.-]+"
LINK_PATTERNS = {
    "colab": re.compile(rf"https://colab\.research\.google\.com/github/(?P<repo>{_NAME}/{_NAME})/blob/(?P<branch>[^/\s\"')\\]+)/"),
    "install": re.compile(rf"git\+https://github\.com/(?P<repo>{_NAME}/{_NAME}?)(?:\.git)?@(?P<branch>[^\s\"'\\]+)"),
    "project-url": re.compile(rf"^(?:Repository|Homepage|Source) = \"https://github\.com/(?P<repo>{_NAME}/{_NAME})\"$", re.M),
}
LINKED_FILES = ("README.md", "pyproject.toml", "notebooks/*.ipynb", "solutions/*.ipynb", "exercises/*.ipynb")


def find_links(text: str) -> list[tuple[str, str, str | None]]:
    """Every link to the repository in ``text``: ``(kind, "owner/name", branch or None)``."""
    return [(kind, m["repo"], m.groupdict().get("branch"))
            for kind, pattern in LINK_PATTERNS.items() for m in pattern.finditer(text)]


def update_links(root: str | Path = ".", repo_url: str = REPO_URL, branch: str = BRANCH,
                 check: bool = False) -> list[Path]:
    """Point every link of LINKED_FILES under ``root`` at ``repo_url`` / ``branch``: Colab badges
    (the notebook's own path is kept), install cells, ``[project.urls]``. Only the links change
    (notebooks are edited as text, byte for byte otherwise). Returns the files that differ; with
    ``check=True`` nothing is written."""
    if not re.fullmatch(rf"https://github\.com/{_NAME}/{_NAME}", repo_url) or repo_url.endswith(".git"):
        raise ValueError(f"repo_url must look like https://github.com/owner/name (Colab opens GitHub only), got {repo_url!r}")
    repo = repo_url.removeprefix("https://github.com/")
    subs = {
        "colab": f"https://colab.research.google.com/github/{repo}/blob/{branch}/",
        "install": f"git+{repo_url}@{branch}",
    }
    changed = []
    root = Path(root)
    for pattern in LINKED_FILES:
        for path in sorted(root.glob(pattern)):
            text = path.read_text()
            new = text
            for kind, value in subs.items():
                new = LINK_PATTERNS[kind].sub(lambda m, value=value: value, new)
            new = LINK_PATTERNS["project-url"].sub(lambda m: m[0].split(" = ")[0] + f' = "{repo_url}"', new)
            if new != text:
                changed.append(path)
                if not check:
                    path.write_text(new)
    return changed
