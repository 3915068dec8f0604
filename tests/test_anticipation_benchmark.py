"""The anticipation benchmark's wiring (lecturekit.analysis.anticipation) on a small world.

Scores of the label-only rows are recomputed here, independently, with the loop-based EK-100
reference (tests/reference/ek100_recall.py) and a hand-written tail rule; an untrained model must
sit near chance; a briefly trained RU-LSTM must beat chance clearly. Nothing here claims that a
video model beats the n-gram on true past labels (on ToyKitchens it does not).
"""

import numpy as np
import pytest
import torch

from lecturekit.analysis.aga import counterfactual_past
from lecturekit.analysis.anticipation import (
    AnticipationHead, epic_tails, feature_difference, format_table, load_anticipation_data, predict_probs,
    run_benchmark, score_anticipation, summarize, train_anticipation,
)
from lecturekit.data.baselines import bayes_next_action, ngram_next_action
from lecturekit.data.toykitchens import ToyKitchens
from reference import ek100_recall as ref

SMALL = dict(seed=1, num_kitchens=5, unseen_kitchens=1, videos_per_kitchen=4)   # 252 train / 90 test rows
EPOCHS = 15
CHANCE_MT5R = 5 / 57          # expected class-mean top-5 recall of random scores over 57 actions


@pytest.fixture(scope="module")
def world():
    return ToyKitchens(**SMALL)


@pytest.fixture(scope="module")
def data(world):
    return load_anticipation_data(world, ("train", "test"), cache=False, device="cpu")


@pytest.fixture(scope="module")
def result(world, data):
    torch.set_num_threads(1)
    return run_benchmark(world, data, ["rulstm", "aga"], eval_split="test", epochs=EPOCHS, seeds=(0,))


@pytest.fixture(scope="module")
def trained_aga(world, data):
    """The benchmark's AGA row re-trained on its own (``run_benchmark`` keeps scores, not models):
    same function, recipe, epochs and seed as ``result`` (about 3 s on one core)."""
    torch.set_num_threads(1)
    head, _ = train_anticipation("aga", data["train"], len(world.actions), epochs=EPOCHS, seed=0)
    return head.eval()


def _tail(labels, coverage=0.8):
    """EK-100 tail rule written out: classes by count (desc, then id), head until 80% covered."""
    counts = {}
    for y in labels:
        counts[int(y)] = counts.get(int(y), 0) + 1
    order = sorted(counts, key=lambda c: (-counts[c], c))
    covered, head = 0, set()
    for c in order:
        if covered / len(labels) >= coverage:
            break
        head.add(c)
        covered += counts[c]
    return {c for c in counts if c not in head}


def _ref_mt5r(probs, labels, rows):
    rows = np.nonzero(rows)[0]
    return ref.mean_topk_recall([list(probs[i]) for i in rows], [int(labels[i]) for i in rows], 5)


@pytest.mark.slow
@pytest.mark.parametrize("row", ["ngram2", "bayes"])
def test_label_baseline_scores_equal_a_direct_computation(world, data, result, row):
    view = world.anticipation("test", tau_a=1.0, tau_o=2.0, frames=8)
    probs = ngram_next_action(world, view, n=2) if row == "ngram2" else bayes_next_action(world, view)
    lab = data["test"].labels
    assert np.array_equal(lab["action"], view.labels["action"])
    got = result["rows"][row]["scores"][0]
    n = len(lab["action"])
    everyone = np.ones(n, dtype=bool)
    assert got["mt5r"]["overall"]["action"] == pytest.approx(_ref_mt5r(probs, lab["action"], everyone), abs=1e-12)
    unseen = lab["unseen"].astype(bool)
    assert unseen.any() and (~unseen).any()
    assert got["mt5r"]["unseen"]["action"] == pytest.approx(_ref_mt5r(probs, lab["action"], unseen), abs=1e-12)
    assert got["mt5r"]["seen"]["action"] == pytest.approx(_ref_mt5r(probs, lab["action"], ~unseen), abs=1e-12)
    tail_v, tail_n = _tail(data["train"].labels["verb"]), _tail(data["train"].labels["noun"])
    tail_rows = np.array([v in tail_v or c in tail_n for v, c in zip(lab["verb"], lab["noun"])])
    assert tail_rows.any()
    assert got["mt5r"]["tail"]["action"] == pytest.approx(_ref_mt5r(probs, lab["action"], tail_rows), abs=1e-12)
    table = np.asarray(world.actions_table)
    verb_probs = np.array(ref.marginalize(probs, table[:, 0], len(world.verbs)))
    assert got["mt5r"]["overall"]["verb"] == pytest.approx(_ref_mt5r(verb_probs, lab["verb"], everyone), abs=1e-12)
    assert got["top1"] == pytest.approx(ref.topk_accuracy(probs, lab["action"], 1), abs=1e-12)
    assert got["top5"] == pytest.approx(ref.topk_accuracy(probs, lab["action"], 5), abs=1e-12)


