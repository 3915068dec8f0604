"""Step-by-step reference of the RU-LSTM forward pass, following the structure of the official
``RULSTM/models.py`` (fpv-iplab/rulstm): a rolling LSTM run one step at a time, then, for each
step t (0-based), a separate unrolling-LSTM call started from the rolling state.

It borrows the weights of a lecturekit ``RULSTM`` (eval mode, no dropout) and records the length
of every unrolling call in ``lengths``, so tests can check both the outputs of the vectorised
library code and the unrolling schedule.
"""

from __future__ import annotations

import torch


def rulstm_forward_loop(model, x, lengths=None):
    """x (B, T, D) -> logits (B, T, K), computed one unroll at a time; appends lengths."""
    b, t, _ = x.shape
    state = None
    rolling_states = []
    for i in range(t):
        _, state = model.rolling(x[:, i : i + 1], state)
        rolling_states.append(state)
    outputs = []
    for i in range(t):
        if model.sequence_completion:
            ins = x[:, i:]                                   # current and true future features
        else:
            ins = x[:, i : i + 1].expand(b, t - i + 1, x.shape[2])   # f_t repeated T - t + 1 times
        if lengths is not None:
            lengths.append(ins.shape[1])
        h, _ = model.unrolling(ins, rolling_states[i])
        outputs.append(h[:, -1])
    h_u = torch.stack(outputs, 1)
    return model.head(h_u)
