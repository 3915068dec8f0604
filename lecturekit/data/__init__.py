"""Data: ToyKitchens, moving glyphs, EPIC-KITCHENS-100 and frame-folder loaders, samplers, transforms.

The bottom floor of the library: nothing here imports anything else of lecturekit but ``env``
(where generated data is cached).
"""

from ..env import cache_dir, repo_root
# --- ToyKitchens world, views and label-only baselines ---
from . import baselines
from .baselines import NGram, bayes_next_action, ngram_next_action
from .toykitchens import ToyClip, ToyKitchens, ToyView
# --- EK-100 rules, real-data loaders, samplers, transforms, moving glyphs ---
from . import ek100
from .ek100 import action_class, tail_classes
from .epic import EPIC_COLUMNS, EpicKitchens, load_frame
from .epic_writer import write_epic_layout
from .samplers import (
    DenseSampler,
    TSNSampler,
    UniformSampler,
    anticipation_indices,
    dense_indices,
    tsn_indices,
    uniform_indices,
)
from .transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Compose,
    LabelMap,
    RandomHorizontalFlip,
    center_crop,
    denormalize,
    hflip,
    normalize,
    random_crop,
    random_hflip,
    resize,
    reverse_time,
    to_float,
    to_uint8,
)
from .frames import FrameFolder, read_video_file
from .glyphs import MovingGlyphs, split_observed
# --- pre-extracted features in LMDB (RU-LSTM's EK-100 layout; lmdb imported only when used) ---
from .lmdb_features import EpicFeatures, LMDBFeatures, write_lmdb_features

__all__ = ["cache_dir", "repo_root"]
__all__ += ["ToyKitchens", "ToyView", "ToyClip", "baselines", "NGram", "bayes_next_action", "ngram_next_action"]
__all__ += [
    "ek100", "EPIC_COLUMNS", "EpicKitchens", "action_class", "load_frame", "tail_classes", "write_epic_layout",
    "DenseSampler", "TSNSampler", "UniformSampler",
    "anticipation_indices", "dense_indices", "tsn_indices", "uniform_indices",
    "IMAGENET_MEAN", "IMAGENET_STD", "Compose", "LabelMap", "RandomHorizontalFlip", "center_crop",
    "denormalize", "hflip", "normalize", "random_crop", "random_hflip", "resize", "reverse_time",
    "to_float", "to_uint8",
    "FrameFolder", "read_video_file", "MovingGlyphs", "split_observed",
]
__all__ += ["EpicFeatures", "LMDBFeatures", "write_lmdb_features"]  # pre-extracted features
