"""Analysis: parameter and FLOP tables, latency, AGA dependency / counterfactual analysis, the
anticipation benchmark, early recognition, paired tests."""

# parameter / FLOP / latency tables
from .flops import count_flops, count_macs, count_params, flop_table, format_flop_table, latency  # noqa: F401
# AGA post-training analysis: the forward analysis (dependency matrix) and the backward one
from .dependency import dependency_grammar_correlation, dependency_matrix  # noqa: F401
from .aga import Counterfactual, CounterfactualSummary, counterfactual_past, counterfactual_success  # noqa: F401
from .aga import gate_trace, non_degenerate_windows  # noqa: F401
# anticipation benchmark: one EK-100 yardstick for every model and the label-only baselines
from .anticipation import load_anticipation_data, run_benchmark, score_anticipation  # noqa: F401
# paired tests and rank correlation, no scipy
from .stats import paired_difference_test, sign_test, spearman, student_t_two_sided  # noqa: F401
# MS-LSTM early recognition: accuracy vs observed fraction per training loss (Fig. 5 / 6)
from .early_recognition import EARLY_LOSSES, load_early_data, run_early_recognition  # noqa: F401
