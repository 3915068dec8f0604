"""Checks of notebook 06 (ATA): 06.1 greedy patch matching between two frames, 06.2 chained trajectories."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...models.ata import alignment_permutations, greedy_assignment, greedy_patch_match
from ..checking import Case, Check, Mistake


def _permuted(g, n, p, d, noise=0.05):
    prev = torch.randn(n, p, d, generator=g)
    sigma = torch.stack([torch.randperm(p, generator=g) for _ in range(n)])
    nxt = torch.empty_like(prev)
    nxt.scatter_(1, sigma[..., None].expand(-1, -1, d), prev)               # nxt[sigma[i]] = prev[i]
    return prev, nxt + noise * torch.randn(n, p, d, generator=g)


def _scaled_cases(g):
    prev, nxt = _permuted(g, 2, 5, 6)
    return prev, nxt * torch.rand(2, 5, 1, generator=g).add(0.2).mul(10)


def _collide_case():
    # rows 0 and 1 both prefer column 0; the globally best pair is (0, 0), so row 1 must take column 1
    prev = torch.tensor([[[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0]]])
    nxt = torch.tensor([[[1.0, 0.05, 0.0], [0.6, 1.0, 0.0], [0.0, 0.1, 1.0]]])
    return prev, nxt


def _match_cases(g: torch.Generator) -> list[Case]:
    ident = torch.randn(1, 4, 8, generator=g)
    return [
        Case("identical frames: the identity", (ident, ident.clone()),
             hint="a token is most similar to itself: perm[i] = i"),
        Case("frame t+1 = a patch permutation of frame t plus noise (2, 6, 8)", _permuted(g, 2, 6, 8),
             hint="perm[n, i] is the index in nxt of the token that matches prev[n, i]"),
        Case("two rows want the same column: one-to-one", _collide_case(),
             hint="each column may be used once: take the globally most similar pair first, remove its "
                  "row and column, repeat"),
        Case("random tokens (3, 7, 5): greedy is not the row-wise argmax", (torch.randn(3, 7, 5, generator=g),
                                                                           torch.randn(3, 7, 5, generator=g)),
             hint="repeat P times: the largest entry among unmatched rows and columns"),
        Case("token norms differ: cosine, not dot product", _scaled_cases(g),
             hint="normalise every token to unit length before the dot products (cosine similarity)"),
        Case("one patch (P = 1)", (torch.randn(2, 1, 4, generator=g), torch.randn(2, 1, 4, generator=g))),
    ]


def _rowwise_argmax(prev, nxt):
    sim = F.normalize(prev, dim=-1) @ F.normalize(nxt, dim=-1).transpose(1, 2)
    return sim.argmax(-1)


def _dot_product(prev, nxt):
    return greedy_assignment(prev @ nxt.transpose(1, 2))


def _transposed(prev, nxt):
    return greedy_patch_match(nxt, prev)


def _inverse(prev, nxt):
    return greedy_patch_match(prev, nxt).argsort(-1)


GREEDY_MATCH = Check(
    exercise="06.1", name="greedy_match", title="Patch alignment between neighbouring frames",
    reference=greedy_patch_match,                 # lecturekit.models.ata, ATA's matcher of one frame pair
    cases=_match_cases, arg_names=("prev", "nxt"), axes="N P", atol=0.0, rtol=0.0,
    mistakes=(
        Mistake(_rowwise_argmax, "each position took its best match on its own, so two positions can take the "
                                 "same patch; the matching must be one-to-one (remove matched rows AND columns)"),
        Mistake(_dot_product, "use cosine similarity (normalise the tokens first), not the raw dot product"),
        Mistake(_transposed, "rows and columns are swapped: perm[n, i] indexes nxt for position i of prev"),
        Mistake(_inverse, "you returned the inverse permutation: perm[n, i] is the index in nxt of the token "
                          "matched to prev[n, i]"),
    ),
    hint="S = cos(prev_i, nxt_j) (N, P, P); P times: take the largest entry of S among unmatched rows and "
         "columns, set perm[row] = column, and exclude that row and column",
)


# =========================================================================== 06.2 trajectories
def _moving(g, b, t, p, d, noise=0.05):
    frames = [torch.randn(b, p, d, generator=g)]
    for _ in range(t - 1):
        sigma = torch.stack([torch.randperm(p, generator=g) for _ in range(b)])
        nxt = torch.empty_like(frames[-1])
        nxt.scatter_(1, sigma[..., None].expand(-1, -1, d), frames[-1])
        frames.append(nxt)
    x = torch.stack(frames, 1)
    return x + noise * torch.randn(x.shape, generator=g)


def _traj_cases(g: torch.Generator) -> list[Case]:
    static = torch.randn(1, 1, 4, 6, generator=g).expand(1, 3, 4, 6).contiguous()
    return [
        Case("a static video: every trajectory stays in place", (static,),
             hint="frame 0's permutation is the identity; identical frames match themselves"),
        Case("patches shuffled between every pair of frames (2, 4, 5, 8)", (_moving(g, 2, 4, 5, 8),),
             hint="match frame t+1 to the ALIGNED frame t (frame t gathered with its permutation), not to the "
                  "raw frame t"),
        Case("random tokens (2, 3, 6, 4)", (torch.randn(2, 3, 6, 4, generator=g),)),
        Case("one frame (T = 1)", (torch.randn(2, 1, 3, 4, generator=g),),
             hint="the output has shape (B, T, P): for T = 1 just the identity"),
    ]


def _unchained(tokens):
    b, t, p, _ = tokens.shape
    perms = [torch.arange(p).expand(b, p)] + [greedy_patch_match(tokens[:, i - 1], tokens[:, i]) for i in range(1, t)]
    return torch.stack(perms, 1)


def _to_first(tokens):
    b, t, p, _ = tokens.shape
    perms = [torch.arange(p).expand(b, p)] + [greedy_patch_match(tokens[:, 0], tokens[:, i]) for i in range(1, t)]
    return torch.stack(perms, 1)


def _no_identity(tokens):
    return alignment_permutations(tokens)[:, 1:]


TRAJECTORIES = Check(
    exercise="06.2", name="trajectories", title="Chained alignment: patch trajectories",
    reference=alignment_permutations,             # lecturekit.models.ata (greedy, uncentred: its defaults)
    cases=_traj_cases, arg_names=("tokens",), axes="B T P", atol=0.0, rtol=0.0,
    mistakes=(
        Mistake(_unchained, "each frame was matched to the raw previous frame; match it to the ALIGNED previous "
                            "frame (tokens[:, t-1] gathered with perm[:, t-1]) so the slots form trajectories"),
        Mistake(_to_first, "every frame was matched to frame 0; chain the matching frame by frame "
                           "(t+1 to the aligned t), as objects drift away from where they started"),
        Mistake(_no_identity, "include frame 0, whose permutation is the identity: the output is (B, T, P)"),
    ),
    hint="perm[:, 0] = identity; prev = tokens[:, 0]; for t >= 1: perm[:, t] = greedy_match(prev, tokens[:, t]); "
         "prev = tokens[:, t] gathered with perm[:, t]",
)


# =========================================================================== 06.3 experiment: greedy against Hungarian
def greedy_is_optimal_on(pairs: int = 200, patches: int = 6, dim: int = 8, seed: int = 0) -> bool:
    """Whether the library's greedy matching reaches the Hungarian (optimal) total cosine
    similarity on every one of ``pairs`` random token pairs drawn as in the notebook's experiment."""
    from ...models.ata import hungarian, patch_similarities

    g = torch.Generator().manual_seed(seed)
    prev = torch.randn(pairs, patches, dim, generator=g)
    nxt = torch.randn(pairs, patches, dim, generator=g)
    sim = patch_similarities(prev, nxt)
    rows = torch.arange(patches)
    greedy = sim.gather(2, greedy_assignment(sim)[..., None])[..., 0].sum(1)
    best = torch.stack([sim[n, rows, hungarian(-sim[n])].sum() for n in range(pairs)])
    return bool((greedy >= best - 1e-5).all())


ANSWER_06_3 = Check(
    exercise="06.3", name="answer_06_3", title="Experiment: is greedy matching optimal?",
    reference=greedy_is_optimal_on, answer=True,
    cases=lambda g: [Case("your answer", hint="True or False")],
    mistakes=(
        Mistake(lambda: True,
                "look at the smallest gap your experiment printed: on some pairs greedy's total is below "
                "the Hungarian one (an early greedy choice can block two better ones)"),
    ),
)

