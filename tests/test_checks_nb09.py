"""Checks of notebook 09 (09.1 the anticipation loss of Eq. 1, 09.2 CAM action-aware features of
Eqs. 2-3): independent naive solutions pass, the checks' references agree with the naive code and
with the library (``losses.anticipation_loss``, ``CAMFeatureNet``), and typical wrong answers are
rejected with the matching hint."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from lecturekit import losses
from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.course.checks.nb09 import WORKED_EXAMPLE
from lecturekit.models.ms_lstm import CAMFeatureNet, cam_action_features
from reference.course_naive_nb09 import naive_anticipation_loss, naive_cam_action_features


# --------------------------------------------------------------------------- 09.1 anticipation loss
def test_naive_anticipation_loss_passes():
    assert check("09.1", naive_anticipation_loss, verbose=False).passed


def test_anticipation_reference_agrees_with_naive_code():
    spec = get_check("09.1")
    result = run_check(dataclasses.replace(spec, reference=naive_anticipation_loss), losses.anticipation_loss)
    assert result.passed, result.message


def test_worked_example_by_hand():
    """K = 2, T = 2, ŷ = (0.8, 0.2) at both steps, class 0: -ln 0.8 (1 + 1/2 + 1 + 1) / 2."""
    logits = torch.log(torch.tensor([0.8, 0.2])).expand(1, 2, 2)
    assert abs(losses.anticipation_loss(logits, torch.tensor([0])).item() - WORKED_EXAMPLE) < 1e-6
    assert abs(WORKED_EXAMPLE - 0.3905) < 1e-4
    # the false-positive weight grows: the same mistake costs more at the last step than at the first
    per_step = losses.anticipation_loss_per_step(logits, torch.tensor([0]))[0]
    assert per_step[1] > per_step[0]
    assert abs((per_step[1] - per_step[0]).item() - (-0.5 * math.log(0.8))) < 1e-6


def _probs(logits):
    return logits.softmax(-1)


def _weights(t):
    return torch.arange(1, t + 1, dtype=torch.float32) / t


def _terms(logits, target):
    p = _probs(logits.float())
    k = logits.shape[-1]
    y = F.one_hot(target, k).float()[:, None]
    return y * torch.log(p), (1 - y) * torch.log1p(-p)            # (B, T, K) each


def loss_without_class_norm(logits, target):
    fn, fp = _terms(logits, target)
    w = _weights(logits.shape[1])[None, :, None]
    return -(fn + w * fp).sum((1, 2)).mean()


def loss_mean_over_time(logits, target):
    fn, fp = _terms(logits, target)
    w = _weights(logits.shape[1])[None, :, None]
    return -(fn + w * fp).sum(2).mean(1).div(logits.shape[-1]).mean()


def loss_constant_fp_weight(logits, target):
    fn, fp = _terms(logits, target)
    return -(fn + fp).sum((1, 2)).div(logits.shape[-1]).mean()


def loss_lgl_weights(logits, target):
    fn, fp = _terms(logits, target)
    w = _weights(logits.shape[1])[None, :, None]
    return -(w * fn + w * fp).sum((1, 2)).div(logits.shape[-1]).mean()


def loss_steps_from_zero(logits, target):
    fn, fp = _terms(logits, target)
    t = logits.shape[1]
    w = (torch.arange(t, dtype=torch.float32) / t)[None, :, None]
    return -(fn + w * fp).sum((1, 2)).div(logits.shape[-1]).mean()


def loss_fp_on_all_classes(logits, target):
    p = _probs(logits.float())
    k = logits.shape[-1]
    y = F.one_hot(target, k).float()[:, None]
    w = _weights(logits.shape[1])[None, :, None]
    return -(y * torch.log(p) + w * torch.log1p(-p)).sum((1, 2)).div(k).mean()


def loss_summed_over_batch(logits, target):
    return naive_anticipation_loss(logits, target) * logits.shape[0]


def loss_softmax_over_time(logits, target):
    p = logits.float().softmax(1)
    k = logits.shape[-1]
    y = F.one_hot(target, k).float()[:, None]
    w = _weights(logits.shape[1])[None, :, None]
    return -(y * torch.log(p) + w * (1 - y) * torch.log1p(-p)).sum((1, 2)).div(k).mean()


@pytest.mark.parametrize("wrong, expected", [
    (loss_without_class_norm, "1/N of Eq. (1) is missing"),
    (loss_mean_over_time, "averaged over the T steps"),
    (loss_constant_fp_weight, "grows as t/T"),
    (loss_lgl_weights, "linearly growing loss"),
    (loss_steps_from_zero, "start at t = 0"),
    (loss_fp_on_all_classes, "wrong classes only"),
    (loss_summed_over_batch, "summed over the batch"),
    (loss_softmax_over_time, "softmax ran over time"),
])
def test_anticipation_loss_rejects_mistakes(wrong, expected):
    result = check("09.1", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message


# --------------------------------------------------------------------------- 09.2 CAM features
def test_naive_cam_features_pass():
    assert check("09.2", naive_cam_action_features, verbose=False).passed


def test_cam_reference_agrees_with_naive_code():
    spec = get_check("09.2")
    result = run_check(dataclasses.replace(spec, reference=naive_cam_action_features), cam_action_features)
    assert result.passed, result.message


def test_cam_reference_is_what_ms_lstm_feeds_its_action_stream():
    """CAMFeatureNet's action-aware feature is fc6/fc7 of exactly the exercise's masked maps, for
    the ground-truth class (training) and for the CAM classifier's own top class (inference)."""
    torch.manual_seed(0)
    net = CAMFeatureNet(5, in_channels=3, widths=(8, 16, 16), fc_dim=32, cam_dim=12).eval()
    frames = torch.randn(4, 3, 32, 32)
    labels = torch.tensor([0, 3, 3, 1])
    with torch.no_grad():
        shared = net.trunk.forward_maps(frames)
        conv5_3 = net.action_conv(shared)
        f = net.cam_conv(conv5_3)
        for k in (labels, net.cam_head(f.mean((2, 3))).argmax(-1)):
            out = net(frames, labels if k is labels else None)
            masked = cam_action_features(conv5_3, f, net.cam_head.weight, k)
            assert torch.allclose(net.action_fc(masked), out.action, atol=1e-5)
            assert torch.allclose(naive_cam_action_features(conv5_3, f, net.cam_head.weight, k), masked, atol=1e-5)


