"""Architecture diagrams drawn with matplotlib (no image files shipped).

    fusion_diagram   where the fusion networks of Karpathy et al. (CVPR 2014) merge time:
                     single frame, late, early and slow fusion, one panel each, with the frames
                     every unit of every layer sees

    shift_diagram    TSM's temporal shift on a (channels x frames) feature map, before and after

    two_stream_diagram   the two-stream network: RGB stream, motion stream on stacked frame
                     differences or flow, late fusion of the softmax scores (notebook 05)

    ata_diagram      ATA's align - attend - de-align along patch trajectories (notebook 06)

Every function returns a Figure outside pyplot (shown once in a notebook), in the course style.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .style import course_style, new_figure

__all__ = ["ata_diagram", "fusion_diagram", "shift_diagram", "two_stream_diagram"]

_CONV = ("#f6c9c6", "#c0392b")      # (face, edge): convolution units
_FC = ("#ffe6a8", "#d68910")        # fully connected units
_OUT = ("#cfe8cf", "#2e7d32")       # the clip prediction


@dataclass
class _Unit:
    x: float                  # horizontal position (in frame units)
    inputs: tuple[int, ...]   # indices into the row below
    seen: frozenset           # the frames in this unit's temporal receptive field


def _frames(t: int) -> list[_Unit]:
    return [_Unit(float(i), (), frozenset({i})) for i in range(t)]


def _per_unit(row: list[_Unit]) -> list[_Unit]:
    """One unit above each unit of ``row`` (a layer applied to every time step, shared weights)."""
    return [_Unit(u.x, (i,), u.seen) for i, u in enumerate(row)]


def _merge(row: list[_Unit], pick: Sequence[int] | None = None) -> list[_Unit]:
    """One unit that sees the units ``pick`` of ``row`` (all by default)."""
    pick = range(len(row)) if pick is None else pick
    xs = [row[i].x for i in pick]
    return [_Unit(sum(xs) / len(xs), tuple(pick), frozenset().union(*(row[i].seen for i in pick)))]


def _temporal(row: list[_Unit], extent: int, stride: int) -> list[_Unit]:
    """A convolution over time with ``extent`` and ``stride``, valid in time (no padding)."""
    n = (len(row) - extent) // stride + 1
    if n < 1:
        raise ValueError(f"temporal extent {extent} does not fit {len(row)} time steps")
    return [_merge(row, range(j * stride, j * stride + extent))[0] for j in range(n)]


def _stack(first: list[_Unit], convs: int, fcs: int, slow=()) -> list[list[_Unit]]:
    """Rows conv1..conv{convs}, fc1..fc{fcs} above the conv1 row ``first`` (slow: layers 2.. of
    ``slow`` are temporal convolutions); fc1 merges whatever time steps are left."""
    rows = [first]
    for layer in range(1, convs):
        rows.append(_temporal(rows[-1], *slow[layer]) if layer < len(slow) else _per_unit(rows[-1]))
    rows.append(_merge(rows[-1]))
    for _ in range(1, fcs):
        rows.append(_per_unit(rows[-1]))
    return rows


def _models(frames: int, convs: int, fcs: int, slow, late_frames) -> list[tuple[str, str, list[list[_Unit]]]]:
    """(title, caption, rows above the frames) per panel; the last row is the clip prediction."""
    f = _frames(frames)
    a, b = late_frames
    single = [_per_unit(f)]
    for _ in range(1, convs + fcs):
        single.append(_per_unit(single[-1]))
    single.append(_merge(single[-1]))                                     # average of the predictions
    late = _stack([_Unit(float(a), (a,), frozenset({a})), _Unit(float(b), (b,), frozenset({b}))], convs, fcs)
    pooled = _stack(_per_unit(f), convs, fcs)
    early = _stack(_merge(f), convs, fcs)
    slow_rows = _stack(_temporal(f, *slow[0]), convs, fcs, slow)
    for rows in (late, pooled, early, slow_rows):
        rows.append(_per_unit(rows[-1]))                                  # softmax of the last fc
    span = " -> ".join(str(len(r[0].seen)) for r in slow_rows[: len(slow)])
    return [
        ("single frame", "every frame on its own;\nthe predictions are averaged", single),
        ("late fusion (paper)", f"two towers on frames {a} and {b},\nconcatenated at fc1", late),
        ("late fusion, pooled", "a tower on every frame; fc1 sees\ntheir mean: blind to the order", pooled),
        ("early fusion", f"conv1 sees all {frames} frames\nat once, then a 2D network", early),
        ("slow fusion", f"3D convs merge time slowly:\nconv1-{len(slow)} see {span} frames", slow_rows),
    ]


def fusion_diagram(*, frames: int = 8, convs: int = 4, fcs: int = 2,
                   slow: Sequence[tuple[int, int]] = ((2, 2), (2, 2), (2, 2)),
                   late_frames: tuple[int, int] | None = None, title: str | None = None):
    """Where time is merged: single frame, late (paper and pooled), early and slow fusion.

    After Fig. 1 of Karpathy et al., "Large-scale Video Classification with Convolutional Neural
    Networks" (CVPR 2014), redrawn for the course. One panel per network: the input frames at the
    bottom (time runs left to right), then one row per layer (conv rows red, fc rows yellow, the
    clip prediction green). A box is a layer applied at one time step; boxes in one row share
    their weights; the lines go to the inputs a box combines, and **the number in a box is how
    many frames it sees** (its temporal receptive field). Greyed frames are never looked at.

    The defaults are the course's ``small`` presets (8 frames, 4 convs, slow fusion with temporal
    extent 2 and stride 2 in conv1-3, late fusion on frames 0 and 7); the paper's networks are
    ``frames=10, convs=5, slow=((4, 2), (2, 2), (2, 2))``.

    Args:
        frames: T. convs, fcs: conv and fc layers (the last fc gives the class scores).
        slow: ``(extent, stride)`` of slow fusion's temporal convs, from conv1 up.
        late_frames: the two frames of the paper's late fusion (default: the first and last).
        title: the figure's title (``None``: a default one; ``""``: none).
    """
    if frames < 2 or convs < 1 or fcs < 1 or not slow or len(slow) > convs:
        raise ValueError("fusion_diagram: need frames >= 2, convs >= 1, fcs >= 1 and 1 <= len(slow) <= convs")
    late_frames = (0, frames - 1) if late_frames is None else tuple(late_frames)
    if len(late_frames) != 2 or not all(0 <= t < frames for t in late_frames):
        raise ValueError(f"late_frames: two frame indices in [0, {frames}), got {late_frames}")
    models = _models(frames, convs, fcs, slow, late_frames)
    names = ["frames"] + [f"conv{i}" for i in range(1, convs + 1)] + [f"fc{i}" for i in range(1, fcs + 1)] + ["prediction"]
    with course_style():
        from matplotlib.patches import FancyBboxPatch, Rectangle

        fig = new_figure(figsize=(2.05 * len(models) + 0.5, 0.36 * len(names) + 1.5))
        axes = fig.subplots(1, len(models))
        box_w, box_h = 0.72, 0.5
        for p, (ax, (name, caption, rows)) in enumerate(zip(axes, models)):
            ax.set_xlim(-0.7, frames - 0.3)
            ax.set_ylim(-0.9, len(names) - 0.4)
            ax.set_xticks([])
            ax.grid(False)
            for side in ("left", "bottom"):
                ax.spines[side].set_visible(False)
            ax.set_title(name, fontsize=9)
            ax.text((frames - 1) / 2, -0.75, caption, ha="center", va="top", fontsize=7, color="0.25")
            used = {i for i in range(frames) if any(i in u.inputs for u in rows[0])}
            below = _frames(frames)
            for t, u in enumerate(below):                                # the input frames
                colour = _time_colour(t / max(frames - 1, 1)) if t in used else "0.9"
                ax.add_patch(Rectangle((u.x - 0.36, -0.3), 0.72, 0.6, facecolor=colour,
                                       edgecolor="0.3" if t in used else "0.75", lw=0.6))
                ax.text(u.x, 0, str(t), ha="center", va="center", fontsize=6,
                        color="white" if t in used else "0.6")
            for level, row in enumerate(rows, start=1):
                face, edge = _OUT if level == len(rows) else (_CONV if level <= convs else _FC)
                for u in row:
                    for i in u.inputs:                                   # what this unit combines
                        ax.plot([u.x, below[i].x], [level - box_h / 2, level - 1 + (0.3 if level == 1 else box_h / 2)],
                                color="0.55", lw=0.6, zorder=1)
                    ax.add_patch(FancyBboxPatch((u.x - box_w / 2, level - box_h / 2), box_w, box_h,
                                                boxstyle="round,pad=0,rounding_size=0.08",
                                                facecolor=face, edgecolor=edge, lw=0.8, zorder=2))
                    ax.text(u.x, level, str(len(u.seen)), ha="center", va="center", fontsize=6.5, zorder=3)
                below = row
            ax.set_yticks(range(len(names)), names)
            ax.tick_params(axis="y", length=0, labelleft=p == 0)
        fig.suptitle("where time is merged (after Karpathy et al., CVPR 2014, Fig. 1)\n"
                     "the number in a box is how many frames it sees; the boxes of a row share their weights"
                     if title is None else title, fontsize=9)
    return fig


def _time_colour(v: float):
    """The colour of time ``v`` in [0, 1] (first frame dark blue, last frame yellow-green)."""
    import matplotlib

    return matplotlib.colormaps["viridis"](0.1 + 0.75 * v)


def shift_diagram(*, channels: int = 8, frames: int = 6, fold_div: int = 4, title: str | None = None):
    """TSM's temporal shift as a picture: a (channels x frames) feature map before and after.

    After Fig. 1 of Lin, Gan, Han, "TSM: Temporal Shift Module for Efficient Video Understanding"
    (ICCV 2019, https://arxiv.org/abs/1811.08383), redrawn for the course. Each cell is one
    channel at one frame, coloured (and numbered) by the frame its value comes from. After the
    offline shift the first ``channels // fold_div`` rows hold the NEXT frame, the following as
    many the PREVIOUS frame, the rest are unchanged; hatched cells are the zero padding at the
    ends of the clip. ``fold_div=4`` (half the rows move) keeps the picture readable; TSM's
    default moves a quarter of the channels (``fold_div=8``).
    """
    fold = channels // fold_div
    if fold < 1 or 2 * fold > channels or frames < 2:
        raise ValueError(f"shift_diagram: need 1 <= channels // fold_div <= channels / 2 and frames >= 2, "
                         f"got channels={channels}, fold_div={fold_div}, frames={frames}")

    def source(c: int, t: int):
        if c < fold:
            return t + 1 if t + 1 < frames else None              # looks at the next frame
        if c < 2 * fold:
            return t - 1 if t >= 1 else None                      # looks at the previous frame
        return t

    with course_style():
        from matplotlib.patches import FancyArrowPatch, Rectangle

        fig = new_figure(figsize=(2 * 0.42 * frames + 1.6, 0.36 * channels + 1.3))
        axes = fig.subplots(1, 2)
        for ax, shifted in zip(axes, (False, True)):
            for c in range(channels):
                for t in range(frames):
                    src = source(c, t) if shifted else t
                    y = channels - 1 - c
                    if src is None:
                        ax.add_patch(Rectangle((t, y), 1, 1, facecolor="white", edgecolor="0.5", hatch="///", lw=0.5))
                        continue
                    ax.add_patch(Rectangle((t, y), 1, 1, facecolor=_time_colour(src / (frames - 1)),
                                           edgecolor="white", lw=1.0))
                    ax.text(t + 0.5, y + 0.5, str(src), ha="center", va="center", fontsize=7, color="white")
            ax.set_xlim(0, frames)
            ax.set_ylim(0, channels)
            ax.set_aspect("equal")
            ax.grid(False)
            ax.set_xticks([t + 0.5 for t in range(frames)], [str(t) for t in range(frames)])
            ax.set_xlabel("frame t")
            ax.set_yticks([channels - 0.5 - c for c in range(channels)], [f"c{c}" for c in range(channels)])
            for side in ("left", "bottom", "top", "right"):
                ax.spines[side].set_visible(False)
            ax.tick_params(length=0)
            ax.set_title("after the shift" if shifted else "feature map (value = its frame)", fontsize=9)
        right = axes[1]
        y_next, y_prev = channels - fold / 2, channels - 1.5 * fold
        right.add_patch(FancyArrowPatch((frames + 0.9, y_next), (frames + 0.1, y_next), arrowstyle="-|>",
                                        mutation_scale=8, color="0.2", clip_on=False))
        right.text(frames + 1.0, y_next, "frame t+1\n(from the future)", va="center", fontsize=7, clip_on=False)
        right.add_patch(FancyArrowPatch((frames + 0.1, y_prev), (frames + 0.9, y_prev), arrowstyle="-|>",
                                        mutation_scale=8, color="0.2", clip_on=False))
        right.text(frames + 1.0, y_prev, "frame t-1\n(from the past)", va="center", fontsize=7, clip_on=False)
        right.text(frames + 1.0, (channels - 2 * fold) / 2, "unchanged", va="center", fontsize=7, clip_on=False)
        fig.suptitle("the temporal shift (after Lin et al., ICCV 2019, Fig. 1): no weights, no multiply-adds;\n"
                     "the next 2D convolution at frame t now mixes frames t-1, t and t+1"
                     if title is None else title, fontsize=9)
    return fig


# --- two-stream and ATA diagrams (notebooks 05 and 06) -----------------------------------------

def _flow_box(ax, x, y, w, h, text, face, edge, fontsize=7.5, **kw):
    """A rounded box centred at (x, y) with ``text`` inside (diagram helper)."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.08",
                                facecolor=face, edgecolor=edge, lw=0.9, zorder=2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3, **kw)


