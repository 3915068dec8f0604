"""Per-frame features of ToyKitchens videos: the (B, T, D) sequences anticipation models read.

The anticipation literature (RULSTM, AVT, AGA) does not train on pixels: it reads features that
an encoder (TSN in EPIC-KITCHENS) computed once for every frame. This module does the same for
ToyKitchens with two pretrained encoders, shipped inside the package
(``lecturekit/resources/checkpoints/``) and made by ``scripts/train_checkpoints.py``:

``toykitchens_frame_cnn`` (:data:`FRAME_ENCODER`)
    a single-frame CNN: the feature of frame t is computed from frame t alone. By the design
    of the world it cannot tell *take* from *put* or *open* from *close* (one is the other
    played backwards), so a model reading its features cannot know which step of a recipe it
    is in. The weak baseline of the course.
``toykitchens_tsm_online`` (:data:`TEMPORAL_ENCODER`)
    an online (unidirectional) TSM, Lin et al. 2019 (https://arxiv.org/abs/1811.08383),
    Fig. 1c: every residual block shifts a fold of its channels from frame t−1 to frame t, so
    the feature of frame t is computed from frames t−d..t (d = number of blocks) and never
    from a later frame. Run over a whole video at once it gives, for every frame, the feature
    a streaming model would have at that moment: features "with time in them", causal, at the
    cost of a frame CNN.

Usage (not run as a doctest: it renders a world and encodes every frame). ``table`` maps each
video id to its (T_video, D) features, cached on disk; ``feats`` is (N, T, D), the view's frames
as features:

>>> from lecturekit.data.toykitchens import ToyKitchens                     # doctest: +SKIP
>>> world = ToyKitchens(seed=0)                                              # doctest: +SKIP
>>> table = video_features(world, TEMPORAL_ENCODER)                          # doctest: +SKIP
>>> view = world.anticipation("train", tau_a=1.0, tau_o=2.0)                 # doctest: +SKIP
>>> feats = view_features(view, table)                                       # doctest: +SKIP

Where it sits: above ``models`` and ``data`` (it uses both); ``data`` knows nothing of it.
The cache (``lecturekit.data.cache_dir()``) is keyed by the world's generator parameters, the
encoder's name and the sha256 of its checkpoint file, so a new world or a retrained encoder
never reads stale features.
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
from .env import cache_dir
from .env import device as default_device

__all__ = [
    "ENCODERS",
    "FRAME_ENCODER",
    "TEMPORAL_ENCODER",
    "train_encoder",
    "checkpoint_path",
    "encode_frames",
    "features_cache_path",
    "file_sha256",
    "load_encoder",
    "reversed_pair_copies",
    "video_features",
    "view_features",
    "view_maps",
]

FRAME_ENCODER = "toykitchens_frame_cnn"
TEMPORAL_ENCODER = "toykitchens_tsm_online"
_CHECKPOINT_ENV = "LECTUREKIT_CHECKPOINTS"

# The recipes of the encoders: world, data, model and training, all in one place.
# scripts/train_checkpoints.py trains with them; load_encoder(retrain=True) too.
# build_model(architecture, **model, num_classes=#targets); fit on world.clips(split, frames).
_TRAINING = {"world": {"seed": 0}, "frames": 8, "target": "action", "batch_size": 32, "lr": 3e-3,
             "weight_decay": 1e-4, "scheduler": "cosine", "seed": 0}
ENCODERS: dict[str, dict] = {
    FRAME_ENCODER: {**_TRAINING, "architecture": "frame_cnn", "model": {"preset": "small"}, "epochs": 12},
    # reversed_pairs: every training clip of a reversible action also enters played backwards,
    # labelled with its partner (take <-> put, ...): the only way to fit both is to read time
    # depths [2, 2, 2]: six shifts, so the feature of frame t sees frames t-6..t
    TEMPORAL_ENCODER: {**_TRAINING, "architecture": "tsm", "epochs": 40, "reversed_pairs": True,
                       "model": {"preset": "small", "mode": "online", "fold_div": 4, "depths": [2, 2, 2]}},
}


def reversed_pair_copies(world, video: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The clips of reversible actions played backwards, labelled with the partner action.

    ToyKitchens renders *put* as *take* played backwards (and so for open/close and the two
    turns, ``world.reversal_pairs``), so ``clip.flip(time)`` of a *take cup* is a valid
    *put cup*. Only actions whose partner is in the vocabulary are copied.
    Shapes: video (N, C, T, H, W), action (N,) -> (M, C, T, H, W), (M,) with M <= N.
    """
    table = [tuple(int(x) for x in row) for row in world.actions_table]
    index = {vn: a for a, vn in enumerate(table)}
    partner = {}
    for a, b in world.reversal_pairs:
        va, vb = world.verbs.index(a), world.verbs.index(b)
        partner[va], partner[vb] = vb, va
    rows, labels = [], []
    for i, a in enumerate(action.tolist()):
        verb, noun = table[a]
        other = index.get((partner.get(verb, -1), noun))
        if other is not None:
            rows.append(i)
            labels.append(other)
    rows_t = torch.tensor(rows, dtype=torch.long)
    return video[rows_t].flip(2), torch.tensor(labels, dtype=torch.long)


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


