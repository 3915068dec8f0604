"""Run the course notebooks the way Colab does: from the installed wheel, outside the checkout.

On Colab (or for a student who downloaded one notebook) there is no clone of the repository: the
install cell pip-installs lecturekit, and the notebook runs wherever it was opened. A notebook that
reads a file only the checkout has (``data/...``, a path relative to the repository) works in a
clone and fails there. This pytest plugin (loaded by the root ``conftest.py``) therefore makes
nbval run every notebook cell in a kernel that has never seen the checkout:

1. the package is built into a wheel from a copy of its sources (what ``pip install
   "lecturekit @ git+..."`` builds on Colab: the ``lecturekit/`` tree, ``pyproject.toml`` and
   ``README.md``, tracked or new but not git-ignored), with ``pip wheel --no-deps
   --no-build-isolation`` (nothing downloaded; the checkout is not written to);
2. a fresh virtual environment outside the checkout gets torch from the local wheel (the version
   of the running environment, as Colab has its torch preinstalled), then the wheel with its
   dependencies and ipykernel from the registry, pinned to the versions of the running environment
   so that the stored outputs are the same computation;
3. the notebooks are copied into an empty folder (``<env>/work/notebooks/``, ``.../solutions/``,
   ``.../exercises/``) and a kernelspec ``lecturekit-outside`` starts the venv's python there:
   the kernel's working directory is the copy's folder, ``sys.path`` holds nothing of the
   checkout, ``LECTUREKIT_CACHE`` is a fresh per-run cache, ``LECTUREKIT_CHECKPOINTS`` is unset.
   nbval reads each cell from the checkout's notebook (the same bytes as the copy) and sends it to
   that kernel, so outputs are still compared and failures reported cell by cell, as before.

This replaces the in-checkout nbval run instead of adding a second one: every notebook is executed
once per ``python -m pytest``, from outside the checkout. The extra cost is building the wheel and
the environment, about a minute, once per session and only when a notebook cell is about to run
(``-m "not notebooks"`` builds nothing).

Parallel runs (pytest-xdist, ``-n``): the workers share one environment, built by the first
worker that needs it (the others wait on a lock) in ``<tmp>/lecturekit-outside-<pid>-xdist``
(``<pid>`` = the controller's, which removes it at the end); each worker has its own copies of
the notebooks, its own ``LECTUREKIT_CACHE`` and its own kernelspec, under a sub-folder named
after the worker, so two kernels never write the same file.

Switches:
  ``--notebooks-in-checkout``  nbval runs the notebooks in the current environment (the editable
                               checkout), as before: quicker when editing a notebook.
  ``LECTUREKIT_OUTSIDE_ENV=DIR``  keep the environment in DIR (outside the checkout) and reuse it
                               in later runs; the wheel is rebuilt and reinstalled only when the
                               package's sources changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL_NAME = "lecturekit-outside"
ENV_VAR = "LECTUREKIT_OUTSIDE_ENV"
_XDIST_ROOT_VAR = "LECTUREKIT_OUTSIDE_XDIST_ROOT"   # set by the controller of a parallel run
NOTEBOOK_FOLDERS = ("notebooks", "solutions", "exercises")
WHEEL_SOURCES = ("pyproject.toml", "README.md", "lecturekit")
KERNEL_PACKAGES = ("ipykernel",)  # what a Jupyter/Colab runtime has besides torch


@dataclass
class OutsideEnv:
    """A virtual environment holding the built wheel, and the empty folder notebooks run in."""

    root: Path                      # everything lives here (outside the checkout)
    wheel: Path                     # the built wheel
    python: Path                    # the venv's interpreter
    work: Path                      # copies of the notebooks: work/notebooks, work/solutions, ...
    cache: Path                     # LECTUREKIT_CACHE of the kernels (empty at first, as on Colab)
    jupyter_path: Path              # holds kernels/lecturekit-outside/kernel.json
    seconds: dict = field(default_factory=dict)  # wall time of each step
    rebuilt: bool = True            # False when a kept environment was reused unchanged

    @property
    def wheel_bytes(self) -> int:
        return self.wheel.stat().st_size


def _run(cmd, what: str, **kw) -> str:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if out.returncode != 0:
        raise RuntimeError(f"{what} failed ({out.returncode}): {' '.join(map(str, cmd))}\n"
                           f"{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
    return out.stdout


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def package_sources(root: Path = ROOT) -> list[Path]:
    """The files the wheel is built from, relative to ``root``: git's tracked and new
    (not ignored) files under WHEEL_SOURCES; without git, every file but caches."""
    try:
        listed = _run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                       "--", *WHEEL_SOURCES], "git ls-files")
        files = [Path(p) for p in listed.split("\0") if p]
    except (RuntimeError, FileNotFoundError):
        files = [p.relative_to(root) for src in WHEEL_SOURCES for p in
                 ([root / src] if (root / src).is_file() else (root / src).rglob("*"))]
    return sorted(p for p in files if (root / p).is_file() and "__pycache__" not in p.parts
                  and not p.name.endswith((".pyc", ".egg-info")))


def source_digest(root: Path = ROOT) -> str:
    h = hashlib.sha256()
    for rel in package_sources(root):
        h.update(rel.as_posix().encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return h.hexdigest()


def build_wheel(out: Path, root: Path = ROOT) -> Path:
    """Build the wheel from a copy of the package's sources into ``out``; returns its path."""
    src = out / "src"
    shutil.rmtree(src, ignore_errors=True)
    for rel in package_sources(root):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, src / rel)
    dist = out / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--disable-pip-version-check", "-w", dist, src.resolve()], "building the wheel")
    wheels = sorted(dist.glob("lecturekit-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one lecturekit wheel in {dist}, found {wheels}")
    shutil.rmtree(src, ignore_errors=True)
    return wheels[0]


def parent_constraints() -> str:
    """``name==version`` of every distribution of the running environment (but lecturekit):
    the fresh environment resolves to the same versions, so outputs stay comparable."""
    lines = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() == "lecturekit":
            continue
        direct = dist.read_text("direct_url.json")
        if direct and ("dir_info" in direct or "vcs_info" in direct):
            continue  # installed from a folder or a repository: not pinnable from the registry
        lines.add(f"{name}=={dist.version}")
    return "\n".join(sorted(lines)) + "\n"


_LAUNCHER = '''\
"""Kernel launcher of the out-of-checkout notebook run (written by tests/outside_checkout.py).

nbval starts the kernel in the checkout folder of the notebook; this moves it to the same folder
of the copy under WORK and removes every path of the checkout from sys.path, then starts ipykernel.
"""
import os
import sys

ROOT = {root!r}
WORK = {work!r}
rel = os.path.relpath(os.getcwd(), ROOT)
target = WORK if rel == os.pardir or rel.startswith(os.pardir + os.sep) else os.path.join(WORK, rel)
os.makedirs(target, exist_ok=True)
os.chdir(target)
sys.path[:] = [p for p in sys.path
               if p and os.path.abspath(p) != ROOT and not os.path.abspath(p).startswith(ROOT + os.sep)]
from ipykernel.kernelapp import launch_new_instance  # noqa: E402

launch_new_instance()
'''


def _write_kernel(env: OutsideEnv, venv_dir: Path) -> None:
    launcher = env.jupyter_path.parent.parent / "launch_kernel.py"      # next to this run's share/
    launcher.write_text(_LAUNCHER.format(root=str(ROOT), work=str(env.work)))
    spec_dir = env.jupyter_path / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [str(env.python), str(launcher), "-f", "{connection_file}"],
        "display_name": "lecturekit from the wheel, outside the checkout",
        "language": "python",
        "env": {
            "LECTUREKIT_CACHE": str(env.cache),
            "LECTUREKIT_CHECKPOINTS": "",
            "PYTHONPATH": "",
            "VIRTUAL_ENV": str(venv_dir),
            "PATH": f"{venv_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        },
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))


