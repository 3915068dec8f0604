"""Tests of lecturekit.metrics.classification: top-k accuracy, EK-100 mean top-5 recall and its
subsets, marginalisation, early-recognition curves and the submission JSON."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from lecturekit.metrics import (
    SubmissionError,
    accuracy_vs_observed,
    epic_subsets,
    evaluate_submission,
    make_submission,
    marginalize,
    mean_topk_recall,
    read_submission,
    topk_accuracy,
    topk_ranks,
    validate_submission,
    write_submission,
)
from lecturekit.data.ek100 import class_counts, tail_classes
from reference import ek100_recall as ref


def _digest_example():
    """Labels [0, 0, 0, 1]; the first three rows hit in the top 5, the last misses."""
    scores = np.zeros((4, 10))
    scores[:3, 0] = 1.0                       # class 0 ranked first
    scores[3] = np.arange(10) / 10.0          # top 5 = 9, 8, 7, 6, 5: label 1 missed
    return scores, np.array([0, 0, 0, 1])


def test_digest_example_top5_accuracy_and_mean_recall():
    """Digest §9: hits [1,1,1,0] give top-5 accuracy 0.75 and mean top-5 recall 0.5."""
    scores, labels = _digest_example()
    assert topk_accuracy(scores, labels, k=5) == 0.75
    assert mean_topk_recall(scores, labels, k=5) == 0.5


def test_torch_and_numpy_inputs_agree():
    scores, labels = _digest_example()
    t_scores, t_labels = torch.tensor(scores, dtype=torch.bfloat16), torch.tensor(labels)
    assert topk_accuracy(t_scores, t_labels, k=5) == 0.75
    assert mean_topk_recall(t_scores, t_labels, k=5) == 0.5


def test_absent_classes_never_enter_the_mean():
    """Adding score columns for classes no row carries leaves the mean unchanged."""
    scores, labels = _digest_example()
    wider = np.concatenate([scores, np.full((4, 30), -1.0)], axis=1)
    assert mean_topk_recall(wider, labels, k=5) == 0.5
    # restricting to classes {1, 7} keeps only class 1 (7 is absent): recall 0
    assert mean_topk_recall(scores, labels, k=5, classes=[1, 7]) == 0.0
    with pytest.raises(ValueError, match="none of the requested classes"):
        mean_topk_recall(scores, labels, k=5, classes=[7])


def test_ties_rank_higher_class_ids_first_like_the_official_scorer():
    """numpy's argsort(...)[:, ::-1] on a constant row puts K-1, K-2, ... first."""
    assert topk_ranks(np.zeros((1, 8)), 5).tolist() == [[7, 6, 5, 4, 3]]
    assert topk_accuracy(np.zeros((2, 8)), np.array([7, 0]), k=5) == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_naive_reference_on_random_data(seed):
    """Random scores with deliberate ties, random labels: library == loop-based reference."""
    rng = np.random.default_rng(seed)
    n, k_classes = 60, 12
    scores = rng.integers(0, 4, size=(n, k_classes)).astype(float)   # many ties
    labels = rng.integers(0, k_classes, size=n)
    for k in (1, 5):
        assert topk_accuracy(scores, labels, k) == pytest.approx(ref.topk_accuracy(scores, labels, k), abs=1e-12)
        assert mean_topk_recall(scores, labels, k) == pytest.approx(ref.mean_topk_recall(scores, labels, k), abs=1e-12)


def test_mean_recall_differs_from_accuracy_under_imbalance():
    """A majority-class predictor: high accuracy, low class-mean recall (the reason for the metric)."""
    labels = np.array([0] * 8 + [1, 2])
    scores = np.tile(np.array([1.0, 0.0, 0.0]), (10, 1))
    assert topk_accuracy(scores, labels, k=1) == 0.8
    assert mean_topk_recall(scores, labels, k=1) == pytest.approx(1 / 3)


