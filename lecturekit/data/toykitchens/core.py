"""The ToyKitchens world object: splits, long videos, segment tables and the views."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..ek100 import HEAD_COVERAGE, class_counts, tail_classes
from . import render as _render
from . import world as _world
from .views import ToyView

SPLITS = ("train", "val", "test")
_SPLIT_ALIAS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
_EPIC_SPLIT = {"train": "train", "val": "validation", "test": "test"}
#: bump when the generator changes what it draws: invalidates on-disk caches
GENERATOR_VERSION = 3


def symmetric_indices(lo: np.ndarray, hi: np.ndarray, frames: int) -> np.ndarray:
    """``frames`` evenly spaced indices of each inclusive range ``[lo, hi]``, mirror-symmetric.

    The first half are TSN part centres ``lo + floor((2k+1) n / 2T)``; the second half mirrors
    them (``lo + hi - i``), so a reversed segment is sampled at exactly the reversed frames (the
    plain centre rule is off by one frame when ``(2k+1) n / 2T`` is an integer). Shape (N, T).
    """
    lo = np.asarray(lo, dtype=np.int64)[:, None]
    hi = np.asarray(hi, dtype=np.int64)[:, None]
    n = hi - lo + 1
    k = np.arange(frames, dtype=np.int64)[None, :]
    idx = lo + ((2 * k + 1) * n) // (2 * frames)
    half = frames // 2
    mirror = lo + hi - idx[:, ::-1]
    idx[:, frames - half :] = mirror[:, frames - half :]
    return idx


class ToyKitchens:
    """A procedural, deterministic stand-in for EPIC-KITCHENS-100 (see the subpackage docstring).

    Args:
        seed: everything (world, grammar draws, nuisances) follows from it; byte-identical
            frames for equal arguments on any machine.
        size: frame side, 32 (default) or 64 (same scene, twice the resolution).
        num_kitchens: K (>= 4). The last ``unseen_kitchens`` x 2 kitchens never appear in train:
            the first half of them in val, the second half in test (K=12: train kitchens 0..7,
            val adds 8..9, test adds 10..11).
        videos_per_kitchen: training videos per seen kitchen.
        heldout_videos: val videos and (as many) test videos per seen kitchen.
        unseen_videos: videos per unseen kitchen.
        num_recipes: R <= 8 recipe templates (``world.RECIPES``), Zipf(``zipf``) frequencies.
        recipes_per_video: (min, max) recipes per long video, uniform.
        filler_prob: chance of a random filler action at each recipe boundary.
        skip_prob: chance that an optional recipe step is skipped.
        favourite_boost: each kitchen multiplies the prior of its 2 favourite recipes by this.
        durations: (min, max) action length in frames; gaps: idle frames before an action.
        decoys: extra objects that may sit on the counter near each action (0..2).
        max_distractors: static background sprites per kitchen (0..3).
        camera_jitter: scales the per-kitchen camera jitter (0 = static camera).
        fps: nominal frame rate (8: tau_a = 1 s = 8 frames).
        cues: opt-in decor cues (0 = off, the default world; 1..8 = number of cue codes): before
            every action a "poster" of one of ``cues`` colours hangs on the wall during the
            frames ``cue_frames`` = (first, last) frames before its start (default (24, 17): the
            first half of a tau_o = 2 s window ending tau_a = 1 s before the action, at 8 fps).
            In a SEEN kitchen (train, and the held-out videos of kitchens 0..7) the colour is
            ``cue_map[action]`` (one balanced action -> colour map per world) with probability
            ``cue_strength`` and uniform otherwise; in an UNSEEN kitchen it is always uniform,
            independent of the action. A visual shortcut that holds in the training kitchens
            and breaks in unseen ones (the AGA paper's "explicit visual cues in past frames").
            Drawn from their own random stream: with ``cues=0`` nothing of the world changes.
        cue_strength: share of seen-kitchen actions whose cue follows the map (in [0, 1]).
        cue_frames: (first, last) frames before the action start during which the cue shows.
        extra_train_videos: opt-in larger training set (0 = off, the default world): this many
            MORE training videos per seen kitchen, named after the kitchen's held-out videos
            (``P00_07``, ``P00_08``, ... with the defaults), drawn from their own seeds and listed
            after all other videos, so every video of the world without them (val and test
            included) keeps its bytes and its index; only the training split grows, in the same
            kitchen proportions.
        long_range: opt-in recipe set (False = the default world): ``world.LONG_RANGE_RECIPES``
            instead of ``world.RECIPES``, pairs of recipes that share a middle step (a "hub"),
            after which the next step is decided by the action BEFORE the hub, not by the last
            one: a dependency only a model that looks further back than the last action can
            resolve. Everything else (kitchens, durations, rendering) is drawn as usual.
        disk_cache: also store rendered videos as an .npz under ``lecturekit.data.cache_dir()``
            keyed by a hash of these arguments (memory caching is always on).
        cache_dir: a folder for that .npz instead of the default (implies ``disk_cache``).
    """

    def __init__(
        self,
        seed: int = 0,
        size: int = 32,
        *,
        num_kitchens: int = 12,
        unseen_kitchens: int = 2,
        videos_per_kitchen: int = 4,
        heldout_videos: int = 1,
        unseen_videos: int = 2,
        num_recipes: int = 8,
        recipes_per_video: tuple[int, int] = (2, 4),
        filler_prob: float = 0.2,
        skip_prob: float = 0.35,
        zipf: float = 1.0,
        favourite_boost: float = 4.0,
        durations: tuple[int, int] = (6, 14),
        gaps: tuple[int, int] = (4, 16),
        decoys: int = 2,
        max_distractors: int = 3,
        camera_jitter: float = 1.0,
        fps: float = 8.0,
        cues: int = 0,
        cue_strength: float = 1.0,
        cue_frames: tuple[int, int] = (24, 17),
        extra_train_videos: int = 0,
        long_range: bool = False,
        disk_cache: bool = False,
        cache_dir: str | Path | None = None,
    ):
        if size not in (32, 64):
            raise ValueError(f"size must be 32 or 64, got {size}")
        if num_kitchens < 2 * unseen_kitchens + 1 or unseen_kitchens < 1:
            raise ValueError(
                f"need num_kitchens >= 2 * unseen_kitchens + 1 and unseen_kitchens >= 1, "
                f"got num_kitchens={num_kitchens}, unseen_kitchens={unseen_kitchens}"
            )
        if not (1 <= recipes_per_video[0] <= recipes_per_video[1]):
            raise ValueError(f"recipes_per_video must be (min, max) with 1 <= min <= max, got {recipes_per_video}")
        if durations[0] < 2 or durations[1] < durations[0]:
            raise ValueError(f"durations must be (min, max) with 2 <= min <= max frames, got {durations}")
        if gaps[0] < 1 or gaps[1] < gaps[0]:
            raise ValueError(f"gaps must be (min, max) with 1 <= min <= max frames, got {gaps}")
        if not 0 <= decoys <= 2 or not 0 <= max_distractors <= 3:
            raise ValueError(f"decoys must be in 0..2 and max_distractors in 0..3, got {decoys}, {max_distractors}")
        for name, p in (("filler_prob", filler_prob), ("skip_prob", skip_prob)):
            if not 0 <= p < 1:
                raise ValueError(f"{name} must lie in [0, 1), got {p}")
        self.params = dict(
            seed=int(seed), size=int(size), num_kitchens=int(num_kitchens), unseen_kitchens=int(unseen_kitchens),
            videos_per_kitchen=int(videos_per_kitchen), heldout_videos=int(heldout_videos),
            unseen_videos=int(unseen_videos), num_recipes=int(num_recipes),
            recipes_per_video=tuple(int(x) for x in recipes_per_video), filler_prob=float(filler_prob),
            skip_prob=float(skip_prob), zipf=float(zipf), favourite_boost=float(favourite_boost),
            durations=tuple(int(x) for x in durations), gaps=tuple(int(x) for x in gaps), decoys=int(decoys),
            max_distractors=int(max_distractors), camera_jitter=float(camera_jitter), fps=float(fps),
        )
        if extra_train_videos < 0:
            raise ValueError(f"extra_train_videos must be >= 0 (0 = off), got {extra_train_videos}")
        if extra_train_videos:
            # only a world with extra videos carries the key: the default world's cache key is unchanged
            self.params["extra_train_videos"] = int(extra_train_videos)
        if long_range:
            self.params["long_range"] = True      # only then: the default world's cache key is unchanged
        if not 0 <= cues <= len(_world.CUE_COLOURS):
            raise ValueError(f"cues must be in 0..{len(_world.CUE_COLOURS)} (0 = off), got {cues}")
        if cues:
            if not 0.0 <= cue_strength <= 1.0:
                raise ValueError(f"cue_strength must lie in [0, 1], got {cue_strength}")
            if not 1 <= cue_frames[1] <= cue_frames[0]:
                raise ValueError(f"cue_frames must be (first, last) frames before the start with first >= last >= 1, "
                                 f"got {cue_frames}")
            # only a world with cues carries these keys: the default world's cache key is unchanged
            self.params.update(cues=int(cues), cue_strength=float(cue_strength),
                               cue_frames=tuple(int(x) for x in cue_frames))
        self.seed, self.size, self.fps = int(seed), int(size), float(fps)
        self.disk_cache = bool(disk_cache) or cache_dir is not None
        self._cache_root = None if cache_dir is None else Path(cache_dir)

        # vocabulary ---------------------------------------------------------------------------
        self.verbs: list[str] = list(_world.VERBS)
        self.nouns: list[str] = [n for n, _, _ in _world.NOUNS]
        pairs = _world.action_vocabulary()
        self.actions_table = np.array(pairs, dtype=np.int64)  # (A, 2): action -> (verb, noun)
        self.actions: list[str] = [f"{self.verbs[v]} {self.nouns[n]}" for v, n in pairs]
        self._action_index = {name: i for i, name in enumerate(self.actions)}
        self.reversal_pairs: list[tuple[str, str]] = list(_world.REVERSAL_PAIRS)
        self.take_prefix_verbs: list[str] = list(_world.TAKE_PREFIX)

        # recipes, kitchens, grammar ----------------------------------------------------------------
        self.recipes = _world.parse_recipes(num_recipes, zipf, self._action_index,
                                            _world.LONG_RANGE_RECIPES if long_range else None)
        zipf_freq = np.array([r.frequency for r in self.recipes])
        krng = np.random.default_rng([self.seed, 0])
        self.kitchens, pref = _world.make_kitchens(
            num_kitchens, num_recipes, unseen_kitchens, unseen_kitchens, krng,
            max_distractors, camera_jitter, favourite_boost, zipf_freq,
        )
        self.recipe_preferences = pref  # (K, R)
        self.grammar = _world.Grammar(
            self.recipes, len(self.actions), pref, filler_prob, skip_prob, self.params["recipes_per_video"]
        )

        #: upcoming action -> cue code in seen kitchens (None without cues)
        self.cue_map = _world.cue_map(len(self.actions), cues, np.random.default_rng([self.seed, 4])) if cues else None

        # videos and scripts --------------------------------------------------------------------------
        self.video_ids: list[str] = []
        self.video_split: list[str] = []
        self.video_kitchen: list[int] = []
        for k in self.kitchens:
            if k.split == "seen":
                plan = (["train"] * videos_per_kitchen + ["val"] * heldout_videos + ["test"] * heldout_videos)
            else:
                plan = ["val" if k.split == "unseen-val" else "test"] * unseen_videos
            for j, sp in enumerate(plan):
                self.video_ids.append(f"{k.name}_{j + 1:02d}")
                self.video_split.append(sp)
                self.video_kitchen.append(k.id)
        for k in self.kitchens:                 # extra training videos: after all others, indices unchanged
            if k.split == "seen":
                first = videos_per_kitchen + 2 * heldout_videos
                for j in range(first, first + int(extra_train_videos)):
                    self.video_ids.append(f"{k.name}_{j + 1:02d}")
                    self.video_split.append("train")
                    self.video_kitchen.append(k.id)
        self.scripts = []
        for v, vid in enumerate(self.video_ids):
            k = self.video_kitchen[v]
            j = int(vid.split("_")[1])
            s = _world.make_script(
                self.grammar, self.kitchens[k],
                np.random.default_rng([self.seed, 1, k, j]), np.random.default_rng([self.seed, 2, k, j]),
                durations=self.params["durations"], gaps=self.params["gaps"], lead=(10, 20),
                decoys=decoys, num_nouns=len(self.nouns),
            )
            s.verb = self.actions_table[s.action, 0]
            s.noun = self.actions_table[s.action, 1]
            if cues:
                s.cue = _world.make_cues(s, self.kitchens[k].split == "seen", self.cue_map,
                                         np.random.default_rng([self.seed, 3, k, j]), strength=float(cue_strength),
                                         frames=self.params["cue_frames"])
            self.scripts.append(s)
        self._videos: dict[int, np.ndarray] = {}
        self._backgrounds: dict[int, np.ndarray] = {}

        # the segment table (all splits) ----------------------------------------------------------------
        cols = {c: [] for c in ("video", "kitchen", "start", "stop", "verb", "noun", "action", "recipe", "position")}
        for v, s in enumerate(self.scripts):
            n = len(s.action)
            cols["video"].append(np.full(n, v))
            cols["kitchen"].append(np.full(n, s.kitchen))
            cols["start"].append(s.start)
            cols["stop"].append(s.stop)
            cols["verb"].append(s.verb)
            cols["noun"].append(s.noun)
            cols["action"].append(s.action)
            cols["recipe"].append(s.recipe)
            cols["position"].append(np.arange(n))
            if s.cue is not None:
                cols.setdefault("cue", []).append(s.cue["code"])
                cols.setdefault("cue_follows", []).append(s.cue["follows"])
        self._segments = {c: np.concatenate(v).astype(np.int64) for c, v in cols.items()}
        split_of = np.array(self.video_split)
        self._segment_split = split_of[self._segments["video"]]
        train_kitchens = {k.id for k in self.kitchens if k.split == "seen"}
        self._segments["unseen"] = np.array([k not in train_kitchens for k in self._segments["kitchen"]], dtype=np.int64)

    # ---------------------------------------------------------------------------------------------
    # descriptions

    @property
    def num_classes(self) -> dict[str, int]:
        return {"verb": len(self.verbs), "noun": len(self.nouns), "action": len(self.actions)}

    @property
    def recipe_names(self) -> list[str]:
        return [r.name for r in self.recipes]

    def describe_recipes(self) -> str:
        """The recipe templates, one per line ([optional], a | b alternatives)."""
        return "\n".join(r.describe(self.actions) for r in self.recipes)

    def split_kitchens(self, split: str) -> list[int]:
        split = self._split(split)
        return sorted({k for k, s in zip(self.video_kitchen, self.video_split) if s == split})

    @property
    def unseen_kitchens(self) -> list[int]:
        """Kitchens without training videos."""
        return [k.id for k in self.kitchens if k.split != "seen"]

    def segments(self, split: str) -> dict[str, np.ndarray]:
        """The action segments of a split as arrays: video, kitchen, start, stop (0-based
        inclusive frames), verb, noun, action, recipe (analysis only), position (index of the
        action in its video), unseen (kitchen without training videos); with cues also cue (the
        code shown before the action) and cue_follows (1 where it came from ``cue_map``)."""
        sel = self._segment_split == self._split(split)
        return {k: v[sel].copy() for k, v in self._segments.items()}

    def tail_classes(self, kind: str = "action", coverage: float = HEAD_COVERAGE) -> list[int]:
        """EK-100 tail classes of ``kind`` from the training split (:func:`lecturekit.data.ek100.tail_classes`):
        the classes outside the head, the shortest run of most frequent classes that holds
        ``coverage`` of the training instances (classes absent from train are in neither)."""
        return tail_classes(class_counts(self.segments("train")[kind]), coverage)

    def __repr__(self) -> str:
        n = {sp: sum(s == sp for s in self.video_split) for sp in SPLITS}
        segs = {sp: int((self._segment_split == sp).sum()) for sp in SPLITS}
        return (
            f"ToyKitchens(seed={self.seed}, size={self.size}, kitchens={len(self.kitchens)}, verbs={len(self.verbs)}, "
            f"nouns={len(self.nouns)}, actions={len(self.actions)}, recipes={len(self.recipes)}, "
            f"videos={n}, segments={segs}, fps={self.fps:g})"
        )

    # ---------------------------------------------------------------------------------------------
    # long videos

    def _split(self, split: str) -> str:
        if split not in _SPLIT_ALIAS:
            raise ValueError(f"split must be one of 'train', 'val' (or 'validation'), 'test', got {split!r}")
        return _SPLIT_ALIAS[split]

    def cache_key(self) -> str:
        blob = json.dumps({"v": GENERATOR_VERSION, **self.params}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def _disk_path(self) -> Path:
        from ...env import cache_dir

        root = self._cache_root if self._cache_root is not None else cache_dir()
        return root / f"toykitchens-{self.cache_key()}.npz"

    def _background(self, k: int) -> np.ndarray:
        if k not in self._backgrounds:
            self._backgrounds[k] = _render.background(self.kitchens[k], self.size)
        return self._backgrounds[k]

    def render_video(self, v: int) -> np.ndarray:
        """Render long video ``v`` from its script (no caching): uint8 (T, H, W, 3)."""
        s = self.scripts[v]
        return _render.render(s, self.kitchens[s.kitchen], self.size, self._background(s.kitchen))

    def long_video(self, v: int | str) -> np.ndarray:
        """Long video by index or id (``"P03_02"``): uint8 (T, H, W, 3), cached in memory."""
        if isinstance(v, str):
            v = self.video_ids.index(v)
        if v not in self._videos:
            if self.disk_cache and self._load_disk():
                return self._videos[v]
            self._videos[v] = self.render_video(v)
            if self.disk_cache:
                self._save_disk()
        return self._videos[v]

    def _load_disk(self) -> bool:
        path = self._disk_path()
        if not path.is_file():
            return False
        with np.load(path) as z:
            for v, vid in enumerate(self.video_ids):
                self._videos[v] = z[vid]
        return True

    def _save_disk(self) -> None:
        for v in range(len(self.video_ids)):
            if v not in self._videos:
                self._videos[v] = self.render_video(v)
        path = self._disk_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **{vid: self._videos[v] for v, vid in enumerate(self.video_ids)})
        tmp.replace(path)

    def long_videos(self, split: str) -> dict[str, np.ndarray]:
        """``video_id -> uint8 (T, H, W, 3)`` of every long video of a split."""
        split = self._split(split)
        return {vid: self.long_video(v) for v, vid in enumerate(self.video_ids) if self.video_split[v] == split}

    def annotations(self, split: str) -> list[dict]:
        """The split's action segments as EPIC_100_train.csv rows (15 columns, 1-based frames)."""
        from ..epic import format_timestamp

        seg = self.segments(split)
        rows, running = [], {}
        for i in range(len(seg["start"])):
            vid = self.video_ids[int(seg["video"][i])]
            n = running.get(vid, 0)
            running[vid] = n + 1
            start, stop = int(seg["start"][i]) + 1, int(seg["stop"][i]) + 1
            verb, noun = self.verbs[int(seg["verb"][i])], self.nouns[int(seg["noun"][i])]
            rows.append(
                {
                    "narration_id": f"{vid}_{n}",
                    "participant_id": vid.split("_")[0],
                    "video_id": vid,
                    "narration_timestamp": format_timestamp(start / self.fps, 3),
                    "start_timestamp": format_timestamp(start / self.fps),
                    "stop_timestamp": format_timestamp(stop / self.fps),
                    "start_frame": start,
                    "stop_frame": stop,
                    "narration": f"{verb} {noun}",
                    "verb": verb,
                    "verb_class": int(seg["verb"][i]),
                    "noun": noun,
                    "noun_class": int(seg["noun"][i]),
                    "all_nouns": repr([noun]),
                    "all_noun_classes": repr([int(seg["noun"][i])]),
                }
            )
        return rows

    def write_epic(self, root, splits=SPLITS, **writer_kwargs) -> Path:
        """Export long videos and annotations in the EPIC-KITCHENS-100 layout (frame folders +
        CSVs) through :func:`lecturekit.data.epic_writer.write_epic_layout`; returns ``root``."""
        from ..epic_writer import write_epic_layout

        root = Path(root)
        for split in splits:
            split = self._split(split)
            unseen = sorted({self.kitchens[k].name for k in self.split_kitchens(split) if k in self.unseen_kitchens})
            write_epic_layout(
                root, self.long_videos(split), self.annotations(split), self.fps, split=_EPIC_SPLIT[split],
                unseen_participants=unseen if split != "train" else None,
                verb_names=self.verbs, noun_names=self.nouns,
                actions=[tuple(int(x) for x in p) for p in self.actions_table], **writer_kwargs,
            )
        return root

    # ---------------------------------------------------------------------------------------------
    # views

    def _select(self, split: str, verbs, nouns) -> dict[str, np.ndarray]:
        seg = self.segments(split)
        keep = np.ones(len(seg["start"]), dtype=bool)
        for key, names, vocab in (("verb", verbs, self.verbs), ("noun", nouns, self.nouns)):
            if names is not None:
                names = [names] if isinstance(names, str) else list(names)
                bad = [n for n in names if n not in vocab]
                if bad:
                    raise ValueError(f"unknown {key}(s) {bad}; the {key}s are {vocab}")
                keep &= np.isin(seg[key], [vocab.index(n) for n in names])
        return {k: v[keep] for k, v in seg.items()}

    @staticmethod
    def _labels(seg: dict) -> dict[str, np.ndarray]:
        keys = ("verb", "noun", "action", "kitchen", "video", "start", "stop", "recipe", "unseen")
        # with cues: the cue code shown before the action and whether it followed the map (analysis only)
        return {k: seg[k] for k in keys + tuple(c for c in ("cue", "cue_follows") if c in seg)}

    def clips(self, split: str, frames: int = 8, verbs=None, context: int = 0, *, nouns=None) -> ToyView:
        """Trimmed action clips resampled to ``frames`` frames (mirror-symmetric uniform sampling
        of ``[start - context, stop + context]``, clamped to the video).

        ``verbs`` / ``nouns`` restrict to a subset of names (e.g. ``verbs=["take", "put"]``);
        labels keep the global class ids. Items: ``(uint8 (3, T, H, W), labels)`` with
        verb, noun, action, kitchen, video, start, stop, recipe (analysis only), unseen.
        """
        if frames < 1 or context < 0:
            raise ValueError(f"need frames >= 1 and context >= 0, got frames={frames}, context={context}")
        seg = self._select(split, verbs, nouns)
        T = np.array([self.scripts[v].num_frames for v in seg["video"]], dtype=np.int64)
        lo = np.maximum(seg["start"] - context, 0)
        hi = np.minimum(seg["stop"] + context, T - 1)
        idx = symmetric_indices(lo, hi, frames)
        return ToyView(self, "clips", self._split(split), seg["video"], idx, self._labels(seg),
                       {"context": context} if context else {})

    def early(self, split: str, fraction: float, frames: int = 8, verbs=None, *, nouns=None) -> ToyView:
        """The first ``fraction`` (0 < f <= 1) of each segment, resampled to ``frames`` frames:
        ``[start, start + ceil(fraction * n) - 1]`` with ``n = stop - start + 1``."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
        seg = self._select(split, verbs, nouns)
        n = seg["stop"] - seg["start"] + 1
        seen = np.maximum(1, np.ceil(np.round(fraction * n, 9)).astype(np.int64))
        idx = symmetric_indices(seg["start"], seg["start"] + seen - 1, frames)
        return ToyView(self, "early", self._split(split), seg["video"], idx, self._labels(seg), {"fraction": fraction})

    def anticipation(self, split: str, tau_a: float = 1.0, tau_o: float = 2.0, frames: int = 8,
                     history: int = 16) -> ToyView:
        """Observed windows ``[t_s - tau_a - tau_o, t_s - tau_a)`` before each action.

        Frame rule: :func:`lecturekit.data.samplers.anticipation_indices` on 1-based frames
        (the same rule the EPIC reader applies to an exported world): every index is strictly
        below the cut ``start - tau_a * fps``. Nothing is dropped: labels ``too_early`` = 1 when
        the window starts before the video (indices padded with the first frame) and
        ``unobserved`` = 1 when not even one frame lies before the cut (the video is black).
        ``history`` (N, L): action ids of the earlier actions of the video, most recent last,
        left-padded with -1 (a label-level model's input). The label is the upcoming action.
        """
        import torch

        from ..samplers import anticipation_indices

        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        seg = self._select(split, None, None)
        idx, unobserved, clamped = anticipation_indices(
            torch.from_numpy(seg["start"] + 1), float(self.fps), frames, tau_a, tau_o, first_frame=1
        )
        idx = idx.numpy().reshape(len(seg["start"]), frames) - 1  # back to 0-based; -1 = black
        unobserved = unobserved.numpy().reshape(-1)
        clamped = clamped.numpy().reshape(-1)
        hist = np.full((len(seg["start"]), history), -1, dtype=np.int64)
        for i, (v, p) in enumerate(zip(seg["video"], seg["position"])):
            past = self.scripts[v].action[max(0, p - history) : p]
            if len(past):
                hist[i, history - len(past) :] = past
        labels = self._labels(seg)
        labels["too_early"] = (clamped | unobserved).astype(np.int64)
        labels["unobserved"] = unobserved.astype(np.int64)
        labels["history"] = hist
        labels["position"] = seg["position"]
        info = {"tau_a": tau_a, "tau_o": tau_o, "too_early": int(labels["too_early"].sum())}
        return ToyView(self, "anticipation", self._split(split), seg["video"], idx, labels, info)

    def transition_matrix(self, split: str = "train") -> np.ndarray:
        """The grammar's true next-action probabilities: (A, A), row b = P(next action | previous b).

        Exact (no sampling, :meth:`Grammar.transition_matrix`): the bigram statistics of
        infinitely many videos drawn like the ``split``'s, i.e. with the kitchens weighted by
        their share of the split's videos. The fitted bigram of
        :func:`lecturekit.data.baselines.ngram_next_action` estimates it from finite videos.
        """
        split = self._split(split)
        prior = np.bincount([k for k, s in zip(self.video_kitchen, self.video_split) if s == split],
                            minlength=len(self.kitchens)).astype(np.float64)
        if prior.sum() == 0:
            raise ValueError(f"split {split!r} has no videos in this world")
        return self.grammar.transition_matrix(prior)

    def action_sequences(self, split: str) -> list[list[int]]:
        """The action-id sequence of every long video of a split (for label-level models)."""
        split = self._split(split)
        return [s.action.tolist() for s, sp in zip(self.scripts, self.video_split) if sp == split]
