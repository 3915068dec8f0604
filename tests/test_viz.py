"""The visual toolkit: every plot returns a Figure with the expected axes in the course style,
bad inputs are refused, the live-curves callback updates one display in place (and headless
draws one final figure), and a notebook that trains with live curves leaves exactly one image."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from lecturekit import viz
from lecturekit.train import History, fit, seed_everything

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, 12, 16, 16), generator=g, dtype=torch.uint8)


def _check(fig, n_axes):
    assert isinstance(fig, Figure)
    assert len(fig.axes) == n_axes, f"expected {n_axes} axes, got {len(fig.axes)}"
    assert fig.dpi <= 100, "stored notebook outputs must stay small"
    return fig


def test_storyboard(clip):
    fig = _check(viz.storyboard(clip, fps=8), 12)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["0.00 s", "0.12 s", "0.25 s"]
    # frames are drawn as given: the first panel shows frame 0 in (H, W, C) order
    shown = fig.axes[0].images[0].get_array()
    assert np.array_equal(np.asarray(shown), clip[:, 0].permute(1, 2, 0).numpy())
    fig = _check(viz.storyboard(clip.float() / 255, max_frames=4), 4)
    assert [ax.get_title() for ax in fig.axes] == ["t=0", "t=4", "t=7", "t=11"]
    _check(viz.storyboard(clip[None]), 12)  # a batch of one is fine
    with pytest.raises(ValueError, match=r"\(C, T, H, W\)"):
        viz.storyboard(clip[0])
    with pytest.raises(ValueError, match="channels first"):
        viz.storyboard(clip.permute(1, 2, 3, 0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        viz.storyboard(clip.float())


def test_figures_stay_out_of_pyplot(clip):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    viz.storyboard(clip)
    viz.observed_fraction_curves({"a": ([0.5, 1.0], [0.2, 0.4])})
    assert plt.get_fignums() == before, "viz figures must not be registered with pyplot (double display)"


def test_action_timeline():
    truth = [0, 0, 1, 1, 1, -1, 2, 2]
    assert viz.segments_from_labels(truth) == [(0, 2, 0), (2, 5, 1), (6, 8, 2)]
    fig = _check(viz.action_timeline(truth, [1, 1, 1, 1, 1, 2, 2, 2], class_names=["a", "b", "c"], fps=4), 2)
    assert len(fig.axes[0].collections) == 3 and len(fig.axes[1].collections) == 2
    assert fig.axes[1].get_xlim()[1] == pytest.approx(2.0)  # 8 frames at 4 fps
    _check(viz.action_timeline([(0, 10, 3), (12, 20, 1)]), 1)
    with pytest.raises(ValueError, match="ends before it starts"):
        viz.action_timeline([(5, 2, 0)])


def test_anticipation_plot():
    times = np.linspace(0.0, 4.0, 9)
    scores = np.random.default_rng(0).normal(size=(9, 6))
    fig = _check(viz.anticipation_plot(5.0, tau_a=1.0, tau_o=2.0, action_end=6.0, action_label=2,
                                       past=[(0.5, 1.5, 1)], times=times, scores=scores, k=3), 2)
    lines = fig.axes[1].get_lines()
    assert len(lines) in (4, 5)  # top-3 (+ the true class if not among them) + the "now" marker
    assert [ln for ln in lines if ln.get_linestyle() == "--"][0].get_xdata()[0] == pytest.approx(4.0)
    _check(viz.anticipation_plot(5.0, tau_a=0.5), 1)
    with pytest.raises(ValueError, match="times"):
        viz.anticipation_plot(5.0, scores=scores)


def test_curves():
    fig = _check(viz.observed_fraction_curves({"CE": ([0.1, 0.5, 1.0], [0.2, 0.4, 0.8]),
                                               "anticipation": {0.1: 0.3, 1.0: 0.85}}, chance=0.1), 1)
    assert len(fig.axes[0].get_lines()) == 3
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        viz.observed_fraction_curves({"x": ([0.0, 1.0], [0.1, 0.2])})
    d = np.arange(1, 11)
    fig = _check(viz.gradient_norm_plot(d, {"rnn": 0.5 ** d, "lstm": np.ones(10)}), 1)
    assert fig.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="shape"):
        viz.gradient_norm_plot(d, {"rnn": np.ones(3)})


def test_confusion_matrix_with_groups():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 6, 200)
    groups = ["take", "put", "take", "open", "put", "take"]
    fig = _check(viz.confusion_matrix(y, y, class_names=list("abcdef"), groups=groups), 2)
    ax = fig.axes[0]
    # classes reordered by group: take (a, c, f), put (b, e), open (d)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "c", "f", "b", "e", "d"]
    assert {t.get_text() for t in ax.texts} >= {"take", "put", "open"}
    # perfect predictions, row-normalised: the diagonal is one
    mesh = ax.collections[0].get_array().reshape(6, 6)
    assert np.allclose(np.diag(mesh), 1.0)
    _check(viz.confusion_matrix(y, y, cbar=False), 1)
    with pytest.raises(ValueError, match="one group per class"):
        viz.confusion_matrix(y, y, groups=["a"])


def test_cam_and_attention(clip):
    cam = torch.zeros(12, 4, 4)
    cam[:, 0, 0] = 1.0
    cam[:, :2, :2] = 3.0                      # a hot 2x2 block keeps its value when upsampled
    fig = _check(viz.cam_overlay(clip, cam, max_frames=6, colorbar_label="gate |g|"), 6 + 1)  # frames + colour bar
    heat = fig.axes[0].images[1].get_array()
    assert heat.shape == (16, 16) and heat[0, 0] > heat[-1, -1]  # upsampled, hot corner kept
    bar = fig.axes[-1]
    assert bar.get_ylabel() == "gate |g|" and bar.get_ylim() == pytest.approx((0.0, 3.0))  # the map's own units
    _check(viz.cam_overlay(clip, torch.rand(4, 4)), 8 + 1)  # one map for the whole clip
    fig = _check(viz.attention_over_space(clip, torch.rand(12, 2, 2), max_frames=3), 3 + 1)
    assert "per frame" in fig.axes[-1].get_ylabel()
    with pytest.raises(ValueError, match=r"\(T=12, h, w\)"):
        viz.cam_overlay(clip, torch.rand(5, 4, 4))
    _check(viz.attention_over_time(torch.softmax(torch.randn(8), 0)), 1)
    _check(viz.attention_over_time(torch.rand(3, 8), query_labels=["q0", "q1", "q2"]), 2)
    fig = _check(viz.plot_dependency_matrix(torch.rand(4, 4), row_names=["a", "b", "c", "d"], center=0.5), 2)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="2-D"):
        viz.plot_dependency_matrix(torch.rand(4))


def test_param_table_and_plot():
    rows = [{"name": "c3d", "params": 78_409_573, "flops": 38.5e9},
            {"name": "r2plus1d_18", "params": 31_505_325, "flops": None}]
    table = viz.param_table(rows)
    text = str(table).splitlines()
    assert text[0].split() == ["name", "params", "flops"]
    assert text[2].split() == ["c3d", "78.41", "M", "38.50", "G"]
    assert text[3].split() == ["r2plus1d_18", "31.51", "M", "-"]
    assert "<table>" in table._repr_html_() and "78.41 M" in table._repr_html_()
    assert "78,409,573" in str(viz.param_table(rows, exact=True))
    _check(table.figure(), 1)
    _check(viz.params_flops_plot([{**rows[0]}, {**rows[1], "flops": 1e10}]), 1)
    with pytest.raises(ValueError, match="name"):
        viz.param_table([{"params": 3}])


def test_video_player_is_self_contained_and_size_capped(clip):
    player = viz.video_player(clip, fps=8, scale=2)
    def frames_of(markup):
        array = re.search(r"var srcs = \[(.*?)\];", markup, flags=re.S).group(1)
        return re.findall(r'"data:image/png;base64,([A-Za-z0-9+/=]+)"', array)

    srcs = frames_of(player.data)
    assert len(srcs) == 12 and "<script>" in player.data
    from PIL import Image
    import io

    first = np.asarray(Image.open(io.BytesIO(base64.b64decode(srcs[0]))))
    assert first.shape == (32, 32, 3)
    assert np.array_equal(first[::2, ::2], clip[:, 0].permute(1, 2, 0).numpy())
    one = len(srcs[0])
    capped = viz.video_player(clip, scale=2, max_bytes=5 * one)
    kept = frames_of(capped.data)
    assert 1 < len(kept) <= 5 and "every" in capped.data
    assert viz.video_player(clip, scale=2).data == player.data  # deterministic markup


def test_plot_history_and_live_curves_outside_a_notebook():
    h = History(records=[{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "val_accuracy": 0.3, "val_top5": 0.9}])
    _check(viz.plot_history(h), 3)
    _check(viz.plot_history(h, metrics=["accuracy"]), 2)
    seed_everything(0)
    x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    curves = viz.LiveCurves()
    fit(torch.nn.Linear(3, 2), (x, y), (x, y), epochs=2, device="cpu", progress=False, callbacks=[curves])
    assert curves.updates == 0 and curves.handle is None  # no kernel: nothing live
    _check(curves.figure, 2)


class _FakeDisplay:
    """Records display() calls the way IPython's display returns handles."""

    def __init__(self):
        self.calls, self.updates = [], 0
        outer = self

        class Handle:
            def update(self, obj):
                outer.updates += 1

        self.Handle = Handle

    def __call__(self, obj, display_id=None):
        self.calls.append((type(obj).__name__, display_id))
        return self.Handle() if display_id else None