@pytest.mark.slow
def test_tails_follow_the_ek100_rule_on_the_train_split(data, result):
    assert set(result["tails"]["verbs"]) == _tail(data["train"].labels["verb"])
    assert set(result["tails"]["nouns"]) == _tail(data["train"].labels["noun"])


@pytest.mark.slow
def test_untrained_model_is_near_chance(world, data):
    ev = data["test"]
    tails = epic_tails(data["train"].labels)
    present = len(np.unique(ev.labels["action"]))
    for seed in (0, 1):
        torch.manual_seed(seed)
        head = AnticipationHead("rulstm", ev.features.shape[-1], len(world.actions))
        s = score_anticipation(predict_probs(head, ev.features), ev.labels, world.actions_table, tails)
        # an (almost) input-independent ranking recalls at most 5 of the present classes: 5 / 37 here
        assert s["mt5r"]["overall"]["action"] <= 5 / present + 0.02
        assert s["mt5r"]["overall"]["action"] < 2 * CHANCE_MT5R


@pytest.mark.slow
def test_briefly_trained_rulstm_beats_chance_clearly(result):
    s = summarize(result["rows"]["rulstm"])
    assert s["overall_action"] > 2 * CHANCE_MT5R          # measured 0.29 after 15 epochs (chance 0.088)
    assert s["top5"] > 2 * 5 / 57
    chance_row = summarize(result["rows"]["chance"])
    assert chance_row["overall_action"] < s["overall_action"]


@pytest.mark.slow
def test_every_row_is_scored_and_printed(result):
    assert list(result["rows"]) == ["chance", "ngram1", "ngram2", "ngram3", "bayes", "cascade", "rulstm", "aga"]
    text = format_table(result)
    for name in result["rows"]:
        assert name in text
    for name in ("rulstm", "aga"):
        s = summarize(result["rows"][name])
        assert all(0.0 <= s[k] <= 1.0 for k in ("overall_action", "unseen_action", "tail_action", "seen_action"))
        assert result["rows"][name]["train"][0]["seconds"] > 0


def test_feature_difference_and_bad_inputs():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4) ** 2
    d = feature_difference(x)
    assert torch.equal(d[:, 0], torch.zeros(2, 4))
    assert torch.equal(d[:, 1:], x[:, 1:] - x[:, :-1])
    head = AnticipationHead("rulstm_fusion", 8, 5)
    assert head(torch.randn(2, 4, 16)).shape == (2, 4, 5)     # [RGB ; delta] split into two streams
    with pytest.raises(ValueError):
        head(torch.randn(2, 4, 8))                           # one stream where two are expected
    with pytest.raises(ValueError, match="no benchmark adapter"):
        AnticipationHead("c3d", 8, 5)
    with pytest.raises(ValueError, match="one column per action"):
        score_anticipation(np.ones((3, 4)), {}, np.zeros((5, 2), dtype=np.int64), None)


# the first 20 test rows whose window shows something (too-early windows are excluded: their
# frames are all the first frame repeated, so every attention pattern reads the same embedding
# and no past prediction can change the output; measured: p(target) 0.0858 -> 0.0858)
COUNTERFACTUAL_ROWS = 20


