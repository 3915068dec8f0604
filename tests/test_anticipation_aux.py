"""Dense observed-action labels and the observed-action loss of ``train_anticipation``.

The per-frame labels are recomputed here with a plain loop over every frame and every action
segment of the world's scripts; the AGA loss is compared with ``losses.dense_next_step_loss``
(the released ``train.py`` rule); the default (``aux_weight=0``) must be the benchmark's recipe
unchanged, and the auxiliary head must never reach the returned model.
"""

import numpy as np
import pytest
import torch

from lecturekit.analysis.anticipation import (
    AUX_MODELS, AnticipationHead, ObservedActionAux, cross_entropy_per_step, load_anticipation_data,
    observed_frame_actions, train_anticipation,
)
from lecturekit.data.toykitchens import ToyKitchens
from lecturekit.losses import dense_next_step_loss

SMALL = dict(seed=1, num_kitchens=5, unseen_kitchens=1, videos_per_kitchen=4)


@pytest.fixture(scope="module")
def world():
    return ToyKitchens(**SMALL)


@pytest.fixture(scope="module")
def data(world):
    return load_anticipation_data(world, ("train", "test"), cache=False, device="cpu")


def _loop_labels(world, view, rule, ahead=0):
    out = np.full(view.frame_index.shape, -1, dtype=np.int64)
    for i, (v, frames) in enumerate(zip(view.video_index, view.frame_index)):
        s = world.scripts[int(v)]
        for t, f in enumerate(frames):
            if f < 0 or f + ahead >= s.num_frames:
                continue
            f = f + ahead
            for j, (a, lo, hi) in enumerate(zip(s.action, s.start, s.stop)):
                if lo <= f and (rule == "latest" or f <= hi):
                    out[i, t] = a                      # the latest segment that qualifies wins
                if rule == "upcoming" and f < lo and out[i, t] < 0:
                    busy = any(a0 <= f <= b0 for a0, b0 in zip(s.start, s.stop))
                    if not busy:
                        out[i, t] = a                  # idle: the first action that starts later
    return out


@pytest.mark.parametrize("rule, ahead", [("in_progress", 0.0), ("latest", 0.0), ("in_progress", 1.0),
                                         ("upcoming", 1.0), ("upcoming", 0.0)])
def test_frame_labels_equal_a_loop_over_the_scripts(world, rule, ahead):
    for split in ("train", "test"):
        view = world.anticipation(split, tau_a=1.0, tau_o=2.0, frames=8)
        got = observed_frame_actions(world, view, rule=rule, ahead=ahead)
        assert got.shape == view.frame_index.shape and got.dtype == np.int64
        assert np.array_equal(got, _loop_labels(world, view, rule, int(round(ahead * world.fps))))
        assert (got[view.frame_index < 0] == -1).all()                         # black frames: no label


def test_frame_labels_agree_with_the_history_and_are_stored(world, data):
    lab = data["train"].labels
    prog, latest, last = lab["frame_action"], lab["frame_latest_action"], lab["history"][:, -1]
    assert prog.shape == latest.shape == data["train"].features.shape[:2]
    # in progress => it is the latest started; at the window's end the latest started action
    # is the last past action whenever that one has started (the cascade's target)
    assert np.array_equal(prog[prog >= 0], latest[prog >= 0])
    seen = latest[:, -1] >= 0
    assert np.array_equal(latest[seen, -1], last[seen])
    assert 0.2 < (prog < 0).mean() < 0.8                                       # idle gaps exist
    # tau_a after the window's last frame the upcoming action is the benchmark's target, always
    assert np.array_equal(lab["frame_upcoming_ahead"][:, -1], lab["action"])
    # ... and never in progress yet (the cut leaves an idle gap first on ToyKitchens)
    assert (lab["frame_action_ahead"][:, -1] == -1).all()
    with pytest.raises(ValueError, match="ahead"):
        observed_frame_actions(world, world.anticipation("test"), ahead=-1.0)
    with pytest.raises(ValueError, match="rule"):
        observed_frame_actions(world, world.anticipation("test"), rule="next")


