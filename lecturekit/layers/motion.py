"""Frame differences: the cheapest motion cue, shared by TSN's RGB-difference modality and the
two-stream network's difference stream.

Papers: L. Wang et al., "Temporal Segment Networks", ECCV 2016, https://arxiv.org/abs/1608.00859
(Sec. 3.2, "RGB difference"); K. Simonyan, A. Zisserman, "Two-Stream Convolutional Networks for
Action Recognition in Videos", NeurIPS 2014, https://arxiv.org/abs/1406.2199 (the stacked input
of the temporal stream, Sec. 3.1, here with differences instead of optical flow).

Implements
    difference_stack   L+1 consecutive frames -> their L differences stacked on channels,
                       difference-major: channel ``k*C + c`` holds ``x[:, c, k+1] - x[:, c, k]``
                       (the order in which the TSN code stacks them)

Shapes (letters defined in lecturekit/layers/shapes.py)
    (B, C, L+1, H, W) -> (B, C*L, H, W)
"""

from __future__ import annotations

from torch import Tensor

from .shapes import check_video


def difference_stack(video: Tensor) -> Tensor:
    """Consecutive frame differences stacked on channels: (B, C, L+1, H, W) -> (B, C*L, H, W).

    A static clip gives zeros.

    >>> import torch
    >>> x = torch.arange(3.).view(1, 1, 3, 1, 1)          # frames 0, 1, 2
    >>> difference_stack(x).flatten().tolist()
    [1.0, 1.0]
    """
    b, c, t, h, w = check_video(video)
    d = video[:, :, 1:] - video[:, :, :-1]                                # (B, C, L, H, W)
    return d.transpose(1, 2).reshape(b, c * (t - 1), h, w)               # (B, L*C, H, W)


__all__ = ["difference_stack"]
