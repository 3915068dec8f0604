"""The checkpoint file: one model's weights with what rebuilds it, written atomically, read safely.

>>> import tempfile, torch
>>> from pathlib import Path
>>> from lecturekit.checkpoint import load_checkpoint, save_checkpoint
>>> model = torch.nn.Linear(4, 2)
>>> with tempfile.TemporaryDirectory() as folder:
...     path = save_checkpoint(model, Path(folder) / "linear.pt")
...     copy = load_checkpoint(path, torch.nn.Linear(4, 2), device="cpu")
>>> torch.equal(copy.weight, model.weight)
True

What a file holds (a dict, saved with ``torch.save``)
    ``format`` / ``format_version`` (a header), ``architecture`` (a name in
    ``lecturekit.models.MODELS``) and ``kwargs`` (the ``build_model`` arguments that rebuild it),
    ``state_dict`` (CPU tensors), ``digest`` (a sha256 hash of the weights), ``metadata`` (plain
    data: accuracy, dataset parameters, ...), ``torch_version``; a checkpoint written during
    training (:func:`save_training_state`) adds the optimizer, scheduler and gradient-scaler
    states, the history as plain lists, the epoch and step reached and the RNG state.

Safety
    Files are read with ``torch.load(weights_only=True)``: tensors and plain Python values only,
    never code. A file of another architecture, with other tensor shapes, or whose weights no
    longer match their hash is refused with a :class:`CheckpointError` saying what differs.
    Writing goes to a temporary file in the same folder, then ``os.replace``: a crash leaves the
    old file intact.

The architecture is explicit: pass ``architecture=`` and ``kwargs=`` to :func:`save_checkpoint`,
or the name is looked up by the model's class in ``lecturekit.models.MODELS`` (kwargs ``{}``).
The training loop (:func:`lecturekit.train.fit`) builds on this module, never the reverse.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .env import device as default_device

__all__ = [
    "CheckpointError",
    "atomic_save",
    "load_checkpoint",
    "load_training_state",
    "save_checkpoint",
    "save_training_state",
]

FORMAT = "lecturekit-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, tampered with, unsafe, or for another model."""


# =========================================================================== writing
def _digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of every tensor, in key order."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key]
        h.update(key.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().to("cpu").contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(t).encode())
    return h.hexdigest()


