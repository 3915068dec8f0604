"""GRU-RCN: convolutional GRUs on several levels of a 2D CNN (recurrent convolutional network).

Paper: N. Ballas, L. Yao, C. Pal, A. Courville, "Delving Deeper into Convolutional Networks
for Learning Video Representations", ICLR 2016. https://arxiv.org/abs/1511.06432
(no official code was located; the equations are the reference)

Instead of one LSTM on the last fully connected features (LRCN), put a recurrence on several
levels ("percepts") of a 2D CNN, so mid-level, high-resolution maps are modelled over time
too. Every level l has its own convolutional GRU (the paper's equations, Ballas's convention)::

    z_t^l = σ(W_z^l * x_t^l + U_z^l * h_{t-1}^l)
    r_t^l = σ(W_r^l * x_t^l + U_r^l * h_{t-1}^l)
    h̃_t^l = tanh(W^l * x_t^l + U^l * (r_t^l ⊙ h_{t-1}^l))
    h_t^l = (1 − z_t^l) ⊙ h_{t-1}^l + z_t^l ⊙ h̃_t^l

Convention: the reset is applied BEFORE the recurrent convolution U and z gates the
CANDIDATE. ``torch.nn.GRU`` (and ``ConvGRUCell(convention="torch")``) applies the reset after
the recurrent product and lets z gate the old state; with the same weights the two give
different outputs (tests show both facts). The cell is ``lecturekit.layers.conv_rnn.ConvGRUCell``
with ``convention="ballas"``; it carries biases (the paper's equations omit them).

GRU-RCN: the levels are independent; each level's h is averaged over space and time,
classified, and the per-level decisions averaged (here: the per-level logits are averaged;
the paper averages the classifiers' decisions). ``stacked=True`` gives the Stacked GRU-RCN:
level l also reads the (max-pooled to its size) hidden map of level l − 1.

Presets
    small   a 3-stage VGG-like CNN on 32×32 frames (widths 16, 32, 64), one RCN per stage output.
    paper   the VGG-16 convolutional trunk on 224×224 frames with RCNs on pool2, pool3, pool4,
            pool5 (the paper also uses fc7 as a 1×1 map; omitted here — no fc layers). The RCN
            widths are those of the levels; the paper's exact RCN sizes and kernel sizes are
            not reproduced, so no parameter count is asserted.
Simplified: no ImageNet weights (none can be downloaded here); the trunk trains from scratch.

Shapes: video (B, C, T, H, W) -> logits (B, K); ``forward_steps`` -> (B, T, K) causal
(step t averages h over frames 0..t). Per-level maps keep their input's size (pool3 of a 224
input: 28×28).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.conv_rnn import ConvGRUCell
from ..layers.shapes import check_video, fold_time, unfold_time


def _vgg_stage(cin: int, cout: int, convs: int) -> nn.Sequential:
    layers = []
    for i in range(convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU(inplace=True)]
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class GRURCN(nn.Module):
    """GRU-RCN (Ballas et al. 2016): per-level convolutional GRUs over a 2D CNN.

    Args:
        num_classes: K.
        in_channels: C of the frames.
        stages: (width, convs) of each VGG-style stage; every stage ends with a 2×2 max-pool.
        levels: indices of the stages whose pooled outputs get an RCN.
        rcn_channels: hidden channels of each level's GRU (defaults to the level's width).
        kernel_size: kernel of the GRU convolutions.
        convention: GRU convention (``"ballas"`` as in the paper, ``"torch"`` to compare).
        stacked: Stacked GRU-RCN (level l also reads level l − 1's hidden map).
        dropout: before the classifiers.

    ``head`` holds one classifier per level (a ModuleList); their logits are averaged.

    Shape: video (B, C, T, H, W) -> logits (B, K).
    """

    PRESETS = {
        "small": dict(num_classes=10, in_channels=3, stages=((16, 1), (32, 1), (64, 1)), levels=(0, 1, 2)),
        # VGG-16 trunk (conv widths 64, 128, 256, 512, 512; 2, 2, 3, 3, 3 convs), RCNs on pool2..pool5.
        "paper": dict(in_channels=3, stages=((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)),
                      levels=(1, 2, 3, 4)),
    }

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, stages=((16, 1), (32, 1), (64, 1)),
                 levels=(0, 1, 2), rcn_channels: tuple[int, ...] | None = None, kernel_size: int = 3,
                 convention: str = "ballas", stacked: bool = False, dropout: float = 0.0):
        super().__init__()
        self.in_channels, self.levels, self.stacked = in_channels, tuple(levels), stacked
        widths = [w for w, _ in stages]
        rcn = tuple(rcn_channels) if rcn_channels is not None else tuple(widths[i] for i in levels)
        if len(rcn) != len(levels):
            raise ValueError(f"rcn_channels {rcn} needs one entry per level {levels}")
        self.stages = nn.ModuleList(_vgg_stage(w_in, w, n) for (w, n), w_in in
                                    zip(stages, (in_channels, *widths[:-1])))
        self.rcns = nn.ModuleList(
            ConvGRUCell(widths[lev] + (rcn[j - 1] if stacked and j > 0 else 0), rcn[j], kernel_size,
                        convention=convention) for j, lev in enumerate(levels))
        self.drop = nn.Dropout(dropout)
        self.head = nn.ModuleList(nn.Linear(ch, num_classes) for ch in rcn)

    def percepts(self, video: Tensor) -> list[Tensor]:
        """The CNN's level maps for every frame: list of (B, T, C_l, H_l, W_l)."""
        b, _, t, _, _ = check_video(video, channels=self.in_channels, name="GRURCN video")
        x = fold_time(video)                                             # (B·T, C, H, W)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return [unfold_time(maps[i], t) for i in self.levels]           # (B, T, C_l, H_l, W_l)

    def level_states(self, video: Tensor) -> list[Tensor]:
        """Hidden maps of every level at every step: list of (B, T, C_h, H_l, W_l)."""
        xs = self.percepts(video)
        T = video.shape[2]
        states = [None] * len(self.rcns)
        out = [[] for _ in self.rcns]
        for t in range(T):
            below = None
            for j, cell in enumerate(self.rcns):
                x = xs[j][:, t]
                if self.stacked and j > 0:
                    x = torch.cat([x, F.adaptive_max_pool2d(below, x.shape[-2:])], dim=1)
                h, states[j] = cell(x, states[j])
                out[j].append(h)
                below = h
        return [torch.stack(o, dim=1) for o in out]

    def forward_steps(self, video: Tensor) -> Tensor:
        """Causal logits (B, T, K): at step t each level averages its h over frames 0..t."""
        logits = []
        for j, hs in enumerate(self.level_states(video)):
            pooled = hs.mean(dim=(3, 4))                                 # (B, T, C_h)
            steps = torch.arange(1, pooled.shape[1] + 1, device=pooled.device, dtype=pooled.dtype)
            running = pooled.cumsum(dim=1) / steps.view(1, -1, 1)        # time average up to t
            logits.append(self.head[j](self.drop(running)))
        return torch.stack(logits, dim=0).mean(dim=0)                    # average of the levels

    def forward_features(self, video: Tensor) -> list[Tensor]:
        """Per-level descriptors: h averaged over space and time, list of (B, C_h)."""
        return [hs.mean(dim=(1, 3, 4)) for hs in self.level_states(video)]

    def forward_head(self, features: list[Tensor]) -> Tensor:
        return torch.stack([head(self.drop(f)) for head, f in zip(self.head, features)]).mean(dim=0)

    def forward(self, video: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(video))           # (B, K)


__all__ = ["GRURCN"]