def _random_epic(seed=0, n=80):
    rng = np.random.default_rng(seed)
    nv, nn_, pairs = 6, 8, np.array([(v, n_) for v in range(6) for n_ in range(8)])
    verb = rng.integers(0, nv, n)
    noun = rng.integers(0, nn_, n)
    action = verb * nn_ + noun
    return dict(
        verb_scores=rng.normal(size=(n, nv)), noun_scores=rng.normal(size=(n, nn_)),
        action_scores=rng.normal(size=(n, len(pairs))), verb_labels=verb, noun_labels=noun,
        action_labels=action, unseen=rng.random(n) < 0.3, pairs=pairs,
    )


def test_epic_subsets_nine_numbers_and_tail_union():
    d = _random_epic()
    tail_v, tail_n = [4, 5], [6, 7]
    out = epic_subsets(
        d["verb_scores"], d["noun_scores"], d["action_scores"], d["verb_labels"], d["noun_labels"],
        d["action_labels"], tail_verbs=tail_v, tail_nouns=tail_n, unseen=d["unseen"],
    )
    assert sorted(out) == ["overall", "tail", "unseen"]
    assert all(sorted(v) == ["action", "noun", "verb"] for v in out.values())
    # tail action rows = tail-verb rows UNION tail-noun rows (not the intersection)
    union = np.isin(d["verb_labels"], tail_v) | np.isin(d["noun_labels"], tail_n)
    inter = np.isin(d["verb_labels"], tail_v) & np.isin(d["noun_labels"], tail_n)
    assert union.sum() > inter.sum()
    s, y = d["action_scores"], d["action_labels"]
    assert out["tail"]["action"] == pytest.approx(ref.mean_topk_recall(s[union], y[union], 5))
    assert out["tail"]["action"] != pytest.approx(ref.mean_topk_recall(s[inter], y[inter], 5))
    vm = np.isin(d["verb_labels"], tail_v)
    assert out["tail"]["verb"] == pytest.approx(ref.mean_topk_recall(d["verb_scores"][vm], d["verb_labels"][vm], 5))
    u = d["unseen"]
    assert out["unseen"]["noun"] == pytest.approx(ref.mean_topk_recall(d["noun_scores"][u], d["noun_labels"][u], 5))
    assert out["overall"]["verb"] == pytest.approx(ref.mean_topk_recall(d["verb_scores"], d["verb_labels"], 5))
    no_unseen = epic_subsets(
        d["verb_scores"], d["noun_scores"], d["action_scores"], d["verb_labels"], d["noun_labels"],
        d["action_labels"], tail_verbs=tail_v, tail_nouns=tail_n,
    )
    assert all(math.isnan(v) for v in no_unseen["unseen"].values())


def test_tail_classes_head_is_the_smallest_prefix_reaching_80_percent():
    # counts: class 0: 50, 1: 30, 2: 10, 3: 6, 4: 4 -> head {0, 1} covers 80% exactly
    labels = np.repeat(np.arange(5), [50, 30, 10, 6, 4])
    assert tail_classes(class_counts(labels)) == [2, 3, 4]
    # 79% is not enough: with 0:50, 1:29, 2:11, ... the head needs class 2 too
    labels = np.repeat(np.arange(5), [50, 29, 11, 6, 4])
    assert tail_classes(class_counts(labels)) == [3, 4]


def test_marginalised_verb_probabilities_sum_to_one_and_match_reference():
    d = _random_epic(1, n=5)
    logits = torch.tensor(d["action_scores"])
    probs = logits.softmax(-1)
    verbs = marginalize(probs, d["pairs"][:, 0], 6)
    assert isinstance(verbs, torch.Tensor) and verbs.shape == (5, 6)
    torch.testing.assert_close(verbs.sum(-1), torch.ones(5, dtype=verbs.dtype))
    np.testing.assert_allclose(verbs.numpy(), ref.marginalize(probs.numpy(), d["pairs"][:, 0], 6), atol=1e-12)
    nouns = marginalize(probs.numpy(), d["pairs"][:, 1], 8)
    assert isinstance(nouns, np.ndarray)
    np.testing.assert_allclose(nouns.sum(-1), 1.0, atol=1e-12)


