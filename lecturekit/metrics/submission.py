"""The EK-100 submission file: build it, write and read it, reject what the server rejects, score it.

The format is the one of the EPIC-KITCHENS-100 action anticipation challenge (version "0.2"):
github.com/epic-kitchens/C3-Action-Anticipation (``evaluate_anticipation_json_ek100.py`` and
the JSON schema it validates against). One dictionary per narration id holds every verb and
noun score and the ``num_action_entries`` (100) best ``"verb,noun"`` action scores.

Implements
    make_submission       score arrays -> the submission dictionary (validated)
    write_submission      the dictionary as JSON (the server expects ``test.json`` in a zip)
    read_submission       JSON -> dictionary
    validate_submission   raise :class:`SubmissionError` on what the server rejects
    evaluate_submission   the 9 leaderboard numbers of a submission, as the server computes them
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.ek100 import NUM_NOUNS, NUM_VERBS, action_class
from .classification import _labels_np, _scores_np, _subset_table, topk_hits, topk_ranks

__all__ = ["SubmissionError", "evaluate_submission", "make_submission", "read_submission", "validate_submission",
           "write_submission"]

#: Action entries per narration id in an EK-100 submission.
NUM_ACTION_ENTRIES = 100
SUBMISSION_VERSION = "0.2"


class SubmissionError(ValueError):
    """A submission that the EK-100 server would reject; the message says why."""


def _as_row_list(x, name: str, n: int) -> np.ndarray:
    s = _scores_np(x, name)
    if s.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows (one per narration id), got {s.shape[0]}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name}: scores must be finite (JSON has no NaN/inf)")
    return s


def make_submission(
    narration_ids: Sequence[str],
    verb_scores,
    noun_scores,
    action_scores,
    action_pairs,
    *,
    sls: tuple[int, int, int],
    challenge: str = "action_anticipation",
    num_action_entries: int = NUM_ACTION_ENTRIES,
) -> dict[str, Any]:
    """Build the EK-100 submission dictionary (version "0.2").

    Args:
        narration_ids: ``N`` ids, e.g. ``"P01_11_42"``.
        verb_scores, noun_scores: ``(N, K_verb)``, ``(N, K_noun)``; every class is written.
        action_scores: ``(N, A)`` scores over an action vocabulary.
        action_pairs: ``(A, 2)`` the ``(verb, noun)`` of each action column.
        sls: supervision levels ``(pretraining, training labels, training data)``, each 0-5,
            as defined by the challenge; there is no default on purpose.
        challenge: ``"action_anticipation"`` or ``"action_recognition"``.
        num_action_entries: the ``num_action_entries`` best actions are kept per segment (100
            for EK-100; the vocabulary must have at least that many actions).
    """
    ids = [str(i) for i in narration_ids]
    if len(set(ids)) != len(ids):
        raise ValueError("narration_ids: duplicates found")
    n = len(ids)
    v = _as_row_list(verb_scores, "verb_scores", n)
    no = _as_row_list(noun_scores, "noun_scores", n)
    a = _as_row_list(action_scores, "action_scores", n)
    pairs = np.asarray(action_pairs.cpu() if isinstance(action_pairs, torch.Tensor) else action_pairs, dtype=np.int64)
    if pairs.shape != (a.shape[1], 2):
        raise ValueError(f"action_pairs: expected shape ({a.shape[1]}, 2), got {pairs.shape}")
    if a.shape[1] < num_action_entries:
        raise ValueError(
            f"action_scores has {a.shape[1]} actions but the format needs {num_action_entries} per segment;"
            f" pass num_action_entries={a.shape[1]} for a small vocabulary (and the same to validate_submission)"
        )
    top = topk_ranks(a, num_action_entries)                              # (N, 100)
    results = {}
    for i, uid in enumerate(ids):
        results[uid] = {
            "verb": {str(c): float(x) for c, x in enumerate(v[i])},
            "noun": {str(c): float(x) for c, x in enumerate(no[i])},
            "action": {f"{pairs[j, 0]},{pairs[j, 1]}": float(a[i, j]) for j in top[i]},
        }
    sub = {
        "version": SUBMISSION_VERSION,
        "challenge": challenge,
        "sls_pt": int(sls[0]),
        "sls_tl": int(sls[1]),
        "sls_td": int(sls[2]),
        "results": results,
    }
    validate_submission(sub, ids, num_verbs=v.shape[1], num_nouns=no.shape[1], num_action_entries=num_action_entries)
    return sub


def write_submission(path: str | Path, submission: dict[str, Any]) -> Path:
    """Write a submission dictionary as JSON (the server expects ``test.json`` inside a zip)."""
    path = Path(path)
    path.write_text(json.dumps(submission), encoding="utf8")
    return path


def read_submission(path: str | Path) -> dict[str, Any]:
    """Read a submission JSON back into a dictionary."""
    return json.loads(Path(path).read_text(encoding="utf8"))


def _is_score(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate_submission(
    submission: dict[str, Any],
    narration_ids: Sequence[str],
    *,
    num_verbs: int = NUM_VERBS,
    num_nouns: int = NUM_NOUNS,
    num_action_entries: int = NUM_ACTION_ENTRIES,
    challenge: str = "action_anticipation",
) -> None:
    """Reject what the EK-100 server rejects; raise :class:`SubmissionError` naming the problem.

    Checks: version "0.2"; the challenge; ``sls_pt``/``sls_tl``/``sls_td`` integers in 0-5;
    exactly the expected narration ids (none missing, none extra); per segment, verb keys
    exactly ``"0".."num_verbs-1"`` and noun keys ``"0".."num_nouns-1"``; exactly
    ``num_action_entries`` action entries with keys ``"verb,noun"`` in range; every score a
    finite number (booleans and strings are not scores). Slightly stricter than the official
    validator: class keys must be written canonically (``"7"``, not ``"07"``), and non-finite
    scores are refused.
    """
    if not isinstance(submission, dict):
        raise SubmissionError(f"submission must be a dict, got {type(submission).__name__}")
    for key in ("version", "challenge", "sls_pt", "sls_tl", "sls_td", "results"):
        if key not in submission:
            raise SubmissionError(f"missing property {key!r}")
    if submission["version"] != SUBMISSION_VERSION:
        raise SubmissionError(f"version must be {SUBMISSION_VERSION!r}, got {submission['version']!r}")
    if submission["challenge"] != challenge:
        raise SubmissionError(f"challenge must be {challenge!r}, got {submission['challenge']!r}")
    for key in ("sls_pt", "sls_tl", "sls_td"):
        level = submission[key]
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 5:
            raise SubmissionError(f"{key} must be an integer between 0 and 5, got {level!r}")
    results = submission["results"]
    if not isinstance(results, dict):
        raise SubmissionError("results must map narration ids to score dictionaries")
    expected = {str(i) for i in narration_ids}
    missing = sorted(expected - set(results))
    extra = sorted(set(results) - expected)
    if missing:
        raise SubmissionError(f"missing narration ids: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
    if extra:
        raise SubmissionError(f"unexpected narration ids: {', '.join(extra[:10])}{' ...' if len(extra) > 10 else ''}")
    want = {"verb": {str(c) for c in range(num_verbs)}, "noun": {str(c) for c in range(num_nouns)}}
    for uid, entry in results.items():
        if not isinstance(entry, dict):
            raise SubmissionError(f"{uid}: expected a dict with 'verb', 'noun', 'action'")
        for task in ("verb", "noun", "action"):
            if task not in entry or not isinstance(entry[task], dict):
                raise SubmissionError(f"{uid}: missing {task!r} scores")
        for task in ("verb", "noun"):
            keys = set(entry[task])
            if keys != want[task]:
                lost, odd = sorted(want[task] - keys), sorted(keys - want[task])
                raise SubmissionError(f"{uid}: {task} keys wrong; missing {lost[:5]}, unexpected {odd[:5]}")
            for cls, score in entry[task].items():
                if not _is_score(score):
                    raise SubmissionError(f"{uid}: {task} {cls!r} score is not a finite number: {score!r}")
        actions = entry["action"]
        if len(actions) != num_action_entries:
            raise SubmissionError(f"{uid}: expected exactly {num_action_entries} action entries, got {len(actions)}")
        for key, score in actions.items():
            parts = key.split(",") if isinstance(key, str) else []
            if len(parts) != 2 or not all(p.isdigit() and str(int(p)) == p for p in parts):
                raise SubmissionError(f"{uid}: action key {key!r} is not a 'verb,noun' pair of class ids")
            verb, noun = int(parts[0]), int(parts[1])
            if verb >= num_verbs or noun >= num_nouns:
                raise SubmissionError(f"{uid}: action {key!r} outside {num_verbs} verbs x {num_nouns} nouns")
            if not _is_score(score):
                raise SubmissionError(f"{uid}: action {key!r} score is not a finite number: {score!r}")


def evaluate_submission(
    submission: dict[str, Any],
    narration_ids: Sequence[str],
    verb_labels,
    noun_labels,
    *,
    tail_verbs: Sequence[int],
    tail_nouns: Sequence[int],
    unseen=None,
    k: int = 5,
) -> dict[str, dict[str, float]]:
    """Score a submission dictionary the way the EK-100 server does: the 9 numbers of :func:`epic_subsets`.

    Verb and noun rankings come from the full score dictionaries; the action ranking comes
    from the ``num_action_entries`` ``"v,n"`` entries only, with action ids ``v·1000 + n`` and
    label ``verb·1000 + noun`` (an action outside the submitted entries is a miss). Ties are
    broken as the official scorer: reversed stable order, i.e. among equal scores the class
    with the higher id (verb/noun) or the later dictionary entry (action) ranks first.

    Args:
        submission: a dictionary that passes :func:`validate_submission`.
        narration_ids: the N ids, in the order of the labels.
        verb_labels, noun_labels: ``(N,)`` ground truth.
        tail_verbs, tail_nouns, unseen, k: as :func:`epic_subsets`.
    """
    ids = [str(i) for i in narration_ids]
    results = submission["results"]
    n_verbs = len(results[ids[0]]["verb"])
    n_nouns = len(results[ids[0]]["noun"])
    verb = np.array([[results[u]["verb"][str(c)] for c in range(n_verbs)] for u in ids], dtype=np.float64)
    noun = np.array([[results[u]["noun"][str(c)] for c in range(n_nouns)] for u in ids], dtype=np.float64)
    yv = _labels_np(verb_labels, len(ids), n_verbs, "verb_labels")
    yn = _labels_np(noun_labels, len(ids), n_nouns, "noun_labels")
    ya = action_class(yv, yn)
    action_hits = np.zeros(len(ids), dtype=bool)
    for i, u in enumerate(ids):
        keys = list(results[u]["action"])
        ids_a = np.array([action_class(int(v), int(n)) for v, n in (key.split(",") for key in keys)])
        order = np.argsort(np.array([results[u]["action"][key] for key in keys]), kind="stable")[::-1]
        action_hits[i] = ya[i] in ids_a[order[:k]]
    hits = {"verb": topk_hits(verb, yv, k), "noun": topk_hits(noun, yn, k), "action": action_hits}
    return _subset_table(hits, {"verb": yv, "noun": yn, "action": ya}, tail_verbs, tail_nouns, unseen)
