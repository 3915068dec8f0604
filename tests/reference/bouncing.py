"""Plain-Python reference of the bouncing-MNIST trajectory (Srivastava et al. 2015 data handler).

Per glyph: move by ``v * step``, then reflect at the walls 0 and 1 (clamp to the wall, flip the
velocity component); pixel = int(range * coordinate). Used only by tests.
"""


def trajectory(x, y, vx, vy, step, frames, rng):
    out = []
    for _ in range(frames):
        x = x + vx * step
        y = y + vy * step
        if x <= 0:
            x, vx = 0.0, -vx
        if x >= 1:
            x, vx = 1.0, -vx
        if y <= 0:
            y, vy = 0.0, -vy
        if y >= 1:
            y, vy = 1.0, -vy
        out.append((int(rng * y), int(rng * x)))
    return out
