"""Train the small pretrained models that later notebooks reuse, and ship them inside the package
(``lecturekit/resources/checkpoints/``, found with ``lecturekit.resources``; they travel in the wheel).

    python scripts/train_checkpoints.py                 # every checkpoint (a few minutes on a CPU)
    python scripts/train_checkpoints.py --only toykitchens_tsm_online
    python scripts/train_checkpoints.py --epochs 2      # a quicker, weaker one (for trying it out)
    python scripts/train_checkpoints.py --out data/checkpoints   # a checkout-only override

What it makes (each < 2 MB, with a JSON of its recorded accuracy next to it), one per entry of
``lecturekit.features.ENCODERS``, all trained on trimmed 8-frame clips of ``ToyKitchens(seed=0)``
(train split) to recognise the ACTION:

    toykitchens_frame_cnn.pt / .json
        ``build_model("frame_cnn", preset="small")``: 64-d features of single frames, which carry
        the objects and the single-frame motion cues but not the direction of time.
    toykitchens_tsm_online.pt / .json
        ``build_model("tsm", preset="small", mode="online", fold_div=4, depths=[2, 2, 2])``: 64-d features that see
        the past frames through the online (past-only) temporal shift, so they tell *take*
        from *put*; never a later frame.

``lecturekit.features`` extracts and caches their features for the anticipation notebooks (the
role of the TSN features of EPIC-KITCHENS). Each JSON records the validation and test top-1 /
top-5 action accuracy and the verb and noun accuracy read from the action;
``tests/test_checkpoints.py`` re-measures the validation numbers.

Everything is seeded and runs on the CPU by default, so the same command gives the same numbers
(bit for bit on the same machine and torch version). The recipe and the training function live in
the library (``lecturekit.features.ENCODERS``, ``train_encoder``): notebooks
load the shipped file when present and can retrain (``load_encoder(name, retrain=True)``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import torch  # noqa: E402

from lecturekit.data.toykitchens import ToyKitchens  # noqa: E402
from lecturekit.features import ENCODERS, file_sha256, train_encoder  # noqa: E402
from lecturekit.checkpoint import save_checkpoint  # noqa: E402
from lecturekit.train import predict  # noqa: E402


def clip_accuracy(model, world, split: str, frames: int, device: str) -> dict:
    """Action top-1 / top-5 on the trimmed clips of ``split``, and verb / noun top-1 read off the
    predicted action (``world.actions_table``)."""
    x, y = world.clips(split, frames=frames).tensors()
    logits = predict(model, x, device=device)
    table = torch.as_tensor(world.actions_table)
    top = logits.argmax(1)
    top5 = logits.topk(5, dim=1).indices
    return {"action": (top == y["action"]).float().mean().item(),
            "action_top5": (top5 == y["action"][:, None]).any(1).float().mean().item(),
            "verb": (table[top, 0] == y["verb"]).float().mean().item(),
            "noun": (table[top, 1] == y["noun"]).float().mean().item(), "clips": int(len(x))}


def write_encoder(out: Path, name: str, recipe: dict, device: str = "cpu") -> dict:
    start = time.perf_counter()
    model, kwargs, metrics, history = train_encoder(recipe, device=device)
    seconds = time.perf_counter() - start
    world = ToyKitchens(**recipe["world"])
    x_va, _ = world.clips("val", frames=recipe["frames"]).tensors()
    meta = {
        "recipe": recipe,
        "world_params": {k: list(v) if isinstance(v, tuple) else v for k, v in world.params.items()},
        "world_cache_key": world.cache_key(),
        "split": "val",
        "target": recipe["target"],
        "val_accuracy": metrics["accuracy"],
        "val_top5": metrics["top5"],
        "num_val_clips": metrics["num_val_clips"],
        # diagnostics only (the test checks accuracy, not bytes): were the pixels the same?
        "val_pixels_sha256": hashlib.sha256(x_va.numpy().tobytes()).hexdigest(),
    }
    arch = recipe["architecture"]
    path = save_checkpoint(model, out / f"{name}.pt", architecture=arch, kwargs=kwargs, metadata=meta)
    record = {
        "file": path.name,
        "architecture": arch,
        "kwargs": kwargs,
        "params": sum(p.numel() for p in model.parameters()),
        "bytes": path.stat().st_size,
        "sha256": file_sha256(path),
        "train_seconds": round(seconds, 1),
        "torch": str(torch.__version__),
        "device": device,
        "history": {"val_accuracy": history["val_accuracy"], "train_loss": history["train_loss"]},
        "clip_accuracy": {split: clip_accuracy(model, world, split, recipe["frames"], device) for split in ("val", "test")},
        **meta,
    }
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "lecturekit" / "resources" / "checkpoints",
                        help="default: shipped in the package; data/checkpoints overrides it in this checkout only")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="+", choices=sorted(ENCODERS), default=list(ENCODERS), help="which encoders")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in args.only:
        recipe = dict(ENCODERS[name])
        if args.epochs is not None:
            recipe["epochs"] = args.epochs
        record = write_encoder(args.out, name, recipe, device=args.device)
        acc = record["clip_accuracy"]
        print(f"{record['file']}: val top-1 {record['val_accuracy']:.3f}, top-5 {record['val_top5']:.3f} "
              f"({record['num_val_clips']} clips); test action {acc['test']['action']:.3f}, verb "
              f"{acc['test']['verb']:.3f}, noun {acc['test']['noun']:.3f}; {record['params']} params, "
              f"{record['bytes'] / 1e6:.2f} MB, {record['train_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
