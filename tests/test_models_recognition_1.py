"""Recognition models, part 1: frame CNN, Karpathy fusion, C3D, P3D / R(2+1)D, non-local, LRCN.

Paper-number tests use the models' ``PUBLISHED`` numbers (parameter counts exact; MACs counted by
FlopCounterMode, which counts 2 FLOPs per multiply-accumulate, so MACs = FLOPs / 2). Paper-size
networks are built on the meta device: counting needs no memory and no arithmetic.
Independent references live in tests/reference/ (loop-based conv, Caffe pooling, non-local, LSTM).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lecturekit.analysis import count_macs, count_params, flop_table
from lecturekit.layers.factorised_conv import Conv2Plus1d, P3DMiddle, SpatialConv, TemporalConv, mid_channels
from lecturekit.models import build_model
from lecturekit.models.c3d import C3D
from lecturekit.models.factorised import P3D, R2Plus1D
from lecturekit.models.frame_cnn import FrameCNN
from lecturekit.models.fusion import EarlyFusion, LateFusion, SlowFusion
from lecturekit.models.lrcn import LRCN
from lecturekit.models.nonlocal_net import NonLocalBlock, NonLocalNet
from reference import naive_conv3d, naive_lstm, naive_nonlocal


def meta(cls, preset="paper", **overrides):
    with torch.device("meta"):
        return cls(**{**cls.PRESETS[preset], **overrides})


def meta_input(*shape):
    return torch.empty(*shape, device="meta")


def output_shapes(model, x, kind):
    """Output shapes of every submodule of type ``kind``, in call order (forward hooks)."""
    shapes = []
    handles = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
               for m in model.modules() if isinstance(m, kind)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return shapes


# ----------------------------------------------------------------------------------------- C3D

@pytest.fixture(scope="module")
def c3d_paper_table():
    model = meta(C3D)
    return model, flop_table(model, meta_input(1, 3, 16, 112, 112))


def test_c3d_paper_params_are_79_991_015(c3d_paper_table):
    """487 classes, Caffe ceil-mode pool5 (8192-d fc6)."""
    model, _ = c3d_paper_table
    assert count_params(model) == 79_991_015 == C3D.PUBLISHED["params"].value
    convs = sum(count_params(m) for m in model.features if isinstance(m, nn.Conv3d))
    assert convs == 27_655_936


def test_c3d_paper_macs(c3d_paper_table):
    """Conv MACs 38,496,632,832 and conv+fc 38,548,959,232 at 1×3×16×112×112."""
    _, rows = c3d_paper_table
    conv = sum(r["macs"] for r in rows if r["type"] == "Conv3d")
    assert conv == 38_496_632_832 == C3D.PUBLISHED["conv_macs"].value
    assert sum(r["macs"] for r in rows) == 38_548_959_232 == C3D.PUBLISHED["macs"].value
    per_layer = {r["name"].split(".")[-1]: r["macs"] for r in rows}
    assert per_layer["conv2a"] == per_layer["conv3b"] == 11_098_128_384


def test_c3d_other_heads_and_pool5_modes():
    assert count_params(meta(C3D, num_classes=101)) == 78_409_573
    floor = meta(C3D, pool5="floor")
    assert count_params(floor) == 65_310_951 and floor.pool5_shape == (512, 1, 3, 3)


def test_c3d_time_axis_after_each_pool(c3d_paper_table):
    model, _ = c3d_paper_table
    shapes = output_shapes(model, meta_input(1, 3, 16, 112, 112), nn.MaxPool3d)
    assert [s[2] for s in shapes] == [16, 8, 4, 2, 1]
    assert shapes[-1] == (1, 512, 1, 4, 4)


def test_c3d_pool5_is_caffe_ceil_mode_and_differs_from_the_port_padding():
    """pool5 of the model == loop-based Caffe pooling; the (0,1,1)-padding port gives other values."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 2, 7, 7)
    pool5 = C3D().features.pool5
    expected = naive_conv3d.caffe_max_pool3d(x, (2, 2, 2), (2, 2, 2))
    torch.testing.assert_close(pool5(x), expected, rtol=0, atol=0)
    port = C3D(pool5="pad", frames=16).features.pool5(x)
    assert port.shape == expected.shape and not torch.equal(port, expected)


def test_c3d_conv_matches_naive_reference():
    torch.manual_seed(0)
    conv = C3D().features.conv1a
    x = torch.randn(1, 3, 4, 6, 6)
    torch.testing.assert_close(conv(x), naive_conv3d.conv3d(x, conv.weight, conv.bias, padding=(1, 1, 1)),
                               rtol=1e-4, atol=1e-5)


def test_c3d_rejects_a_clip_of_another_length():
    with pytest.raises(ValueError, match=r"T=8.*\(2, 3, 16, 32, 32\)|\(2, 3, 16, 32, 32\).*T"):
        C3D()(torch.zeros(2, 3, 16, 32, 32))


