"""Frame prediction helpers: patches, the scheduled-sampling decay, the copy-last-frame baseline.

The frame predictors themselves (ConvLSTM, PredRNN, E3D-LSTM, Conv-TT-LSTM) run in the shared
driver ``lecturekit.models.drivers.VideoPredictor``; the protocol (observe 10, predict 10,
frames as p×p patches stacked on channels, teacher forcing or scheduled sampling) is described
there.

Implements
    to_patches, from_patches   space to depth and back: (B, C, H, W) <-> (B, C·p², H/p, W/p)
    scheduled_teacher_prob     the linear decay of the teacher-forcing probability of the
                               E3D-LSTM / PredRNN training scripts (1.0, minus 2e-5 per
                               iteration, 0 after 50k iterations); scheduled sampling is
                               S. Bengio, O. Vinyals, N. Jaitly, N. Shazeer, NeurIPS 2015,
                               https://arxiv.org/abs/1506.03099
    predictor_example_input    a random clip a frame predictor accepts (for the contract tests)
    copy_last_frame            the baseline every predictor must beat
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..layers.shapes import check_video


def to_patches(frame: Tensor, patch: int) -> Tensor:
    """Space to depth: (B, C, H, W) -> (B, C·p², H/p, W/p)."""
    return F.pixel_unshuffle(frame, patch) if patch > 1 else frame


def from_patches(x: Tensor, patch: int) -> Tensor:
    """Depth to space: (B, C·p², H/p, W/p) -> (B, C, H, W)."""
    return F.pixel_shuffle(x, patch) if patch > 1 else x


def scheduled_teacher_prob(iteration: int, *, start: float = 1.0, decay: float = 2e-5,
                           stop: int = 50_000) -> float:
    """Probability of feeding the ground truth at ``iteration`` (linear decay, 0 from ``stop``)."""
    if iteration >= stop:
        return 0.0
    return max(0.0, start - decay * iteration)


def predictor_example_input(cls, preset: str = "small", batch: int = 2) -> Tensor:
    """A random clip a frame predictor built with ``preset`` accepts: (B, C, observe, 4p, 4p).

    Used by the name table's contract tests (``lecturekit.models.registry.example_input``):
    predictors need exactly ``observe`` frames and a frame size divisible by the patch size.
    """
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty}
    kwargs = {**defaults, **getattr(cls, "PRESETS", {}).get(preset, {})}
    size = 4 * kwargs.get("patch", 4)
    return torch.rand(batch, kwargs.get("channels", 1), kwargs.get("observe", 10), size, size)


def copy_last_frame(video: Tensor, observe: int, predict: int) -> Tensor:
    """The copy-last-frame baseline: (B, C, T, H, W) -> frame ``observe - 1`` repeated ``predict`` times."""
    check_video(video, name="copy_last_frame video")
    return video[:, :, observe - 1: observe].expand(-1, -1, predict, -1, -1)


__all__ = ["copy_last_frame", "from_patches", "predictor_example_input", "scheduled_teacher_prob", "to_patches"]
