"""Metrics: top-k accuracy, EK-100 class-mean top-k recall with its subsets, early-recognition
curves, and the image metrics of video prediction (MSE, PSNR, SSIM).

Each group lives in its own module; this file re-exports the public names.
"""

# --- classification / anticipation metrics (issue: anticipation) ---
from .classification import (
    SubmissionError,
    accuracy_vs_observed,
    epic_subsets,
    evaluate_submission,
    make_submission,
    marginalize,
    mean_topk_recall,
    per_class_topk_recall,
    read_submission,
    tail_classes,
    topk_accuracy,
    topk_hits,
    topk_ranks,
    validate_submission,
    write_submission,
)

# --- image metrics for video prediction (issue: recurrent) ---
from .image import frame_metrics, gaussian_window, mse_per_frame, psnr_per_frame, ssim_per_frame