# ------------------------------------------------------------------------ factorised convs

@pytest.mark.parametrize("i,o,m", [(64, 64, 144), (64, 128, 230), (128, 128, 288), (128, 256, 460),
                                   (256, 256, 576), (256, 512, 921), (512, 512, 1152)])
def test_mid_channels_rule(i, o, m):
    assert mid_channels(i, o) == m == (27 * i * o) // (9 * i + 3 * o)
    block = Conv2Plus1d(i, o, norm_layer=lambda c: nn.Identity())
    weights = count_params(block)
    assert weights == 9 * i * m + 3 * m * o <= 27 * i * o
    if i == o:
        assert weights == 27 * i * o


def test_p3d_s_plus_t_has_12_over_27_of_the_3d_params():
    """The slide's "27C vs 11C": S + T costs 12·C², not 11·C²."""
    c = 32
    full = nn.Conv3d(c, c, 3, bias=False)
    st = nn.Sequential(SpatialConv(c, c), TemporalConv(c, c))
    assert count_params(full) == 27 * c * c and count_params(st) == 12 * c * c


def test_conv2plus1d_without_nonlinearity_is_a_rank_factorised_3d_conv():
    """S then T (no BN/ReLU) == a 3×3×3 conv whose kernel is Σ_m T[o,m,t] S[m,i,y,x] (naive loop conv)."""
    torch.manual_seed(0)
    block = Conv2Plus1d(3, 4, mid=5, stride=2, norm_layer=lambda c: nn.Identity(), act=nn.Identity)
    s = block.spatial.weight[:, :, 0]               # (M, Cin, 3, 3)
    t = block.temporal.weight[:, :, :, 0, 0]        # (Cout, M, 3)
    kernel = torch.einsum("omt,miyx->oityx", t, s)   # (Cout, Cin, 3, 3, 3)
    x = torch.randn(2, 3, 5, 7, 7)
    expected = naive_conv3d.conv3d(x, kernel, stride=(2, 2, 2), padding=(1, 1, 1))
    torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)


def test_r2plus1d_18_params_and_macs_both_conventions():
    """Per-conv M_i (paper) 33,370,839 / 41.496 GMACs; torchvision per-block 31,505,325 / 40.519."""
    x = meta_input(1, 3, 16, 112, 112)
    paper = meta(R2Plus1D)
    tv = meta(R2Plus1D, mid_rule="per_block")
    assert count_params(paper) == 33_370_839 == R2Plus1D.PUBLISHED["params_per_conv"].value
    assert count_params(tv) == 31_505_325 == R2Plus1D.PUBLISHED["params_per_block"].value
    assert count_params(paper) - count_params(tv) == 1_865_514
    assert round(count_macs(paper, x) / 1e9, 3) == 41.496
    assert round(count_macs(tv, x) / 1e9, 3) == 40.519


def test_r2plus1d_per_block_rule_reuses_conv1_width_in_conv2():
    model = meta(R2Plus1D, mid_rule="per_block")
    first = model.stages[1][0]
    assert (first.conv1.mid, first.conv2.mid) == (230, 230)
    assert meta(R2Plus1D).stages[1][0].conv2.mid == 288


def test_p3d_blocks_have_equal_params_and_differ_in_wiring():
    """With T zeroed and BN in eval mode, P3D-A's middle ignores its input; B and C still see it (through S)."""
    torch.manual_seed(0)
    mids = {k: P3DMiddle(8, k) for k in "ABC"}
    assert len({count_params(m) for m in mids.values()}) == 1
    x1, x2 = torch.randn(2, 8, 4, 6, 6), torch.randn(2, 8, 4, 6, 6)
    for kind, m in mids.items():
        m.eval()
        nn.init.zeros_(m.t[0].weight)
        with torch.no_grad():
            same = torch.allclose(m(x1), m(x2))
        assert same == (kind == "A"), kind


def test_p3d_b_and_c_equations():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 4, 6, 6)
    b, c = P3DMiddle(8, "B").eval(), P3DMiddle(8, "C").eval()
    with torch.no_grad():
        torch.testing.assert_close(b(x), b.s(x) + b.t(x))
        torch.testing.assert_close(c(x), c.s(x) + c.t(c.s(x)))


def test_p3d_199_layout():
    """A->B->C cycles over the 47 blocks of res2-res4, res5 is 2D: 152 + 47 = 199 weight layers; T 16 -> 1."""
    model = meta(P3D)
    assert model.kinds[:47] == list("ABC" * 16)[:47] and model.kinds[47:] == ["2D"] * 3
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv3d, nn.Linear)) and "downsample" not in n]
    assert len(layers) == 199
    stage_out = []
    for stage in model.stages:
        stage.register_forward_hook(lambda m, i, o: stage_out.append(tuple(o.shape)))
    model(meta_input(1, 3, 16, 160, 160))
    assert [s[2] for s in stage_out] == [4, 2, 1, 1] and stage_out[-1] == (1, 2048, 1, 5, 5)


