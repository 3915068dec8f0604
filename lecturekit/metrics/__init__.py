"""Metrics: top-k accuracy, EK-100 class-mean top-k recall with its subsets, early-recognition
curves, and the image metrics of video prediction (MSE, PSNR, SSIM).

Each group lives in its own module; this file re-exports the public names.
"""

# --- classification / anticipation metrics (issue: anticipation) ---

# --- image metrics for video prediction (issue: recurrent) ---