@pytest.mark.slow
def test_counterfactual_search_reaches_a_target_on_toykitchens(world, data, trained_aga):
    """AGA's backward analysis on real ToyKitchens clips: the target of each row is the trained
    model's SECOND-ranked anticipation (a plausible alternative it already considers); only the
    7 past-prediction slots that the last step reads are optimised (frame embeddings, e_t and the
    weights stay fixed). Every row's target gains probability; the target becomes the prediction
    on 8 of the 20 rows (seed 1 world, 15 epochs; test rows 3, 4, 6, 8, 12-15). The
    others stall below the top action: the gate (about 0.53) keeps half of the state on the
    current frame, and where the target is reached it wins narrowly -- a weakly trained model
    (top-5 0.62) with flat predictions. (On the first world, before the recipes were balanced,
    3 of the first 5 rows were reached.)"""
    ev = data["test"]
    names = world.actions
    probs = predict_probs(trained_aga, ev.features)
    assert summarize({"scores": [score_anticipation(probs, ev.labels, world.actions_table,
                                                    epic_tails(data["train"].labels))]})["top5"] > 2 * 5 / 57
    model = trained_aga.model
    dev = next(model.parameters()).device
    weights = [p.detach().clone() for p in model.parameters()]
    reached, report = [], []
    rows = np.nonzero(np.asarray(ev.labels["too_early"]) == 0)[0][:COUNTERFACTUAL_ROWS]
    for i in rows.tolist():
        ranked = np.argsort(-probs[i])
        top1, target = int(ranked[0]), int(ranked[1])
        r = counterfactual_past(model, ev.features[i].to(dev), target, iters=300, lr=0.5, k=3)
        # without optimisation the target is not what the model predicts
        assert r.prediction_before == top1 != target
        assert r.target_prob_before == pytest.approx(probs[i, target], abs=1e-5)
        assert r.target_prob_before < probs[i, top1]
        assert r.step == ev.features.shape[1] - 1 and r.after_topk.shape == (r.step, 3)
        assert r.target_prob_after > r.target_prob_before, r.table(names)
        reached.append(r.reached)
        report.append(f"row {i} (true next action {names[int(ev.labels['action'][i])]}):\n" + r.table(names))
    text = "\n".join(report)
    print(text)
    assert all(torch.equal(p, q) for p, q in zip(weights, model.parameters())), "weights must stay frozen"
    assert any(reached), text                    # the acceptance point: at least one target reached
    assert sum(reached) >= 6, f"reached {sum(reached)}/{COUNTERFACTUAL_ROWS} (measured 8/20)\n{text}"


def test_cascade_with_the_true_last_action_is_the_bigram_row(world):
    from lecturekit.analysis.anticipation import bigram_after

    view = world.anticipation("test")
    A = len(world.actions)
    last = view.labels["history"][:, -1]
    onehot = np.zeros((len(view), A + 1))
    onehot[np.arange(len(view)), np.where(last < 0, A, last)] = 1
    np.testing.assert_allclose(bigram_after(world, onehot), ngram_next_action(world, view, n=2), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="nothing yet"):
        bigram_after(world, onehot[:, :A])


@pytest.mark.slow
def test_cascade_row_recognises_the_last_action_and_is_scored(result):
    row = result["rows"]["cascade"]
    assert row["seeds"] == [0] and len(row["scores"]) == 1
    recognised = row["train"][0]["recognition_top1"]
    assert recognised > 5 / 58, recognised     # far above guessing among 57 actions + "nothing yet"
    chance = result["rows"]["chance"]["scores"][0]["mt5r"]["overall"]["action"]
    assert row["scores"][0]["mt5r"]["overall"]["action"] > chance + 0.1
    assert "feat. cascade" in format_table(result)