# ------------------------------------------------------------------------------- non-local

@pytest.mark.parametrize("c", [256, 512, 1024])
def test_nonlocal_block_params(c):
    """2C² + 4.5C: θ, φ, g, W_z with biases plus the BN affine."""
    with torch.device("meta"):
        block = NonLocalBlock(c)
    assert count_params(block) == 2 * c * c + 9 * c // 2
    assert c != 1024 or count_params(block) == 2_101_760 == NonLocalNet.PUBLISHED["block_params_1024"].value


def test_nonlocal_resnet50_five_blocks():
    """ResNet-50 C2D (400 classes) = 24,327,632; five blocks in res3/res4 add 7,358,464."""
    base = meta(NonLocalNet, nonlocal_after=())
    full = meta(NonLocalNet)
    assert count_params(base) == 24_327_632
    assert count_params(full) - count_params(base) == 7_358_464 == NonLocalNet.PUBLISHED["resnet50_5_blocks"].value


def test_nonlocal_block_is_identity_at_init():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 3, 6, 6)
    block = NonLocalBlock(8)
    assert torch.equal(block(x), x)


def test_nonlocal_affinity_rows_sum_to_one_with_a_quarter_of_the_keys():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 3, 6, 6)
    a, _ = NonLocalBlock(8).affinity(x)
    assert a.shape == (2, 3 * 36, 3 * 9)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 108))


def _randomise(block):
    for p in block.parameters():
        nn.init.normal_(p, std=0.3)
    block.bn.running_mean.normal_()
    block.bn.running_var.uniform_(0.5, 2.0)
    return block.eval()


@pytest.mark.parametrize("subsample", [True, False])
def test_nonlocal_block_matches_naive_reference(subsample):
    torch.manual_seed(0)
    block = _randomise(NonLocalBlock(6, subsample=subsample))
    x = torch.randn(2, 6, 2, 4, 4)
    bn = block.bn
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        expected = naive_nonlocal.nonlocal_block(
            x, block.theta.weight.flatten(1), block.theta.bias, block.phi.weight.flatten(1), block.phi.bias,
            block.g.weight.flatten(1), block.g.bias, block.w.weight.flatten(1), block.w.bias,
            scale, bn.bias - bn.running_mean * scale, subsample=subsample, scale=True)
        torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)


def test_nonlocal_is_permutation_equivariant_without_subsampling():
    torch.manual_seed(0)
    block = _randomise(NonLocalBlock(6, subsample=False))
    x = torch.randn(1, 6, 2, 3, 3)
    perm = torch.randperm(18)
    shuffle = lambda v: v.flatten(2)[:, :, perm].reshape(v.shape)  # noqa: E731
    with torch.no_grad():
        torch.testing.assert_close(block(shuffle(x)), shuffle(block(x)))


def test_nonlocal_port_variants_change_the_output_and_folded_input_works():
    torch.manual_seed(0)
    official = _randomise(NonLocalBlock(6))
    x = torch.randn(2, 6, 2, 4, 4)
    with torch.no_grad():
        ref = official(x)
        for kwargs in ({"scale": False}, {"pool_after_proj": True}):
            variant = NonLocalBlock(6, **kwargs).eval()
            variant.load_state_dict(official.state_dict())
            assert not torch.allclose(variant(x), ref)
        folded = x.transpose(1, 2).reshape(4, 6, 4, 4)              # (B*T, C, H, W)
        torch.testing.assert_close(official(folded, frames=2), ref.transpose(1, 2).reshape(4, 6, 4, 4))
    with pytest.raises(ValueError, match="frames=T"):
        official(folded)


# -------------------------------------------------------------------- Karpathy et al. 2014

def test_early_fusion_conv1_spans_10_frames_and_equals_a_stacked_conv2d():
    assert tuple(meta(EarlyFusion).tower.units[0].conv.weight.shape) == (96, 3, 10, 11, 11)
    torch.manual_seed(0)
    model = EarlyFusion()
    conv = model.tower.units[0].conv                       # Conv3d(3, 32, (8, 5, 5))
    stacked = nn.Conv2d(3 * 8, 32, 5, padding=2)
    with torch.no_grad():
        stacked.weight.copy_(conv.weight.reshape(32, 3 * 8, 5, 5))   # channel c*T + t
        stacked.bias.copy_(conv.bias)
        x = torch.randn(2, 3, 8, 32, 32)
        torch.testing.assert_close(conv(x).squeeze(2), stacked(x.reshape(2, 24, 32, 32)), rtol=1e-4, atol=1e-5)