def _flow_arrow(ax, start, end, text=None, color="0.25", rad=0.0, fontsize=6.5, offset=(0.0, 0.12), zorder=1):
    """An arrow from ``start`` to ``end`` with an optional label at its middle (diagram helper)."""
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color=color, lw=0.9,
                                 connectionstyle=f"arc3,rad={rad}", zorder=zorder))
    if text:
        ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], text,
                ha="center", va="bottom", fontsize=fontsize, color="0.3")


def _flow_axes(fig, xlim, ylim, ax=None):
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def _frame_stack(ax, x, y, n, size, colours, dx=0.16, dy=0.12, label=None):
    """``n`` overlapping square frames, the first at (x, y) (lower left), later ones behind-right."""
    from matplotlib.patches import Rectangle

    for i in reversed(range(n)):
        ax.add_patch(Rectangle((x + i * dx, y + i * dy), size, size, facecolor=colours[i % len(colours)],
                               edgecolor="0.25", lw=0.7, zorder=2 + (n - i) * 0.01))
    if label:
        ax.text(x + (size + (n - 1) * dx) / 2, y - 0.12, label, ha="center", va="top", fontsize=6.5, color="0.25")


def _conv_tower(ax, x, y, widths, heights, face, edge, gap=0.08):
    """A ConvNet drawn as a row of shrinking slabs starting at x, centred on y; returns its right end."""
    from matplotlib.patches import Rectangle

    for w, h in zip(widths, heights):
        ax.add_patch(Rectangle((x, y - h / 2), w, h, facecolor=face, edgecolor=edge, lw=0.8, zorder=2))
        x += w + gap
    return x - gap


