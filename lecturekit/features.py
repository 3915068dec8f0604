"""Per-frame features of ToyKitchens videos: the (B, T, D) sequences anticipation models read.

The anticipation literature (RULSTM, AVT, AGA) does not train on pixels: it reads features that
a frame encoder (TSN in EPIC-KITCHENS) computed once for every frame. This module does the same
for ToyKitchens with the course's pretrained single-frame CNN
(``lecturekit/resources/checkpoints/toykitchens_frame_cnn.pt``, shipped inside the package and made
by ``scripts/train_checkpoints.py``):

>>> from lecturekit.data.toykitchens import ToyKitchens          # doctest: +SKIP
>>> world = ToyKitchens(seed=0)                                   # doctest: +SKIP
>>> table = video_features(world)            # {video_id: (T_video, D)}, cached on disk
>>> view = world.anticipation("train", tau_a=1.0, tau_o=2.0)      # doctest: +SKIP
>>> feats = view_features(view, table)       # (N, T, D), the view's frames as features

Where it sits: above ``models`` and ``data`` (it uses both); ``data`` knows nothing of it.
The cache (``lecturekit.data.cache_dir()``) is keyed by the world's generator parameters and the
sha256 of the checkpoint file, so a new world or a retrained encoder never reads stale features.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import resources
from .data.cache import cache_dir
from .env import device as default_device

__all__ = [
    "FRAME_ENCODER",
    "FRAME_ENCODER_RECIPE",
    "train_frame_encoder",
    "checkpoint_path",
    "encode_frames",
    "features_cache_path",
    "file_sha256",
    "load_frame_encoder",
    "video_features",
    "view_features",
]

FRAME_ENCODER = "toykitchens_frame_cnn"
_CHECKPOINT_ENV = "LECTUREKIT_CHECKPOINTS"


# The recipe of the frame encoder: world, data, model and training, all in one place.
# scripts/train_checkpoints.py trains with it; load_frame_encoder(retrain=True) too.
FRAME_ENCODER_RECIPE = {
    "world": {"seed": 0},                 # ToyKitchens(**world): the default world of the course
    "frames": 8,                          # world.clips(split, frames=8)
    "target": "action",                   # what the encoder learns to recognise
    "model": {"preset": "small"},         # build_model("frame_cnn", **model, num_classes=#targets)
    "epochs": 12,
    "batch_size": 32,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "scheduler": "cosine",
    "seed": 0,
}


def _candidates(name: str) -> list[Path]:
    out = []
    env = os.environ.get(_CHECKPOINT_ENV)
    if env:
        out.append(Path(env).expanduser() / f"{name}.pt")
    rel = f"checkpoints/{name}.pt"
    override = resources.checkout_path(rel)
    if override is not None:
        out.append(override)
    out.append(resources.shipped_path(rel))
    out.append(cache_dir() / "checkpoints" / f"{name}.pt")
    return out


def checkpoint_path(name: str = FRAME_ENCODER) -> Path:
    """Where checkpoint ``name`` is: the first existing of ``$LECTUREKIT_CHECKPOINTS/<name>.pt``,
    ``data/checkpoints/<name>.pt`` of a course checkout (an instructor's retrained override),
    the file shipped inside the package (``lecturekit/resources/checkpoints/<name>.pt``, see
    :mod:`lecturekit.resources`) and ``cache_dir()/checkpoints/<name>.pt`` (where
    ``retrain=True`` saves one). When none exists, the first candidate is returned."""
    candidates = _candidates(name)
    return next((p for p in candidates if p.is_file()), candidates[0])


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def train_frame_encoder(recipe: Mapping = FRAME_ENCODER_RECIPE, *, device=None, progress: bool | None = None):
    """Train the frame encoder of ``recipe`` from scratch (about 3 minutes on a 2-core CPU, seconds
    on a GPU). Returns ``(model, kwargs, metrics, history)``; ``metrics`` holds the validation
    ``accuracy`` and ``top5`` of the recipe's target and ``num_val_clips``."""
    from .data.toykitchens import ToyKitchens
    from .models import build_model
    from .train import evaluate, fit, seed_everything

    world = ToyKitchens(**recipe["world"])
    target = recipe["target"]
    x_tr, y_tr = world.clips("train", frames=recipe["frames"]).tensors()
    x_va, y_va = world.clips("val", frames=recipe["frames"]).tensors()
    kwargs = {**recipe["model"], "num_classes": world.num_classes[target]}
    seed_everything(recipe["seed"])
    model = build_model("frame_cnn", **kwargs)
    history = fit(
        model, (x_tr, y_tr[target]), (x_va, y_va[target]),
        epochs=recipe["epochs"], batch_size=recipe["batch_size"], lr=recipe["lr"],
        weight_decay=recipe["weight_decay"], scheduler=recipe["scheduler"], seed=recipe["seed"],
        metrics=["accuracy", "top5"], device=device, progress=progress,
    )
    metrics = evaluate(model, (x_va, y_va[target]), metrics=["accuracy", "top5"], device=device)
    metrics["num_val_clips"] = int(len(x_va))
    return model, kwargs, metrics, history


def load_frame_encoder(path: str | os.PathLike | None = None, device=None, *, retrain: bool = False) -> nn.Module:
    """The pretrained ToyKitchens frame encoder (a ``frame_cnn``), in eval mode.

    Looks where :func:`checkpoint_path` says. When no file exists: with ``retrain=True`` the
    encoder is trained with :data:`FRAME_ENCODER_RECIPE` and saved to
    ``cache_dir()/checkpoints/`` (so the next call loads it); otherwise ``FileNotFoundError``
    says how to create it.
    """
    from .train import load_checkpoint, save_checkpoint

    path = Path(path) if path is not None else checkpoint_path()
    if not path.is_file():
        if not retrain:
            raise FileNotFoundError(
                f"no frame encoder at {path}; create it with `python scripts/train_checkpoints.py` "
                "or load_frame_encoder(retrain=True)"
            )
        model, kwargs, metrics, _ = train_frame_encoder(FRAME_ENCODER_RECIPE, device=device)
        path = cache_dir(create=True) / "checkpoints" / f"{FRAME_ENCODER}.pt"
        save_checkpoint(model, path, architecture="frame_cnn", kwargs=kwargs,
                        metadata={"recipe": FRAME_ENCODER_RECIPE, "val_accuracy": metrics["accuracy"],
                                  "val_top5": metrics["top5"]})
    return load_checkpoint(path, architecture="frame_cnn", device=device)


@torch.no_grad()
def encode_frames(encoder: nn.Module, video, *, batch_frames: int = 512, device=None) -> torch.Tensor:
    """Features of every frame: ``(C, T, H, W)`` -> ``(T, D)``, ``(B, C, T, H, W)`` -> ``(B, T, D)``.

    ``video`` is uint8 (divided by 255 here) or float in [0, 1], torch or numpy; frames are
    encoded in chunks of ``batch_frames`` on ``device`` (default :func:`lecturekit.device`).
    Returns float32 on the CPU. ``encoder`` must have ``forward_features`` (B, C, T, H, W) -> (B, T, D).
    """
    if not hasattr(encoder, "forward_features"):
        raise TypeError(f"encoder {type(encoder).__name__} has no forward_features (B, C, T, H, W) -> (B, T, D)")
    x = torch.as_tensor(video)
    single = x.ndim == 4
    if single:
        x = x[None]
    if x.ndim != 5:
        raise ValueError(f"video: expected (C, T, H, W) or (B, C, T, H, W), got shape {tuple(x.shape)}")
    dev = default_device() if device is None else torch.device(device)
    encoder = encoder.to(dev).eval()
    B, C, T, H, W = x.shape
    frames = x.permute(0, 2, 1, 3, 4).reshape(B * T, C, 1, H, W)  # every frame a 1-frame clip
    out = []
    for i in range(0, B * T, batch_frames):
        chunk = frames[i : i + batch_frames].to(dev)
        chunk = chunk.float().div_(255.0) if chunk.dtype == torch.uint8 else chunk.float()
        out.append(encoder.forward_features(chunk)[:, 0].float().cpu())  # (n, 1, D) -> (n, D)
    feats = torch.cat(out).reshape(B, T, -1)
    return feats[0] if single else feats


def features_cache_path(world, checkpoint: str | os.PathLike) -> Path:
    """Cache file of a (world, encoder checkpoint) pair: both hashes are in the name."""
    world_key = world.cache_key()
    ckpt_key = file_sha256(checkpoint)[:16]
    return cache_dir() / "features" / f"toykitchens-{world_key}-{FRAME_ENCODER}-{ckpt_key}.pt"


def video_features(
    world,
    *,
    checkpoint: str | os.PathLike | None = None,
    encoder: nn.Module | None = None,
    cache: bool = True,
    device=None,
    retrain: bool = False,
) -> dict[str, torch.Tensor]:
    """Per-frame features of every long video of a ToyKitchens world: ``{video_id: (T_video, D)}``
    plus the key ``"__black__"``: the feature of an all-black frame (the padding of views).

    With the default encoder (or ``checkpoint``), results are cached under ``cache_dir()``
    keyed by the world's parameters and the checkpoint's sha256; a passed ``encoder`` is not
    cached (nothing identifies its weights). ``retrain=True`` trains the encoder first when no
    checkpoint exists (see :func:`load_frame_encoder`)."""
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if encoder is None:
        ckpt = ckpt or checkpoint_path()
        encoder = load_frame_encoder(ckpt, device=device, retrain=retrain)
        ckpt = ckpt if ckpt.is_file() else checkpoint_path()
        path = features_cache_path(world, ckpt) if cache else None
    else:
        path = None
    if path is not None and path.is_file():
        table = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(table, dict) and set(world.video_ids) | {"__black__"} == set(table):
            return table
    size = world.size
    table = {}
    for v, vid in enumerate(world.video_ids):
        frames = torch.from_numpy(np.ascontiguousarray(world.long_video(v))).permute(3, 0, 1, 2)  # (C, T, H, W)
        table[vid] = encode_frames(encoder, frames, device=device)
    table["__black__"] = encode_frames(encoder, torch.zeros(3, 1, size, size, dtype=torch.uint8), device=device)[0]
    if path is not None:
        from .train import _atomic_save

        _atomic_save(table, path)
    return table


def view_features(view, table: Mapping[str, torch.Tensor] | None = None, **kwargs) -> torch.Tensor:
    """The frames of a ToyKitchens view (``clips``, ``early``, ``anticipation``) as features
    ``(N, T, D)``: row ``i`` equals ``encode_frames(encoder, view[i].video)``. Frames outside the
    video (index -1, black in the pixel view) get the black-frame feature.

    ``table``: from :func:`video_features` (computed here with ``kwargs`` when omitted).
    """
    if table is None:
        table = video_features(view.world, **kwargs)
    world = view.world
    black = table["__black__"]
    out = torch.empty(len(view), view.frames, black.shape[-1])
    idx = torch.from_numpy(view.frame_index)
    vids = view.video_index
    for v in np.unique(vids):
        rows = torch.from_numpy(np.nonzero(vids == v)[0])
        feats = table[world.video_ids[int(v)]]
        sel = idx[rows]
        block = feats[sel.clamp(min=0)]
        block[sel < 0] = black
        out[rows] = block
    return out