def test_accuracy_vs_observed_and_average_pooling():
    """Step 1 right, step 2 wrong: plain accuracy [1, 0]; average pooling keeps step 2 right
    when step 1 was confident enough, and never looks at later steps."""
    logits = torch.tensor([[[5.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])      # (N=1, T=3, K=2)
    frac, acc = accuracy_vs_observed(logits, [0])
    assert frac.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert acc.tolist() == [1.0, 0.0, 0.0]
    _, pooled = accuracy_vs_observed(logits, [0], average_pool=True)
    p = logits.softmax(-1)[0, :, 0].numpy()
    expect = [float(p[: t + 1].mean() > 0.5) for t in range(3)]
    assert pooled.tolist() == expect and expect[1] == 1.0
    # changing the last step does not change earlier pooled predictions
    later = logits.clone()
    later[0, 2] = torch.tensor([0.0, 50.0])
    assert accuracy_vs_observed(later, [0], average_pool=True)[1][:2].tolist() == expect[:2]


def _submission(n_verbs=5, n_nouns=25, seed=0):
    rng = np.random.default_rng(seed)
    ids = ["P01_01_0", "P01_01_1", "P18_02_7"]
    pairs = np.array([(v, n) for v in range(n_verbs) for n in range(n_nouns)])   # 125 actions
    action_scores = rng.normal(size=(3, len(pairs)))
    sub = make_submission(
        ids, rng.normal(size=(3, n_verbs)), rng.normal(size=(3, n_nouns)),
        torch.tensor(action_scores), pairs, sls=(1, 4, 3),
    )
    sub["_raw"] = (action_scores, pairs)
    return ids, sub, dict(num_verbs=n_verbs, num_nouns=n_nouns)


def test_submission_roundtrip_and_format(tmp_path):
    ids, sub, sizes = _submission()
    action_scores, pairs = sub.pop("_raw")
    assert sub["version"] == "0.2" and sub["challenge"] == "action_anticipation"
    entry = sub["results"]["P01_01_0"]
    assert sorted(entry["verb"], key=int) == [str(i) for i in range(5)]
    assert len(entry["action"]) == 100
    # the 100 kept actions are the 100 best-scored ones, with their own scores
    best = np.argsort(-action_scores[0])[:100]
    assert set(entry["action"]) == {f"{pairs[j, 0]},{pairs[j, 1]}" for j in best}
    assert entry["action"]["%d,%d" % tuple(pairs[best[0]])] == action_scores[0, best[0]]
    path = write_submission(tmp_path / "test.json", sub)
    back = read_submission(path)
    assert back == json.loads(json.dumps(sub))
    validate_submission(back, ids, **sizes)


def _break(sub, how):
    s = copy.deepcopy(sub)
    r = s["results"]
    first = next(iter(r))
    if how == "missing_id":
        del r[first]
    elif how == "extra_id":
        r["P99_99_9"] = copy.deepcopy(r[first])
    elif how == "missing_verb_key":
        del r[first]["verb"]["0"]
    elif how == "extra_noun_key":
        r[first]["noun"]["25"] = 0.1
    elif how == "non_numeric_score":
        r[first]["verb"]["1"] = "high"
    elif how == "nan_score":
        r[first]["noun"]["2"] = float("nan")
    elif how == "bool_score":
        r[first]["verb"]["2"] = True
    elif how == "malformed_action_key":
        key = next(iter(r[first]["action"]))
        r[first]["action"]["3;4"] = r[first]["action"].pop(key)
    elif how == "action_out_of_range":
        key = next(iter(r[first]["action"]))
        r[first]["action"]["9,1"] = r[first]["action"].pop(key)
    elif how == "too_few_actions":
        r[first]["action"].pop(next(iter(r[first]["action"])))
    elif how == "sls_out_of_range":
        s["sls_tl"] = 6
    elif how == "sls_missing":
        del s["sls_pt"]
    elif how == "wrong_version":
        s["version"] = "0.1"
    elif how == "wrong_challenge":
        s["challenge"] = "action_detection"
    elif how == "missing_action_block":
        del r[first]["action"]
    return s


@pytest.mark.parametrize("how", [
    "missing_id", "extra_id", "missing_verb_key", "extra_noun_key", "non_numeric_score", "nan_score",
    "bool_score", "malformed_action_key", "action_out_of_range", "too_few_actions", "sls_out_of_range",
    "sls_missing", "wrong_version", "wrong_challenge", "missing_action_block",
])
def test_validator_rejects_malformed_submissions(how):
    ids, sub, sizes = _submission()
    sub.pop("_raw")
    validate_submission(sub, ids, **sizes)               # the intact one passes
    with pytest.raises(SubmissionError):
        validate_submission(_break(sub, how), ids, **sizes)


def test_make_submission_refuses_small_action_vocabulary():
    with pytest.raises(ValueError, match="num_action_entries"):
        make_submission(["a"], np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 4)),
                        np.array([(0, 0), (0, 1), (1, 0), (1, 1)]), sls=(0, 0, 0))


