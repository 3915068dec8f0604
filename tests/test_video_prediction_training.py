"""Smoke training of video prediction on moving glyphs (CPU, seconds): ConvLSTM and E3D-LSTM
must predict the 10 future frames of held-out clips far better than copying the last
observed frame, and better than predicting an empty frame.

Setting: ``MovingGlyphs(size=32, glyphs=1, augment=False)`` (one 14-px glyph box, 1.8 px per
frame), 512 training clips (seed 0), 64 test clips (seed 1), 10 observed → 10 predicted,
4×4 patches (32×32×1 → 8×8×16), batch 8, Adam, binary cross-entropy on the predicted pixels
(pixels as Bernoulli means, as in Shi et al.). The baselines are computed on the same test
clips: copy-last-frame and the all-zero frame (the background). Thin strokes moving 1.8 px per
frame make copy-last worse than the empty frame (MSE 0.055 vs 0.034), so both are asserted.
"""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from lecturekit.data import MovingGlyphs
from lecturekit.metrics import frame_metrics
from lecturekit.models import build_model
from lecturekit.models.video_prediction import copy_last_frame


@pytest.fixture(scope="module")
def glyphs():
    train = MovingGlyphs(seed=0, size=32, glyphs=1, num_samples=512, augment=False).tensors()
    test = MovingGlyphs(seed=1, size=32, glyphs=1, num_samples=64, augment=False).tensors()
    return train, test


def _fit(model, train, *, iters, frame_fed, batch=8, lr=5e-3, seed=0):
    """Adam + BCE. Frame-fed models: loss on all 19 next-frame predictions, scheduled sampling
    from teacher forcing (p = 1) down to free running (p = 0) over the first 60 % of the steps."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    start, cpu = time.perf_counter(), time.process_time()
    for it in range(iters):
        clip = train[torch.randint(0, len(train), (batch,), generator=gen)]       # (B, 1, 20, 32, 32)
        if frame_fed:
            p = max(0.0, 1.0 - it / (0.6 * iters))
            pred, target = model(clip, teacher_prob=p, return_all=True), clip[:, :, 1:]
        else:
            pred, target = model(clip[:, :, :10]), clip[:, :, 10:]
        loss = F.binary_cross_entropy(pred.clamp(1e-6, 1 - 1e-6), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start, time.process_time() - cpu


def _evaluate(model, test):
    model.eval()
    with torch.no_grad():
        pred = model(test[:, :, :10])                                 # free running, 10 frames
    future = test[:, :, 10:]
    return (frame_metrics(pred, future), frame_metrics(copy_last_frame(test, 10, 10), future),
            frame_metrics(torch.zeros_like(future), future))


CASES = {
    # Shi et al.'s encoder-forecaster (the registered "convlstm"), small preset.
    "convlstm": dict(overrides={}, iters=400, lr=1e-2, frame_fed=False),
    # E3D-LSTM, one eidetic layer of 16 channels, kernel (2, 3, 3), τ' = 2, window τ = 4.
    "e3d_lstm": dict(overrides={"hidden": (16,)}, iters=200, lr=5e-3, frame_fed=True),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_smoke_training_beats_copy_last_frame(name, glyphs, record_property):
    train, test = glyphs
    case = CASES[name]
    torch.manual_seed(0)
    model = build_model(name, **case["overrides"])
    seconds, cpu = _fit(model, train, iters=case["iters"], lr=case["lr"], frame_fed=case["frame_fed"])
    got, copy, zero = _evaluate(model, test)
    report = (f"{name}: test MSE {got['mse']:.4f} (copy-last {copy['mse']:.4f}, empty frame {zero['mse']:.4f}), "
              f"SSIM {got['ssim']:.3f} (copy-last {copy['ssim']:.3f}), PSNR {got['psnr']:.2f} dB, "
              f"{case['iters']} iterations in {seconds:.1f} s wall / {cpu:.1f} s CPU")
    print(report)
    record_property("report", report)
    assert got["mse"] < 0.6 * copy["mse"], report
    assert got["mse"] < 0.9 * zero["mse"], report
