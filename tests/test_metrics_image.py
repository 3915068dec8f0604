"""Image metrics of video prediction: per-frame MSE, PSNR, SSIM (lecturekit.metrics.image)."""

from __future__ import annotations

import pytest
import torch
from reference.recurrent import ssim_naive

from lecturekit.metrics import frame_metrics, gaussian_window, mse_per_frame, psnr_per_frame, ssim_per_frame


def test_ssim_of_an_image_with_itself_is_one():
    x = torch.rand(2, 3, 4, 16, 20, generator=torch.Generator().manual_seed(0))
    s = ssim_per_frame(x, x)
    assert s.shape == (2, 4)
    torch.testing.assert_close(s, torch.ones(2, 4), atol=1e-6, rtol=0)


def test_ssim_of_two_constant_images_matches_the_hand_computed_value():
    """Constants a and b: μ = a, b, σ = 0, so SSIM = (2ab + C1)/(a² + b² + C1) · C2/C2."""
    a, b = 0.5, 0.25
    x = torch.full((1, 1, 1, 11, 11), a)
    y = torch.full((1, 1, 1, 11, 11), b)
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)        # 0.25010 / 0.31260 = 0.800064
    assert ssim_per_frame(x, y).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.8000640, abs=1e-6)


@pytest.mark.parametrize("shape", [(11, 11), (13, 15)])
def test_ssim_equals_a_loop_over_windows(shape):
    """Vectorised separable filter == explicit loop over every valid 11×11 window (Wang et al.)."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 1, *shape, generator=g)
    y = (x + 0.2 * torch.randn(1, 1, 1, *shape, generator=g)).clamp(0, 1)
    ref = ssim_naive(x[0, 0, 0].tolist(), y[0, 0, 0].tolist())
    assert ssim_per_frame(x, y).item() == pytest.approx(ref, abs=1e-6)


def test_ssim_averages_channels_and_is_per_frame():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 2, 3, 12, 12, generator=g)
    y = torch.rand(2, 2, 3, 12, 12, generator=g)
    s = ssim_per_frame(x, y)
    b, t = 1, 2
    manual = sum(ssim_naive(x[b, c, t].tolist(), y[b, c, t].tolist()) for c in range(2)) / 2
    assert s[b, t].item() == pytest.approx(manual, abs=1e-6)


def test_gaussian_window_is_normalised_and_symmetric():
    w = gaussian_window(11, 1.5)
    assert w.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(w, w.flip(0))
    assert w.argmax().item() == 5


def test_psnr_of_a_constant_offset():
    """Offset 0.1 everywhere: MSE = 0.01, PSNR = 10 log10(1 / 0.01) = 20 dB."""
    y = torch.full((1, 1, 2, 8, 8), 0.5)
    p = psnr_per_frame(y + 0.1, y)
    torch.testing.assert_close(p, torch.full((1, 2), 20.0), atol=1e-4, rtol=0)
    assert torch.isinf(psnr_per_frame(y, y)).all()


def test_mse_sum_is_the_moving_mnist_per_frame_convention():
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(2, 1, 3, 8, 8, generator=g), torch.rand(2, 1, 3, 8, 8, generator=g)
    mean, total = mse_per_frame(x, y), mse_per_frame(x, y, reduction="sum")
    torch.testing.assert_close(total, mean * 64)
    torch.testing.assert_close(mean, ((x - y) ** 2).mean(dim=(1, 3, 4)))


def test_predictions_are_clipped_to_the_unit_range():
    y = torch.ones(1, 1, 1, 4, 4)
    assert mse_per_frame(y * 3, y).item() == 0.0
    assert mse_per_frame(y * 3, y, clip=False).item() == pytest.approx(4.0)


def test_bad_inputs_raise():
    x = torch.rand(1, 1, 2, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        ssim_per_frame(x, torch.rand(1, 1, 3, 16, 16))
    with pytest.raises(ValueError, match="smaller than"):
        ssim_per_frame(torch.rand(1, 1, 1, 8, 8), torch.rand(1, 1, 1, 8, 8))
    with pytest.raises(ValueError):
        mse_per_frame(torch.rand(2, 16, 16), torch.rand(2, 16, 16))
    with pytest.raises(ValueError, match="reduction"):
        mse_per_frame(x, x, reduction="max")


def test_frame_metrics_summary():
    x = torch.rand(2, 1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    m = frame_metrics(x, x)
    assert m["mse"] == 0.0 and m["ssim"] == pytest.approx(1.0, abs=1e-6)
