"""The ToyKitchens world: vocabulary, recipe grammar, kitchens and the scripts of long videos.

Everything here is numpy and integer/float arithmetic with a fixed evaluation order, so a seed
gives the same world on every machine. Nothing renders pixels (that is :mod:`.render`).

The grammar is an explicit probabilistic automaton, used twice: :func:`sample_actions` draws the
action sequence of a video from it, and :class:`Grammar.forward` filters it to give the
Bayes-optimal next-action distribution (``lecturekit.data.baselines``). One automaton for both
makes the bound exact by construction; ``tests/test_toykitchens_grammar.py`` checks it against
Monte-Carlo frequencies of the sampler.

Automaton (per kitchen ``k``). A hidden state is ``(m, s)``: ``m`` = recipes still to start,
``s`` = a position ``(recipe r, step j)`` or the boundary ``B`` between recipes.

* a video draws ``m`` uniformly from ``recipes_per_video`` and starts in ``(m, B)``;
* in ``B`` with ``m = 0`` the video ends; otherwise it emits a *filler* action (uniform over all
  actions) with probability ``filler_prob`` and stays in ``B``, or starts recipe ``r`` with the
  kitchen's preference ``pref[k, r]`` (``m -> m - 1``) and moves to ``(r, 0)``;
* in ``(r, j)`` an optional step is skipped with probability ``skip_prob`` (no emission);
  otherwise one of the step's alternatives is emitted with its weight; after the last step the
  automaton is back in ``B``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------------------------------------
# vocabulary

#: shape ids used by the renderer (see render.SHAPES)
SHAPE_NAMES = ("disc", "ring", "half-ring", "blade", "bar+knob", "disc+handle", "bottle", "square", "flat-bar")

#: noun -> (shape, colour name). Same colour, different shape: cup/tomato, plate/bowl, jar/lid,
#: onion/sponge, knife/spoon; same shape, different colour: tomato/onion/plate, jar/sponge.
NOUNS = (
    ("cup", "ring", "red"),
    ("plate", "disc", "white"),
    ("pan", "disc+handle", "dark"),
    ("knife", "blade", "grey"),
    ("spoon", "bar+knob", "grey"),
    ("tomato", "disc", "red"),
    ("onion", "disc", "yellow"),
    ("bottle", "bottle", "green"),
    ("jar", "square", "blue"),
    ("lid", "flat-bar", "blue"),
    ("sponge", "square", "yellow"),
    ("bowl", "half-ring", "white"),
)

COLOURS = {
    "red": (0.86, 0.16, 0.14),
    "white": (0.94, 0.94, 0.92),
    "dark": (0.13, 0.13, 0.16),
    "grey": (0.62, 0.63, 0.66),
    "yellow": (0.96, 0.84, 0.18),
    "green": (0.16, 0.66, 0.28),
    "blue": (0.18, 0.34, 0.90),
}
SKIN = (0.90, 0.68, 0.54)
DROP = (0.55, 0.80, 1.00)

VERBS = ("take", "put", "open", "close", "turn-cw", "turn-ccw", "shake", "pour", "cut", "stir", "wash")

#: time-reversal pairs: the frames of one are the frames of the other in opposite order
REVERSAL_PAIRS = (("take", "put"), ("open", "close"), ("turn-cw", "turn-ccw"))
#: verbs whose first part is the "take" approach (shared prefix)
TAKE_PREFIX = ("take", "shake", "pour")

#: verb -> the nouns it applies to (valid actions); every verb applies to several nouns
VERB_NOUNS = {
    "take": ("cup", "plate", "pan", "knife", "spoon", "tomato", "onion", "bottle", "jar", "lid", "sponge", "bowl"),
    "put": ("cup", "plate", "pan", "knife", "spoon", "tomato", "onion", "bottle", "jar", "lid", "sponge", "bowl"),
    "open": ("jar", "bottle", "pan"),
    "close": ("jar", "bottle", "pan"),
    "turn-cw": ("pan", "knife", "spoon", "lid"),
    "turn-ccw": ("pan", "knife", "spoon", "lid"),
    "shake": ("bottle", "jar", "pan"),
    "pour": ("bottle", "jar", "cup", "pan"),
    "cut": ("tomato", "onion", "sponge"),
    "stir": ("pan", "bowl", "cup", "jar"),
    "wash": ("plate", "cup", "pan", "knife", "bowl"),
}

# Recipe templates: a list of steps; a step is "verb noun", "a | b" (alternatives, equal weight)
# and a leading "?" marks an optional step. Shared steps (take cup, open jar, pour jar, stir pan,
# take pan, put cup, ...) make the last action a weak predictor of the next one.
#
# Balance rule (tested): inside every recipe, each noun is expected as often with one verb of a
# time-reversal pair as with the other (a take X has its put X, an open its close, a turn-cw its
# turn-ccw; optional steps come in optional pairs). Otherwise the noun would tell the verb: with
# the first recipe set, knowing the noun alone scored 0.64-0.68 balanced accuracy within
# take/put, and the order-free models of notebooks 01-03 found exactly that shortcut.
RECIPES = (
    ("tea", ("take cup", "turn-ccw lid", "open jar", "pour jar", "close jar", "turn-cw lid", "stir cup", "put cup")),
    ("coffee", ("take cup", "open jar", "pour jar", "close jar", "take spoon", "stir cup", "put spoon", "put cup")),
    ("soup", ("take pan", "?wash pan", "put pan", "open bottle", "pour bottle", "stir pan | shake pan", "close bottle")),
    ("fry", ("take pan", "put pan", "turn-cw pan", "take knife", "cut onion | cut tomato", "put knife", "stir pan",
             "turn-ccw pan")),
    ("salad", ("take tomato", "cut tomato", "put tomato", "?take onion", "cut onion", "?put onion", "stir bowl")),
    ("washing-up", ("take plate", "wash plate", "put plate", "take cup", "wash cup", "put cup")),
    ("drink", ("take bottle", "shake bottle", "open bottle", "pour bottle | pour cup", "close bottle", "put bottle")),
    ("jam", ("take jar", "turn-ccw lid", "open jar", "stir jar", "close jar", "turn-cw lid", "put jar")),
)


# Opt-in recipe set (``ToyKitchens(long_range=True)``): a dependency that the last action cannot
# resolve. Recipes come in pairs that share their second step (a "hub": pour jar, pour bottle,
# cut tomato, shake jar); the step after the hub names the object taken two steps earlier, so
# P(next | last = hub) is split between the two recipes and only the action BEFORE the hub decides.
# Every other step follows from the last action alone. Same balance rule as RECIPES (each take X
# has its put X, each turn-cw its turn-ccw).
LONG_RANGE_RECIPES = (
    ("cup-jar", ("take cup", "pour jar", "stir cup", "put cup")),
    ("bowl-jar", ("take bowl", "pour jar", "stir bowl", "put bowl")),
    ("pan-bottle", ("take pan", "pour bottle", "stir pan", "put pan")),
    ("jar-bottle", ("take jar", "pour bottle", "stir jar", "put jar")),
    ("knife-tomato", ("take knife", "cut tomato", "wash knife", "put knife")),
    ("plate-tomato", ("take plate", "cut tomato", "wash plate", "put plate")),
    ("spoon-shake", ("take spoon", "shake jar", "turn-cw spoon", "turn-ccw spoon", "put spoon")),
    ("lid-shake", ("take lid", "shake jar", "turn-cw lid", "turn-ccw lid", "put lid")),
)


def action_vocabulary() -> list[tuple[int, int]]:
    """All valid (verb id, noun id) pairs, sorted by verb then noun: the action ids."""
    nouns = [n for n, _, _ in NOUNS]
    pairs = [(VERBS.index(v), nouns.index(n)) for v in VERBS for n in VERB_NOUNS[v]]
    return sorted(pairs)


# ---------------------------------------------------------------------------------------------
# recipes and grammar


@dataclass(frozen=True)
class Step:
    """One recipe step: alternative action ids with weights; optional steps may be skipped."""

    alternatives: tuple[int, ...]
    weights: tuple[float, ...]
    optional: bool


@dataclass(frozen=True)
class Recipe:
    """A latent intention: a template of steps (``recipe.describe(actions)`` prints it)."""

    id: int
    name: str
    steps: tuple[Step, ...]
    frequency: float  # global (Zipf) prior

    def describe(self, action_names) -> str:
        parts = []
        for s in self.steps:
            txt = " | ".join(action_names[a] for a in s.alternatives)
            parts.append(f"[{txt}]" if s.optional else txt)
        return f"{self.name}: " + ", ".join(parts)


def parse_recipes(num_recipes: int, zipf: float, action_index: dict[str, int], templates=None) -> list[Recipe]:
    templates = RECIPES if templates is None else templates
    if not 1 <= num_recipes <= len(templates):
        raise ValueError(f"num_recipes must be in 1..{len(templates)}, got {num_recipes}")
    raw = [1.0 / (r + 1) ** zipf for r in range(num_recipes)]
    total = sum(raw)
    out = []
    for r, (name, steps) in enumerate(templates[:num_recipes]):
        parsed = []
        for j, text in enumerate(steps):
            optional = text.startswith("?")
            if optional and j == 0:
                raise ValueError(f"recipe {name}: the first step cannot be optional")
            alts = tuple(action_index[a.strip()] for a in text.lstrip("?").split("|"))
            parsed.append(Step(alts, tuple(1.0 / len(alts) for _ in alts), optional))
        out.append(Recipe(r, name, tuple(parsed), raw[r] / total))
    return out


@dataclass
class Grammar:
    """The automaton of the module docstring, with dense transition tensors for filtering.

    ``emit[k]`` has shape ``(S, A, S)``: the probability of emitting action ``a`` and landing in
    position ``s'`` from position ``s`` (epsilon moves -- skipped steps, starting a recipe --
    folded in). Position ``S - 1`` is the boundary ``B``. ``starts[s, s']`` is 1 where the move
    consumed a recipe start (``m -> m - 1``).
    """

    recipes: list[Recipe]
    num_actions: int
    pref: np.ndarray  # (K, R) recipe preference per kitchen
    filler_prob: float
    skip_prob: float
    recipes_per_video: tuple[int, int]
    positions: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self):
        self.positions = [(r.id, j) for r in self.recipes for j in range(len(r.steps))]
        self._pos_index = {p: i for i, p in enumerate(self.positions)}
        self.B = len(self.positions)
        self.num_positions = self.B + 1
        self._build()

    # -- transition tensors --------------------------------------------------------------------
    def _pos(self, r: int, j: int) -> int:
        return self.B if j >= len(self.recipes[r].steps) else self._pos_index[(r, j)]

    def _from_step(self, r: int, j: int) -> dict[tuple[int, int], float]:
        """(action, landing position) -> probability, starting at step j of recipe r."""
        if j >= len(self.recipes[r].steps):
            return {("B", -1): 1.0}  # marker: continue from B (handled by the caller)
        step = self.recipes[r].steps[j]
        out: dict = {}
        emit_p = 1.0 - self.skip_prob if step.optional else 1.0
        for a, w in zip(step.alternatives, step.weights):
            key = (a, self._pos(r, j + 1))
            out[key] = out.get(key, 0.0) + emit_p * w
        if step.optional:
            for key, p in self._from_step(r, j + 1).items():
                out[key] = out.get(key, 0.0) + self.skip_prob * p
        return out

    def _build(self):
        K, R = self.pref.shape
        S, A = self.num_positions, self.num_actions
        inner = np.zeros((S, A, S))
        reaches_B = np.zeros(S)  # probability of falling through to B without emitting
        for (r, j), s in self._pos_index.items():
            for (a, dst), p in self._from_step(r, j).items():
                if a == "B":
                    reaches_B[s] += p
                else:
                    inner[s, a, dst] += p
        # from B: a filler (stay in B) or start recipe r (then emit from its step 0)
        start_from = np.zeros((R, A, S))
        for r in range(R):
            for (a, dst), p in self._from_step(r, 0).items():
                start_from[r, a, dst] += p  # step 0 is never optional: no fall-through
        self.inner = inner  # (S, A, S) moves that do not start a recipe (B row empty)
        self.reaches_B = reaches_B
        self.start_from = start_from  # (R, A, S)
        self._inner_flat = inner.reshape(S, A * S)
        self._start = np.einsum("kr,rat->kat", self.pref, start_from)  # (K, A, S): start a recipe

    # -- filtering -----------------------------------------------------------------------------
    def initial(self, kitchen_prior: np.ndarray) -> np.ndarray:
        """alpha over (kitchen, m, position) before the first action: m uniform, position B."""
        lo, hi = self.recipes_per_video
        K = self.pref.shape[0]
        alpha = np.zeros((K, hi + 1, self.num_positions))
        for m in range(lo, hi + 1):
            alpha[:, m, self.B] = kitchen_prior / (hi - lo + 1)
        return alpha

    def next_distribution(self, alpha: np.ndarray, kitchens: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """From alpha (K, M, S): P(next action) (A,) given the video continues, and the joint
        ``emit (K, M, A, S')`` (unnormalised) used by :meth:`update`. ``kitchens``: the kitchen
        ids of alpha's rows when alpha holds only some kitchens (default: all, in order)."""
        start = self._start if kitchens is None else self._start[kitchens]
        K, M, S = alpha.shape
        A = self.num_actions
        # positions inside a recipe: emit directly; a fall-through lands in B and acts as B
        a_in = alpha.copy()
        a_in[:, :, self.B] = 0.0
        at_B = alpha[:, :, self.B] + a_in @ self.reaches_B  # (K, M)
        joint = (a_in.reshape(K * M, S) @ self._inner_flat).reshape(K, M, A, S)
        # B with m >= 1: filler (stay B, same m) or start a recipe (m -> m-1)
        live = at_B.copy()
        live[:, 0] = 0.0  # m = 0 in B: the video has ended, nothing is emitted
        joint[:, :, :, self.B] += (live * self.filler_prob)[:, :, None] / A
        shifted = np.zeros_like(live)
        shifted[:, :-1] = live[:, 1:]  # mass with m lands at m-1
        joint += (shifted * (1.0 - self.filler_prob))[:, :, None, None] * start[:, None]
        p = joint.sum(axis=(0, 1, 3))
        total = p.sum()
        return (p / total if total > 0 else np.full(A, 1.0 / A)), joint

    def transition_matrix(self, kitchen_prior: np.ndarray, *, tol: float = 1e-13, max_steps: int = 100_000) -> np.ndarray:
        """Exact bigram statistics of the automaton: P(next action = a | previous action = b).

        Averaged over every position of a video (not just its start) and over kitchens drawn
        from ``kitchen_prior``, i.e. the limit of the bigram counts of infinitely many sampled
        videos: ``C[b, a]`` = expected number of times ``b`` is immediately followed by ``a``
        in one video, and the row ``b`` is ``C[b] / C[b].sum()``.

        Computed without sampling. Let ``N = sum_t alpha_t`` be the expected occupancy of the
        hidden states (kitchen, m, position) after t emitted actions (a geometric series: every
        video ends). Emitting is linear in alpha, so ``C[b, a]`` = mass of "emit b, then emit a"
        applied to ``N``.

        Args:
            kitchen_prior: (K,) non-negative weights of the kitchens (normalised here).
            tol: stop summing the occupancy when the mass still alive falls below this.
            max_steps: safety limit on the number of summed steps.

        Returns:
            (A, A) float64; row b = P(next | previous = b), summing to 1; a row of an action
            that can never be followed by another is all zeros.
        """
        kp = np.asarray(kitchen_prior, dtype=np.float64).reshape(-1)
        if kp.shape != (self.pref.shape[0],) or (kp < 0).any() or not np.isfinite(kp).all() or kp.sum() <= 0:
            raise ValueError(f"kitchen_prior: expected {self.pref.shape[0]} non-negative weights with a positive sum, "
                             f"got shape {kp.shape}")
        ks = np.nonzero(kp > 0)[0]
        alpha = self.initial(kp / kp.sum())[ks]                           # (K', M, S), total mass 1
        occupancy = np.zeros_like(alpha)
        for _ in range(max_steps):
            occupancy += alpha
            joint = self._emit(alpha, ks)                                 # (K', M, A, S)
            alpha = joint.sum(axis=2)
            if alpha.sum() < tol:
                break
        else:
            raise RuntimeError("transition_matrix: the occupancy series did not converge")
        first = self._emit(occupancy, ks)                                 # (K', M, A, S): ... then emit b
        counts = np.zeros((self.num_actions, self.num_actions))
        for b in range(self.num_actions):
            after_b = first[:, :, b, :]
            if after_b.sum() > 0:
                counts[b] = self._emit(after_b, ks).sum(axis=(0, 1, 3))   # ... then emit a
        total = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)

    def _emit(self, alpha: np.ndarray, kitchens: np.ndarray) -> np.ndarray:
        """The unnormalised joint (K', M, A, S') of :meth:`next_distribution` (mass that ends is lost)."""
        return self.next_distribution(alpha, kitchens)[1]

    @staticmethod
    def update(joint: np.ndarray, action: int) -> np.ndarray:
        """alpha after observing ``action`` (normalised)."""
        alpha = joint[:, :, action, :].copy()
        total = alpha.sum()
        if total <= 0:
            raise ValueError(f"action {action} is impossible under the grammar given the history")
        return alpha / total


def sample_actions(grammar: Grammar, kitchen: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Draw one video's action sequence and the recipe of each action (-1 for fillers).

    Follows the automaton of the module docstring step by step with ``rng`` (uniform draws
    only: ``rng.random()`` compared with cumulative sums).
    """
    lo, hi = grammar.recipes_per_video
    m = lo + int(rng.integers(0, hi - lo + 1))
    actions: list[int] = []
    recipes: list[int] = []
    A = grammar.num_actions
    cum_pref = np.cumsum(grammar.pref[kitchen])
    while m > 0:
        if rng.random() < grammar.filler_prob:
            actions.append(int(rng.integers(0, A)))
            recipes.append(-1)
            continue
        r = min(int(np.searchsorted(cum_pref, rng.random() * cum_pref[-1], side="right")), len(cum_pref) - 1)
        m -= 1
        for step in grammar.recipes[r].steps:
            if step.optional and rng.random() < grammar.skip_prob:
                continue
            cw = np.cumsum(step.weights)
            i = min(int(np.searchsorted(cw, rng.random() * cw[-1], side="right")), len(cw) - 1)
            actions.append(step.alternatives[i])
            recipes.append(r)
    return actions, recipes


# ---------------------------------------------------------------------------------------------
# kitchens

TEXTURES = ("stripes", "checker", "noise", "dots")


@dataclass(frozen=True)
class Kitchen:
    """One kitchen (EPIC participant): its look and its recipe preferences."""

    id: int
    name: str  # "P03"
    split: str  # "seen" (has training videos) or "unseen-val" / "unseen-test"
    base_colour: tuple[float, float, float]
    texture: str
    texture_colour: tuple[float, float, float]
    texture_period: int
    light_gain: float
    jitter: int  # camera jitter amplitude in pixels at 32x32
    distractors: tuple  # ((shape id, x, y, radius, colour), ...)
    favourites: tuple[int, ...]  # recipe ids this kitchen prefers


def make_kitchens(num_kitchens: int, num_recipes: int, unseen_val: int, unseen_test: int, rng,
                  max_distractors: int, jitter: float, favourite_boost: float, zipf_freq: np.ndarray):
    kitchens, pref = [], np.zeros((num_kitchens, num_recipes))
    n_train = num_kitchens - unseen_val - unseen_test
    for k in range(num_kitchens):
        split = "seen" if k < n_train else ("unseen-val" if k < n_train + unseen_val else "unseen-test")
        base = tuple(float(x) for x in rng.uniform(0.22, 0.62, 3).round(3))
        tex = TEXTURES[int(rng.integers(0, len(TEXTURES)))]
        delta = rng.uniform(-0.12, 0.12, 3)
        tcol = tuple(float(x) for x in np.clip(np.asarray(base) + delta, 0, 1).round(3))
        period = int(rng.integers(3, 7))
        gain = round(float(rng.uniform(0.85, 1.15)), 3)
        jit = int(rng.integers(0, 3) * jitter + 0.5) if jitter > 0 else 0
        nd = int(rng.integers(0, max_distractors + 1))
        distractors = []
        for _ in range(nd):
            distractors.append(
                (
                    int(rng.integers(0, 2)),  # 0 cross, 1 diamond (shapes no noun has)
                    round(float(rng.uniform(0.08, 0.92)), 3),
                    round(float(rng.choice([rng.uniform(0.05, 0.18), rng.uniform(0.82, 0.95)])), 3),
                    round(float(rng.uniform(0.06, 0.1)), 3),
                    tuple(float(x) for x in rng.uniform(0.2, 0.8, 3).round(3)),
                )
            )
        fav = tuple(int(x) for x in rng.permutation(num_recipes)[: min(2, num_recipes)])
        w = zipf_freq.copy()
        for r in fav:
            w[r] *= favourite_boost
        pref[k] = w / w.sum()
        kitchens.append(Kitchen(k, f"P{k:02d}", split, base, tex, tcol, period, gain, jit, tuple(distractors), fav))
    return kitchens, pref


# ---------------------------------------------------------------------------------------------
# video scripts: when each action happens and every nuisance of its rendering


@dataclass
class Script:
    """Everything the renderer needs for one long video (recipe ids are NOT passed to it)."""

    kitchen: int
    num_frames: int
    action: np.ndarray  # (N,) action ids
    verb: np.ndarray
    noun: np.ndarray
    recipe: np.ndarray  # (N,) analysis only; the renderer never reads it
    start: np.ndarray  # (N,) first frame (0-based, inclusive)
    stop: np.ndarray  # (N,) last frame (inclusive)
    nuisance: dict  # name -> (N, ...) arrays, drawn from a stream independent of the labels
    jitter: np.ndarray  # (T, 2) camera offsets in pixels at 32x32 (dx, dy), >= 0
    hand_base: float  # x of the arm's base at the bottom edge
    cue: dict | None = None  # decor cues (``make_cues``), only in a world built with cues > 0


#: rotation of a turn-* action in 1/4096 turns, inclusive (70-105 degrees; 53-86 was too subtle)
TURN_RANGE = (800, 1200)

SLOTS = np.array([[0.25, 0.30], [0.50, 0.26], [0.75, 0.30], [0.25, 0.55], [0.50, 0.52], [0.75, 0.55]])


def make_script(grammar: Grammar, kitchen: Kitchen, label_rng, nuisance_rng, *, durations, gaps,
                lead, decoys: int, num_nouns: int) -> Script:
    """Draw the actions (``label_rng``) and, independently, every nuisance (``nuisance_rng``).

    Nuisances are drawn for action *slots* 0..N-1 in a fixed order that never looks at the
    labels, so duration, position, size, timing, decoys and jitter have the same distribution
    for every verb and noun: no nuisance gives a label away.
    """
    actions, recipes = sample_actions(grammar, kitchen.id, label_rng)
    n = len(actions)
    rng = nuisance_rng
    dur = rng.integers(durations[0], durations[1] + 1, n)
    gap = rng.integers(gaps[0], gaps[1] + 1, n)  # idle frames before each action
    reach = np.minimum(rng.integers(3, 13, n), gap)  # hand starts moving reach frames early
    appear = np.minimum(reach + rng.integers(0, 9, n), gap)  # object visible from start - appear
    # ... and until stop + linger; both inside the idle gaps, so a clip never shows a neighbour
    linger = np.minimum(rng.integers(2, 7, n), np.r_[gap[1:], 7] - 1)
    retract = rng.integers(3, 13, n)
    slot = np.argsort(rng.random((n, len(SLOTS))), axis=1)  # slot 0 for the object, then decoys
    pos = SLOTS[slot[:, 0]] + rng.uniform(-0.06, 0.06, (n, 2))
    nuis = {
        "pos": pos,
        "near": np.stack([0.5 + 0.35 * (pos[:, 0] - 0.5), rng.uniform(0.66, 0.74, n)], 1),
        "scale": rng.uniform(0.11, 0.15, n),
        "angle": rng.integers(0, 4096, n),  # start angle in 1/4096 turns
        "turn": rng.integers(TURN_RANGE[0], TURN_RANGE[1] + 1, n),  # rotation of turn-*, 1/4096 turns
        "gap": rng.uniform(0.45, 0.75, n),  # opening of open/close/cut, in object radii
        "approach": rng.uniform(0.45, 0.65, n),  # share of take/shake/pour spent approaching
        "cycles": rng.integers(2, 4, n),  # oscillations / strikes / stirring rounds
        "tilt": rng.integers(500, 900, n),
        "decoy_pos": SLOTS[slot[:, 1 : 1 + decoys]] + rng.uniform(-0.05, 0.05, (n, decoys, 2)),
        "decoy_noun": rng.integers(0, num_nouns, (n, decoys)),
        "decoy_on": rng.random((n, decoys)) < 0.75,
        "decoy_scale": rng.uniform(0.10, 0.14, (n, decoys)),
        "decoy_angle": rng.integers(0, 4096, (n, decoys)),
        "reach": reach,
        "appear": appear,
        "linger": linger,
        "retract": retract,
        "seed": rng.integers(0, 2**31, n),  # per-action stream for droplets / wash jitter
    }
    start = np.zeros(n, dtype=np.int64)
    t = int(rng.integers(lead[0], lead[1] + 1)) - int(gap[0]) if n else 0
    for i in range(n):
        t += int(gap[i])
        start[i] = t
        t += int(dur[i])
    stop = start + dur - 1
    T = int(stop[-1] + linger[-1] + retract[-1] + 2) if n else 1
    # camera: a slow bounded random walk of integer offsets in [0, 2J] (a step on ~1 frame in 4)
    J = kitchen.jitter
    if J > 0:
        steps = rng.integers(-1, 2, (T, 2)) * (rng.random((T, 1)) < 0.25)
        walk = np.zeros((T, 2), dtype=np.int64)
        cur = np.array([J, J])
        for i in range(T):  # T ~ hundreds: cheap, and exact integer arithmetic
            cur = np.clip(cur + steps[i], 0, 2 * J)
            walk[i] = cur
    else:
        walk = np.zeros((T, 2), dtype=np.int64)
    act = np.asarray(actions, dtype=np.int64)
    return Script(
        kitchen=kitchen.id,
        num_frames=T,
        action=act,
        verb=np.zeros(0, dtype=np.int64),  # filled by the caller from the action table
        noun=np.zeros(0, dtype=np.int64),
        recipe=np.asarray(recipes, dtype=np.int64),
        start=start,
        stop=stop,
        nuisance=nuis,
        jitter=walk,
        hand_base=float(rng.uniform(0.4, 0.75)),
    )


# ---------------------------------------------------------------------------------------------
# decor cues (opt-in, ``ToyKitchens(cues=C)``): a visual shortcut that holds only in seen kitchens

#: colours of the C <= 8 cue codes (a "poster" on the wall), far from the skin and each other
CUE_COLOURS = (
    (1.00, 0.10, 0.85),  # magenta
    (0.05, 0.95, 0.95),  # cyan
    (1.00, 0.55, 0.00),  # orange
    (0.45, 0.10, 0.75),  # purple
    (0.55, 1.00, 0.10),  # lime
    (0.00, 0.45, 0.45),  # teal
    (0.55, 0.30, 0.05),  # brown
    (1.00, 1.00, 0.60),  # pale yellow
)
#: where the poster hangs (frame units, top-left wall) and its radius
CUE_POS = (0.15, 0.12)
CUE_RADIUS = 0.11
#: a cue is never shown before this many frames before the PREVIOUS action's start (tau_a = 1 s
#: at 8 fps): an anticipation window of the previous action never sees the next action's cue
CUE_GUARD = 8


def cue_map(num_actions: int, num_cues: int, rng: np.random.Generator) -> np.ndarray:
    """The seen kitchens' shortcut: upcoming action -> cue code, balanced (every code is the
    image of floor or ceil(A / C) actions), drawn once per world."""
    out = np.empty(num_actions, dtype=np.int64)
    out[rng.permutation(num_actions)] = np.arange(num_actions) % num_cues
    return out


def make_cues(script: Script, seen: bool, mapping: np.ndarray, rng: np.random.Generator, *, strength: float,
              frames: tuple[int, int]) -> dict[str, np.ndarray]:
    """The decor cue shown before every action of a video.

    Cue of action i: a code in 0..C-1, shown on frames ``[max(s_i - frames[0], s_{i-1} - CUE_GUARD),
    s_i - frames[1]]`` (clipped at 0; possibly empty for the first action). In a SEEN kitchen
    the code is ``mapping[action_i]`` with probability ``strength`` and uniform otherwise; in an
    unseen kitchen it is always uniform, independent of the action. Two uniform draws per
    action in both cases (the stream does not depend on the kitchen's split).

    Returns ``{"code", "follows" (1 where the code came from the mapping), "first", "last"}``, each (N,).
    """
    n = len(script.action)
    if mapping.size == 0:
        raise ValueError("make_cues: the cue mapping is empty; expected one cue code per action class")
    num_cues = int(mapping.max()) + 1
    u = rng.random(n)                                          # both draws always happen (n may be 0)
    random_code = rng.integers(0, num_cues, n)
    follows = (u < strength) if seen else np.zeros(n, dtype=bool)
    code = np.where(follows, mapping[script.action], random_code)
    prev = np.empty(n, dtype=np.int64)                         # start of the previous action
    prev[:1] = np.iinfo(np.int64).min // 2                     # the first action has none
    prev[1:] = script.start[:-1]
    first = np.maximum(np.maximum(script.start - frames[0], prev - CUE_GUARD), 0)
    last = script.start - frames[1]
    return {"code": code.astype(np.int64), "follows": follows.astype(np.int64), "first": first.astype(np.int64),
            "last": last.astype(np.int64)}
