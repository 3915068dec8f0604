"""Analysis: parameter and FLOP tables, latency, CAMs, AGA dependency / counterfactual analysis."""

# --- parameter / FLOP / latency tables (issue: recognition) ---
from .flops import count_flops, count_macs, count_params, flop_table, format_flop_table, latency  # noqa: E402,F401

# --- AGA post-training analysis (issue: anticipation) ---
from .aga import Counterfactual, counterfactual_past, dependency_matrix, gate_trace  # noqa: E402,F401
from .aga import (  # noqa: E402,F401
    CounterfactualSummary,
    counterfactual_success,
    dependency_grammar_correlation,
    non_degenerate_windows,
)
# anticipation benchmark: one EK-100 yardstick for every model and the label-only baselines
from .anticipation import load_anticipation_data, run_benchmark, score_anticipation  # noqa: E402,F401
# paired tests and rank correlation, no scipy
from .stats import paired_difference_test, sign_test, spearman, student_t_two_sided  # noqa: E402,F401
# MS-LSTM early recognition: accuracy vs observed fraction per training loss (Fig. 5 / 6)
from .early_recognition import EARLY_LOSSES, load_early_data, run_early_recognition  # noqa: E402,F401