def _check_plain(value, where: str) -> None:
    """Metadata must be plain data (loadable with weights_only): refuse anything else now."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where}: checkpoint metadata must be plain data (str, int, float, bool, None, list, dict), got {type(value).__name__}")


def _registered_name(model: nn.Module) -> str:
    """The model's name in ``lecturekit.models.MODELS`` found by its class (a variant with fixed
    arguments is never chosen); the qualified class name when it is not registered."""
    from .models import MODELS

    names = [n for n, e in MODELS.items() if e.cls is type(model) and not e.fixed]
    return names[0] if names else f"{type(model).__module__}.{type(model).__qualname__}"


def _is_architecture_of(name: str, model: nn.Module) -> bool:
    """Does a checkpoint saved as ``name`` belong to ``model``'s class?"""
    from .models import MODELS

    if name in MODELS:
        return MODELS[name].cls is type(model)
    return name == f"{type(model).__module__}.{type(model).__qualname__}"


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` through a temporary file and ``os.replace``: readers see
    the old file or the new one, never a partial one. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a checkpoint is an ordinary readable file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    architecture: str | None = None,
    kwargs: Mapping | None = None,
    metadata: Mapping | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    **extra,
) -> Path:
    """Write ``model`` to ``path`` atomically (temporary file + ``os.replace``); return the path.

    ``architecture`` is the model's name in ``lecturekit.models.MODELS`` and ``kwargs`` the
    arguments of ``build_model`` that rebuild it (e.g. ``{"preset": "small", "num_classes": 12}``);
    without them the name is looked up by class (kwargs then default to ``{}``).
    ``metadata`` is plain data (accuracy, dataset parameters, ...). The file also stores a
    sha256 hash of the weights, checked on load. ``extra`` entries (plain data or tensors) are
    stored at the top level of the file.
    """
    architecture = _registered_name(model) if architecture is None else architecture
    kwargs = dict(kwargs or {})
    _check_plain(kwargs, "kwargs")
    _check_plain(dict(metadata or {}), "metadata")
    state_dict = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    obj = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "kwargs": kwargs,
        "state_dict": state_dict,
        "digest": _digest(state_dict),
        "metadata": dict(metadata or {}),
        "torch_version": str(torch.__version__),
    }
    if optimizer is not None:
        obj["optimizer"] = optimizer.state_dict()
    obj.update(extra)
    return atomic_save(obj, path)


def save_training_state(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    scheduler=None,
    scaler=None,
    history: Mapping,
    epoch: int,
    step: int,
    meta: Mapping | None = None,
    rng_ranks: list | None = None,
) -> Path:
    """A checkpoint from which training resumes (what ``fit(checkpoint=...)`` writes).

    ``history`` is the plain-data form of the run's history (``History.to_dict()``); ``meta``
    may carry ``architecture`` and ``kwargs`` (as in :func:`save_checkpoint`), the rest of it is
    stored as metadata. The RNG state of this process is stored; ``rng_ranks`` are the states of
    every process of a distributed run (rank order).
    """
    meta = dict(meta or {})
    extra = {} if rng_ranks is None else {"rng_torch_ranks": rng_ranks}
    return save_checkpoint(
        model,
        path,
        architecture=meta.pop("architecture", None),
        kwargs=meta.pop("kwargs", None),
        metadata=meta,
        optimizer=optimizer,
        scheduler=None if scheduler is None else scheduler.state_dict(),
        scaler=None if scaler is None else scaler.state_dict(),
        history=dict(history),
        epoch=epoch,
        step=step,
        rng_torch=torch.get_rng_state(),
        **extra,
    )


# =========================================================================== reading
def _read(path) -> dict:
    """The checked contents of a checkpoint file (header, entries, hash of the weights)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - translated into one clear message
        text = str(err)
        detail = next((ln.strip() for ln in text.splitlines() if "Unsupported global" in ln or "Unpickler error" in ln), None)
        if "weights_only" in text or "Unpickler" in text or "GLOBAL" in text:
            raise CheckpointError(
                f"{path}: refused to load: the file contains pickled Python objects, not only tensors and "
                "plain data, and torch.load(weights_only=True) does not execute code from a checkpoint. "
                f"Only load files you trust in other ways. Detail: {detail or type(err).__name__}"
            ) from err
        raise CheckpointError(
            f"{path}: not a readable checkpoint (corrupt, truncated or altered file): {type(err).__name__}: "
            f"{text.splitlines()[0] if text else ''}"
        ) from err
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a lecturekit checkpoint (no '{FORMAT}' header); save it with save_checkpoint")
    if ck.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {ck.get('format_version')} is not {FORMAT_VERSION}")
    for key in ("architecture", "kwargs", "state_dict", "digest"):
        if key not in ck:
            raise CheckpointError(f"{path}: checkpoint lacks its {key!r} entry")
    if _digest(ck["state_dict"]) != ck["digest"]:
        raise CheckpointError(
            f"{path}: the weights do not match the hash stored with them: the file was altered after it "
            "was saved (or damaged). Re-create it with scripts/train_checkpoints.py or save_checkpoint."
        )
    return ck


def _check_architecture(ck: dict, path, *, expected: str | None = None, model: nn.Module | None = None) -> None:
    """Refuse a checkpoint of another architecture: the name ``expected``, else ``model``'s class."""
    if expected is not None:
        if ck["architecture"] == expected:
            return
    elif model is None or _is_architecture_of(ck["architecture"], model):
        return
    else:
        expected = _registered_name(model)
    raise CheckpointError(
        f"{path}: this checkpoint is for architecture {ck['architecture']!r}, not {expected!r}; "
        "load it into the model it was saved from"
    )


def _load_state_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], path) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong = [
        f"{k}: model {tuple(own[k].shape)} vs checkpoint {tuple(state_dict[k].shape)}"
        for k in sorted(set(own) & set(state_dict))
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} tensor(s) of another shape: " + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""))
        if missing:
            parts.append(f"missing in checkpoint: {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append(f"not in the model: {unexpected[:5]}" + (" ..." if len(unexpected) > 5 else ""))
        raise CheckpointError(
            f"{path}: checkpoint does not fit this model ({type(model).__name__}): " + "; ".join(parts)
            + ". Was it saved with other constructor arguments (num_classes, width, frames)?"
        )
    model.load_state_dict(state_dict, strict=True)


def load_training_state(path: str | os.PathLike, model: nn.Module, *, architecture: str | None = None) -> dict:
    """Put the weights of a training checkpoint into ``model`` and return the file's contents.

    The checkpoint must be for ``architecture`` (or, when it is None, for ``model``'s class), fit
    the model's tensors and hold an optimizer state; the caller restores the optimizer,
    scheduler, scaler, history and RNG from the returned dict (keys as in
    :func:`save_training_state`).
    """
    ck = _read(path)
    _check_architecture(ck, path, expected=architecture or None, model=model)
    _load_state_checked(model, ck["state_dict"], path)
    if "optimizer" not in ck:
        raise CheckpointError(f"{path}: has no optimizer state, so training cannot resume from it")
    return ck


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    *,
    architecture: str | None = None,
    device=None,
    with_info: bool = False,
):
    """Load a checkpoint written by :func:`save_checkpoint` (``torch.load(weights_only=True)``).

    * ``model`` given: its weights are replaced (the checkpoint must be for the same
      architecture and have the same tensor names and shapes, else :class:`CheckpointError`).
    * ``model`` omitted: the model is rebuilt with ``build_model(architecture, **kwargs)`` from
      the names stored in the file (registered architectures only: nothing is imported by a
      name read from a file).
    * ``architecture`` (optional) is what you expect; another one is refused.

    Returns the model (in eval mode, on ``device`` or the default device), or
    ``(model, info)`` with ``with_info=True`` where ``info`` holds ``architecture``, ``kwargs``,
    ``metadata``, ``history`` (plain data, ``History.from_dict`` of :mod:`lecturekit.train`
    turns it into a History; None when the file has none) and ``path``.
    """
    ck = _read(path)
    if architecture is not None and ck["architecture"] != architecture:
        raise CheckpointError(
            f"{path}: this checkpoint is for architecture {ck['architecture']!r}, not {architecture!r}"
        )
    if model is None:
        from .models import MODELS, build_model

        if ck["architecture"] not in MODELS:
            raise CheckpointError(
                f"{path}: architecture {ck['architecture']!r} is not a registered model "
                f"({', '.join(sorted(MODELS)) or 'none registered'}); build the model yourself and pass it as model="
            )
        model = build_model(ck["architecture"], **ck["kwargs"])
    else:
        _check_architecture(ck, path, model=model)
    _load_state_checked(model, ck["state_dict"], path)
    model.to(default_device() if device is None else torch.device(device))
    model.eval()
    if with_info:
        info = {
            "architecture": ck["architecture"],
            "kwargs": dict(ck["kwargs"]),
            "metadata": dict(ck.get("metadata", {})),
            "history": dict(ck["history"]) if ck.get("history") else None,
            "path": str(path),
        }
        return model, info
    return model
