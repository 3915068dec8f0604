"""Recognition models, part 2: the shared 2D ResNet, TSN, TSM, GSM/GSF, two-stream and ATA.

Each family gets at least one check against something independent of its own code: a naive
loop reference (tests/reference/temporal_ops.py), another family with copied weights, an
analytic special case, a known answer (a synthetic translation), or a published count
(``PUBLISHED``, counted by instantiating the official architecture).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lecturekit.layers import BasicBlock, ResNet2d, fold_time
from lecturekit.models import MODELS, build_model
from lecturekit.models.ata import (ATA, TemporalAttention, align, alignment_permutations, dealign,
                                   greedy_assignment, hungarian)
from lecturekit.models.frame_cnn import FrameCNN
from lecturekit.models.gsf import GSF, GateShift, gate_conv, interleave_permutation
from lecturekit.models.tsm import TSM, ShiftedBasicBlock, ShiftedBottleneck, shifted_blocks
from lecturekit.models.tsn import TSN, inflate_first_conv, segment_indices
from lecturekit.models.twostream import TwoStream, difference_stack, flow_stack, lucas_kanade_flow
from reference.temporal_ops import (brute_force_assignment, naive_ata_temporal, naive_gate_shift,
                                    naive_segment_centres, naive_temporal_shift)

NAMES = ["tsn", "tsn_rgbdiff", "tsm", "tsm_online", "gsm", "gsf", "twostream", "twostream_diff", "ata"]


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def clip(b=2, t=8, seed=0):
    return torch.randn(b, 3, t, 32, 32, generator=torch.Generator().manual_seed(seed))


# --- common contract (the cross-family contract tests live in test_models_contract.py) ------

@pytest.mark.parametrize("name", NAMES)
def test_registered_small_default_returns_logits_and_validates_input(name):
    assert name in MODELS and set(MODELS[name].presets) == {"small", "paper"}
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = clip()
    out = model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    torch.testing.assert_close(model.forward_head(model.forward_features(x)), out)
    with pytest.raises(ValueError, match="5-D"):
        model(x[0])
    with pytest.raises(ValueError, match="C=3|channels"):
        model(torch.randn(2, 4, 8, 32, 32))
    with pytest.raises(ValueError, match="permute"):
        model(x.transpose(1, 2))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out16 = model(x)
    assert out16.shape == (2, 10) and torch.isfinite(out16.float()).all()


# --- the shared backbone ------------------------------------------------------------------

def test_resnet2d_shapes_and_resnet50_count():
    """ResNet-50 trunk: 25,557,032 params with the 1000-way fc (torchvision's resnet50)."""
    net = ResNet2d()
    assert net(torch.randn(5, 3, 32, 32)).shape == (5, net.out_features) == (5, 64)
    with torch.device("meta"):
        r50 = ResNet2d.resnet50()
    assert r50.out_features == 2048
    assert count(r50) + 2048 * 1000 + 1000 == 25_557_032


def test_resnet2d_blocks_are_plain_and_expose_their_parts():
    """A plain block is y = ReLU(F(x) + S(x)) with F = last_bn(residual_convs(x)); the backbone
    calls its blocks with x alone (nothing about time)."""
    torch.manual_seed(0)
    for block, widths in (("basic", (8, 16)), ("bottleneck", (4, 8))):
        net = ResNet2d(8, widths=widths, depths=(1, 1), block=block, stem_stride=1).eval()
        x = net.stem(torch.randn(6, 8, 4, 4))
        for blk in net.blocks:
            want = torch.relu(blk.last_bn(blk.residual_convs(x)) + (x if blk.downsample is None else blk.downsample(x)))
            torch.testing.assert_close(blk(x), want, rtol=0, atol=0)
            x = blk(x)
        assert not any(hasattr(b, "temporal") for b in net.blocks)


# --- TSN ------------------------------------------------------------------------------------

def test_tsn_sampling_centre_and_random_within_segments():
    assert segment_indices(24, 3)[0, :, 0].tolist() == naive_segment_centres(24, 3) == [3, 11, 19]
    g = torch.Generator().manual_seed(0)
    idx = segment_indices(20, 4, 2, random=True, batch=64, generator=g)       # (64, 4, 2)
    seg = torch.arange(4).view(1, 4) * 5
    assert torch.all(idx[..., 0] >= seg) and torch.all(idx[..., 1] <= seg + 4)
    assert torch.all(idx[..., 1] - idx[..., 0] == 1)
    assert len(set(idx[:, 0, 0].tolist())) == 4                                  # offsets vary
    with pytest.raises(ValueError, match="T >= S"):
        segment_indices(5, 3, 2)


def test_tsn_with_one_segment_equals_the_frame_model():
    """S = 1: TSN is the frame CNN (part 1's FrameCNN, logits averaging) with the same weights."""
    torch.manual_seed(0)
    frame = FrameCNN(num_classes=10, average="logits").eval()
    tsn = TSN(num_classes=10, segments=1).eval()
    tsn.load_state_dict(frame.state_dict())
    x = clip(t=1)
    torch.testing.assert_close(tsn(x), frame(x), rtol=0, atol=1e-6)


def test_tsn_consensus_is_invariant_to_segment_order():
    torch.manual_seed(0)
    tsn = TSN(num_classes=10, segments=8).eval()
    x = clip()
    perm = torch.randperm(8)
    torch.testing.assert_close(tsn(x[:, :, perm]), tsn(x), rtol=1e-5, atol=1e-6)


def test_difference_stack_channels_order_and_static_clip():
    """6 frames -> 5 differences -> 15 channels; channel 3k + c = x[c, k+1] - x[c, k];
    a static clip gives all zeros (TSN, Sec. 3.2)."""
    x = torch.randn(2, 3, 6, 4, 4)
    d = difference_stack(x)
    assert d.shape == (2, 15, 4, 4)
    for k in range(5):
        for c in range(3):
            torch.testing.assert_close(d[:, 3 * k + c], x[:, c, k + 1] - x[:, c, k], rtol=0, atol=0)
    static = x[:, :, :1].expand(2, 3, 6, 4, 4)
    assert torch.count_nonzero(difference_stack(static)) == 0
    tsn = TSN(num_classes=4, segments=2, modality="rgb_diff", diff_frames=5)
    assert tsn.backbone.stem[0].in_channels == 15 and tsn(torch.randn(2, 3, 12, 32, 32)).shape == (2, 4)


def test_cross_modality_init_and_partial_bn():
    w = torch.randn(16, 3, 7, 7)
    w10 = inflate_first_conv(w, 10)
    assert w10.shape == (16, 10, 7, 7)
    for i in range(10):
        torch.testing.assert_close(w10[:, i], w.mean(dim=1))
    tsn = TSN(partial_bn=True).train()
    bns = [m for m in tsn.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns[0].training and all(not m.training and not m.weight.requires_grad for m in bns[1:])


def test_tsn_paper_count():
    """TSN ResNet-50, 400 classes: 24,327,632 params."""
    with torch.device("meta"):
        m = build_model("tsn", "paper")
    assert count(m) == TSN.PUBLISHED["paper_params"].value == 24_327_632


# --- TSM ------------------------------------------------------------------------------------

def test_tsm_without_shift_is_tsn_with_the_same_weights():
    """Shift fraction 0 (fold_div=None): identical logits to TSN (8 segments of an 8-frame clip)."""
    torch.manual_seed(0)
    tsm = TSM(fold_div=None).eval()
    tsn = TSN(segments=8).eval()
    tsn.load_state_dict(tsm.state_dict())
    x = clip()
    torch.testing.assert_close(tsm(x), tsn(x), rtol=0, atol=0)
    shifted = TSM(fold_div=8).eval()
    shifted.load_state_dict(tsm.state_dict())
    assert not torch.allclose(shifted(x), tsn(x))


def test_tsm_block_is_residual_shift_with_naive_shift():
    """One basic block by hand: y = ReLU(x + BN(conv(ReLU(BN(conv(shift(x))))))) with the naive
    loop shift; the identity path is NOT shifted."""
    torch.manual_seed(0)
    tsm = TSM(widths=(16,), depths=(1,)).eval()
    x = clip(t=5)
    b, t = 2, 5
    net = tsm.backbone
    h = net.stem(fold_time(x))                                         # (B*T, 16, 16, 16)
    hv = h.view(b, t, *h.shape[1:]).transpose(1, 2)                    # (B, 16, T, 16, 16)
    s = fold_time(naive_temporal_shift(hv, 8))
    blk = net.blocks[0]
    y = torch.relu(h + blk.bn2(blk.conv2(torch.relu(blk.bn1(blk.conv1(s))))))
    want = tsm.head(net.pool(y).flatten(1).view(b, t, -1)).mean(1)
    torch.testing.assert_close(tsm(x), want, rtol=1e-5, atol=1e-6)


def test_tsm_bottleneck_residual_and_in_place_shift_by_hand():
    """Bottleneck blocks, written out: residual shift y = ReLU(S(x) + F(shift(x))) leaves the
    shortcut unshifted; the in-place shift feeds shift(x) to both F and S."""
    torch.manual_seed(0)
    x = clip(t=4)
    b, t = 2, 4
    for place in ("residual", "block"):
        tsm = TSM(widths=(4, 8), depths=(1, 1), block="bottleneck", place=place).eval()
        net = tsm.backbone
        h = net.stem(fold_time(x))
        for blk in net.blocks:
            assert isinstance(blk, ShiftedBottleneck)
            hv = h.view(b, t, *h.shape[1:]).transpose(1, 2)
            s = fold_time(naive_temporal_shift(hv, 8))
            src = s if place == "block" else h
            f = blk.bn1(blk.conv1(s)).relu()
            f = blk.bn2(blk.conv2(f)).relu()
            f = blk.bn3(blk.conv3(f))
            short = src if blk.downsample is None else blk.downsample(src)
            h = torch.relu(f + short)
        want = tsm.head(net.pool(h).flatten(1).view(b, t, -1)).mean(1)
        torch.testing.assert_close(tsm(x), want, rtol=1e-5, atol=1e-6)


def test_tsm_shift_every_counts_within_each_stage_like_the_official_n_round():
    """The official make_temporal_shift (github.com/mit-han-lab/temporal-shift-module,
    ops/temporal_shift.py) shifts block i of EVERY layer when i % n_round == 0. ResNet-101
    depths (3, 4, 23, 3) with n_round = 2: blocks 0, 2 | 0, 2 | 0, 2, ..., 22 | 0, 2 = 18."""
    depths = (3, 4, 23, 3)
    official = [(stage, i) for stage, d in enumerate(depths) for i in range(0, d, 2)]
    assert len(official) == 2 + 2 + 12 + 2 == 18
    assert shifted_blocks(depths, 2) == official
    assert shifted_blocks(depths, 1) == [(s, i) for s, d in enumerate(depths) for i in range(d)]
    with torch.device("meta"):
        net = TSM(num_classes=400, widths=(64, 128, 256, 512), depths=depths, block="bottleneck",
                  stem="imagenet", shift_every=2)
        every = TSM(num_classes=400, widths=(64, 128, 256, 512), depths=depths, block="bottleneck",
                    stem="imagenet")
    where = [(s, i) for s, d in enumerate(depths) for i in range(d)]     # backbone.blocks in order
    got = [where[k] for k, blk in enumerate(net.backbone.blocks) if isinstance(blk, ShiftedBottleneck)]
    assert got == official
    assert all(isinstance(blk, ShiftedBottleneck) for blk in every.backbone.blocks) and len(every.backbone.blocks) == 33
    assert count(net) == count(every)                                    # the shift has no parameters
    with pytest.raises(ValueError, match="shift_every"):
        TSM(shift_every=0)


def test_tsm_shift_every_2_shifts_every_other_block_in_a_small_net():
    """Depths (2, 2, 2), shift_every=2: only the first block of each stage shifts; the others are
    plain blocks, called without T."""
    torch.manual_seed(0)
    tsm = TSM(depths=(2, 2, 2), shift_every=2).eval()
    assert [type(blk) for blk in tsm.backbone.blocks] == [ShiftedBasicBlock, BasicBlock] * 3
    assert tsm(clip()).shape == (2, 10)


def test_tsm_online_features_are_causal():
    torch.manual_seed(0)
    tsm = TSM(mode="online").eval()
    x = clip()
    y = x.clone()
    y[:, :, 5:] = torch.randn_like(y[:, :, 5:])
    fx, fy = tsm.forward_features(x), tsm.forward_features(y)
    torch.testing.assert_close(fx[:, :5], fy[:, :5], rtol=0, atol=1e-6)
    off = TSM(mode="offline").eval()
    off.load_state_dict(tsm.state_dict())
    assert not torch.allclose(off.forward_features(x)[:, :5], off.forward_features(y)[:, :5])


def test_tsm_paper_counts_and_macs():
    """TSM ResNet-50: 24,327,632 params (400 classes), 23,864,558 (174); 32.7 GMACs at
    8×224² (FlopCounterMode counts 2 FLOPs per MAC), same as TSN: the shift costs nothing."""
    with torch.device("meta"):
        m = build_model("tsm", "paper")
        m174 = build_model("tsm", "paper", num_classes=174)
        tsn = build_model("tsn", "paper")
        x = torch.empty(1, 3, 8, 224, 224)
        with FlopCounterMode(display=False) as c_tsm:
            m(x)
        with FlopCounterMode(display=False) as c_tsn:
            tsn.eval()
            tsn(x)
    assert count(m) == TSM.PUBLISHED["paper_params"].value == 24_327_632
    assert count(m174) == TSM.PUBLISHED["paper_params_174"].value == 23_864_558
    gmacs = c_tsm.get_total_flops() / 2 / 1e9
    assert abs(gmacs - TSM.PUBLISHED["paper_gmacs"].value) < 0.05, gmacs
    assert c_tsm.get_total_flops() == c_tsn.get_total_flops()


# --- GSM / GSF ------------------------------------------------------------------------------

def test_interleave_permutation_matches_reference_order():
    assert interleave_permutation(16).tolist() == [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]


def test_gsm_with_zero_gate_is_exactly_the_interleave_permutation():
    """Zero gate: tanh(0) = 0, so y = 0, r = x and the module reduces to the fixed channel
    permutation out[:, j] = x[:, perm[j]], perm = [0, C/4, 1, C/4+1, ...] per half, at every
    frame and pixel (bit-exact, in train mode too)."""
    m = GateShift(32, fuse=False, zero_init_gate=True).train()
    x = torch.randn(3 * 4, 32, 5, 5)
    perm = interleave_permutation(32)
    torch.testing.assert_close(m(x, frames=4), x[:, perm], rtol=0, atol=0)


@pytest.mark.parametrize("fuse,ratio", [(False, 100), (True, 100), (True, 50)])
def test_gate_shift_matches_naive_reference(fuse, ratio):
    torch.manual_seed(0)
    m = GateShift(16, fuse=fuse, ch_ratio=ratio).eval()
    with torch.no_grad():
        m.gate.weight.normal_(0, 0.3)
        m.gate.bias.normal_(0, 0.3)
        m.bn.running_mean.normal_()
    x = torch.randn(2, 16, 4, 3, 5)
    want = naive_gate_shift(x, m.gate.weight, m.gate.bias, m.bn,
                            fuse_convs=(m.fuse1, m.fuse2) if fuse else None, ch_ratio_channels=m.active)
    got = m(fold_time(x), frames=4).view(2, 4, 16, 3, 5).transpose(1, 2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_gate_conv_equals_grouped_conv3d():
    conv = nn.Conv3d(12, 2, 3, padding=1, groups=2)
    x = torch.randn(2, 12, 5, 6, 7)
    torch.testing.assert_close(gate_conv(x, conv), conv(x), rtol=1e-5, atol=1e-5)


def test_gsm_saturated_gate_shifts_each_half():
    """Gate ≈ 1: output channel 0 at t is x[ch 0, t+1] (zero at the end), input channel C/2
    appears at output C/2 with the value from t-1 (zero at the start)."""
    m = GateShift(16, fuse=False, zero_init_gate=True).eval()
    with torch.no_grad():
        m.gate.bias.fill_(30.0)                                  # tanh(30) == 1 in float32
    x = torch.randn(1, 16, 4, 2, 2)
    y = m(fold_time(x), frames=4).view(1, 4, 16, 2, 2).transpose(1, 2)
    torch.testing.assert_close(y[:, 0, :-1], x[:, 0, 1:])
    assert torch.all(y[:, 0, -1] == 0)
    torch.testing.assert_close(y[:, 8, 1:], x[:, 8, :-1])
    assert torch.all(y[:, 8, 0] == 0)


def test_gsf_sits_after_the_last_conv_and_before_the_last_bn():
    """GSF's block by hand (the released ResNet-50 placement): y = ReLU(S(x) + BN_last(GSF(F_convs(x)))),
    for basic and bottleneck blocks; with place="residual" it reads the block input instead."""
    torch.manual_seed(0)
    x = clip(t=4)
    b, t = 2, 4
    for block, widths, place in (("basic", (8, 16), "before_last_bn"), ("bottleneck", (4, 8), "before_last_bn"),
                                 ("basic", (8, 16), "residual")):
        gsf = GSF(widths=widths, depths=(1, 1), block=block, place=place).eval()
        net = gsf.backbone
        h = net.stem(fold_time(x))
        for blk in net.blocks:
            assert isinstance(blk.temporal, GateShift)
            short = h if blk.downsample is None else blk.downsample(h)
            if place == "residual":
                f = blk.temporal(h, t)
                f = blk.last_bn(blk.residual_convs(f))
            else:
                f = blk.conv1(h)
                f = blk.bn1(f).relu()
                if block == "bottleneck":
                    f = blk.bn2(blk.conv2(f)).relu()
                    f = blk.conv3(f)
                else:
                    f = blk.conv2(f)
                f = blk.last_bn(blk.temporal(f, t))
            h = torch.relu(f + short)
        want = gsf.head(net.pool(h).flatten(1).view(b, t, -1)).mean(1)
        torch.testing.assert_close(gsf(x), want, rtol=1e-5, atol=1e-6)


def test_gate_shift_uses_the_temporal_shift_of_layers():
    """The shift of the gated parts is layers.temporal_shift with fold_div=2 on the two groups:
    a saturated gate (g = 1, no fuse) moves group 1 to t+1 and group 2 to t-1, before the
    interleave, exactly as temporal_shift does."""
    from lecturekit.layers import temporal_shift
    m = GateShift(16, fuse=False, zero_init_gate=True).eval()
    with torch.no_grad():
        m.gate.bias.fill_(30.0)                                  # tanh(30) == 1 in float32
    x = torch.randn(2, 16, 5, 3, 3)
    y = m(fold_time(x), frames=5).view(2, 5, 16, 3, 3).transpose(1, 2)
    perm = interleave_permutation(16)
    torch.testing.assert_close(y, temporal_shift(x, 2)[:, perm], rtol=0, atol=0)


def test_gsf_channel_ratio_passes_the_rest_bit_exactly():
    m = GateShift(64, ch_ratio=25)
    assert m.active == 16
    x = torch.randn(8, 64, 3, 3)
    assert torch.equal(m(x, frames=4)[:, 16:], x[:, 16:])


def test_gsm_gsf_parameter_counts():
    """Per site 29·C + 2 (GSM) and 29·C' + 40 (GSF): 1,858 and 1,896 at C = 64; in ResNet-50
    (16 sites after conv3) GSF adds 438,656 (ratio 100) and 110,144 (ratio 25)."""
    assert count(GateShift(64, fuse=False)) == 29 * 64 + 2 == 1_858
    assert count(GateShift(64, fuse=True)) == 29 * 64 + 40 == 1_896
    with torch.device("meta"):
        base = count(TSN(**{**TSN.PRESETS["paper"], "num_classes": 174}))
        gsf100 = count(build_model("gsf", "paper"))
        gsf25 = count(build_model("gsf", "paper", ch_ratio=25))
    assert gsf100 - base == GSF.PUBLISHED["overhead_ratio100"].value == 438_656
    assert gsf25 - base == GSF.PUBLISHED["overhead_ratio25"].value == 110_144


# --- two-stream -----------------------------------------------------------------------------

def _texture(n=32):
    x = torch.arange(n, dtype=torch.float32)
    X, Y = x[None, :], x[:, None]
    return (torch.sin(2 * math.pi * X / 16) * torch.cos(2 * math.pi * Y / 32)
            + torch.cos(2 * math.pi * (X + 2 * Y) / 32) + 0.5 * torch.sin(2 * math.pi * Y / 8))


@pytest.mark.parametrize("dx,dy", [(2, 0), (0, 2), (1, -1), (-2, 1)])
def test_lucas_kanade_recovers_a_known_translation(dx, dy):
    """A periodic texture rolled by (dx, dy) px: mean flow over the interior ≈ (dx, dy), u to the
    right and v downwards (module convention), within 0.05 px."""
    img = _texture()
    moved = torch.roll(img, shifts=(dy, dx), dims=(0, 1))
    flow = lucas_kanade_flow(img[None], moved[None])
    u, v = flow[0, 0, 6:26, 6:26].mean().item(), flow[0, 1, 6:26, 6:26].mean().item()
    assert abs(u - dx) < 0.05 and abs(v - dy) < 0.05, (u, v)


def test_flow_stack_order_and_mean_subtraction():
    """Channels [u1, v1, u2, v2]: pair 1 moves right, pair 2 moves down; after mean-flow
    subtraction every field has zero mean."""
    img = _texture()
    frames = torch.stack([img, torch.roll(img, 1, 1), torch.roll(torch.roll(img, 1, 1), 1, 0)])
    video = frames[None, None].expand(1, 3, 3, 32, 32)
    raw = flow_stack(video, mean_subtraction=False)
    assert raw.shape == (1, 4, 32, 32)
    means = raw[0, :, 6:26, 6:26].mean(dim=(1, 2))
    torch.testing.assert_close(means, torch.tensor([1.0, 0.0, 0.0, 1.0]), atol=0.05, rtol=0)
    centred = flow_stack(video)
    assert centred.mean(dim=(2, 3)).abs().max() < 1e-5


def test_twostream_softmax_average_fusion_against_streams_run_by_hand():
    """softmax(output) == (softmax(spatial) + softmax(temporal)) / 2, where the spatial stream
    averages frame logits and the temporal stream reads the 2L-channel flow stack; sums to 1."""
    torch.manual_seed(0)
    m = TwoStream().eval()
    assert m.temporal.stem[0].in_channels == 2 * 7
    x = clip()
    frames = fold_time(x)
    s = m.head_spatial(m.spatial(frames)).view(2, 8, -1).mean(1)
    t = m.head_temporal(m.temporal(flow_stack(x[:, :, :8], window=5, iterations=3)))
    want = (F.softmax(s, -1) + F.softmax(t, -1)) / 2
    got = F.softmax(m(x), -1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.sum(-1), torch.ones(2))


def test_twostream_diff_motion_and_paper_input_channels():
    static = clip(t=1).expand(2, 3, 8, 32, 32)
    m = TwoStream(motion="diff")
    assert torch.count_nonzero(m.motion_input(static)) == 0
    assert difference_stack(clip()).shape == (2, 21, 32, 32)
    with torch.device("meta"):
        paper = build_model("twostream", "paper")
    assert paper.temporal.stem[0].in_channels == 20                  # 2L, L = 10 (Sec. 3.1)
    with pytest.raises(ValueError, match="stack"):
        m(clip(t=4))


# --- ATA ------------------------------------------------------------------------------------

def test_align_then_dealign_is_identity():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 16, 8, generator=g)
    perm = torch.stack([torch.stack([torch.randperm(16, generator=g) for _ in range(5)]) for _ in range(3)])
    assert torch.equal(dealign(align(x, perm), perm), x)
    assert torch.equal(align(dealign(x, perm), perm), x)
    assert not torch.equal(align(x, perm), x)


def test_ata_adds_no_parameters_over_plain_temporal_attention():
    a, p = ATA(align=True), ATA(align=False)
    assert count(a) == count(p) and a.state_dict().keys() == p.state_dict().keys()
    with torch.device("meta"):
        ap, pp = build_model("ata", "paper"), build_model("ata", "paper", align=False)
    assert count(ap) == count(pp)


def test_hungarian_is_optimal_and_greedy_is_a_permutation():
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        sim = torch.randn(6, 6, generator=g)
        best = brute_force_assignment(sim)
        got = hungarian(-sim).tolist()
        assert math.isclose(sum(sim[i, got[i]].item() for i in range(6)),
                            sum(sim[i, best[i]].item() for i in range(6)), abs_tol=1e-9)
    perms = greedy_assignment(torch.randn(4, 9, 9, generator=g))
    assert all(sorted(p.tolist()) == list(range(9)) for p in perms)


@pytest.mark.parametrize("method", ["greedy", "hungarian"])
def test_alignment_recovers_a_known_patch_permutation(method):
    """Frame t = a patch permutation σ_t of frame 0 (+ small noise): the chained alignment finds
    perm_t = σ_t⁻¹, i.e. the aligned video is frame 0 at every t."""
    g = torch.Generator().manual_seed(1)
    base = torch.randn(2, 1, 16, 32, generator=g)
    sig = torch.stack([torch.stack([torch.randperm(16, generator=g) for _ in range(4)]) for _ in range(2)])
    sig[:, 0] = torch.arange(16)
    video = align(base.expand(2, 4, 16, 32), sig) + 0.01 * torch.randn(2, 4, 16, 32, generator=g)
    perm = alignment_permutations(video, method)
    assert torch.equal(perm, sig.argsort(-1))
    static = base.expand(2, 4, 16, 32)
    assert torch.equal(alignment_permutations(static, method), torch.arange(16).expand(2, 4, 16))


def test_ata_layer_matches_naive_reference():
    """The vectorised ATA temporal layer == a loop implementation with brute-force matching."""
    torch.manual_seed(0)
    layer = TemporalAttention(8, 2, align=True, assignment="hungarian").eval()
    x = torch.randn(2, 4, 5, 8)
    torch.testing.assert_close(layer(x), naive_ata_temporal(x, layer.norm, layer.attn), rtol=1e-5, atol=1e-5)


def test_ata_is_equivariant_and_static_video_equals_plain_attention():
    """ATA on a video whose frames are patch-permuted copies of Y equals plain temporal
    attention on Y, permuted back: ATA(X)_t = TA(Y)_t[σ_t]. With σ = id (static), ATA = TA."""
    torch.manual_seed(0)
    ata = TemporalAttention(16, 2, align=True).eval()
    plain = TemporalAttention(16, 2, align=False).eval()
    plain.load_state_dict(ata.state_dict())
    g = torch.Generator().manual_seed(3)
    y = torch.randn(2, 1, 9, 16, generator=g) + 0.02 * torch.randn(2, 5, 9, 16, generator=g)
    sig = torch.stack([torch.stack([torch.randperm(9, generator=g) for _ in range(5)]) for _ in range(2)])
    sig[:, 0] = torch.arange(9)
    x = align(y, sig)                                                    # X_t = Y_t[σ_t]
    torch.testing.assert_close(ata(x), align(plain(y), sig), rtol=1e-5, atol=1e-5)
    static = y[:, :1].expand(2, 5, 9, 16)
    torch.testing.assert_close(ata(static), plain(static), rtol=0, atol=0)
    assert not torch.allclose(plain(x), ata(x))


def test_ata_rejects_too_many_frames():
    with pytest.raises(ValueError, match="max_frames"):
        ATA(max_frames=4)(clip())


@pytest.mark.parametrize("method", ["greedy", "hungarian"])
def test_centred_alignment_ignores_what_all_patches_of_a_frame_share(method):
    """A large vector added to every patch of frame t (what a time embedding does) leaves the
    centred alignment unchanged: it still finds perm_t = σ_t⁻¹ of the patch-permuted video."""
    g = torch.Generator().manual_seed(2)
    base = torch.randn(2, 1, 16, 32, generator=g)
    sig = torch.stack([torch.stack([torch.randperm(16, generator=g) for _ in range(4)]) for _ in range(2)])
    sig[:, 0] = torch.arange(16)
    video = align(base.expand(2, 4, 16, 32), sig) + 0.01 * torch.randn(2, 4, 16, 32, generator=g)
    shifted = video + 10.0 * torch.randn(2, 4, 1, 32, generator=g)      # one offset per frame
    assert torch.equal(alignment_permutations(shifted, method, center=True), sig.argsort(-1))
    assert ATA().blocks[0].temporal.center_matching                      # the model uses it


def test_ata_paper_parameter_count_is_vit_b_plus_temporal_attention():
    """ViT-B/16 at 8×224², no CLS token, K = 400, plus one LN + MSA per block, counted by hand."""
    d, hidden, k = 768, 3072, 400
    ln, msa, mlp = 2 * d, 4 * d * d + 4 * d, d * hidden + hidden + hidden * d + d
    block = ln + msa + ln + msa + ln + mlp                               # temporal, spatial, MLP
    expected = (3 * 16 * 16 * d + d) + 196 * d + 8 * d + 12 * block + ln + (d * k + k)
    with torch.device("meta"):
        paper = build_model("ata", "paper")
    assert count(paper) == expected == 114_477_712


def test_ata_rejects_unknown_pooling():
    with pytest.raises(ValueError, match="pool"):
        ATA(pool="cls")