@pytest.mark.parametrize("headless", [True, False])
def test_live_curves_use_one_display_handle(monkeypatch, headless):
    from lecturekit.viz import live

    fake = _FakeDisplay()
    monkeypatch.setattr(live, "_kernel_display", lambda: fake)
    monkeypatch.setenv("LECTUREKIT_HEADLESS", "1" if headless else "0")
    x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    curves = viz.LiveCurves()
    fit(torch.nn.Linear(3, 2), (x, y), (x, y), epochs=3, device="cpu", progress=False, callbacks=[curves])
    if headless:
        assert fake.calls == [("Image", None)] and fake.updates == 0  # one final figure
    else:
        assert fake.calls == [("Image", True)]  # one output, created once ...
        assert fake.updates == 3 + 1 and curves.updates == 3  # ... updated in place per epoch + final


def test_import_viz_is_light():
    code = ("import sys, torch, numpy\n"
            "baseline = set(sys.modules)  # whatever torch itself imports is not ours\n"
            "import lecturekit, lecturekit.viz, lecturekit.train\n"
            "heavy = [m for m in ('matplotlib', 'seaborn', 'ipywidgets', 'IPython', 'tqdm')\n"
            "         if m in sys.modules and m not in baseline]\n"
            "assert not heavy, heavy\n"
            "lecturekit.viz.course_style\n"
            "assert 'matplotlib' in sys.modules and 'ipywidgets' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.slow
def test_headless_notebook_training_leaves_one_image_and_no_stderr(tmp_path, monkeypatch):
    """Execute tests/notebooks_fixture/live_curves.ipynb in a kernel of this environment with
    LECTUREKIT_HEADLESS=1 only (TQDM_DISABLE removed: the headless switch alone must silence the
    progress bar). Then, in the same kernel, a live run must also leave one image output: the
    display handle is updated in place (nbclient applies update_display_data like a browser);
    and a viz Figure as a cell's last expression shows once, as PNG."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LECTUREKIT_HEADLESS", "1")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    nb = nbformat.read(ROOT / "tests" / "notebooks_fixture" / "live_curves.ipynb", as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=180, allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    live_cell = nbformat.v4.new_code_cell(
        "import lecturekit\n"
        "lecturekit.set_headless(False)\n"
        "live = viz.LiveCurves()\n"
        "_ = fit(model, (x[:96], y[:96]), (x[96:], y[96:]), epochs=3, batch_size=16, device='cpu',\n"
        "        progress=False, callbacks=[live])\n"
        "print('live updates', live.updates)"
    )
    figure_cell = nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "fig = viz.storyboard(torch.zeros(3, 2, 8, 8, dtype=torch.uint8))\n"
        "print('pyplot figures', len(plt.get_fignums()))\n"
        "fig"
    )
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        for extra in (live_cell, figure_cell):
            nb.cells.append(extra)
            client.execute_cell(extra, len(nb.cells) - 1)

    images = [o for o in outputs if "image/png" in o.get("data", {})]
    stderr = [o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert len(images) == 1, [(o.output_type, list(o.get("data", {}))) for o in outputs]
    assert stderr == []
    assert not any("widget" in k for o in outputs for k in o.get("data", {})), "no progress widget when headless"
    assert "4 0" in nb.cells[3].outputs[-1]["text"]  # 4 epochs, no live redraws

    live_out = live_cell.outputs
    assert sum("image/png" in o.get("data", {}) for o in live_out) == 1, live_out
    assert "live updates 3" in "".join(o.get("text", "") for o in live_out if o.output_type == "stream")
    assert not any(o.output_type == "stream" and o.name == "stderr" for o in live_out)

    # a returned Figure shows exactly once, as PNG, whatever the backend (here MPLBACKEND=Agg)
    fig_out = figure_cell.outputs
    assert [o.output_type for o in fig_out] == ["stream", "execute_result"], fig_out
    assert "image/png" in fig_out[1]["data"] and "pyplot figures 0" in fig_out[0]["text"]