def _recipe(name: str) -> Mapping:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; known: {sorted(ENCODERS)}")
    return ENCODERS[name]


def train_encoder(recipe: Mapping | str = FRAME_ENCODER, *, device=None, progress: bool | None = None):
    """Train the encoder of ``recipe`` (a name of :data:`ENCODERS` or a recipe dict) from scratch
    (a few minutes on a 2-core CPU, seconds on a GPU). Returns ``(model, kwargs, metrics, history)``;
    ``metrics`` holds the validation ``accuracy`` and ``top5`` of the recipe's target and
    ``num_val_clips``; ``kwargs`` rebuild the model with ``build_model(recipe["architecture"], **kwargs)``."""
    from .data.toykitchens import ToyKitchens
    from .models import build_model
    from .train import evaluate, fit, seed_everything

    recipe = _recipe(recipe) if isinstance(recipe, str) else recipe
    world = ToyKitchens(**recipe["world"])
    target = recipe["target"]
    x_tr, y_tr = world.clips("train", frames=recipe["frames"]).tensors()
    y_tr = y_tr[target]
    x_va, y_va = world.clips("val", frames=recipe["frames"]).tensors()
    if recipe.get("reversed_pairs"):
        if target != "action":
            raise ValueError(f"reversed_pairs needs target='action', got {target!r}")
        x_rev, y_rev = reversed_pair_copies(world, x_tr, y_tr)
        x_tr, y_tr = torch.cat([x_tr, x_rev]), torch.cat([y_tr, y_rev])
    kwargs = {**recipe["model"], "num_classes": world.num_classes[target]}
    seed_everything(recipe["seed"])
    model = build_model(recipe["architecture"], **kwargs)
    history = fit(
        model, (x_tr, y_tr), (x_va, y_va[target]),
        epochs=recipe["epochs"], batch_size=recipe["batch_size"], lr=recipe["lr"],
        weight_decay=recipe["weight_decay"], scheduler=recipe["scheduler"], seed=recipe["seed"],
        metrics=["accuracy", "top5"], device=device, progress=progress,
    )
    metrics = evaluate(model, (x_va, y_va[target]), metrics=["accuracy", "top5"], device=device)
    metrics["num_val_clips"] = int(len(x_va))
    return model, kwargs, metrics, history


def load_encoder(name: str = FRAME_ENCODER, path: str | os.PathLike | None = None, device=None, *,
                 retrain: bool = False) -> nn.Module:
    """The pretrained ToyKitchens encoder ``name`` (:data:`ENCODERS`), in eval mode.

    Looks where :func:`checkpoint_path` says (or at ``path``). When no file exists: with
    ``retrain=True`` the encoder is trained with its recipe and saved to
    ``cache_dir()/checkpoints/`` (so the next call loads it); otherwise ``FileNotFoundError``
    says how to create it.
    """
    from .checkpoint import load_checkpoint, save_checkpoint

    recipe = _recipe(name)
    path = Path(path) if path is not None else checkpoint_path(name)
    if not path.is_file():
        if not retrain:
            raise FileNotFoundError(
                f"no encoder {name!r} at {path}; create it with `python scripts/train_checkpoints.py` "
                f"or load_encoder({name!r}, retrain=True)"
            )
        model, kwargs, metrics, _ = train_encoder(recipe, device=device)
        path = cache_dir(create=True) / "checkpoints" / f"{name}.pt"
        save_checkpoint(model, path, architecture=recipe["architecture"], kwargs=kwargs,
                        metadata={"recipe": dict(recipe), "val_accuracy": metrics["accuracy"],
                                  "val_top5": metrics["top5"]})
    return load_checkpoint(path, architecture=recipe["architecture"], device=device)