@pytest.mark.slow
def test_horst_learns_from_the_temporal_encoders_maps(world):
    """On pixels HORST stayed at chance; on the encoder's maps a short training is far above it."""
    data = load_anticipation_data(world, ("train", "test"), encoder="toykitchens_tsm_online", maps=True,
                                  cache=False, device="cpu")
    tr, te = data["train"], data["test"]
    assert tr.inputs("horst").shape[1:] == (64, 8, 4, 4) and tr.inputs("horst").dtype == torch.float32
    torch.set_num_threads(1)
    head, _ = train_anticipation("horst", tr, len(world.actions), epochs=EPOCHS, seed=0, hidden=(16,))
    tails = epic_tails(tr.labels)
    score = score_anticipation(predict_probs(head, te.inputs("horst")), te.labels, np.asarray(world.actions_table), tails)
    # measured 0.245-0.328 over seeds 0-4 (chance 0.088); the threshold keeps 0.05 below the worst
    assert score["mt5r"]["overall"]["action"] > CHANCE_MT5R + 0.1, score["mt5r"]["overall"]


@pytest.mark.slow
def test_benchmark_script_quick_mode_runs_end_to_end(tmp_path):
    """``scripts/bench_anticipation.py --quick`` (2 epochs, one seed) wires every row end to end
    on the course's world; it writes only where asked."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(root / "scripts" / "bench_anticipation.py"), "--quick", "--models",
                           "rulstm", "aga", "--out", str(out)], capture_output=True, text=True, timeout=900,
                          env={**__import__("os").environ, "LECTUREKIT_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {"chance", "ngram2", "bayes", "cascade", "rulstm", "aga", "horst"} <= set(result["rows"])
    assert result["settings"]["encoder"] == "toykitchens_tsm_online"
    assert result["rows"]["horst"]["kind"] == "feature maps"
    assert "feat. cascade" in proc.stdout and "total" in proc.stdout


def test_stored_benchmark_shows_what_the_course_says():
    """The shipped tables (scripts/bench_anticipation.py, both encoders): temporal features, the
    cascade row, every learned family (HORST included) far above chance, and time in the features
    helping every row. README's table is made from these files."""
    from lecturekit import resources

    temporal = resources.load_json("results/anticipation_toykitchens.json")
    frame = resources.load_json("results/anticipation_toykitchens_frame_cnn.json")
    assert temporal["settings"]["encoder"] == "toykitchens_tsm_online"
    assert frame["settings"]["encoder"] == "toykitchens_frame_cnn"
    learned = ["rulstm", "rulstm_fusion", "ms_lstm_head", "avt_head", "aga", "aga_pixel", "aga_iam", "aga_nogate",
               "horst"]
    for table in (temporal, frame):
        rows = table["summary"]
        chance = rows["chance"]["overall_action"]
        assert "cascade" in rows and table["rows"]["horst"]["kind"] == "feature maps"
        for name in learned:
            assert rows[name]["overall_action"] >= chance + 0.25, (name, rows[name]["overall_action"], chance)
            assert rows[name]["n_seeds"] >= 3
    for name in learned + ["cascade"]:
        assert temporal["summary"][name]["overall_action"] > frame["summary"][name]["overall_action"], name
    assert temporal["summary"]["aga"]["n_seeds"] >= 5 and temporal["summary"]["aga_pixel"]["n_seeds"] >= 5


AUX_ROWS = {"aga+aux": "aga", "aga_pixel+aux": "aga_pixel", "avt_head+aux": "avt_head", "rulstm+aux": "rulstm"}


def _action_mt5r(row):
    return np.array([s["mt5r"]["overall"]["action"] for s in row["scores"]])