def test_slow_fusion_time_axis_is_4_2_1_and_needs_10_frames():
    model = meta(SlowFusion)
    shapes = output_shapes(model, meta_input(1, 3, 10, 170, 170), nn.Conv3d)
    assert [s[2] for s in shapes[:3]] == [4, 2, 1]
    assert model.tower_out == (256, 1, 7, 7)
    with pytest.raises(ValueError, match="T"):
        SlowFusion()(torch.zeros(1, 3, 6, 32, 32))


def test_late_fusion_shares_one_tower_frames_15_apart():
    """Late = single-frame + one extra 12,544×4096 FC6 block; the two towers are one module."""
    late, single = meta(LateFusion), meta(FrameCNN)
    assert late.frame_indices == (0, 15)
    assert count_params(late) - count_params(single) == 12_544 * 4096


def test_karpathy_reconstructed_sizes():
    """The reconstructed paper sizes (487 classes, no LRN params): 73.9 / 74.2 / 125.3 / 75.5 M params and
    1.27 / 2.29 / 2.53 / 4.59 GMACs per clip for single / early / late / slow (an independent count)."""
    cases = [(meta(FrameCNN), 1, 73.9, 1.27), (meta(EarlyFusion), 10, 74.2, 2.29),
             (meta(LateFusion), 16, 125.3, 2.53), (meta(SlowFusion), 10, 75.5, 4.59)]
    for model, t, params, gmacs in cases:
        assert round(count_params(model) / 1e6, 1) == params
        assert round(count_macs(model, meta_input(1, 3, t, 170, 170)) / 1e9, 2) == gmacs


def test_late_fusion_with_average_pooling_ignores_frame_order():
    torch.manual_seed(0)
    model = LateFusion(pool="avg", frame_indices=None).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    shuffled = x[:, :, torch.randperm(8)]
    with torch.no_grad():
        torch.testing.assert_close(model(shuffled), model(x), rtol=1e-5, atol=1e-6)
        concat = LateFusion(frame_indices=None).eval()
        assert not torch.allclose(concat(x), concat(x.flip(2)))


def test_late_fusion_with_one_frame_is_the_single_frame_model():
    torch.manual_seed(0)
    late = LateFusion(pool="avg", frame_indices=None, frames=1).eval()
    single = FrameCNN(backbone="karpathy", average="logits").eval()
    state = {k.replace("tower.", "backbone.tower.", 1).replace("fc.", "backbone.fc.", 1)
             if not k.startswith("head") else k: v for k, v in late.state_dict().items()}
    single.load_state_dict(state)
    x = torch.randn(3, 3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(single(x), late(x))


# ------------------------------------------------------------------------- frame CNN, LRCN

def test_frame_cnn_averages_probabilities_of_independent_frames():
    """log p(k|clip) = log mean_t softmax(z_t), with z_t from running each frame alone (a loop)."""
    torch.manual_seed(0)
    model = FrameCNN().eval()
    x = torch.randn(2, 3, 5, 32, 32)
    with torch.no_grad():
        probs = torch.stack([torch.softmax(model.head(model.forward_features(x[:, :, t:t + 1])[:, 0]), -1)
                             for t in range(5)]).mean(0)
        torch.testing.assert_close(model(x), probs.log(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model(x[:, :, torch.randperm(5)]), model(x), rtol=1e-5, atol=1e-5)


def test_frame_cnn_paper_preset_is_karpathy_single_frame():
    model = meta(FrameCNN)
    assert model.backbone.tower.out_shape(1, 170) == (1, 7, 7) and model.num_classes == 487


def test_lrcn_matches_naive_lstm_and_is_causal():
    torch.manual_seed(0)
    model = LRCN().eval()
    x = torch.randn(2, 3, 6, 32, 32)
    with torch.no_grad():
        feats = model.encoder(x.transpose(1, 2).reshape(12, 3, 32, 32)).reshape(2, 6, -1)
        lstm = model.lstm
        h = naive_lstm.lstm(feats, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
        torch.testing.assert_close(model.forward_features(x), h, rtol=1e-4, atol=1e-5)
        changed = x.clone()
        changed[:, :, 4:] = torch.randn(2, 3, 2, 32, 32)
        steps, steps2 = model.step_logits(x), model.step_logits(changed)
        torch.testing.assert_close(steps[:, :4], steps2[:, :4])      # step t sees frames 1..t only
        assert not torch.allclose(model(x), model(x.flip(2)))        # frame order matters


def test_registered_names_build_the_classes():
    assert isinstance(build_model("p3d_b"), P3D) and build_model("p3d_b").kinds[1] == "B"
    assert build_model("r2plus1d_tv").mid_rule == "per_block"
    assert isinstance(build_model("c3d", num_classes=5), C3D)
