"""Samplers (uniform, TSN, dense) and video transforms (dtype boundary, normalisation, resize,
crops, flips with label maps)."""

from __future__ import annotations

import pytest
import torch

from lecturekit.data import (
    Compose,
    DenseSampler,
    LabelMap,
    RandomHorizontalFlip,
    TSNSampler,
    center_crop,
    dense_indices,
    denormalize,
    hflip,
    normalize,
    random_crop,
    random_hflip,
    resize,
    reverse_time,
    to_float,
    to_uint8,
    tsn_indices,
    uniform_indices,
)

# --- samplers ----------------------------------------------------------------------------------


def _parts(start, stop, S):
    """Brute force: the frames of [start, stop] dealt into S consecutive, near-equal parts."""
    n = stop - start + 1
    return [[start + f for f in range(n) if f * S // n == k] for k in range(S)]


def test_tsn_test_mode_takes_part_centres():
    assert uniform_indices(0, 99, 4).tolist() == [12, 37, 62, 87]
    assert uniform_indices(1, 8, 8).tolist() == list(range(1, 9))  # T = n: every frame once
    for start, stop, S in [(1, 10, 3), (5, 5, 4), (0, 6, 7), (3, 40, 8), (10, 12, 5)]:
        idx = uniform_indices(start, stop, S)
        assert len(idx) == S and idx.min() >= start and idx.max() <= stop
        assert (idx.diff() >= 0).all()


def test_tsn_train_offsets_stay_in_their_part_and_cover_it():
    g = torch.Generator().manual_seed(0)
    start, stop, S = 3, 42, 8  # 40 frames, parts of 5
    parts = _parts(start, stop, S)
    seen = [set() for _ in range(S)]
    for _ in range(300):
        idx = tsn_indices(start, stop, S, train=True, generator=g)
        for k in range(S):
            assert idx[k].item() in parts[k]
            seen[k].add(idx[k].item())
    assert all(seen[k] == set(parts[k]) for k in range(S))  # every offset of every part occurs
    # vectorised over segments, each row in its own parts
    starts, stops = torch.tensor([1, 10, 7]), torch.tensor([16, 13, 30])
    rows = tsn_indices(starts, stops, 4, train=True, generator=g)
    assert rows.shape == (3, 4)
    for r, (a, b) in enumerate(zip(starts.tolist(), stops.tolist())):
        for k, p in enumerate(_parts(a, b, 4)):
            assert rows[r, k].item() in p


def test_samplers_are_reproducible_and_need_a_generator():
    a, b = TSNSampler(8, train=True, seed=5), TSNSampler(8, train=True, seed=5)
    assert all(torch.equal(a(0, 100), b(0, 100)) for _ in range(5))
    assert not torch.equal(TSNSampler(8, seed=6)(0, 100), TSNSampler(8, seed=5)(0, 100))
    with pytest.raises(ValueError, match="Generator"):
        tsn_indices(0, 10, 3, train=True)
    with pytest.raises(ValueError, match="stop must be >= start"):
        uniform_indices(5, 4, 2)


def test_dense_clips():
    assert dense_indices(0, 99, 4, 2).tolist() == [46, 48, 50, 52]  # centred span of 7
    assert dense_indices(0, 2, 4, 2).tolist() == [0, 2, 2, 2]  # too short: clamped at the end
    s = DenseSampler(4, stride=3, train=True, seed=0)
    firsts = set()
    for _ in range(200):
        idx = s(10, 29)
        assert (idx.diff() == 3).all() and idx.min() >= 10 and idx.max() <= 29
        firsts.add(idx[0].item())
    assert firsts == set(range(10, 21))  # every start whose span fits


# --- dtype boundary, normalisation ----------------------------------------------------------


def test_to_float_is_the_single_uint8_boundary():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).expand(3, 2, 16, 16)
    f = to_float(x)
    assert f.dtype == torch.float32 and f.min() == 0 and f.max() == 1
    assert torch.equal(to_uint8(f), x)
    with pytest.raises(ValueError, match="uint8"):
        to_float(f)  # never scaled twice
    assert to_float(x, torch.float64).dtype == torch.float64


def test_normalize_per_channel_both_layouts():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 4, 5, 6, generator=g)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    y = normalize(x, mean, std)
    for c in range(3):
        assert torch.allclose(y[:, c], (x[:, c] - mean[c]) / std[c])
    assert torch.allclose(normalize(x[0], mean, std), y[0])
    assert torch.allclose(denormalize(y, mean, std), x, atol=1e-6)
    with pytest.raises(ValueError, match="C=3"):
        normalize(x, (0.5,) * 4, (1.0,) * 4)
    with pytest.raises(ValueError, match="to_float"):
        normalize(torch.zeros(3, 2, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(C, T, H, W\)"):
        normalize(torch.zeros(3, 4, 4))


# --- geometry ------------------------------------------------------------------------------


def test_resize_shapes_and_dtypes():
    x = torch.randint(0, 256, (3, 4, 20, 40), dtype=torch.uint8)
    assert resize(x, 10).shape == (3, 4, 10, 20)  # shorter side, aspect kept
    assert resize(x, (8, 8)).dtype == torch.uint8
    const = torch.full((2, 3, 2, 8, 8), 77, dtype=torch.uint8)
    assert (resize(const, (5, 3)) == 77).all()  # a constant image stays constant
    xf = to_float(x)
    assert resize(xf, (10, 20)).dtype == torch.float32
    assert resize(xf.bfloat16(), (10, 20)).dtype == torch.bfloat16  # no bf16 antialias kernel: done in fp32
    # frames are resized independently: resizing a clip = resizing each frame
    per_frame = torch.stack([resize(xf[:, t : t + 1], (7, 9))[:, 0] for t in range(4)], dim=1)
    assert torch.allclose(resize(xf, (7, 9)), per_frame)


def test_center_and_random_crops():
    x = torch.arange(2 * 3 * 2 * 6 * 8).reshape(2, 3, 2, 6, 8)
    assert torch.equal(center_crop(x, (2, 4)), x[..., 2:4, 2:6])
    g = torch.Generator().manual_seed(1)
    y = random_crop(x, (3, 5), generator=g)
    assert y.shape == (2, 3, 2, 3, 5)
    offsets = set()
    for b in range(2):  # each clip is some window of its own frames, the same for all frames
        found = [(t, l) for t in range(4) for l in range(4) if torch.equal(x[b, ..., t : t + 3, l : l + 5], y[b])]
        assert len(found) == 1
        offsets.add(found[0])
    g = torch.Generator().manual_seed(1)
    many = random_crop(x.repeat(16, 1, 1, 1, 1), (3, 5), generator=g)
    firsts = {(int(c[0, 0, 0, 0]) % 48) for c in many}  # the first pixel codes the offset
    assert len(firsts) > 4  # offsets differ between clips of the batch
    with pytest.raises(ValueError, match="larger"):
        center_crop(x, 7)


def test_hflip_and_reverse_time_geometry():
    x = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5).float()  # (C, T, H, W)
    assert torch.equal(hflip(x)[..., 0], x[..., -1])
    assert torch.equal(reverse_time(x)[:, 0], x[:, -1])
    xb = x[None]
    assert torch.equal(reverse_time(xb)[:, :, 0], xb[:, :, -1])


# --- label maps -------------------------------------------------------------------------------

VERBS = ["take", "put", "turn-cw", "turn-ccw", "push-left", "wash"]


def mirror_map():
    # turn-cw <-> turn-ccw swap under a mirror; push-left has no partner in this vocabulary
    return LabelMap.from_names(VERBS, [("turn-cw", "turn-ccw")], sensitive=["push-left"])


def test_label_map_swaps_keeps_and_refuses():
    m = mirror_map()
    assert [m(c) for c in (0, 1, 2, 3, 5)] == [0, 1, 3, 2, 5]
    assert m(torch.tensor([2, 3, 0])).tolist() == [3, 2, 0]
    with pytest.raises(ValueError, match=r"4 \(push-left\)"):
        m(4)
    with pytest.raises(ValueError, match="push-left"):
        m(torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="own inverse"):
        LabelMap({2: 3, 3: 1})
    with pytest.raises(ValueError, match="paired with both"):
        LabelMap([(1, 2), (1, 3)])
    assert LabelMap()(7) == 7


def test_random_hflip_maps_labels_of_flipped_clips_only():
    g = torch.Generator().manual_seed(0)
    B = 64
    x = torch.rand(B, 3, 2, 4, 5, generator=g)
    labels = torch.tensor([0, 2, 3, 5] * (B // 4))
    y, new = random_hflip(x, labels, mirror_map(), p=0.5, generator=g)
    flipped = torch.tensor([torch.equal(y[b], x[b].flip(-1)) for b in range(B)])
    same = torch.tensor([torch.equal(y[b], x[b]) for b in range(B)])
    assert (flipped ^ same).all() and 10 < flipped.sum() < B - 10
    expect = torch.where(flipped, torch.tensor([mirror_map()(int(c)) for c in labels]), labels)
    assert torch.equal(new, expect)
    with pytest.raises(ValueError, match="label_map"):
        random_hflip(x, labels)  # labels without a map: refused, not silently kept
    with pytest.raises(ValueError, match="push-left"):
        random_hflip(x, torch.full((B,), 4), mirror_map(), p=1.0, generator=g)
    # a single clip with p = 1: flipped, label swapped
    v, lab = random_hflip(x[0], 2, mirror_map(), p=1.0, generator=g)
    assert torch.equal(v, x[0].flip(-1)) and lab == 3


def test_random_horizontal_flip_dataset_transform_and_compose():
    t = Compose(lambda v: v[:, :, :2], RandomHorizontalFlip({"verb": mirror_map()}, p=1.0, seed=0))
    v = torch.arange(3 * 2 * 4 * 4).reshape(3, 2, 4, 4)
    out, lab = t(v, {"verb": 2, "noun": 7})
    assert torch.equal(out, v[:, :, :2].flip(-1)) and lab == {"verb": 3, "noun": 7, "flipped": True}
    with pytest.raises(ValueError, match="push-left"):
        t(v, {"verb": 4})


class _Offsets(torch.utils.data.Dataset):
    def __init__(self):
        self.sampler = TSNSampler(4, train=True, seed=0)

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.sampler(0, 399)


def test_random_samplers_differ_between_dataloader_workers():
    """Workers copy the dataset; without re-seeding every worker would draw the same offsets."""
    dl = torch.utils.data.DataLoader(_Offsets(), batch_size=1, num_workers=2)
    rows = [b[0] for b in dl]  # worker 0 gives items 0, 2, ...; worker 1 items 1, 3, ...
    assert not torch.equal(rows[0], rows[1])
    again = [b[0] for b in torch.utils.data.DataLoader(_Offsets(), batch_size=1, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(rows, again))  # still reproducible