def test_aga_observed_loss_is_the_released_dense_loss():
    """At w = 1 the AGA loss is ``dense_next_step_loss`` (labels one step ahead, the last step
    counted twice, ignored entries 0 in the mean); at w = 0.5 the dense part is halved."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, 9, generator=g)
    labels = torch.randint(-1, 9, (4, 7), generator=g)
    labels[:, -1] = labels[:, -1].clamp(min=0)
    head = AnticipationHead("aga", 5, 9)
    full = ObservedActionAux(head, 1.0).loss(logits, labels)
    assert full == pytest.approx(float(dense_next_step_loss(logits, labels)), rel=1e-6)
    half = ObservedActionAux(head, 0.5).loss(logits, labels)
    final = torch.nn.functional.cross_entropy(logits[:, -1], labels[:, -1])
    assert half == pytest.approx(float(final + 0.5 * (full - final)), rel=1e-6)
    # labels already read tau_a ahead: step t takes label t (no shift), the last step the target
    aligned = torch.cat([torch.full((4, 1), -1), labels[:, :5], labels[:, -1:]], dim=1)   # label t moved to t+1
    assert float(ObservedActionAux(head, 1.0, shift=0).loss(logits, labels)) == pytest.approx(
        float(dense_next_step_loss(logits, aligned)), rel=1e-6)


def test_rulstm_aux_loss_adds_a_masked_ce_on_the_rolling_state():
    torch.manual_seed(0)
    head = AnticipationHead("rulstm", 5, 9)
    wrap = ObservedActionAux(head, 0.3).eval()
    x = torch.randn(3, 6, 5)
    labels = torch.randint(0, 9, (3, 7))
    labels[0, :6] = -1                                                          # one row without frame labels
    with torch.no_grad():
        logits, aux = wrap(x)
    assert aux.shape == logits.shape == (3, 6, 9)
    keep = labels[:, :-1] >= 0
    ce = torch.nn.functional.cross_entropy(aux[keep], labels[:, :-1][keep])
    want = cross_entropy_per_step(logits, labels[:, -1]) + 0.3 * ce
    assert float(wrap.loss((logits, aux), labels)) == pytest.approx(float(want), rel=1e-6)
    none = labels.clone()
    none[:, :-1] = -1                                                           # no frame label at all: 0, not NaN
    assert float(wrap.loss((logits, aux), none)) == pytest.approx(float(cross_entropy_per_step(logits, none[:, -1])))


def test_aux_options_and_errors(world, data):
    tr = data["train"]
    k = len(world.actions)
    base, info0 = train_anticipation("aga", tr, k, epochs=1, seed=0)
    same, _ = train_anticipation("aga", tr, k, epochs=1, seed=0, aux_weight=0.0)
    assert all(torch.equal(p, q) for p, q in zip(base.parameters(), same.parameters()))   # default = benchmark
    assert "aux_weight" not in info0
    for name in ("avt_head", "rulstm"):
        head, info = train_anticipation(name, tr, k, epochs=1, seed=0, aux_weight=1.0,
                                        aux_labels="frame_latest_action")
        assert isinstance(head, AnticipationHead) and info["aux_labels"] == "frame_latest_action"
        assert info["params"] == sum(p.numel() for p in AnticipationHead(name, tr.features.shape[-1], k).parameters())
    assert set(AUX_MODELS) == {"rulstm", "avt_head", "aga", "aga_pixel", "aga_iam", "aga_nogate"}
    with pytest.raises(ValueError, match="observed-action loss is defined"):
        train_anticipation("ms_lstm_head", tr, k, epochs=1, aux_weight=1.0)
    with pytest.raises(ValueError, match="aux_labels"):
        train_anticipation("aga", tr, k, epochs=1, aux_weight=1.0, aux_labels="nope")