def test_stored_observed_action_rows_are_consistent():
    """The ``+aux`` rows of the shipped table (train_anticipation's observed-action loss, weight 1):
    same seeds and epochs as their plain rows, the dense labels they used recorded, every summary
    number recomputable from the per-seed scores, far above chance, and the whole script (old and
    new rows) inside the 15-minute budget on one thread (measured 485 s)."""
    from lecturekit import resources

    table = resources.load_json("results/anticipation_toykitchens.json")
    rows, summary = table["rows"], table["summary"]
    chance = summary["chance"]["overall_action"]
    for name, base in AUX_ROWS.items():
        row = rows[name]
        assert row["kind"] == rows[base]["kind"] + " + observed-action loss" and row["aux_weight"] == 1.0
        assert row["seeds"] == rows[base]["seeds"] and row["epochs"] == rows[base]["epochs"]
        want = "frame_action_ahead" if name.startswith("aga") else "frame_action"
        assert row["kwargs"].get("aux_labels", "frame_action") == want
        assert all(t["aux_weight"] == 1.0 and t["aux_labels"] == want for t in row["train"])
        assert len(row["scores"]) == len(row["seeds"]) >= 3
        again = summarize(row)
        for key, value in again.items():
            assert summary[name][key] == pytest.approx(value, abs=1e-12), (name, key)
        assert summary[name]["overall_action"] >= chance + 0.25, name
    assert table["settings"]["total_seconds"] < 900


def test_stored_observed_actions_help_aga_not_avt():
    """What the observed-action loss does on the shipped table (seed-paired, test action MT5R):
    AGA's per-step predictions trained on the dense labels (the released recipe) gain on every
    seed, with and without action-guided attention (aga: +2.3 / +3.8 / +6.1 / +7.3 / +6.1 points;
    aga_pixel: +5.1 / +2.4 / +3.5 / +6.5 / +6.0); AVT-h's own past-frame losses cost it on every
    seed (-6.7 / -6.7 / -7.4: its classifier, shared with the future logits, learns to name the
    action IN the frame, and the future feature it reads lies one sampled frame, 0.25 s, ahead,
    not tau_a = 1 s). RU-LSTM with a benchmark-side head changes sign with the seed (not asserted)."""
    from lecturekit import resources

    rows = resources.load_json("results/anticipation_toykitchens.json")["rows"]
    for name in ("aga+aux", "aga_pixel+aux"):
        gain = _action_mt5r(rows[name]) - _action_mt5r(rows[AUX_ROWS[name]])
        assert len(gain) >= 5 and gain.min() > 0.01, (name, gain)          # measured min 0.022
        assert gain.mean() > 2 * gain.std(ddof=1) / np.sqrt(len(gain))     # measured 0.051 vs 2 s.e. 0.018
    loss = _action_mt5r(rows["avt_head+aux"]) - _action_mt5r(rows["avt_head"])
    assert loss.max() < -0.03, loss                                         # measured max -0.067


def test_stored_dependency_matrix_does_not_recover_the_grammar():
    """Issue 14.5, measured negative and recorded as such: the rank correlation between a trained
    AGA's dependency matrix and the world's true transition probabilities stays near 0 on every
    seed, with the benchmark's loss (-0.056..0.007) AND with the dense observed-action loss
    (-0.065..0.021), although the latter trains the keys (the per-step predictions) on true
    dense action labels. If a change makes the matrix recover the grammar, this test must be
    replaced by a positive one."""
    from lecturekit import resources

    rows = resources.load_json("results/anticipation_toykitchens.json")["rows"]
    for name in ("aga", "aga+aux", "aga_iam", "aga_nogate"):
        rho = np.array([t["dependency_spearman"] for t in rows[name]["train"]])
        assert len(rho) == len(rows[name]["seeds"]) and np.abs(rho).max() < 0.15, (name, rho)   # measured max 0.105


