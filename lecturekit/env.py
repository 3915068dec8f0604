"""The environment the course runs in: device choice, Colab detection, headless mode, where
generated data is cached, the machine a measurement ran on, doctor().

This module imports nothing of the library, so every floor may use it. Heavy imports (torch,
matplotlib) happen inside functions.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

_HEADLESS_ENV = "LECTUREKIT_HEADLESS"
_DEVICE_ENV = "LECTUREKIT_DEVICE"
_CACHE_ENV = "LECTUREKIT_CACHE"
_TRUE = {"1", "true", "yes", "on"}

# The environment of every executed notebook: ``python -m lecturekit.course execute`` and the
# repository's conftest.py (nbval) both set it, so stored outputs and CI runs are the same
# computation. One intra-op thread: CPU training results depend (slightly) on the thread count,
# and the lessons' asserted numbers must be the ones stored in the notebooks.
HEADLESS_ENV = {
    "LECTUREKIT_HEADLESS": "1",
    "TQDM_DISABLE": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    "OMP_NUM_THREADS": "1",
}


def in_colab() -> bool:
    """True when running inside a Google Colab runtime (Colab pre-imports ``google.colab``)."""
    return "google.colab" in sys.modules


def headless() -> bool:
    """True when nobody is watching: CI, nbval, the execute command, or ``set_headless(True)``.

    Headless code draws no progress bars and no live figures; a training run shows one final
    figure instead. Set ``LECTUREKIT_HEADLESS=1`` (the test suite and ``python -m
    lecturekit.course execute`` do) or call :func:`set_headless`.
    """
    return os.environ.get(_HEADLESS_ENV, "").strip().lower() in _TRUE


def set_headless(flag: bool = True) -> None:
    """Switch headless mode on or off for this process and the kernels it starts."""
    os.environ[_HEADLESS_ENV] = "1" if flag else "0"


def device(prefer: str | None = None):
    """The best available torch device: CUDA, then Apple MPS, then CPU.

    ``prefer`` (or the ``LECTUREKIT_DEVICE`` environment variable) forces a choice such as
    ``"cpu"`` or ``"cuda:1"``. Every function of the library that computes takes a ``device``
    argument defaulting to this.
    """
    import torch

    choice = prefer or os.environ.get(_DEVICE_ENV)
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def repo_root() -> Path | None:
    """The course checkout holding this package, or None for a plain pip install."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "data").is_dir():
        return root
    return None


def cache_dir(create: bool = False) -> Path:
    """The folder for generated data (ToyKitchens renders, per-frame features); created when
    ``create`` is true. Nothing is ever downloaded into it.

    Order: the ``LECTUREKIT_CACHE`` environment variable; ``data/generated/`` of a source checkout
    (git-ignored); otherwise ``~/.cache/lecturekit``.
    """
    env = os.environ.get(_CACHE_ENV)
    if env:
        path = Path(env).expanduser()
    elif (root := repo_root()) is not None:
        path = root / "data" / "generated"
    else:
        path = Path.home() / ".cache" / "lecturekit"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def library_version() -> str:
    """The installed lecturekit's version (package metadata), read without importing the package;
    ``"unknown"`` when the metadata is missing (the source folder on ``sys.path``, not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lecturekit")
    except PackageNotFoundError:
        return "unknown"


def machine_info() -> dict:
    """Where a measurement ran: date, CPU model, logical CPU count, platform, Python and torch
    versions, the device the course uses (and the GPU's name on CUDA). Stored next to measured
    numbers (claims' robustness table, training throughput) so a reader knows what they describe."""
    import datetime
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"date": datetime.date.today().isoformat(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(), "torch": str(torch.__version__),
            "device": os.environ.get(_DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")}
    if info["device"].startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _version(module_name: str) -> str:
    try:
        module = __import__(module_name)
    except Exception:  # noqa: BLE001 - a report, never a failure
        return "not installed"
    return getattr(module, "__version__", "unknown")


def _display_path(path) -> str:
    """A path as a person reads it: relative to the working folder when inside it (or its
    parent), ``~`` for the home folder; never the full absolute path of one machine."""
    path = Path(path).resolve()
    bases = [(Path.cwd(), ".")]
    if Path.cwd().parent.parent != Path.cwd().parent:          # the parent is not the root
        bases.append((Path.cwd().parent, ".."))
    for base, prefix in bases:
        try:
            rel = path.relative_to(base.resolve())
        except ValueError:
            continue
        return str(Path(prefix) / rel)
    try:
        return str(Path("~") / path.relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)


def doctor(file=None) -> dict:
    """Print (and return) a report of the environment the course will run in.

    Reports library versions, the device the course will use (CUDA name and free memory, Apple
    MPS, or CPU with its thread count), whether this is Colab, headless mode, and where generated
    data is cached. Warns, never fails, on a CPU-only Colab runtime.
    """
    import torch

    out = file or sys.stdout
    dev = device()
    report: dict = {
        "lecturekit": library_version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": _version("numpy"),
        "matplotlib": _version("matplotlib"),
        "device": str(dev),
        "colab": in_colab(),
        "headless": headless(),
        "cache": _display_path(cache_dir()),
    }
    if dev.type == "cuda":
        free, total = torch.cuda.mem_get_info(dev)
        report["device_name"] = torch.cuda.get_device_name(dev)
        report["device_memory"] = f"{free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB"
    elif dev.type == "mps":
        report["device_name"] = "Apple Metal (MPS)"
    else:
        report["device_name"] = f"CPU, {torch.get_num_threads()} threads"

    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}", file=out)
    if report["colab"] and dev.type == "cpu":
        print(
            "WARNING: this Colab runtime has no GPU. Everything still runs on the CPU, only "
            "slower; for a GPU choose Runtime > Change runtime type > GPU.",
            file=out,
        )
    return report
