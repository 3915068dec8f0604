"""Models: one file per family, each a reading of its paper, and the name table.

>>> from lecturekit.models import build_model, list_models
>>> model = build_model("c3d", preset="small", num_classes=10)   # doctest: +SKIP

Every entry is ``name -> ModelEntry(class, fixed kwargs, one-line summary)``; the class holds
its ``PRESETS`` ("small" for the CPU, "paper" for the published sizes). Explicit imports only,
so one look at this file shows every model of the course, grouped by the notebook (lesson) that
introduces it.
"""

from __future__ import annotations

from torch import nn

from .registry import ModelEntry, build_from_table

from .aga import AGA
from .ata import ATA
from .avt import AVTHead
from .c3d import C3D
from .conv_tt_lstm import ConvTTLSTM
from .convlstm import ConvLSTMEncoderForecaster, ConvLSTMPredictor
from .e3d_lstm import E3DLSTM
from .factorised import P3D, R2Plus1D
from .frame_cnn import FrameCNN
from .fusion import EarlyFusion, LateFusion, SlowFusion
from .gsf import GSF
from .horst import HORST
from .lrcn import LRCN
from .lsta import LSTA
from .ms_lstm import MSLSTM, TwoStageLSTM
from .nonlocal_net import NonLocalNet
from .predrnn import PredRNN
from .rcn import GRURCN
from .rulstm import RULSTM, RULSTMFusion
from .tsm import TSM
from .tsn import TSN
from .twostream import TwoStream