def cam_without_relu(conv5_3, cam_maps, weight, k):
    return conv5_3 * torch.einsum("nl,nlhw->nhw", weight[k], cam_maps)[:, None]


def cam_masks_f(conv5_3, cam_maps, weight, k):
    return cam_maps * F.relu(torch.einsum("nl,nlhw->nhw", weight[k], cam_maps))[:, None]


def cam_first_class_for_all(conv5_3, cam_maps, weight, k):
    m = torch.einsum("l,nlhw->nhw", weight[k[0]], cam_maps)
    return conv5_3 * F.relu(m)[:, None]


def cam_all_classes(conv5_3, cam_maps, weight, k):
    m = torch.einsum("kl,nlhw->nhw", weight, cam_maps)
    return conv5_3 * F.relu(m)[:, None]


def cam_max_normalised(conv5_3, cam_maps, weight, k):
    m = F.relu(torch.einsum("nl,nlhw->nhw", weight[k], cam_maps))
    return conv5_3 * (m / m.amax((1, 2), keepdim=True).clamp_min(1e-12))[:, None]


def cam_added(conv5_3, cam_maps, weight, k):
    return conv5_3 + F.relu(torch.einsum("nl,nlhw->nhw", weight[k], cam_maps))[:, None]


def cam_in_place(conv5_3, cam_maps, weight, k):
    return conv5_3.mul_(F.relu(torch.einsum("nl,nlhw->nhw", weight[k], cam_maps))[:, None])


@pytest.mark.parametrize("wrong, expected", [
    (cam_without_relu, "ReLU is missing"),
    (cam_masks_f, "masks conv5_3"),
    (cam_first_class_for_all, "class of the first frame"),
    (cam_all_classes, "ONE class k per frame"),
    (cam_max_normalised, "maximum of 1"),
    (cam_added, "MULTIPLIES"),
    (cam_in_place, "modified"),
])
def test_cam_features_reject_mistakes(wrong, expected):
    result = check("09.2", wrong, verbose=False)
    assert not result.passed
    assert expected in result.message, result.message
