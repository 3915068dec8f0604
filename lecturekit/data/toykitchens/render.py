"""Rasterising ToyKitchens scripts into uint8 frames, vectorised over all frames of a video.

Every sprite is a signed distance function in its own coordinates ``(u, v)`` (units of its
radius); a frame pixel gets coverage ``clip(0.5 - d_px, 0, 1)`` (one pixel of anti-aliasing, so
sub-pixel motion changes the image smoothly). A video is a table of *instances* -- (frame,
shape, centre, radius, angle, split gap, colour, depth) -- evaluated shape by shape over all
frames at once and composited back to front.

Determinism: only + - * / sqrt, abs, min/max, clip and integer arithmetic on arrays, all exactly
rounded under IEEE 754, and angles as integers (1/4096 turn) looked up in a sine table built
with a fixed Taylor polynomial. No libm transcendental touches a pixel, so the bytes are the
same on every platform (a test pins a sha256).
"""

from __future__ import annotations

import numpy as np

from .world import COLOURS, CUE_COLOURS, CUE_POS, CUE_RADIUS, DROP, NOUNS, SHAPE_NAMES, SKIN, VERBS, Kitchen, Script

ANGLES = 4096  # angle unit: 1/4096 of a turn
#: open/close and turn-* draw their object this much larger than its sampled scale (both members
#: of a pair alike, so time reversal stays exact): at 32x32 a 4-pixel object opening or turning
#: was too small a motion for the small models of the course (turn-cw/ccw stayed at chance)
OPEN_SCALE = 1.3
TURN_SCALE = 1.3


def _sin_table(n: int = ANGLES) -> np.ndarray:
    """sin(2 pi k / n) for k = 0..n-1, from a Taylor polynomial on the first quadrant."""
    q = n // 4
    two_pi = 6.283185307179586
    first = []
    for k in range(q + 1):
        x = two_pi * k / n
        term, acc, i = x, 0.0, 1
        while i < 40:  # x <= pi/2: terms below 1e-30 long before i = 40
            acc += term
            term = -term * x * x / ((i + 1) * (i + 2))
            i += 2
        first.append(acc)
    first = np.array(first)
    table = np.empty(n)
    k = np.arange(n)
    quad, r = k // q, k % q
    table[quad == 0] = first[r[quad == 0]]
    table[quad == 1] = first[q - r[quad == 1]]
    table[quad == 2] = -first[r[quad == 2]]
    table[quad == 3] = -first[q - r[quad == 3]]
    return table


SIN = _sin_table()


