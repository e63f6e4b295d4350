"""Golden model of :class:`hw.lfsr.GaloisLFSR`: the word sequence it emits."""

from hw.lfsr import spec

__all__ = ["ref_lfsr_words", "ref_period"]


def ref_lfsr_words(n, *, width=16, steps=None, seed=1):
    """The first ``n`` words the LFSR emits from reset (one word per accepted transfer)."""
    steps = width if steps is None else steps
    state = spec.normalize_seed(seed, width)
    out = []
    for _ in range(n):
        out.append(state)
        state = spec.leap(state, width, steps)
    return out


def ref_period(width, seed=1):
    """Number of single steps until the state returns to the seed."""
    start = state = spec.normalize_seed(seed, width)
    n = 0
    while True:
        state = spec.step(state, width)
        n += 1
        if state == start:
            return n