def two_stream_diagram(*, motion: str = "difference", frames: int = 8, stack: int = 7, title: str | None = None):
    """The two-stream network of Simonyan & Zisserman as a block diagram.

    After Fig. 1 of "Two-Stream Convolutional Networks for Action Recognition in Videos"
    (NeurIPS 2014, https://arxiv.org/abs/1406.2199), redrawn for the course's small model
    (``build_model("twostream_diff")`` / ``"twostream"``): the **spatial stream** classifies RGB
    frames (appearance), the **temporal stream** classifies a stack of ``stack`` motion fields
    (RGB differences ``x[t+1] - x[t]``, 3 channels each, or optical flow ``(u, v)``, 2 channels
    each) stacked on the channel axis, and **late fusion** averages the two streams' softmax
    scores. Each stream has its own loss during training.

    Args:
        motion: ``"difference"`` (3L channels) or ``"flow"`` (2L channels).
        frames: T, the clip length drawn at the input.
        stack: L, the number of motion fields in the temporal stream's input.
        title: the figure's title (``None``: a default one; ``""``: none).
    """
    if motion not in ("difference", "flow"):
        raise ValueError(f"two_stream_diagram: motion must be 'difference' or 'flow', got {motion!r}")
    if frames < 2 or not 1 <= stack <= frames - 1:
        raise ValueError(f"two_stream_diagram: need frames >= 2 and 1 <= stack <= frames - 1, got {frames}, {stack}")
    per = 3 if motion == "difference" else 2
    motion_text = (f"{stack} frame differences\n$x_{{t+1}} - x_t$: {per * stack} channels" if motion == "difference"
                   else f"{stack} optical-flow fields\n$(u, v)$: {per * stack} channels")
    with course_style():
        fig = new_figure(figsize=(8.6, 3.9))
        ax = _flow_axes(fig, (-0.2, 10.3), (-0.45, 4.75))
        blue, red = ("#d6e6f5", "#1f5f99"), ("#f6d3cf", "#a93226")
        # input clip
        _frame_stack(ax, 0.0, 1.75, min(frames, 6), 0.9, ["#7fa7c9", "#9bbbd6", "#b5cde2"],
                     label=f"video clip\n{frames} RGB frames")
        # spatial branch
        _frame_stack(ax, 2.3, 3.25, 1, 0.7, ["#7fa7c9"], label="RGB frame(s)\n3 channels each")
        _flow_arrow(ax, (1.35, 2.75), (2.2, 3.55), rad=-0.2)
        end = _conv_tower(ax, 3.55, 3.6, [0.22, 0.2, 0.18, 0.16, 0.14], [1.1, 0.9, 0.7, 0.5, 0.35], *blue)
        ax.text(4.2, 4.35, "spatial stream ConvNet\n(appearance: which object)", ha="center", fontsize=7, color=blue[1])
        _flow_arrow(ax, (3.05, 3.6), (3.5, 3.6))
        _flow_box(ax, end + 0.85, 3.6, 1.15, 0.55, "class scores\n$s^{spatial}$", *blue)
        _flow_box(ax, end + 2.45, 3.6, 1.05, 0.55, "softmax", *blue)
        _flow_arrow(ax, (end + 0.05, 3.6), (end + 0.27, 3.6))
        _flow_arrow(ax, (end + 1.43, 3.6), (end + 1.92, 3.6))
        # temporal branch
        _frame_stack(ax, 2.3, 0.25, min(stack, 5), 0.7, ["#555555", "#777777", "#999999"],
                     dx=0.08, dy=0.06, label=motion_text)
        _flow_arrow(ax, (1.35, 1.75), (2.2, 0.85), rad=0.2)
        ax.text(1.45, 1.05, "$x_{t+1} - x_t$" if motion == "difference" else "flow", fontsize=6.5, color="0.3",
                ha="right")
        end2 = _conv_tower(ax, 3.55, 0.6, [0.22, 0.2, 0.18, 0.16, 0.14], [1.1, 0.9, 0.7, 0.5, 0.35], *red)
        ax.text(4.2, 1.25, "temporal stream ConvNet\n(motion: which way it moves)", ha="center", va="bottom",
                fontsize=7, color=red[1])
        _flow_arrow(ax, (3.05, 0.6), (3.5, 0.6))
        _flow_box(ax, end2 + 0.85, 0.6, 1.15, 0.55, "class scores\n$s^{temporal}$", *red)
        _flow_box(ax, end2 + 2.45, 0.6, 1.05, 0.55, "softmax", *red)
        _flow_arrow(ax, (end2 + 0.05, 0.6), (end2 + 0.27, 0.6))
        _flow_arrow(ax, (end2 + 1.43, 0.6), (end2 + 1.92, 0.6))
        # late fusion
        fx = end + 4.35
        _flow_box(ax, fx, 2.1, 1.55, 0.95, "late fusion\naverage of the\ntwo softmaxes", "#e6f2e6", "#2e7d32")
        _flow_arrow(ax, (end + 2.98, 3.6), (fx - 0.4, 2.6), rad=-0.15)
        _flow_arrow(ax, (end2 + 2.98, 0.6), (fx - 0.4, 1.6), rad=0.15)
        _flow_box(ax, fx, 0.55, 1.35, 0.55, "prediction\n$p(k \\mid$ clip$)$", "#cfe8cf", "#2e7d32")
        _flow_arrow(ax, (fx, 1.6), (fx, 0.85))
        ax.text(end + 1.65, 2.1, "training: one loss per stream\n(cross-entropy on each\nstream's scores)",
                ha="center", va="center", fontsize=6.5, color="0.35", style="italic")
        fig.suptitle("two-stream network (after Simonyan & Zisserman, NeurIPS 2014, Fig. 1): appearance and motion\n"
                     "are classified separately and fused late" if title is None else title, fontsize=9)
    return fig


