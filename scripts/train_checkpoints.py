"""Train the small pretrained models that later notebooks reuse, and ship them inside the package
(``lecturekit/resources/checkpoints/``, found with ``lecturekit.resources``; they travel in the wheel).

    python scripts/train_checkpoints.py                 # every checkpoint (a few minutes on a CPU)
    python scripts/train_checkpoints.py --epochs 2      # a quicker, weaker one (for trying it out)
    python scripts/train_checkpoints.py --out data/checkpoints   # a checkout-only override

What it makes (each < 2 MB, with a JSON of its recorded accuracy next to it):

    toykitchens_frame_cnn.pt / .json
        The ToyKitchens frame encoder: ``build_model("frame_cnn", preset="small")`` trained on
        trimmed clips of ``ToyKitchens(seed=0)`` (train split) to recognise the ACTION, so its
        64-d per-frame features carry object and the single-frame motion cues (the role of
        the TSN features of EPIC-KITCHENS). ``lecturekit.features`` extracts and caches its
        features for the anticipation notebooks. The JSON records the validation top-1/top-5
        action accuracy; ``tests/test_checkpoints.py`` re-measures it.

Everything is seeded and runs on the CPU by default, so the same command gives the same numbers
(bit for bit on the same machine and torch version). The recipe and the training function live in
the library (``lecturekit.features.FRAME_ENCODER_RECIPE``, ``train_frame_encoder``): notebooks
load the shipped file when present and can retrain (``load_frame_encoder(retrain=True)``).
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
from lecturekit.features import FRAME_ENCODER, FRAME_ENCODER_RECIPE, file_sha256, train_frame_encoder  # noqa: E402
from lecturekit.train import save_checkpoint  # noqa: E402


def write_frame_encoder(out: Path, recipe: dict, device: str = "cpu") -> dict:
    start = time.perf_counter()
    model, kwargs, metrics, history = train_frame_encoder(recipe, device=device)
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
    path = save_checkpoint(model, out / f"{FRAME_ENCODER}.pt", architecture="frame_cnn", kwargs=kwargs, metadata=meta)
    record = {
        "file": path.name,
        "architecture": "frame_cnn",
        "kwargs": kwargs,
        "params": sum(p.numel() for p in model.parameters()),
        "bytes": path.stat().st_size,
        "sha256": file_sha256(path),
        "train_seconds": round(seconds, 1),
        "torch": str(torch.__version__),
        "device": device,
        "history": {"val_accuracy": history["val_accuracy"], "train_loss": history["train_loss"]},
        **meta,
    }
    (out / f"{FRAME_ENCODER}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "lecturekit" / "resources" / "checkpoints",
                        help="default: shipped in the package; data/checkpoints overrides it in this checkout only")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    recipe = dict(FRAME_ENCODER_RECIPE)
    if args.epochs is not None:
        recipe["epochs"] = args.epochs
    torch.set_num_threads(max(1, torch.get_num_threads()))
    record = write_frame_encoder(args.out, recipe, device=args.device)
    print(f"{record['file']}: val top-1 {record['val_accuracy']:.3f}, top-5 {record['val_top5']:.3f} "
          f"({record['num_val_clips']} clips), {record['params']} params, {record['bytes'] / 1e6:.2f} MB, "
          f"{record['train_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