def sin_cos(angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Table sine and cosine of integer angles in 1/4096 turns."""
    a = np.asarray(angle, dtype=np.int64) % ANGLES
    return SIN[a], SIN[(a + ANGLES // 4) % ANGLES]


def ease(x):
    """Smoothstep 3x^2 - 2x^3 on [0, 1]: symmetric, ease(1 - x) = 1 - ease(x)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def tri(z):
    """Triangle wave: 0 at z=0, 1 at 1/4, 0 at 1/2, -1 at 3/4, period 1."""
    return 1.0 - 2.0 * np.abs(2.0 * np.mod(z + 0.25, 1.0) - 1.0)


# ---------------------------------------------------------------------------------------------
# shapes: signed distance (approximate, in sprite radii), f(u, v) with v pointing down

def _box(u, v, a, b):
    return np.maximum(np.abs(u) - a, np.abs(v) - b)


def _disc(u, v, r=1.0):
    return np.sqrt(u * u + v * v) - r


def _shape_disc(u, v):
    return _disc(u, v)


def _shape_ring(u, v):
    return np.abs(np.sqrt(u * u + v * v) - 0.64) - 0.36


def _shape_half_ring(u, v):
    return np.maximum(np.abs(np.sqrt(u * u + v * v) - 0.6) - 0.4, -v - 0.1)


def _shape_blade(u, v):
    return np.maximum(np.abs(u) - 1.0, np.abs(v) - (0.24 - 0.13 * u))


def _shape_bar_knob(u, v):
    return np.minimum(_box(u + 0.3, v, 0.7, 0.13), _disc(u - 0.6, v, 0.38))


def _shape_disc_handle(u, v):
    return np.minimum(_disc(u + 0.3, v, 0.7), _box(u - 0.6, v, 0.4, 0.14))


def _shape_bottle(u, v):
    return np.minimum(_box(u, v - 0.2, 0.45, 0.8), _box(u, v + 0.75, 0.2, 0.25))


def _shape_square(u, v):
    return np.maximum(np.abs(u), np.abs(v)) - 0.8


def _shape_flat_bar(u, v):
    return _box(u, v, 1.0, 0.28)


def _shape_cross(u, v):
    return np.minimum(_box(u, v, 1.0, 0.28), _box(u, v, 0.28, 1.0))


def _shape_diamond(u, v):
    return (np.abs(u) + np.abs(v) - 1.0) * 0.7071


SHAPES = {
    "disc": _shape_disc,
    "ring": _shape_ring,
    "half-ring": _shape_half_ring,
    "blade": _shape_blade,
    "bar+knob": _shape_bar_knob,
    "disc+handle": _shape_disc_handle,
    "bottle": _shape_bottle,
    "square": _shape_square,
    "flat-bar": _shape_flat_bar,
    "cross": _shape_cross,
    "diamond": _shape_diamond,
}
SHAPE_LIST = list(SHAPE_NAMES) + ["cross", "diamond"]
SHAPE_ID = {name: i for i, name in enumerate(SHAPE_LIST)}
HAND = -1  # pseudo shape: the arm capsule

NOUN_SHAPE = np.array([SHAPE_ID[s] for _, s, _ in NOUNS])
NOUN_COLOUR = np.array([COLOURS[c] for _, _, c in NOUNS], dtype=np.float64)
V = {name: i for i, name in enumerate(VERBS)}


# ---------------------------------------------------------------------------------------------
# backgrounds


def background(kitchen: Kitchen, size: int) -> np.ndarray:
    """The kitchen's static image, padded for camera jitter: float32 (size+2P, size+2P, 3)."""
    sc = size // 32
    pad = kitchen.jitter * sc
    n = size + 2 * pad
    yy, xx = np.mgrid[0:n, 0:n]
    yy32, xx32 = (yy - pad) // sc, (xx - pad) // sc  # texture in 32-grid cells: same look at any size
    per = kitchen.texture_period
    if kitchen.texture == "stripes":
        mask = ((xx32 + yy32) // per) % 2 == 0
    elif kitchen.texture == "checker":
        mask = ((xx32 // per) + (yy32 // per)) % 2 == 0
    elif kitchen.texture == "dots":
        mask = ((xx32 % per) < 2) & ((yy32 % per) < 2)
    else:  # noise: a fixed pattern from the kitchen id (integer hash, no RNG state)
        h = (xx32 * 73856093) ^ (yy32 * 19349663) ^ (kitchen.id * 83492791)
        mask = (h % 7) < 3
    img = np.where(mask[..., None], np.array(kitchen.texture_colour), np.array(kitchen.base_colour))
    # a counter edge: the lower part of the frame is a little brighter (a table top)
    img = img * np.where((yy32 >= 20)[..., None], 1.12, 1.0)
    img = img.astype(np.float32)
    if kitchen.distractors:
        X = ((xx - pad + 0.5) / size).astype(np.float32)
        Y = ((yy - pad + 0.5) / size).astype(np.float32)
        for shape, x, y, r, col in kitchen.distractors:
            f = _shape_cross if shape == 0 else _shape_diamond
            d = f((X - x) / r, (Y - y) / r) * (r * size)
            a = np.clip(0.5 - d, 0.0, 1.0)[..., None]
            img = img + a * (np.asarray(col, dtype=np.float32) - img)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# scripts -> instance tables


class _Instances:
    """Growing columns of the instance table."""

    def __init__(self):
        self.cols = {k: [] for k in ("frame", "shape", "x", "y", "r", "ang", "gap", "col", "depth", "bx", "by")}

    def add(self, frame, shape, x, y, r, ang=0, gap=0.0, col=(0, 0, 0), depth=0.0, bx=0.0, by=0.0):
        frame = np.asarray(frame, dtype=np.int64)
        n = frame.shape[0]
        if n == 0:
            return

        def full(v, dtype=np.float64):
            return np.broadcast_to(np.asarray(v, dtype=dtype), (n,)).copy()

        c = self.cols
        c["frame"].append(frame)
        c["shape"].append(full(shape, np.int64))
        c["x"].append(full(x))
        c["y"].append(full(y))
        c["r"].append(full(r))
        c["ang"].append(full(ang, np.int64))
        c["gap"].append(full(gap))
        c["col"].append(np.broadcast_to(np.asarray(col, dtype=np.float64), (n, 3)).copy())
        c["depth"].append(full(depth))
        c["bx"].append(full(bx))
        c["by"].append(full(by))

    def table(self) -> dict:
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.cols.items()}


def instances(script: Script) -> tuple[dict, np.ndarray]:
    """The instance table of a script and the hand path (T, 2). Never reads ``script.recipe``
    (the opt-in decor cues, ``script.cue``, are drawn from the action labels on purpose: a shortcut)."""
    T = script.num_frames
    nu = script.nuisance
    out = _Instances()
    hand = np.zeros((T, 2))
    rest = np.array([script.hand_base, 0.97])
    hand[:] = rest
    n = len(script.action)
    for i in range(n):
        verb, noun = int(script.verb[i]), int(script.noun[i])
        s, e = int(script.start[i]), int(script.stop[i])
        t0 = max(0, s - int(nu["appear"][i]))
        t1 = min(T - 1, e + int(nu["linger"][i]))
        t = np.arange(t0, t1 + 1)
        phi = np.clip((t - s) / (e - s), 0.0, 1.0)
        # The second verb of a time-reversal pair is the first one played backwards: the same
        # formulas evaluated at the mirrored phase (computed from the mirrored integer frame
        # offset, so put at frame s + e - t is bit-identical to take at frame t).
        back = verb in (V["put"], V["close"], V["turn-ccw"])
        fwd = np.clip((e - t) / (e - s), 0.0, 1.0) if back else phi
        p, q = nu["pos"][i], nu["near"][i]
        s0 = nu["scale"][i]
        x = np.full(t.shape, p[0])
        y = np.full(t.shape, p[1])
        r = np.full(t.shape, s0)
        ang = np.full(t.shape, int(nu["angle"][i]), dtype=np.int64)
        gap = np.zeros(t.shape)
        pa = nu["approach"][i]
        cyc = int(nu["cycles"][i])
        hx = hy = None
        if verb in (V["take"], V["put"], V["shake"], V["pour"]):
            # approach (grow, move toward the camera) during the first `pa` of the action;
            # shake and pour share this prefix exactly and diverge afterwards
            k = ease(fwd / pa)
            x, y = p[0] + k * (q[0] - p[0]), p[1] + k * (q[1] - p[1])
            r = s0 * (1.0 + 0.6 * k)
            w = np.clip((phi - pa) / (1.0 - pa), 0.0, 1.0)
            if verb == V["shake"]:
                x = x + 0.07 * tri(w * cyc)
            if verb == V["pour"]:
                ang = ang + (int(nu["tilt"][i]) * ease(w)).astype(np.int64)
                on = (w > 0.15) & (t <= e)
                for d in range(3):
                    fall = np.mod(w * cyc * 1.5 + d / 3.0, 1.0)
                    out.add(t[on], SHAPE_ID["disc"], x[on] + r[on] * 0.9, y[on] + r[on] * (0.5 + 1.6 * fall[on]),
                            0.022, col=DROP, depth=3.0)
        elif verb in (V["open"], V["close"]):
            gap = nu["gap"][i] * ease(fwd)  # the halves part
            r = np.full(t.shape, s0 * OPEN_SCALE)
        elif verb in (V["turn-cw"], V["turn-ccw"]):
            turned = (int(nu["turn"][i]) * ease(fwd)).astype(np.int64)
            ang = ang + turned  # clockwise on screen (y points down)
            r = np.full(t.shape, s0 * TURN_SCALE)
            # the hand grips the object's front (its lowest point at the start) and goes round
            # with it: clockwise carries that point to the left, counter-clockwise to the right
            sn, cs = sin_cos(turned)
            hx, hy = x - 0.9 * r * sn, y + 0.9 * r * cs
        elif verb == V["cut"]:
            z = phi * cyc
            gap = nu["gap"][i] * 0.8 * np.minimum(np.floor(z + 0.5), cyc) / cyc
            up = np.abs(2.0 * np.mod(z, 1.0) - 1.0)
            on = (t >= s) & (t <= e)
            kx, ky = x + 0.1 * s0, y - s0 * (1.05 + 0.9 * up)
            out.add(t[on], SHAPE_ID["blade"], kx[on], ky[on], 0.8 * s0, 0, col=COLOURS["grey"], depth=2.0)
            hx, hy = kx - 0.75 * s0, ky
        elif verb == V["stir"]:
            a = (phi * cyc * ANGLES).astype(np.int64)
            sn, cs = sin_cos(a)
            sx, sy = x + 0.38 * s0 * cs, y + 0.38 * s0 * sn
            on = (t >= s) & (t <= e)
            out.add(t[on], SHAPE_ID["bar+knob"], sx[on], sy[on], 0.55 * s0, a[on] + ANGLES // 4,
                    col=COLOURS["grey"], depth=2.0)
            hx, hy = sx, sy + 0.3 * s0
        elif verb == V["wash"]:
            rng = np.random.default_rng(int(nu["seed"][i]))
            jit = rng.random((t.shape[0], 2)) - 0.5
            act = (t >= s) & (t <= e)
            x = x + np.where(act, 0.12 * s0 * jit[:, 0], 0.0)
            y = y + np.where(act, 0.12 * s0 * jit[:, 1], 0.0)
            drops = rng.random((t.shape[0], 4, 2)) - 0.5
            for d in range(4):
                out.add(t[act], SHAPE_ID["disc"], x[act] + 2.4 * s0 * drops[act, d, 0],
                        y[act] + 2.4 * s0 * drops[act, d, 1], 0.02, col=DROP, depth=3.0)
        x = np.broadcast_to(x, t.shape)
        y = np.broadcast_to(y, t.shape)
        r = np.broadcast_to(r, t.shape)
        out.add(t, NOUN_SHAPE[noun], x, y, r, ang, gap, NOUN_COLOUR[noun], depth=1.0 + i / (n + 1))
        # decoys: other objects on the counter around the same time (static)
        for d in range(nu["decoy_noun"].shape[1]):
            if nu["decoy_on"][i, d]:
                dn = int(nu["decoy_noun"][i, d])
                dp = nu["decoy_pos"][i, d]
                out.add(t, NOUN_SHAPE[dn], dp[0], dp[1], nu["decoy_scale"][i, d], int(nu["decoy_angle"][i, d]),
                        0.0, NOUN_COLOUR[dn], depth=0.5 + i / (n + 1))
        # hand: reach (before start), hold (during), retract (after stop)
        if hx is None:
            hx, hy = x + 0.1 * r, y + 0.9 * r
        hx = np.broadcast_to(hx, t.shape)
        hy = np.broadcast_to(hy, t.shape)
        held = (t >= s) & (t <= e)
        hand[t[held]] = np.stack([hx[held], hy[held]], 1)
        reach = int(nu["reach"][i])
        r0 = s - reach
        if reach > 0 and r0 >= 0:
            from_ = hand[r0 - 1] if r0 > 0 else rest
            to = np.array([hx[t == s][0], hy[t == s][0]])
            w = ease((np.arange(r0, s) - r0 + 1) / (reach + 1))[:, None]
            hand[r0:s] = from_ + w * (to - from_)
        ret = int(nu["retract"][i])
        a0, a1 = e + 1, min(T, e + 1 + ret)
        if a1 > a0:
            frm = hand[e].copy()
            w = ease((np.arange(a0, a1) - e) / ret)[:, None]
            hand[a0:a1] = frm + w * (rest - frm)
    if script.cue is not None:
        # decor cues (opt-in, world.make_cues): a poster on the wall, behind every object
        for i in range(n):
            f0, f1 = int(script.cue["first"][i]), min(int(script.cue["last"][i]), T - 1)
            if f1 >= f0:
                out.add(np.arange(f0, f1 + 1), SHAPE_ID["diamond"], CUE_POS[0], CUE_POS[1], CUE_RADIUS,
                        col=CUE_COLOURS[int(script.cue["code"][i])], depth=0.3)
    tf = np.arange(T)
    # drawn behind the active objects (depth 0.9) so the hand never hides what it holds
    out.add(tf, HAND, hand[:, 0], hand[:, 1], 0.042, col=SKIN, depth=0.9, bx=script.hand_base, by=1.15)
    return out.table(), hand


# ---------------------------------------------------------------------------------------------
# rasterising


def _coverage(shape: int, cx, cy, r, ang, gap, bx, by, X: np.ndarray, Y: np.ndarray, size: int) -> np.ndarray:
    """Alpha (n, H, W) float32 of n instances of one shape; centres already in frame units."""
    f32 = np.float32
    cx = cx.astype(f32)[:, None, None]
    cy = cy.astype(f32)[:, None, None]
    r = r.astype(f32)[:, None, None]
    dx = X[None] - cx  # (n, 1, W)
    dy = Y[None] - cy  # (n, H, 1)
    if shape == HAND:
        bx = bx.astype(f32)[:, None, None]
        by = by.astype(f32)[:, None, None]
        ex, ey = cx - bx, cy - by  # arm vector base -> hand
        px, py = X[None] - bx, Y[None] - by
        h = np.clip((px * ex + py * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        qx, qy = px - h * ex, py - h * ey
        arm = np.sqrt(qx * qx + qy * qy) - r
        palm = np.sqrt(dx * dx + dy * dy) - f32(1.5) * r
        d = np.minimum(arm, palm) * f32(size)
    else:
        sn, cs = sin_cos(ang)
        sn = sn.astype(f32)[:, None, None]
        cs = cs.astype(f32)[:, None, None]
        inv = f32(1.0) / r
        u = (cs * dx + sn * dy) * inv
        v = (cs * dy - sn * dx) * inv
        g = gap.astype(f32)[:, None, None]
        if np.any(g > 0):
            # split along the sprite's own vertical axis: each half moves g radii outwards and
            # the band |u| < g between them is empty (only for instances with g > 0)
            us = np.where(u > 0, u - g, u + g)
            band = np.where(g > 0, g - np.abs(u), f32(-1e9))
            d = np.maximum(SHAPES[SHAPE_LIST[shape]](us, v), band)
        else:
            d = SHAPES[SHAPE_LIST[shape]](u, v)
        d = d * (r * f32(size))
    return np.clip(f32(0.5) - d, 0.0, 1.0)


def render(script: Script, kitchen: Kitchen, size: int, bg: np.ndarray | None = None,
           chunk: int = 256) -> np.ndarray:
    """Render a script: uint8 (T, size, size, 3)."""
    if size % 32 != 0:
        raise ValueError(f"size must be a multiple of 32 (32 or 64), got {size}")
    sc = size // 32
    if bg is None:
        bg = background(kitchen, size)
    T = script.num_frames
    J = kitchen.jitter
    jx = script.jitter[:, 0] * sc
    jy = script.jitter[:, 1] * sc
    win = np.lib.stride_tricks.sliding_window_view(bg, (size, size), axis=(0, 1))  # (.., .., 3, H, W)
    # (T, 3, H, W) float32, channels first while compositing; few distinct camera offsets
    offsets, which = np.unique(jy * (2 * J * sc + 1) + jx, return_inverse=True)
    views = np.ascontiguousarray(win[offsets // (2 * J * sc + 1), offsets % (2 * J * sc + 1)])
    frames = views[which.reshape(-1)]
    tab, _ = instances(script)
    X = ((np.arange(size) + 0.5) / size).astype(np.float32)[None, :]  # (1, W)
    Y = ((np.arange(size) + 0.5) / size).astype(np.float32)[:, None]  # (H, 1)
    n = tab["frame"].shape[0]
    if n == 0:
        return _finish(frames, kitchen)
    # instance geometry in frame units (the camera offset of the instance's frame removed);
    # static sprites on frames with the same camera offset are identical: rasterise them once
    offx = (jx[tab["frame"]] - J * sc) / size
    offy = (jy[tab["frame"]] - J * sc) / size
    keys = np.stack([tab["shape"], tab["x"] - offx, tab["y"] - offy, tab["r"], tab["ang"] % ANGLES,
                     tab["gap"], tab["bx"] - offx, tab["by"] - offy], 1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    alpha = np.empty((uniq.shape[0], size, size), dtype=np.float32)
    ushape = uniq[:, 0].astype(np.int64)
    for sh in np.unique(ushape):
        idx = np.nonzero(ushape == sh)[0]
        for c0 in range(0, idx.shape[0], chunk):
            part = idx[c0 : c0 + chunk]
            u = uniq[part]
            alpha[part] = _coverage(int(sh), u[:, 1], u[:, 2], u[:, 3], u[:, 4].astype(np.int64), u[:, 5],
                                    u[:, 6], u[:, 7], X, Y, size)
    # composite back to front: pass p holds each frame's p-th instance in depth order
    order = np.lexsort((np.arange(n), tab["depth"], tab["frame"]))
    fr = tab["frame"][order]
    first = np.r_[0, np.nonzero(np.diff(fr))[0] + 1]
    counts = np.diff(np.r_[first, fr.shape[0]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(fr.shape[0]) - np.repeat(first, counts)
    cols = tab["col"].astype(np.float32)
    for p in range(int(rank.max()) + 1):
        sel = np.nonzero(rank == p)[0]
        f = tab["frame"][sel]
        cur = frames[f]  # (n, 3, H, W)
        tmp = cols[sel][:, :, None, None] - cur
        tmp *= alpha[inverse[sel]][:, None]
        cur += tmp
        frames[f] = cur
    return _finish(frames, kitchen)


def _finish(frames: np.ndarray, kitchen: Kitchen) -> np.ndarray:
    """Light gain, quantisation to uint8 and channels last: (T, 3, H, W) -> (T, H, W, 3)."""
    gain = np.float32(kitchen.light_gain)
    frames *= gain * np.float32(255.0)
    np.clip(frames, 0.0, 255.0, out=frames)
    frames += np.float32(0.5)
    out = frames.astype(np.uint8).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(out)
