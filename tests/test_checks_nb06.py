"""Checks of notebook 06 (06.1 greedy patch matching, 06.2 chained trajectories): independent naive
solutions pass, the checks' references agree with the naive code and with ATA's own alignment,
and typical wrong answers are rejected with the matching hint."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from lecturekit.course import check, get_check
from lecturekit.course.checking import run_check
from lecturekit.models.ata import alignment_permutations, greedy_patch_match, hungarian
from reference.course_naive_nb05_nb06 import naive_greedy_match, naive_trajectories


def test_naive_solutions_pass():
    assert check("06.1", naive_greedy_match, verbose=False).passed
    assert check("06.2", naive_trajectories, verbose=False).passed


def test_references_agree_with_naive_code():
    for ex, naive, lib in [("06.1", naive_greedy_match, greedy_patch_match),
                           ("06.2", naive_trajectories, alignment_permutations)]:
        result = run_check(dataclasses.replace(get_check(ex), reference=naive), lambda *a, _f=lib, **k: _f(*a, **k))
        assert result.passed, result.message


def test_greedy_equals_the_exact_matcher_on_permuted_frames():
    """On a frame that is a noisy patch permutation of the previous one, greedy = Hungarian = the
    true permutation (so a student's exact solver agrees with the check on those cases)."""
    g = torch.Generator().manual_seed(1)
    prev = torch.randn(1, 9, 16, generator=g)
    sigma = torch.randperm(9, generator=g)
    nxt = prev[:, sigma.argsort()] + 0.05 * torch.randn(1, 9, 16, generator=g)   # nxt[sigma[i]] = prev[i]
    sim = F.normalize(prev, dim=-1) @ F.normalize(nxt, dim=-1).transpose(1, 2)
    assert greedy_patch_match(prev, nxt)[0].tolist() == sigma.tolist() == hungarian(-sim[0]).tolist()


def test_references_are_atas_alignment():
    assert get_check("06.1").reference is greedy_patch_match
    assert get_check("06.2").reference is alignment_permutations
    x = torch.randn(2, 4, 6, 8)
    assert torch.equal(alignment_permutations(x), alignment_permutations(x, "greedy", center=False))


# --------------------------------------------------------------------------- wrong answers: 06.1
def m_rowwise(prev, nxt):
    return (F.normalize(prev, dim=-1) @ F.normalize(nxt, dim=-1).transpose(1, 2)).argmax(-1)


def m_dot(prev, nxt):                                  # raw dot products instead of cosine
    return _greedy_raw(prev @ nxt.transpose(1, 2))


def _greedy_raw(sim):
    n, p, _ = sim.shape
    s, out = sim.clone(), torch.empty(n, p, dtype=torch.long)
    for i in range(n):
        for _ in range(p):
            r, c = divmod(int(s[i].argmax()), p)
            out[i, r] = c
            s[i, r, :] = -float("inf")
            s[i, :, c] = -float("inf")
    return out


def m_swapped(prev, nxt):
    return naive_greedy_match(nxt, prev)


def m_inverse(prev, nxt):
    return naive_greedy_match(prev, nxt).argsort(-1)


def m_columnwise(prev, nxt):
    return (F.normalize(prev, dim=-1) @ F.normalize(nxt, dim=-1).transpose(1, 2)).argmax(-2)


WRONG_06_1 = [(m_rowwise, "one-to-one"), (m_dot, "cosine"), (m_swapped, None), (m_inverse, None),
              (m_columnwise, None)]


def test_wrong_matchers_are_rejected():
    for fn, phrase in WRONG_06_1:
        result = check("06.1", fn, verbose=False)
        assert not result.passed, fn.__name__
        if phrase:
            assert phrase in result.message, (fn.__name__, result.message)


# --------------------------------------------------------------------------- wrong answers: 06.2
def t_unchained(tokens):
    b, t, p, _ = tokens.shape
    perms = [torch.arange(p).expand(b, p)] + [naive_greedy_match(tokens[:, i - 1], tokens[:, i]) for i in range(1, t)]
    return torch.stack(perms, 1)


def t_to_first(tokens):
    b, t, p, _ = tokens.shape
    perms = [torch.arange(p).expand(b, p)] + [naive_greedy_match(tokens[:, 0], tokens[:, i]) for i in range(1, t)]
    return torch.stack(perms, 1)


def t_no_identity(tokens):
    return naive_trajectories(tokens)[:, 1:]


def t_identity_everywhere(tokens):
    b, t, p, _ = tokens.shape
    return torch.arange(p).expand(b, t, p).clone()


WRONG_06_2 = [(t_unchained, "ALIGNED previous"), (t_to_first, None), (t_no_identity, "(B, T, P)"),
              (t_identity_everywhere, None)]


def test_wrong_trajectories_are_rejected():
    for fn, phrase in WRONG_06_2:
        result = check("06.2", fn, verbose=False)
        assert not result.passed, fn.__name__
        if phrase:
            assert phrase in result.message, (fn.__name__, result.message)


# --------------------------------------------------------------------------- 06.3 experiment answer
def test_answer_06_3_greedy_is_not_optimal_on_the_experiments_pairs():
    from lecturekit.course.checks.nb06 import greedy_is_optimal_on

    assert greedy_is_optimal_on() is False
    assert check("06.3", False, verbose=False).passed
    for wrong, expected in [(True, "smallest gap"), ("False", "True or False"), (0, "True or False"),
                            (None, "True or False")]:
        result = check("06.3", wrong, verbose=False)
        assert not result.passed and expected in result.message, result.message
