"""ToyKitchens: API, determinism, splits, leakage guards, exact time reversal, EPIC export.

The lessons measured with probes and the label-level baselines are in
tests/test_toykitchens_lessons.py. Thresholds are stated next to each assertion.
"""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from lecturekit.data import ToyKitchens
from lecturekit.data.toykitchens import render as tk_render
from lecturekit.data.toykitchens import symmetric_indices

SMALL = dict(num_kitchens=4, unseen_kitchens=1, videos_per_kitchen=1, heldout_videos=1, unseen_videos=1,
             recipes_per_video=(1, 2))


@pytest.fixture(scope="module")
def tk(tmp_path_factory):
    # the default notebook world; rendered once per test session (shared .npz cache)
    return ToyKitchens(seed=0, cache_dir=tmp_path_factory.getbasetemp() / "toykitchens-default")


@pytest.fixture(scope="module")
def small():
    return ToyKitchens(seed=3, **SMALL)


def _digest(world: ToyKitchens) -> str:
    h = hashlib.sha256()
    for v in range(len(world.video_ids)):
        h.update(world.long_video(v).tobytes())
    video, labels = world.clips("train", frames=4).tensors()
    h.update(video.numpy().tobytes())
    for k in sorted(labels):
        h.update(labels[k].numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# vocabulary and API


def test_vocabulary_and_tables(tk):
    assert len(tk.verbs) == 11 and len(tk.nouns) == 12
    assert 40 <= len(tk.actions) <= 60  # the brief's ~40-60 valid (verb, noun) actions
    assert tk.actions_table.shape == (len(tk.actions), 2)
    for a, (v, n) in enumerate(tk.actions_table):
        assert tk.actions[a] == f"{tk.verbs[v]} {tk.nouns[n]}"
    assert len({tuple(p) for p in tk.actions_table}) == len(tk.actions)
    # every verb applies to at least 3 nouns (no verb identifiable from its object alone)
    assert min(np.bincount(tk.actions_table[:, 0])) >= 3
    assert set(tk.reversal_pairs) == {("take", "put"), ("open", "close"), ("turn-cw", "turn-ccw")}
    assert len(tk.recipes) == 8 and all(4 <= len(r.steps) <= 8 for r in tk.recipes)
    assert any(s.optional for r in tk.recipes for s in r.steps)
    assert any(len(s.alternatives) > 1 for r in tk.recipes for s in r.steps)
    freq = [r.frequency for r in tk.recipes]
    assert freq == sorted(freq, reverse=True) and freq[0] > 4 * freq[-1]  # Zipf-like
    assert tk.num_classes == {"verb": 11, "noun": 12, "action": len(tk.actions)}
    # noun sprites: some share a colour, some a shape (both cues needed)
    from lecturekit.data.toykitchens.world import NOUNS

    shapes = [s for _, s, _ in NOUNS]
    colours = [c for _, _, c in NOUNS]
    assert len(set(shapes)) < len(NOUNS) and len(set(colours)) < len(NOUNS)
    assert len(set(zip(shapes, colours))) == len(NOUNS)


def test_views_shapes_and_labels(tk):
    ds = tk.clips("train", frames=8)
    video, labels = ds[0]
    assert video.dtype == torch.uint8 and tuple(video.shape) == (3, 8, 32, 32)
    for k in ("verb", "noun", "action", "kitchen", "video", "start", "stop", "recipe"):
        assert isinstance(labels[k], int), k
    assert tk.actions_table[labels["action"]].tolist() == [labels["verb"], labels["noun"]]
    v_all, lab_all = ds.tensors()
    assert tuple(v_all.shape) == (len(ds), 3, 8, 32, 32) and v_all.dtype == torch.uint8
    assert torch.equal(v_all[0], video) and all(t.dtype == torch.long for t in lab_all.values())
    assert torch.equal(v_all[5], ds[5][0])
    # verbs= restricts the view and keeps global ids
    pair = tk.clips("train", verbs=["take", "put"])
    assert set(pair.labels["verb"].tolist()) == {0, 1} and 0 < len(pair) < len(ds)
    with pytest.raises(ValueError, match="unknown verb"):
        tk.clips("train", verbs=["jump"])
    with pytest.raises(ValueError, match="split"):
        tk.clips("dev")
    early = tk.early("val", 0.3, frames=4)
    assert tuple(early[0][0].shape) == (3, 4, 32, 32)
    n = early.labels["stop"] - early.labels["start"] + 1
    last = early.frame_index.max(1)
    assert np.all(last == early.labels["start"] + np.ceil(0.3 * n - 1e-9).astype(int) - 1)
    with pytest.raises(ValueError, match="fraction"):
        tk.early("val", 0.0)
    ant = tk.anticipation("test", frames=6, history=10)
    v, lab = ant[3]
    assert tuple(v.shape) == (3, 6, 32, 32) and tuple(lab["history"].shape) == (10,)
    # history = the earlier actions of the same video, most recent last, -1 padded on the left
    seg = tk.segments("test")
    for i in (0, 1, 7, len(ant) - 1):
        p, vid = int(ant.labels["position"][i]), int(ant.labels["video"][i])
        past = tk.scripts[vid].action[max(0, p - 10) : p]
        h = ant.labels["history"][i]
        assert np.array_equal(h[10 - len(past) :], past) and np.all(h[: 10 - len(past)] == -1)
        assert ant.labels["action"][i] == seg["action"][i] == tk.scripts[vid].action[p]


def test_clip_sampling_is_mirror_symmetric():
    lo = np.arange(0, 50)
    for frames in (4, 7, 8, 16):
        hi = lo + np.arange(50) % 17
        idx = symmetric_indices(lo, hi, frames)
        assert np.all(idx >= lo[:, None]) and np.all(idx <= hi[:, None])
        assert np.all(np.diff(idx, axis=1) >= 0)
        if frames % 2 == 0:  # exact mirror: reversed segment -> reversed indices
            assert np.array_equal(idx - lo[:, None], (hi - lo)[:, None] - (idx - lo[:, None])[:, ::-1])


def test_64px_renders_the_same_scene():
    a = ToyKitchens(seed=1, **SMALL)
    b = ToyKitchens(seed=1, size=64, **SMALL)
    va, vb = a.long_video(0), b.long_video(0)
    assert va.shape[0] == vb.shape[0] and vb.shape[1:] == (64, 64, 3)
    down = vb.reshape(-1, 32, 2, 32, 2, 3).astype(np.float64).mean((2, 4))
    # same scene at twice the resolution: 2x2-averaged 64px frames within 12 grey levels on average
    assert np.abs(down - va).mean() < 12.0
    with pytest.raises(ValueError, match="size"):
        ToyKitchens(size=48)


def test_repr_png_storyboards(tk):
    pytest.importorskip("matplotlib")
    ds = tk.clips("val", frames=4)
    for png in (ds[0]._repr_png_(), ds._repr_png_()):
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and 1000 < len(png) < 400_000
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch[0].shape == (2, 3, 4, 32, 32) and batch[1]["verb"].shape == (2,)


# ---------------------------------------------------------------------------------------------
# determinism


# sha256 of every long video and the 4-frame train clips of ToyKitchens(seed=3, **SMALL);
# generated once; any change of the generator must bump GENERATOR_VERSION and this pin.
PINNED = "76a6d4f53cae064933c57539be4d61679fd2d053ac7c109671516e78a17f2190"


def test_deterministic_bytes_same_process_and_pinned(small):
    again = ToyKitchens(seed=3, **SMALL)
    assert _digest(small) == _digest(again)
    other = ToyKitchens(seed=4, **SMALL)
    assert not np.array_equal(other.long_video(0)[:20], small.long_video(0)[:20])
    assert _digest(small) == PINNED


def test_bytes_do_not_depend_on_vectorisation_chunks(small):
    s = small.scripts[0]
    k = small.kitchens[s.kitchen]
    assert np.array_equal(tk_render.render(s, k, 32, chunk=5), small.long_video(0))


def test_deterministic_across_processes(small):
    code = (
        "import hashlib, sys; sys.path.insert(0, 'tests');"
        "from test_toykitchens import _digest, SMALL; from lecturekit.data import ToyKitchens;"
        "print(_digest(ToyKitchens(seed=3, **SMALL)))"
    )
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                         env={"OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "123", "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == _digest(small)


def test_disk_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTUREKIT_CACHE", str(tmp_path))
    a = ToyKitchens(seed=5, disk_cache=True, **SMALL)
    v0 = a.long_video(1)
    files = list(tmp_path.glob("toykitchens-*.npz"))
    assert len(files) == 1 and a.cache_key() in files[0].name
    b = ToyKitchens(seed=5, disk_cache=True, **SMALL)
    b.render_video = None  # a cache hit must not render
    assert np.array_equal(b.long_video(1), v0)


# ---------------------------------------------------------------------------------------------
# splits


def test_splits_mirror_ek100(tk):
    train = set(tk.split_kitchens("train"))
    val = set(tk.split_kitchens("val"))
    test = set(tk.split_kitchens("test"))
    assert train == set(range(8))
    assert val == set(range(10)) and test == set(range(8)) | {10, 11}
    assert not train & set(tk.unseen_kitchens) and set(tk.unseen_kitchens) == {8, 9, 10, 11}
    # videos are split, never segments: no video id in two splits
    ids = {sp: {vid for vid, s in zip(tk.video_ids, tk.video_split) if s == sp} for sp in ("train", "val", "test")}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    seg = tk.segments("test")
    assert set(seg["kitchen"][seg["unseen"] == 1].tolist()) == {10, 11}
    assert not set(tk.segments("train")["kitchen"].tolist()) & {8, 9, 10, 11}
    assert all(tk.video_ids[v].startswith(f"P{k:02d}_") for v, k in zip(seg["video"], seg["kitchen"]))


def test_tail_classes_as_ek100(tk):
    counts = np.bincount(tk.segments("train")["action"], minlength=len(tk.actions))
    tail = tk.tail_classes("action")
    present = np.nonzero(counts)[0]
    # an independent recomputation of the EK-100 rule: the head is the shortest run of the most
    # frequent classes (ties by id) holding >= 80 % of the training instances; the rest is tail
    order = sorted(present, key=lambda c: (-counts[c], c))
    cum = np.cumsum([counts[c] for c in order])
    n_head = int(np.searchsorted(cum, 0.8 * counts.sum())) + 1
    expect = sorted(int(c) for c in order[n_head:])
    assert tail == expect
    head = np.array(order[:n_head])
    assert len(tail) >= 0.4 * len(present)  # a long tail: many classes, few instances (EK-100: most)
    assert counts[tail].sum() <= 0.2 * counts.sum() < counts[tail].sum() + counts[head].min()
    assert len(tk.tail_classes("verb")) >= 2 and len(tk.tail_classes("noun")) >= 2


# ---------------------------------------------------------------------------------------------
# leakage


@pytest.mark.parametrize("tau_a,tau_o,frames", [(1.0, 2.0, 8), (0.5, 3.7, 5), (2.0, 1.0, 3)])
def test_no_frame_at_or_after_the_anticipation_cut(tk, tau_a, tau_o, frames, monkeypatch):
    """Every frame of every video is stamped with its own index (a marker in each pixel); no
    anticipation sample may contain a frame at or after its cut start - tau_a * fps."""
    stamped = {}

    def long_video(v):
        if v not in stamped:
            T = tk.scripts[v].num_frames
            arr = np.zeros((T, tk.size, tk.size, 3), np.uint8)
            arr[..., 0] = (np.arange(T) % 256)[:, None, None]
            arr[..., 1] = (np.arange(T) // 256 + 1)[:, None, None]  # never 0: black = no frame
            stamped[v] = arr
        return stamped[v]

    monkeypatch.setattr(tk, "long_video", long_video)
    for split in ("train", "val", "test"):
        ant = tk.anticipation(split, tau_a=tau_a, tau_o=tau_o, frames=frames)
        assert len(ant) == len(tk.segments(split)["start"])  # nothing dropped
        video, labels = ant.tensors()
        g = video[:, 1].long()
        seen = (g - 1) * 256 + video[:, 0].long()  # (N, T, H, W) decoded frame index
        black = g == 0
        cut = labels["start"].double() - tau_a * tk.fps  # frames >= cut carry the marker
        ok = (seen.double() < cut[:, None, None, None]) | black
        assert bool(ok.all()), "a frame at/after the anticipation cut reached a sample"
        # black frames only when nothing precedes the cut; flagged, never dropped
        unobs = labels["unobserved"].bool()
        assert torch.equal(black.flatten(1).all(1), unobs)
        assert bool((labels["too_early"][unobs] == 1).all())
        # the window is the stated one: the last frame is within one frame of the cut, the first
        # no earlier than the window start (unless padded with frame 0, flagged too_early)
        obs = ~unobs
        last = seen[obs, -1, 0, 0].double()
        assert bool((last >= cut[obs] - 1.0001).all())
        first = seen[obs, 0, 0, 0].double()
        lo = labels["start"][obs].double() - (tau_a + tau_o) * tk.fps
        pad = labels["too_early"][obs].bool()
        assert bool((first[~pad] >= lo[~pad] - 1.0001).all()) and bool((first[pad] == 0).all())
    # with the default lead-in, the first action of a video is too early but still observable
    ant = tk.anticipation("train")
    assert ant.labels["too_early"].sum() >= len(tk.action_sequences("train")) * 0.5


def test_recipe_never_reaches_the_pixels(tk):
    """Re-render a video after permuting its recipe labels: the frames must not change."""
    s = copy.deepcopy(tk.scripts[2])
    s.recipe = (s.recipe + 3) % len(tk.recipes)
    kitchen = tk.kitchens[s.kitchen]
    assert np.array_equal(tk_render.render(s, kitchen, 32), tk.long_video(2))
    # the control: changing one action does change the frames (the test can fail)
    s.noun = s.noun.copy()
    s.noun[0] = (s.noun[0] + 1) % len(tk.nouns)
    assert not np.array_equal(tk_render.render(s, kitchen, 32), tk.long_video(2))
    # model inputs of the views: video tensors and, for label-level models, action-id histories
    ant = tk.anticipation("train")
    h = ant.labels["history"]
    assert h.max() < len(tk.actions) and h.min() >= -1


def test_nuisances_do_not_depend_on_labels(tk):
    """Durations and positions come from a stream independent of the labels (pitfall 2): the
    mean of each nuisance per verb stays within 4 standard errors of its overall mean (a
    verb-dependent nuisance, e.g. durations 1 frame longer for one verb, fails this)."""
    seg = tk._segments
    verbs = seg["verb"]
    nuisances = {
        "duration": (seg["stop"] - seg["start"] + 1).astype(float),
        "x": np.concatenate([s.nuisance["pos"][:, 0] for s in tk.scripts]),
        "y": np.concatenate([s.nuisance["pos"][:, 1] for s in tk.scripts]),
        "scale": np.concatenate([s.nuisance["scale"] for s in tk.scripts]),
        "gap before": np.concatenate([np.diff(np.r_[-1, s.start]) for s in tk.scripts]).astype(float),
    }
    for name, x in nuisances.items():
        mu, sd = x.mean(), x.std()
        for v in range(len(tk.verbs)):
            sel = verbs == v
            z = (x[sel].mean() - mu) / (sd / np.sqrt(sel.sum()))
            assert abs(z) < 4.0, (name, tk.verbs[v], z)


# ---------------------------------------------------------------------------------------------
# exact time reversal and shared prefixes


def _variant(tk, v, i, verb, reverse_jitter=False):
    s = copy.deepcopy(tk.scripts[v])
    s.verb = s.verb.copy()
    s.verb[i] = tk.verbs.index(verb)
    a, b = int(s.start[i]), int(s.stop[i])
    if reverse_jitter:
        s.jitter = s.jitter.copy()
        s.jitter[a : b + 1] = s.jitter[a : b + 1][::-1]
    return tk_render.render(s, tk.kitchens[s.kitchen], tk.size)[a : b + 1]


@pytest.mark.parametrize("pair", [("take", "put"), ("open", "close"), ("turn-cw", "turn-ccw")])
def test_reversal_pairs_are_the_same_frames_reversed(tk, pair):
    fwd, back = pair
    seg = tk.segments("train")
    rows = np.nonzero(seg["verb"] == tk.verbs.index(fwd))[0][:3]
    assert len(rows) == 3
    for r in rows:
        v, i = int(seg["video"][r]), int(seg["position"][r])
        a = _variant(tk, v, i, fwd)
        b = _variant(tk, v, i, back, reverse_jitter=True)
        assert np.array_equal(a, b[::-1]), pair  # byte-identical, reversed
        assert not np.array_equal(a, b)  # and the motion is visible


def test_shake_and_pour_share_the_take_prefix(tk):
    seg = tk.segments("train")
    rows = [r for r in np.nonzero(seg["verb"] == 0)[0] if tk.nouns[seg["noun"][r]] in ("bottle", "jar", "pan")]
    assert len(rows) >= 2
    for r in rows[:2]:
        v, i = int(seg["video"][r]), int(seg["position"][r])
        s = tk.scripts[v]
        L = int(s.stop[i] - s.start[i])
        pa = s.nuisance["approach"][i]
        prefix = int(np.floor(pa * L)) + 1  # frames with phase <= approach share
        take = _variant(tk, v, i, "take")
        for other in ("shake", "pour"):
            o = _variant(tk, v, i, other)
            assert np.array_equal(take[:prefix], o[:prefix])
            assert not np.array_equal(take, o)
        assert prefix >= 0.4 * (L + 1)  # at least 40 % of the action is ambiguous


# ---------------------------------------------------------------------------------------------
# EPIC export


def test_write_epic_round_trip(tmp_path):
    from lecturekit.data.epic import EPIC_COLUMNS, EpicKitchens, read_csv

    world = ToyKitchens(seed=2, **{**SMALL, "num_kitchens": 3, "recipes_per_video": (1, 1)})
    rows = world.annotations("train")
    assert rows and all(list(r) == list(EPIC_COLUMNS) for r in rows)
    assert rows[0]["participant_id"] == "P00" and rows[0]["video_id"] == "P00_01"
    world.write_epic(tmp_path, image_format="png")
    csv_rows = read_csv(tmp_path / "EPIC_100_train.csv", EPIC_COLUMNS)
    assert len(csv_rows) == len(rows)
    ds = EpicKitchens(tmp_path, "train", mode="recognition", frames=4)
    assert len(ds) == len(rows)
    mine = world.segments("train")
    for i in (0, len(ds) - 1):
        video, lab = ds[i]
        assert (lab["verb"], lab["noun"]) == (int(mine["verb"][i]), int(mine["noun"][i]))
        assert lab["start_frame"] == mine["start"][i] + 1  # EPIC frames are 1-based
        idx = (lab["frames"] - 1).numpy()
        direct = world.long_video(int(mine["video"][i]))[idx]  # PNG: lossless
        assert np.array_equal(video.permute(1, 2, 3, 0).numpy(), direct)
    # anticipation windows agree between the EPIC reader and the ToyKitchens view
    ep = EpicKitchens(tmp_path, "train", mode="anticipation", frames=4)
    ant = world.anticipation("train", frames=4)
    assert np.array_equal(np.stack([ep.frame_indices(i).numpy() for i in range(len(ep))]) - 1,
                          ant.frame_index)


# ---------------------------------------------------------------------------------------------
# the grammar's true next-action probabilities


def test_transition_matrix_is_exact_against_sampled_bigrams():
    """Row b of ``transition_matrix`` = P(next | previous b), computed without sampling; it agrees
    with the bigram frequencies of 20,000 videos drawn by the generator (total variation < 0.06
    on every row seen >= 2,000 times; sampling noise there is <= ~0.03)."""
    from lecturekit.data.toykitchens.world import sample_actions

    world = ToyKitchens(seed=1, num_kitchens=5, unseen_kitchens=1, videos_per_kitchen=4)
    P = world.transition_matrix("train")
    A = len(world.actions)
    assert P.shape == (A, A) and (P >= 0).all()
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-9)
    prior = np.bincount([k for k, s in zip(world.video_kitchen, world.video_split) if s == "train"],
                        minlength=len(world.kitchens)).astype(float)
    rng = np.random.default_rng(7)
    counts = np.zeros((A, A))
    kitchens = rng.choice(len(prior), size=20000, p=prior / prior.sum())
    for k in kitchens:
        seq = sample_actions(world.grammar, int(k), rng)[0]
        np.add.at(counts, (seq[:-1], seq[1:]), 1)
    rows = counts.sum(1) >= 2000
    assert rows.sum() >= 10
    tv = 0.5 * np.abs(counts[rows] / counts[rows].sum(1, keepdims=True) - P[rows]).sum(1)
    assert tv.max() < 0.06, tv.max()
    # the recipes' fixed steps dominate: "take cup" is most often followed by a step of tea/coffee/washing-up
    assert P[world.actions.index("take cup")].argmax() in {world.actions.index(a) for a in
                                                           ("turn-ccw lid", "open jar", "wash cup")}


def test_transition_matrix_rejects_bad_priors():
    world = ToyKitchens(seed=1, num_kitchens=5, unseen_kitchens=1, videos_per_kitchen=4)
    with pytest.raises(ValueError, match="kitchen_prior"):
        world.grammar.transition_matrix(np.zeros(len(world.kitchens)))
    with pytest.raises(ValueError, match="kitchen_prior"):
        world.grammar.transition_matrix(np.ones(3))
    with pytest.raises(ValueError, match="split"):
        world.transition_matrix("nope")
