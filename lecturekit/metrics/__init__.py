"""Metrics: top-k accuracy, EK-100 class-mean top-k recall with its subsets and submission file,
confusion counts, early-recognition curves, and the image metrics of video prediction (MSE, PSNR,
SSIM).

Each group lives in its own module; this file re-exports the public names.
"""

# --- classification and anticipation ---
from .classification import (
    accuracy_vs_observed,
    confusion_counts,
    epic_subsets,
    marginalize,
    mean_topk_recall,
    per_class_topk_recall,
    topk_accuracy,
    topk_hits,
    topk_ranks,
)

# --- the EK-100 submission file ---
from .submission import (
    SubmissionError,
    evaluate_submission,
    make_submission,
    read_submission,
    validate_submission,
    write_submission,
)

# --- image metrics for video prediction ---
from .image import frame_metrics, gaussian_window, mse_per_frame, psnr_per_frame, ssim_per_frame
