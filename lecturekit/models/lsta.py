"""LSTA: Long Short-Term Attention — a ConvLSTM with recurrent spatial attention and
attention-pooled ("fine-grained") output gating, for egocentric action recognition.

Paper: S. Sudhakaran, S. Escalera, O. Lanz, "LSTA: Long Short-Term Attention for Egocentric
Action Recognition", CVPR 2019. https://arxiv.org/abs/1811.10698
Official code: github.com/swathikirans/LSTA (``MyConvLSTACell.py``, ``attentionModel.py``).

Attention pooling ς(x, A) with a dictionary A (K_A × C): pick k* = argmax_k A_k · GAP(x) and
return the class-activation map of that entry, Σ_c A_{k*,c} x_c. The cell, per frame t, as the
official code computes it (symbols ours)::

    ν_t = ς(x_t^BN, A_frame)                                       (B, 1, H, W) frame CAM
    attention recurrence, a 1-channel ConvLSTM on ν_t:
        [i^a, f^a, ã, o^a] = [σ, σ, tanh, σ](W_s * s_{t-1} + W_ν * ν_t + b^a)
        a_t = f^a ⊙ a_{t-1} + i^a ⊙ ã,      s_t = o^a ⊙ tanh(a_t)
    u_t = softmax over the H·W positions of (s_t + ν_t)           the CAM is a residual bias
    x̂_t = u_t ⊙ x_t                                                broadcast over channels
    memory recurrence, h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}) rebuilt from the stored (c, o):
        [i, f, c̃] = [σ, σ, tanh](W_x * x̂_t + W_h * h_{t-1} + b)
        c_t = f ⊙ c_{t-1} + i ⊙ c̃
    fine-grained output gating with the learned dictionary W_cls (K_c × C_m):
        ℓ = W_cls GAP(c_t) + W_cpl GAP(x̂_t),   k* = argmax ℓ,   ν^c_t = W_cls[k*] ⊙_channel c_t
        o_t = σ(W_oh * h_{t-1} + W_oc * ν^c_t + b_o)
    the classifier ``head`` reads the memory: logits = FC(Dropout(GAP(c_T)))

x_t is the backbone's last map *before* its final BN + ReLU, x_t^BN the same map after them
(the official ``noBN=True`` ResNet-34); the model below applies that BN + ReLU itself.

Details kept from the official code (followed)
    - The output-gate CAM keeps all C_m channels (per-channel weights times c); the frame CAM is
      summed to one channel. Argmax selection is not differentiable: gradients reach only the
      selected dictionary row.
    - The coupling term W_cpl GAP(x̂_t) enters only the argmax, so W_cpl never receives a
      gradient (in the official code too: ``coupling_fc`` feeds only the sort); it stays at
      its initialisation and acts as a fixed random bias on the selection. Kept as in the code.
    - h is not stored: the state is (a, s, c, o) and h is rebuilt as o ⊙ tanh(c).
    - Role names, not code names: the code's ``conv_o_x`` reads o ⊙ tanh(c) (= h) and its
      ``conv_o_c`` the pooled memory; here ``conv_oh`` and ``conv_oc``.
    - Parameter layout: W_s and the memory's W_x carry biases, W_ν, W_h and W_oc do not;
      dictionary and coupling layers have no bias. For 512 input channels, 512 memory channels,
      100 dictionary entries and 3×3 kernels the cell has 18,978,892 parameters, the count of
      the official module (``LSTA.PUBLISHED["cell_params"]``).
Departures (rejected from the official code)
    - ``zero_init=True`` in the code zeroes every attention conv except the CAM → candidate
      conv (``conv_a_cam``), so the attention state is not zero at the start (max |s| ≈ 0.2 on
      random data). Here ``zero_attention=True`` zeroes ALL attention-recurrence
      weights and biases, which makes s_t ≡ 0 and x̂_t = softmax(ν_t) ⊙ x_t exactly (tested).
    - Attention maps of any H×W (the code hard-codes 7×7 and ``AvgPool2d(7)``).
    - The coupling layer reads x̂ (input channels); the code sizes it by the memory size, which
      is the same number at the official sizes.
    - PyTorch 2 initialisers (``xavier_normal_``); the code's are the deprecated 0.3 names.
    - The frame dictionary A_frame is a bias-free linear layer trained with the model (the code
      uses ImageNet ResNet-34 fc weights, trainable in its stage 2; no download here).

Presets
    small  a 3-conv CNN on 32×32 frames → 32 channels at 8×8, memory 32, dictionaries 16.
    paper  ``backbone=None``: the input is ResNet-34 layer-4 maps (B, 512, T, 7, 7) taken before
           the last BN + ReLU; memory 512, output dictionary 100, frame dictionary 1000
           (ImageNet classes), 61 classes (GTEA-61). Stage-wise training is not modelled.

Shapes: video (B, C, T, H, W) (or feature maps (B, D, T, h, w) when ``backbone=None``) ->
logits (B, K); ``forward_steps`` -> (B, T, K), the classifier on c_t at every step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.shapes import check_video, fold_time, unfold_time
from .published import Published


def cam(x: Tensor, dictionary: Tensor, *, keep_channels: bool = False, scores: Tensor | None = None) -> Tensor:
    """Attention pooling ς(x, A): the CAM of the best-scoring dictionary row.

    x (B, C, H, W), dictionary (K_A, C); ``scores`` (B, K_A) defaults to A · GAP(x).
    Returns (B, 1, H, W), or (B, C, H, W) channel-weighted maps with ``keep_channels``.
    """
    if scores is None:
        scores = x.mean(dim=(2, 3)) @ dictionary.T                      # (B, K_A)
    w = dictionary[scores.argmax(dim=1)]                                 # (B, C) the selected rows
    weighted = w[:, :, None, None] * x                                   # (B, C, H, W)
    return weighted if keep_channels else weighted.sum(dim=1, keepdim=True)


class LSTACell(nn.Module):
    """One LSTA step (see the module docstring).

    Args:
        in_channels: C of x_t.
        memory: C_m, channels of the memory c.
        dictionary: K_c, entries of the output-gate dictionary W_cls.
        kernel_size: kernel of every convolution (odd).
        zero_attention: zero every attention-recurrence weight and bias (complete, unlike the
            official ``zero_init``).

    Shape:
        x (B, C, H, W), cam ν (B, 1, H, W), state (a, s, c, o) or None ->
        x̂ (B, C, H, W), state with a, s (B, 1, H, W) and c, o (B, C_m, H, W).
    """

    def __init__(self, in_channels: int = 512, memory: int = 512, dictionary: int = 100, kernel_size: int = 3, *,
                 zero_attention: bool = False):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep H×W, got {kernel_size}")
        k, p = kernel_size, kernel_size // 2
        self.in_channels, self.memory = in_channels, memory
        # attention recurrence: 1 channel, gates (i, f, a~, o)
        self.conv_s = nn.Conv2d(1, 4, k, padding=p, bias=True)          # W_s * s_{t-1} + b^a
        self.conv_nu = nn.Conv2d(1, 4, k, padding=p, bias=False)        # W_ν * ν_t
        # memory recurrence: gates (i, f, c~)
        self.conv_x = nn.Conv2d(in_channels, 3 * memory, k, padding=p, bias=True)
        self.conv_h = nn.Conv2d(memory, 3 * memory, k, padding=p, bias=False)
        # fine-grained output gate
        self.conv_oh = nn.Conv2d(memory, memory, k, padding=p, bias=True)
        self.conv_oc = nn.Conv2d(memory, memory, k, padding=p, bias=False)
        self.c_classifier = nn.Linear(memory, dictionary, bias=False)   # W_cls, the dictionary
        self.coupling = nn.Linear(in_channels, dictionary, bias=False)  # W_cpl
        for conv in (self.conv_s, self.conv_nu, self.conv_x, self.conv_h, self.conv_oh, self.conv_oc):
            nn.init.xavier_normal_(conv.weight)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        if zero_attention:
            for t in (self.conv_s.weight, self.conv_s.bias, self.conv_nu.weight):
                nn.init.zeros_(t)

    def init_state(self, x: Tensor):
        b, _, h, w = x.shape
        a = x.new_zeros(b, 1, h, w)
        c = x.new_zeros(b, self.memory, h, w)
        return a, a.clone(), c, c.clone()

    def forward(self, x: Tensor, nu: Tensor, state=None):
        a, s, c, o = state if state is not None else self.init_state(x)
        # attention recurrence
        g_i, g_f, g_a, g_o = (self.conv_s(s) + self.conv_nu(nu)).chunk(4, dim=1)
        a = torch.sigmoid(g_f) * a + torch.sigmoid(g_i) * torch.tanh(g_a)
        s = torch.sigmoid(g_o) * torch.tanh(a)                           # (B, 1, H, W)
        b, _, hh, ww = s.shape
        u = torch.softmax((s + nu).flatten(1), dim=1).view(b, 1, hh, ww)  # sums to 1 over H·W
        x_att = u * x                                                    # (B, C, H, W)
        # memory recurrence
        h = o * torch.tanh(c)                                            # h_{t-1} rebuilt
        m_i, m_f, m_c = (self.conv_x(x_att) + self.conv_h(h)).chunk(3, dim=1)
        c_new = torch.sigmoid(m_f) * c + torch.sigmoid(m_i) * torch.tanh(m_c)
        # fine-grained output gating
        scores = self.c_classifier(c_new.mean(dim=(2, 3))) + self.coupling(x_att.mean(dim=(2, 3)))
        nu_c = cam(c_new, self.c_classifier.weight, keep_channels=True, scores=scores)   # (B, C_m, H, W)
        o_new = torch.sigmoid(self.conv_oh(h) + self.conv_oc(nu_c))
        return x_att, (a, s, c_new, o_new)


class LSTA(nn.Module):
    """LSTA action recognition: backbone maps → LSTA cell over time → classifier on c_T.

    Args:
        num_classes: K.
        in_channels: C of the frames (or D of the feature maps when ``backbone=None``).
        feature_channels: D of the small backbone's output (ignored with ``backbone=None``).
        memory, dictionary, kernel_size, zero_attention: the cell's.
        frame_classes: entries of the frame dictionary A_frame (1000 ImageNet classes in the paper).
        backbone: ``"small"`` (a 3-conv CNN, /4) or ``None`` (inputs are pre-BN feature maps).
        dropout: before the classifier ``head`` (0.7 in the code).

    Shape: (B, C, T, H, W) -> logits (B, K).
    """

    # Documented in the module docstring: W_cpl only enters an argmax, so it never gets a gradient
    # (as in the official code). The name-table contract tests check exactly this list.
    PARAMETERS_WITHOUT_GRADIENT = ("cell.coupling.weight",)

    PRESETS = {
        "small": dict(num_classes=10, in_channels=3, feature_channels=32, memory=32, dictionary=16,
                      frame_classes=16, backbone="small"),
        # swathikirans/LSTA main_rgb.py: ResNet-34 layer-4 maps, memSize 512, outPoolSize 100, GTEA-61.
        "paper": dict(num_classes=61, in_channels=512, memory=512, dictionary=100, frame_classes=1000,
                      backbone=None),
    }
    PUBLISHED = {
        "cell_params": Published(18_978_892, "parameters of one LSTA cell",
                                 "LSTACell(512, 512, 100, 3): 512 input and memory channels, 100 "
                                 "output-gate dictionary entries, 3×3 kernels (the paper preset's cell)",
                                 "official code github.com/swathikirans/LSTA (MyConvLSTACell.py), counted "
                                 "by instantiating it"),
    }

    def __init__(self, num_classes: int = 10, *, in_channels: int = 3, feature_channels: int = 32, memory: int = 32,
                 dictionary: int = 16, frame_classes: int = 16, kernel_size: int = 3, backbone: str | None = "small",
                 zero_attention: bool = False, dropout: float = 0.7):
        super().__init__()
        if backbone not in ("small", None):
            raise ValueError(f"backbone: expected 'small' or None, got {backbone!r}")
        self.in_channels = in_channels
        if backbone == "small":
            d = feature_channels
            self.backbone = nn.Sequential(
                nn.Conv2d(in_channels, d // 2, 3, stride=2, padding=1), nn.BatchNorm2d(d // 2), nn.ReLU(inplace=True),
                nn.Conv2d(d // 2, d, 3, stride=2, padding=1), nn.BatchNorm2d(d), nn.ReLU(inplace=True),
                nn.Conv2d(d, d, 3, padding=1, bias=False))                # last conv: its BN comes next
        else:
            d = in_channels
            self.backbone = nn.Identity()
        self.bn = nn.BatchNorm2d(d)                                      # the backbone's last BN + ReLU
        self.frame_dictionary = nn.Linear(d, frame_classes, bias=False)  # A_frame
        self.cell = LSTACell(d, memory, dictionary, kernel_size, zero_attention=zero_attention)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(memory, num_classes)

    def memories(self, video: Tensor) -> Tensor:
        """The memory c_t of every step: (B, T, C_m, h, w)."""
        _, _, t, _, _ = check_video(video, channels=self.in_channels, name="LSTA input")
        x = self.backbone(fold_time(video))                             # (B·T, D, h, w) pre-BN
        x_bn = F.relu(self.bn(x))
        nu = cam(x_bn, self.frame_dictionary.weight)                    # (B·T, 1, h, w) ν_t
        x, nu = unfold_time(x, t), unfold_time(nu, t)                    # (B, T, ...)
        state, cs = None, []
        for step in range(t):
            _, state = self.cell(x[:, step], nu[:, step], state)
            cs.append(state[2])
        return torch.stack(cs, dim=1)

    def attention_maps(self, video: Tensor) -> Tensor:
        """The spatial attention u_t = softmax(s_t + ν_t) the cell applies at every step: (B, T, h, w).

        Each map sums to one over its h·w positions (the weights that multiply x_t, see the module
        docstring); recomputed from the attention state s_t after each step, so the cell is unchanged.
        """
        _, _, t, _, _ = check_video(video, channels=self.in_channels, name="LSTA input")
        x = self.backbone(fold_time(video))                             # (B·T, D, h, w) pre-BN
        nu = cam(F.relu(self.bn(x)), self.frame_dictionary.weight)      # (B·T, 1, h, w) ν_t
        x, nu = unfold_time(x, t), unfold_time(nu, t)
        state, maps = None, []
        for step in range(t):
            _, state = self.cell(x[:, step], nu[:, step], state)
            logits = (state[1] + nu[:, step]).flatten(1)                 # s_t + ν_t, (B, h·w)
            maps.append(torch.softmax(logits, dim=1).view_as(nu[:, step, 0]))
        return torch.stack(maps, dim=1)                                  # (B, T, h, w)

    def forward_features(self, video: Tensor) -> Tensor:
        return self.memories(video)[:, -1].mean(dim=(2, 3))             # GAP(c_T): (B, C_m)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.head(self.drop(features))                           # (B, K)

    def forward(self, video: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(video))

    def forward_steps(self, video: Tensor) -> Tensor:
        """The classifier on c_t at every step: (B, T, K) (early recognition)."""
        return self.forward_head(self.memories(video).mean(dim=(3, 4)))


__all__ = ["cam", "LSTACell", "LSTA"]
