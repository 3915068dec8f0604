"""Layers: shared building blocks used by two or more model families (or by exercises)."""

from .shapes import (
    check_frames,
    check_sequence,
    check_shape,
    check_video,
    fold_time,
    unfold_time,
)

__all__ = ["check_frames", "check_sequence", "check_shape", "check_video", "fold_time", "unfold_time"]