def _copy_notebooks(work: Path) -> None:
    for folder in NOTEBOOK_FOLDERS:
        dst = work / folder
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir(parents=True)
        for nb in sorted((ROOT / folder).glob("*.ipynb")):
            shutil.copy2(nb, dst / nb.name)


_TMP_PREFIX = "lecturekit-outside-"


def _remove_stale_envs() -> None:
    """Remove temporary environments of sessions that were killed before their clean-up ran
    (the folder name carries the pid of the pytest process that made it)."""
    for old in Path(tempfile.gettempdir()).glob(f"{_TMP_PREFIX}*-*"):
        pid = old.name[len(_TMP_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:
            pass  # another user's live process


class _FileLock:
    """An exclusive ``fcntl.flock`` between processes on one machine, so that parallel pytest
    workers build the shared environment once (POSIX only, as the rest of this module: the
    environment's interpreter is ``venv/bin/python``)."""

    def __init__(self, path: Path):
        self.path, self._fd = Path(path), None

    def __enter__(self):
        import fcntl

        self._fd = os.open(self.path, os.O_CREAT | os.O_WRONLY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def xdist_shared_root(controller_pid: int) -> Path:
    """Where the workers of one parallel run (controller ``controller_pid``) share their environment."""
    return Path(tempfile.gettempdir()) / f"{_TMP_PREFIX}{controller_pid}-xdist"


def prepare(root: Path | None = None, log=print, *, slot: str | None = None) -> OutsideEnv:
    """Build (or refresh) the out-of-checkout environment in ``root`` (a new temporary folder by
    default) and return it. ``root`` must lie outside the checkout.

    ``slot``: a name for this process's own notebook copies, cache and kernelspec, under
    ``root/slot`` (parallel workers sharing one environment); None puts them in ``root``.
    """
    if root is None:
        _remove_stale_envs()
    root = Path(root or tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-")).resolve()
    if _inside(root, ROOT):
        raise ValueError(f"{root} is inside the checkout {ROOT}: the point is to run outside it")
    root.mkdir(parents=True, exist_ok=True)
    venv_dir = root / "venv"
    own = root if slot is None else root / slot
    env = OutsideEnv(root=root, wheel=root / "none", python=venv_dir / "bin" / "python", work=own / "work",
                     cache=own / "cache", jupyter_path=own / "share" / "jupyter")
    with _FileLock(root / ".build.lock"):
        _build(env, venv_dir, log)
    shutil.rmtree(env.cache, ignore_errors=True)
    env.cache.mkdir(parents=True)
    _copy_notebooks(env.work)
    _write_kernel(env, venv_dir)
    return env


def _build(env: OutsideEnv, venv_dir: Path, log) -> None:
    """The wheel and the environment, built or refreshed in place (under the caller's lock)."""
    root = env.root
    stamp = root / "source.sha256"
    digest = source_digest()
    wheels = sorted((root / "dist").glob("lecturekit-*.whl"))
    if env.python.is_file() and stamp.is_file() and stamp.read_text() == digest and len(wheels) == 1:
        env.wheel, env.rebuilt = wheels[0], False
    else:
        t = time.perf_counter()
        env.wheel = build_wheel(root)
        env.seconds["wheel"] = time.perf_counter() - t
        stamp.unlink(missing_ok=True)
        pip = [env.python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile"]
        t = time.perf_counter()
        if not env.python.is_file():
            venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
            env.seconds["venv"] = time.perf_counter() - t
            t = time.perf_counter()
            constraints = root / "constraints.txt"
            constraints.write_text(parent_constraints())
            torch = f"torch=={metadata.version('torch')}"
            log(f"outside-checkout: installing {torch} and {env.wheel.name} into a fresh environment in {root}")
            _run([*pip, "-c", constraints, torch, env.wheel, *KERNEL_PACKAGES], "installing the wheel")
        else:
            _run([*pip, "--no-deps", "--force-reinstall", env.wheel], "reinstalling the wheel")
        env.seconds["install"] = time.perf_counter() - t
        stamp.write_text(digest)


# ------------------------------------------------------------------------------------ pytest hooks
def pytest_addoption(parser):
    group = parser.getgroup("lecturekit")
    group.addoption(
        "--notebooks-in-checkout", action="store_true", default=False,
        help="run notebooks with nbval in the current environment (the checkout) instead of from the "
             "built wheel in a fresh environment outside the checkout (the default, as on Colab)")


def _state(config) -> dict:
    if not hasattr(config, "_lecturekit_outside"):
        config._lecturekit_outside = {"env": None, "error": None}
    return config._lecturekit_outside


def get_env(config) -> OutsideEnv:
    """The session's out-of-checkout environment, built on first use (once per session)."""
    state = _state(config)
    if state["error"] is not None:
        raise RuntimeError(f"the out-of-checkout environment could not be built: {state['error']}")
    if state["env"] is None:
        kept = os.environ.get(ENV_VAR)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        log = (lambda msg: reporter.write_line(msg)) if reporter is not None else print
        start = time.perf_counter()
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        shared = os.environ.get(_XDIST_ROOT_VAR) if worker else None
        try:
            if kept:
                env = prepare(Path(kept).expanduser(), log=log, slot=worker)
            elif shared:  # a parallel worker: the controller removes the shared folder at the end
                env = prepare(Path(shared), log=log, slot=worker)
            else:
                env = prepare(None, log=log)
        except Exception as err:  # report once, then fail every notebook quickly with it
            state["error"] = err
            raise
        env.seconds["total"] = time.perf_counter() - start
        if not kept and not shared:
            config.add_cleanup(lambda: shutil.rmtree(env.root, ignore_errors=True))
        state["env"] = env
    return state["env"]


def pytest_configure(config):
    # On the controller of a parallel run (before its workers start, so they inherit the variable):
    # the folder the workers share, removed when the run ends.
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        _remove_stale_envs()
        root = xdist_shared_root(os.getpid())
        os.environ[_XDIST_ROOT_VAR] = str(root)
        config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))


@pytest.fixture(scope="session")
def outside_env(pytestconfig) -> OutsideEnv:
    """The built wheel installed in a fresh environment outside the checkout (see this module)."""
    return get_env(pytestconfig)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before nbval's IPyNbFile.setup() starts the notebook's kernel (the first cell's setup).
    if item.__class__.__name__ != "IPyNbCell" or item.config.getoption("notebooks_in_checkout"):
        return
    env = get_env(item.config)
    item.config.option.nbval_current_env = False
    item.config.option.nbval_kernel_name = KERNEL_NAME
    paths = os.environ.get("JUPYTER_PATH", "").split(os.pathsep)
    if str(env.jupyter_path) not in paths:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([str(env.jupyter_path), *filter(None, paths)])


def pytest_terminal_summary(terminalreporter, config):
    env = _state(config)["env"]
    if env is None:
        return
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in env.seconds.items())
    how = "built" if env.rebuilt else "reused unchanged"
    terminalreporter.write_sep("-", "lecturekit outside the checkout")
    terminalreporter.write_line(
        f"{env.wheel.name}: {env.wheel_bytes / 1e6:.2f} MB; environment {how} ({steps}) in {env.root}")
    if not config.getoption("notebooks_in_checkout"):
        terminalreporter.write_line(f"notebooks ran from the wheel, in copies under {env.work}")