def test_bad_shapes_raise_value_error():
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        topk_accuracy(np.zeros(5), np.zeros(5, dtype=int), 1)
    with pytest.raises(ValueError, match="one per row"):
        mean_topk_recall(np.zeros((4, 3)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        mean_topk_recall(np.zeros((2, 3)), np.array([0, 3]))


def test_evaluate_submission_matches_the_array_metrics():
    """Scoring the JSON (actions ranked from their 100 "v,n" entries, ids v*1000+n) gives the same
    9 numbers as the loop reference on the score arrays, since the top 5 lie within the top 100."""
    rng = np.random.default_rng(3)
    n, nv, nn_ = 40, 5, 25
    pairs = np.array([(v, c) for v in range(nv) for c in range(nn_)])
    verb, noun, action = rng.normal(size=(n, nv)), rng.normal(size=(n, nn_)), rng.normal(size=(n, len(pairs)))
    yv, yn = rng.integers(0, nv, n), rng.integers(0, nn_, n)
    action[np.arange(n)[:20], (yv * nn_ + yn)[:20]] += 3.0          # make half of the actions hits
    unseen = rng.random(n) < 0.4
    ids = [f"P{i:02d}_01_{i}" for i in range(n)]
    sub = make_submission(ids, verb, noun, action, pairs, sls=(0, 0, 0))
    tails = dict(tail_verbs=[3, 4], tail_nouns=list(range(15, 25)))
    got = evaluate_submission(sub, ids, yv, yn, unseen=unseen, **tails)
    ya = yv * nn_ + yn
    tv, tn = np.isin(yv, [3, 4]), np.isin(yn, list(range(15, 25)))
    rows = {"overall": [np.ones(n, bool)] * 3, "unseen": [unseen] * 3, "tail": [tv, tn, tv | tn]}
    for subset, masks in rows.items():
        for (task, sc, y), m in zip([("verb", verb, yv), ("noun", noun, yn), ("action", action, ya)], masks):
            assert got[subset][task] == pytest.approx(ref.mean_topk_recall(sc[m], y[m], 5)), (subset, task)
    assert got == epic_subsets(verb, noun, action, yv, yn, ya, unseen=unseen, **tails)


def test_confusion_counts_match_a_naive_count():
    from lecturekit.metrics import confusion_counts

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    naive = np.zeros((5, 5), int)
    for a, b in zip(y, p):
        naive[a, b] += 1
    assert np.array_equal(confusion_counts(y, p), naive)
    scores = np.eye(5)[p] + 0.01
    assert np.array_equal(confusion_counts(torch.tensor(y), torch.tensor(scores)), naive)
    assert np.array_equal(confusion_counts(torch.tensor(y), torch.tensor(scores).bfloat16()), naive)
    assert confusion_counts([0, 1], [1, 1], num_classes=3).shape == (3, 3)
    with pytest.raises(ValueError, match="same length"):
        confusion_counts([0, 1], [1])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        confusion_counts([0, 2], [1, 1], num_classes=2)


def test_submission_file_lives_in_its_own_module():
    import lecturekit.metrics as metrics
    import lecturekit.metrics.classification as classification
    import lecturekit.metrics.submission as submission

    for name in ("SubmissionError", "make_submission", "write_submission", "read_submission",
                 "validate_submission", "evaluate_submission"):
        assert getattr(metrics, name) is getattr(submission, name)
        assert not hasattr(classification, name)