def test_merge_benchmarks_joins_runs_over_disjoint_rows():
    """Splitting the stored table's rows (and one row's seeds) over two 'runs' and merging them
    gives back its rows and summary; runs that differ in the window or disagree on a row fail."""
    import copy

    from lecturekit import resources
    from lecturekit.analysis.anticipation import merge_benchmarks

    table = resources.load_json("results/anticipation_toykitchens.json")
    names = list(table["rows"])
    labels = [n for n in names if "seeds" not in table["rows"][n]]
    a, b = copy.deepcopy(table), copy.deepcopy(table)
    a["rows"] = {n: table["rows"][n] for n in names if n in labels or n in ("cascade", "rulstm") or names.index(n) % 2}
    b["rows"] = {n: copy.deepcopy(table["rows"][n]) for n in names if n not in a["rows"] or n in labels or n == "cascade"}
    b["rows"]["rulstm"] = {**copy.deepcopy(table["rows"]["rulstm"])}
    for key in ("seeds", "scores", "train"):                          # rulstm: seed 0 in a, seeds 0-2 in b
        a["rows"]["rulstm"] = {**a["rows"]["rulstm"], key: table["rows"]["rulstm"][key][:1]}
    merged = merge_benchmarks([a, b])
    assert list(merged["rows"]) == list(a["rows"]) + [n for n in b["rows"] if n not in a["rows"]]
    assert {n: merged["rows"][n] for n in names} == table["rows"]
    for name in names:
        assert merged["summary"][name] == pytest.approx(table["summary"][name], abs=1e-12), name
    assert merged["settings"]["total_seconds"] == pytest.approx(2 * table["settings"]["total_seconds"], abs=0.1)
    other = copy.deepcopy(b)
    other["settings"]["tau_o"] = 8.0
    with pytest.raises(ValueError, match="tau_o"):
        merge_benchmarks([a, other])
    wrong = copy.deepcopy(b)
    wrong["rows"]["cascade"]["scores"][0]["top1"] += 0.1
    with pytest.raises(ValueError, match="cascade"):
        merge_benchmarks([a, wrong])


MORE_DATA_FAMILIES = ["rulstm", "rulstm_fusion", "ms_lstm_head", "avt_head", "aga", "aga_pixel", "aga_iam", "aga_nogate",
                      "horst", "aga+aux", "aga_pixel+aux", "avt_head+aux", "rulstm+aux"]


def test_stored_more_data_benchmark_reaches_the_target_and_the_cascade():
    """The shipped table with 16 more training videos per seen kitchen and 8 s windows of 16
    frames (scripts/bench_anticipation.py --extra-train-videos 16 --tau-o 8 --frames 16; same
    test split, 240 windows): the course's target holds there. AVT-h reaches >= 0.75 action MT5R
    (>= 80 % of the Bayes ceiling) and is above the realistic cascade on every seed, paired by
    seed; every family is far above chance. With the default 673 training windows no learned row
    reaches the cascade (test_stored_benchmark_shows_what_the_course_says)."""
    from lecturekit import resources

    table = resources.load_json("results/anticipation_toykitchens_more_data.json")
    default = resources.load_json("results/anticipation_toykitchens.json")
    st = table["settings"]
    assert st["world"] == "ToyKitchens(seed=0, extra_train_videos=16)" and st["eval_split"] == "test"
    assert st["tau_o"] == 8.0 and st["frames"] == 16 and st["encoder"] == default["settings"]["encoder"]
    assert st["eval_rows"] == default["settings"]["eval_rows"] and st["train_rows"] > 5 * default["settings"]["train_rows"]
    rows, summary = table["rows"], table["summary"]
    chance = summary["chance"]["overall_action"]
    assert set(MORE_DATA_FAMILIES) <= set(rows), sorted(set(MORE_DATA_FAMILIES) - set(rows))
    for name in MORE_DATA_FAMILIES + ["cascade"]:
        assert len(rows[name]["scores"]) == len(rows[name]["seeds"]) >= 3, name
        for key, value in summarize(rows[name]).items():
            assert summary[name][key] == pytest.approx(value, abs=1e-12), (name, key)
        if name != "cascade":
            assert summary[name]["overall_action"] >= chance + 0.25, (name, summary[name]["overall_action"])
    avt = summary["avt_head"]["overall_action"]
    assert avt >= 0.75 and avt >= 0.8 * summary["bayes"]["overall_action"], avt
    by_seed = {s: x["mt5r"]["overall"]["action"] for s, x in zip(rows["cascade"]["seeds"], rows["cascade"]["scores"])}
    diff = np.array([x["mt5r"]["overall"]["action"] - by_seed[s]
                     for s, x in zip(rows["avt_head"]["seeds"], rows["avt_head"]["scores"])])
    assert len(diff) >= 3 and diff.min() > 0, diff                           # measured +0.9 .. +3.2 points
