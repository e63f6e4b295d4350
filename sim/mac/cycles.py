"""Cycle model of the MAC array (:class:`hw.mac.MacArray`, plain tiles, no stalls on the streams).

From the array's documented timing (:mod:`hw.mac.array`): a tile takes one beat per cycle; the next
tile's first beat follows the previous tile's last beat in the next cycle; a tile's ``rows`` result
rows drain one per cycle while the next tile computes, and a tile cannot finish before the previous
tile's results (all but its last row) have left, so a tile shorter than ``rows`` beats costs
``rows`` cycles. The first result row appears 5 cycles (plain tiles) or 7 cycles (tile-saturating
tiles) after the last beat, then ``rows`` rows follow. Counted from the cycle the first command is
offered to the cycle the last result row is taken, with a consumer that is always ready::

    cycles = b_1 + sum_{i >= 2} max(b_i, rows) + rows + 6        (plain tiles)

with ``b_i = ceil(K / lanes(mode))`` the beats of tile ``i``. ``tests/test_experiments.py`` checks it
against the Amaranth simulation of the array; the mixed-precision experiment checks it again on its
chosen configuration.
"""

from hw.mac import spec

__all__ = ["tile_count", "gemm_cycles"]

#: Cycles besides the beats: the command cycle, the 5-stage pipeline and the last row's hand-over.
_OVERHEAD = 6


def tile_count(m, n, *, rows, cols):
    """Tiles of an ``M x N`` output on a ``rows x cols`` array."""
    return -(-m // rows) * -(-n // cols)


def gemm_cycles(m, k, n, mode, *, rows=4, cols=4):
    """Cycles of ``Y (M x N) = X (M x K) · Wᵀ`` in weight mode ``mode`` as one job of plain tiles."""
    for name, v in (("m", m), ("k", k), ("n", n)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")
    beats = spec.beats_for_k(k, mode)
    tiles = tile_count(m, n, rows=rows, cols=cols)
    return beats + (tiles - 1) * max(beats, rows) + rows + _OVERHEAD
