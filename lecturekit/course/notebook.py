"""The pieces every course notebook shares: the Colab badge and the guarded install cell.

Keeping them here (not copied by hand into each notebook) lets a test check that every
notebook of notebooks/, solutions/ and exercises/ opens in Colab at its own path and installs
lecturekit only when it is missing, never touching Colab's torch.
"""

from __future__ import annotations

from pathlib import PurePosixPath

REPO = "lecturekit/lecturekit"
BRANCH = "main"
COLAB_BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"

# The kernelspec JupyterLab itself writes for the default Python kernel: stored this way, opening
# and saving a notebook does not mark it modified (no diff in git).
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

INSTALL_SOURCE = '''\
# Set-up: installs the course library only where it is missing (e.g. on Colab).
# It never reinstalls torch: Colab's own build (with CUDA) stays as it is.
import importlib.util
if importlib.util.find_spec("lecturekit") is None:
    %pip install -q "lecturekit @ git+https://github.com/{repo}@{branch}"'''.format(repo=REPO, branch=BRANCH)


def colab_url(path: str) -> str:
    """Colab URL opening ``path`` (relative to the repository root, e.g. notebooks/00_tour.ipynb)."""
    return f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/{PurePosixPath(path)}"


def colab_badge(path: str) -> str:
    """Markdown for the 'Open in Colab' badge of the notebook at ``path``."""
    return f"[![Open In Colab]({COLAB_BADGE_IMG})]({colab_url(path)})"
