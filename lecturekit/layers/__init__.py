"""Layers: shared building blocks used by two or more model families (or by exercises)."""

from .shapes import (
    check_frames,
    check_sequence,
    check_shape,
    check_video,
    fold_time,
    unfold_time,
)

# --- recognition part 1: the Karpathy et al. conv tower ---
from .conv_tower import PAPER_CONVS, SMALL_CONVS, ConvSpec, FCLayers, Tower

# --- recognition part 2: 2D backbone, temporal shift, frame differences ---
from .resnet2d import BasicBlock, Bottleneck, ResNet2d
from .temporal_shift import TemporalShift, online_shift_step, shift_folded, temporal_shift
from .motion import difference_stack

# --- recognition part 1: factorised (2+1)D / P3D convolutions ---
from .factorised_conv import Conv2Plus1d, P3DMiddle, SpatialConv, TemporalConv, mid_channels

# --- recurrent: ConvLSTM / ConvGRU cells ---
from .conv_rnn import ConvGRUCell, ConvLSTMCell, ConvRNNCell, run_cell

__all__ = ["check_frames", "check_sequence", "check_shape", "check_video", "fold_time", "unfold_time"]
__all__ += ["PAPER_CONVS", "SMALL_CONVS", "ConvSpec", "FCLayers", "Tower"]  # recognition part 1
__all__ += ["BasicBlock", "Bottleneck", "ResNet2d",  # recognition part 2
            "TemporalShift", "online_shift_step", "shift_folded", "temporal_shift", "difference_stack"]
__all__ += ["Conv2Plus1d", "P3DMiddle", "SpatialConv", "TemporalConv", "mid_channels"]  # recognition part 1
__all__ += ["ConvGRUCell", "ConvLSTMCell", "ConvRNNCell", "run_cell"]  # recurrent
