"""Analysis: parameter and FLOP tables, latency, CAMs, AGA dependency / counterfactual analysis."""