MODELS: dict[str, ModelEntry] = {
    # 01 video as data: the single-frame baseline
    "frame_cnn": ModelEntry(FrameCNN, {}, "single-frame CNN, frame predictions averaged (Karpathy et al. 2014)"),
    # 02 fusion: where time is merged
    "early_fusion": ModelEntry(EarlyFusion, {}, "time merged by conv1 over all T frames (Karpathy et al. 2014)"),
    "late_fusion": ModelEntry(LateFusion, {}, "shared frame towers merged at FC6 (Karpathy et al. 2014)"),
    "slow_fusion": ModelEntry(SlowFusion, {}, "3D convs in conv1-3 merge time gradually (Karpathy et al. 2014)"),
    # 03 3D convolutions and their factorisations
    "c3d": ModelEntry(C3D, {}, "3x3x3 convs everywhere, the VGG of 3D CNNs (Tran et al. 2015)"),
    "p3d": ModelEntry(P3D, {"block": "ABC"}, "pseudo-3D ResNet, blocks cycling A->B->C (Qiu et al. 2017)"),
    "p3d_a": ModelEntry(P3D, {"block": "A"}, "pseudo-3D ResNet, P3D-A blocks T(S(x)) only"),
    "p3d_b": ModelEntry(P3D, {"block": "B"}, "pseudo-3D ResNet, P3D-B blocks S(x)+T(x) only"),
    "p3d_c": ModelEntry(P3D, {"block": "C"}, "pseudo-3D ResNet, P3D-C blocks S(x)+T(S(x)) only"),
    "r2plus1d": ModelEntry(R2Plus1D, {"mid_rule": "per_conv"}, "R(2+1)D, M_i per conv as in the paper (Tran et al. 2018)"),
    "r2plus1d_tv": ModelEntry(R2Plus1D, {"mid_rule": "per_block"}, "R(2+1)D with torchvision's per-block M_i"),
    # 04 temporal shift
    "tsm": ModelEntry(TSM, {}, "2D ResNet with zero-cost temporal channel shifts (Lin et al. 2019)"),
    "tsm_online": ModelEntry(TSM, {"mode": "online"}, "TSM with the uni-directional (past-only) shift for streaming"),
    "gsm": ModelEntry(GSF, {"fuse": False}, "learned gate decides what to shift in time (Sudhakaran et al. 2020)"),
    "gsf": ModelEntry(GSF, {"fuse": True}, "gate-shift + learned fusion of shifted/unshifted features (Sudhakaran et al. 2023)"),
    # 05 motion and long-term structure
    "twostream": ModelEntry(TwoStream, {"motion": "flow"}, "RGB stream + stacked-flow stream, late fusion (Simonyan & Zisserman 2014)"),
    "twostream_diff": ModelEntry(TwoStream, {"motion": "diff"}, "two-stream with frame differences as the motion stream"),
    "tsn": ModelEntry(TSN, {}, "segment sampling + shared 2D CNN + average consensus (Wang et al. 2016)"),
    "tsn_rgbdiff": ModelEntry(TSN, {"modality": "rgb_diff"}, "TSN on RGB differences of consecutive frames"),
    "lrcn": ModelEntry(LRCN, {}, "LSTM over per-frame CNN features (Donahue et al. 2015)"),
    "nonlocal": ModelEntry(NonLocalNet, {}, "C2D ResNet + embedded-Gaussian non-local blocks (Wang et al. 2018)"),
    # 06 attention for recognition
    "ata": ModelEntry(ATA, {}, "ViT with temporal attention along aligned patch trajectories (Zhao et al. 2022)"),
    # 07 recurrent convolutional networks
    "gru_rcn": ModelEntry(GRURCN, {}, "GRU-RCN (Ballas et al. 2016): ConvGRUs on several CNN levels"),
    "lsta": ModelEntry(LSTA, {}, "LSTA (Sudhakaran et al. 2019): recurrent attention + output gating"),
    # 08 video prediction
    "convlstm": ModelEntry(ConvLSTMEncoderForecaster, {}, "Shi et al. 2015 ConvLSTM encoder-forecaster (frame prediction)"),
    "convgru": ModelEntry(ConvLSTMEncoderForecaster, {"cell": "gru"}, "the encoder-forecaster with ConvGRU cells"),
    "convlstm_predictor": ModelEntry(ConvLSTMPredictor, {}, "frame-fed ConvLSTM stack (the ConvLSTM row of PredRNN/E3D tables)"),
    "predrnn": ModelEntry(PredRNN, {}, "PredRNN (Wang et al. 2017): ST-LSTM with zig-zag memory"),
    "e3d_lstm": ModelEntry(E3DLSTM, {}, "E3D-LSTM (Wang et al. 2019): 3D convs + eidetic recall"),
    "conv_tt_lstm": ModelEntry(ConvTTLSTM, {}, "Conv-TT-LSTM (Su et al. 2020): higher-order tensor-train ConvLSTM"),
    # 09 early action recognition
    "ms_lstm": ModelEntry(MSLSTM, {}, "CAM context/action features + two-stage LSTM, early prediction (Aliakbarian et al. 2017)"),
    "ms_lstm_head": ModelEntry(TwoStageLSTM, {}, "MS-LSTM's two-stage LSTM over precomputed (context, action) features"),
    # 10 action anticipation
    "rulstm": ModelEntry(RULSTM, {}, "rolling-unrolling LSTM branch over a feature sequence (Furnari & Farinella 2019)"),
    "rulstm_sci": ModelEntry(RULSTM, {"sequence_completion": True}, "RU-LSTM in sequence-completion pre-training mode"),
    "rulstm_fusion": ModelEntry(RULSTMFusion, {}, "RU-LSTM branches fused by modality attention (MATT)"),
    "avt_head": ModelEntry(AVTHead, {}, "AVT-h: causal transformer predicting next features (Girdhar & Grauman 2021)"),
    # 11 higher-order recurrence
    "horst": ModelEntry(HORST, {}, "HORST: order-S recurrence read by space-time attention (Tai et al. 2021)"),
    # 12 Action-Guided Attention and its ablations
    "aga": ModelEntry(AGA, {}, "Action-Guided Attention: past predictions as keys, EMA query, gate (Tai et al. 2026)"),
    "aga_pixel": ModelEntry(AGA, {"attention": "pixel"}, "AGA ablation: dot-product attention over frame embeddings"),
    "aga_iam": ModelEntry(AGA, {"query": "last", "values": "state"}, "IAM-style: last prediction as query, past states as values"),
    "aga_nogate": ModelEntry(AGA, {"gate": False}, "AGA ablation: z = h~ + e instead of the sigmoid gate"),
}


def list_models() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(MODELS)


def build_model(name: str, preset: str = "small", **overrides) -> nn.Module:
    """Build a registered model by name.

    ``preset`` is ``"small"`` (the CPU default used by the notebooks) or ``"paper"`` (the
    published configuration); ``overrides`` (e.g. ``num_classes=10``, ``frames=16``) go to the
    constructor last. Unknown names or presets raise ``KeyError`` listing the known ones.
    """
    return build_from_table(MODELS, name, preset, **overrides)


__all__ = ["MODELS", "ModelEntry", "build_model", "list_models"]