def _future_leaks(encoder: nn.Module) -> list[str]:
    """Names of the temporal shifts in ``encoder`` that read a LATER frame (offline mode)."""
    from .layers.temporal_shift import TemporalShift

    return [n for n, m in encoder.named_modules()
            if isinstance(m, TemporalShift) and m.fold_div is not None and m.mode != "online"]


@torch.no_grad()
def encode_frames(encoder: nn.Module, video, *, temporal: bool = False, batch_frames: int = 512,
                  device=None) -> torch.Tensor:
    """Features of every frame: ``(C, T, H, W)`` -> ``(T, D)``, ``(B, C, T, H, W)`` -> ``(B, T, D)``.

    ``temporal=False``: every frame is encoded alone (a 1-frame clip), in chunks of
    ``batch_frames``. ``temporal=True``: each video is encoded as ONE sequence, so that frame t
    sees its past through the encoder's temporal layers; only a causal encoder is accepted (an
    online TSM: an offline shift would let frame t read frame t+1, a leak of the future that an
    anticipation model must not get). ``video`` is uint8 (divided by 255 here) or float in
    [0, 1], torch or numpy; runs on ``device`` (default :func:`lecturekit.device`) and returns
    float32 on the CPU. ``encoder`` must have ``forward_features`` (B, C, T, H, W) -> (B, T, D).
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

    def prepared(chunk):
        chunk = chunk.to(dev)
        return chunk.float().div_(255.0) if chunk.dtype == torch.uint8 else chunk.float()

    B, C, T, H, W = x.shape
    if temporal:
        leaks = _future_leaks(encoder)
        if leaks:
            raise ValueError(f"temporal=True needs a causal encoder, but {len(leaks)} shift(s) read the next frame "
                             f"(mode='offline'): {leaks[:3]}; build the encoder with mode='online'")
        feats = torch.cat([encoder.forward_features(prepared(x[b : b + 1])).float().cpu() for b in range(B)])
        return feats[0] if single else feats
    frames = x.permute(0, 2, 1, 3, 4).reshape(B * T, C, 1, H, W)  # every frame a 1-frame clip
    out = [encoder.forward_features(prepared(frames[i : i + batch_frames]))[:, 0].float().cpu()  # (n, 1, D) -> (n, D)
           for i in range(0, B * T, batch_frames)]
    feats = torch.cat(out).reshape(B, T, -1)
    return feats[0] if single else feats


def features_cache_path(world, checkpoint: str | os.PathLike, name: str = FRAME_ENCODER) -> Path:
    """Cache file of a (world, encoder, checkpoint) triple: the hashes are in the name."""
    world_key = world.cache_key()
    ckpt_key = file_sha256(checkpoint)[:16]
    return cache_dir() / "features" / f"toykitchens-{world_key}-{name}-{ckpt_key}.pt"


def video_features(
    world,
    name: str = FRAME_ENCODER,
    *,
    checkpoint: str | os.PathLike | None = None,
    encoder: nn.Module | None = None,
    cache: bool = True,
    device=None,
    retrain: bool = False,
) -> dict[str, torch.Tensor]:
    """Per-frame features of every long video of a ToyKitchens world with encoder ``name``
    (:data:`ENCODERS`): ``{video_id: (T_video, D)}`` plus the key ``"__black__"``: the feature
    of an all-black frame seen alone (the padding of views that start before the video).

    The frame CNN encodes every frame alone; the temporal encoder runs over each whole video
    (``encode_frames(..., temporal=True)``), so the feature of frame t depends on frames <= t only.
    With the named encoder (or ``checkpoint``), results are cached under ``cache_dir()`` keyed
    by the world's parameters, the name and the checkpoint's sha256; a passed ``encoder`` is
    not cached (nothing identifies its weights). ``retrain=True`` trains the encoder first when
    no checkpoint exists (see :func:`load_encoder`)."""
    temporal = _recipe(name)["architecture"] != "frame_cnn"
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if encoder is None:
        ckpt = ckpt or checkpoint_path(name)
        encoder = load_encoder(name, ckpt, device=device, retrain=retrain)
        ckpt = ckpt if ckpt.is_file() else checkpoint_path(name)
        path = features_cache_path(world, ckpt, name) if cache else None
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
        table[vid] = encode_frames(encoder, frames, temporal=temporal, device=device)
    black = torch.zeros(3, 1, size, size, dtype=torch.uint8)
    table["__black__"] = encode_frames(encoder, black, temporal=temporal, device=device)[0]
    if path is not None:
        from .checkpoint import atomic_save

        atomic_save(table, path)
    return table


def _gather_view(view, per_video, black: torch.Tensor) -> torch.Tensor:
    """The frames of ``view`` looked up in per-video tables: ``per_video(v)`` -> (T_video, ...) for
    video index v (called once per video of the view); frames before the video (index -1) get
    ``black``. Returns (N, T, ...)."""
    out = torch.empty(len(view), view.frames, *black.shape)
    idx = torch.from_numpy(view.frame_index)
    for v in np.unique(view.video_index):
        rows = torch.from_numpy(np.nonzero(view.video_index == v)[0])
        sel = idx[rows]
        block = per_video(int(v))[sel.clamp(min=0)]
        block[sel < 0] = black
        out[rows] = block
    return out


def view_features(view, table: Mapping[str, torch.Tensor] | None = None, **kwargs) -> torch.Tensor:
    """The frames of a ToyKitchens view (``clips``, ``early``, ``anticipation``) as features
    ``(N, T, D)``: row ``i`` equals ``encode_frames(encoder, view[i].video)``. Frames outside the
    video (index -1, black in the pixel view) get the black-frame feature.

    ``table``: from :func:`video_features` (computed here with ``kwargs`` when omitted).
    """
    if table is None:
        table = video_features(view.world, **kwargs)
    return _gather_view(view, lambda v: table[view.world.video_ids[v]], table["__black__"])


@torch.no_grad()
def view_maps(view, name: str = TEMPORAL_ENCODER, *, pool: int = 1, encoder: nn.Module | None = None,
              device=None) -> torch.Tensor:
    """The frames of a ToyKitchens view as an encoder's last feature MAPS (the temporal encoder by
    default), for models that attend over space (HORST): ``(N, C, T, h, w)``, average-pooled by
    ``pool`` (64 × 4 × 4 per frame for the small encoders at 32 × 32 pixels, 64 × 2 × 2 with ``pool=2``).

    Each video is encoded once as a sequence (causal, as :func:`video_features`) and only the
    view's frames are kept, so nothing is cached on disk; frames before the video (index -1)
    get the maps of a black frame seen alone. The pooled global average of these maps is the
    feature vector of :func:`video_features` (up to the pooling order, exactly: both are means).
    """
    from .layers.shapes import fold_time

    encoder = encoder if encoder is not None else load_encoder(name, device=device)   # frame CNN: per frame
    if not hasattr(getattr(encoder, "backbone", None), "forward_maps"):
        raise TypeError(f"encoder {type(encoder).__name__} has no backbone.forward_maps: no feature maps to read")
    leaks = _future_leaks(encoder)
    if leaks:
        raise ValueError(f"view_maps needs a causal encoder; these shifts read the next frame: {leaks[:3]}")
    dev = default_device() if device is None else torch.device(device)
    encoder = encoder.to(dev).eval()
    down = nn.AvgPool2d(pool) if pool > 1 else nn.Identity()

    def maps_of(video: torch.Tensor) -> torch.Tensor:            # uint8 (C, T, H, W) -> (T, C', h, w)
        x = video[None].to(dev).float().div_(255.0)
        if hasattr(encoder, "forward_maps"):                     # TSM: its blocks mix the frames
            maps = encoder.forward_maps(x)
        else:                                                     # frame CNN: frames one by one
            maps = encoder.backbone.forward_maps(fold_time(x))
        return down(maps).float().cpu()

    world = view.world
    black = maps_of(torch.zeros(3, 1, world.size, world.size, dtype=torch.uint8))[0]
    out = _gather_view(view, lambda v: maps_of(torch.from_numpy(np.ascontiguousarray(world.long_video(v)))
                                               .permute(3, 0, 1, 2)), black)       # (N, T, C', h, w)
    return out.permute(0, 2, 1, 3, 4).contiguous()                # (N, C', T, h, w)