def ata_diagram(*, frames: int = 3, grid: int = 3, title: str | None = None):
    """Alignment-guided temporal attention (ATA): align -> attend -> de-align, as a picture.

    After Zhao, Li, Guo, Lu, "Alignment-guided Temporal Attention for Video Action Recognition"
    (NeurIPS 2022, https://arxiv.org/abs/2210.00132), redrawn for the course. Left: ``frames``
    frames of ``grid x grid`` patch tokens with one object that moves to a new cell in every frame;
    plain temporal attention looks along a **fixed position** (cyan), ATA along the **aligned
    trajectory** (magenta) found by a parameter-free one-to-one matching of neighbouring frames.
    Right: the block, as lecturekit implements it (``lecturekit.models.ata``): LayerNorm, align
    (permutation pi_t per frame, no parameters, no gradient), temporal multi-head self-attention
    along every trajectory, de-align (pi_t^-1), residual; then spatial attention and the MLP.
    """
    if frames < 2 or grid < 2 or frames > grid * grid:
        raise ValueError(f"ata_diagram: need 2 <= frames <= grid**2 and grid >= 2, got frames={frames}, grid={grid}")
    with course_style():
        from matplotlib.patches import Rectangle

        fig = new_figure(figsize=(10.0, 3.9))
        fig.set_layout_engine("none")
        left = fig.add_axes((0.0, 0.0, 0.5, 0.86))
        right = fig.add_axes((0.5, 0.0, 0.5, 0.86))
        cell, gap = 0.5, 0.75
        span = grid * cell
        _flow_axes(fig, (-0.3, frames * (span + gap) - gap + 0.3), (-1.35, span + 0.75), ax=left)
        path = [(t * (grid + 1) + t // grid) % (grid * grid) for t in range(frames)]   # a new cell per frame
        start = path[0]
        rng = [0.55, 0.7, 0.62, 0.78, 0.5, 0.66, 0.74, 0.58, 0.69]
        centres = []
        for t in range(frames):
            x0 = t * (span + gap)
            for p in range(grid * grid):
                r, c = divmod(p, grid)
                x, y = x0 + c * cell, span - (r + 1) * cell
                g = rng[p % len(rng)]
                face = "#e74c3c" if p == path[t] else (g, g, g * 0.95)
                left.add_patch(Rectangle((x, y), cell, cell, facecolor=face, edgecolor="white", lw=1.2, zorder=2))
            for p, colour, lw in ((start, "#00bcd4", 2.2), (path[t], "#d81b60", 1.6)):
                r, c = divmod(p, grid)
                left.add_patch(Rectangle((x0 + c * cell + 0.03, span - (r + 1) * cell + 0.03), cell - 0.06,
                                         cell - 0.06, fill=False, edgecolor=colour, lw=lw, zorder=3))
            r, c = divmod(path[t], grid)
            centres.append((x0 + (c + 0.5) * cell, span - (r + 0.5) * cell))
            left.text(x0 + span / 2, span + 0.12, f"frame {t + 1}", ha="center", va="bottom", fontsize=7.5)
        for a, b in zip(centres, centres[1:]):
            _flow_arrow(left, a, b, color="#d81b60", rad=-0.25, zorder=4)
        left.text(frames * (span + gap) / 2 - gap / 2, -0.25,
                  "cyan: plain temporal attention at a fixed position (object seen once)\n"
                  "magenta: ATA's aligned trajectory (a one-to-one patch matching\n"
                  "between neighbouring frames, no parameters) follows the object",
                  ha="center", va="top", fontsize=6.8, color="0.25")
        # the block
        _flow_axes(fig, (0, 10), (-0.6, 6.0), ax=right)
        grey, green, purple = ("#eeeeee", "0.35"), ("#e6f2e6", "#2e7d32"), ("#efe3f5", "#7b1fa2")
        y = 5.35
        steps = [
            ("tokens $X_t \\in \\mathbb{R}^{P \\times D}$, $t = 1..T$", grey),
            ("LayerNorm", grey),
            ("1. align: $\\tilde X_t = X_t[\\pi_t]$, $\\pi_t$ = one-to-one matching of\n"
             "cosine similarities to the aligned frame $t-1$ (no parameters, no gradient)", purple),
            ("2. attend: temporal MSA along every trajectory (slot $p$ of $\\tilde X_1..\\tilde X_T$)", green),
            ("3. de-align: $Z_t = \\tilde Z_t[\\pi_t^{-1}]$, every token back to its position", purple),
            ("residual: $X \\leftarrow X + Z$; then spatial MSA and MLP (as in a divided block)", grey),
        ]
        for i, (text, (face, edge)) in enumerate(steps):
            _flow_box(right, 5.0, y, 9.2, 0.68, text, face, edge, fontsize=6.8)
            if i:
                _flow_arrow(right, (5.0, y + 0.98 - 0.34), (5.0, y + 0.34))
            y -= 0.98
        right.text(5.0, y + 0.45, "same parameters as plain temporal attention (steps 1 and 3 only permute tokens)",
                   ha="center", va="top", fontsize=6.8, color="0.3", style="italic")
        fig.suptitle("ATA: align - attend - de-align (after Zhao et al., NeurIPS 2022; drawn for the course's "
                     "implementation)" if title is None else title, fontsize=9)
    return fig
