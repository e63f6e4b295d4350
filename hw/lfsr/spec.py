"""The Galois LFSR spec, shared by the RTL (:mod:`hw.lfsr.lfsr`) and the golden model
(:mod:`sim.lfsr.golden`).

Form: a right-shifting Galois LFSR. One *step* is::

    lsb = state & 1
    state >>= 1
    if lsb:
        state ^= TAPS[width]

``TAPS[width]`` are maximal-length feedback masks (period ``2**width - 1`` over the non-zero states;
checked exhaustively for widths up to 22 in the tests). State 0 is a fixed point, so the seed must be
non-zero; loading 0 loads 1 instead (documented, so the golden model does the same).
"""

__all__ = ["TAPS", "MIN_WIDTH", "MAX_WIDTH", "step", "leap", "normalize_seed"]

TAPS = {
    3: 0x6, 4: 0xC, 5: 0x14, 6: 0x30, 7: 0x60, 8: 0xB8, 9: 0x110, 10: 0x240, 11: 0x500,
    12: 0x829, 13: 0x100D, 14: 0x2015, 15: 0x6000, 16: 0xD008, 17: 0x12000, 18: 0x20400,
    19: 0x40023, 20: 0x90000, 21: 0x140000, 22: 0x300000, 23: 0x420000, 24: 0xE10000,
    25: 0x1200000, 26: 0x2000023, 27: 0x4000013, 28: 0x9000000, 29: 0x14000000,
    30: 0x20000029, 31: 0x48000000, 32: 0x80200003,
}
MIN_WIDTH = min(TAPS)
MAX_WIDTH = max(TAPS)


def step(state, width):
    """One Galois step of a ``width``-bit state (plain ints)."""
    lsb = state & 1
    state >>= 1
    if lsb:
        state ^= TAPS[width]
    return state


def leap(state, width, steps):
    """``steps`` consecutive steps: the state advance of one output of a leap-forward LFSR."""
    for _ in range(steps):
        state = step(state, width)
    return state


def normalize_seed(seed, width):
    """The state a seed load produces: the seed truncated to ``width`` bits, with 0 replaced by 1."""
    seed &= (1 << width) - 1
    return seed or 1
