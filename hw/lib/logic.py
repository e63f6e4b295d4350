"""Combinational helpers for wide reductions, one-hot selects and compares with constants.

They build expressions, not modules: a block calls them inside its own ``elaborate``.
"""

import operator
from functools import reduce

from amaranth.hdl import Cat, Mux
from amaranth.utils import exact_log2

__all__ = ["tree", "or_tree", "onehot_mux", "index_mux", "below_const", "above_pow2", "ring_next"]


def tree(terms, op):
    """``terms`` combined pairwise into a balanced tree (a chain would be as deep as it is long:
    synthesis does not rebalance it)."""
    terms = list(terms)
    if not terms:
        raise ValueError("terms must not be empty")
    while len(terms) > 1:
        terms = [op(terms[i], terms[i + 1]) if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def or_tree(terms):
    """``terms`` OR'd as a balanced tree."""
    return tree(terms, operator.or_)


def onehot_mux(onehot, values, *, balanced=True):
    """``values[i]`` for the set bit ``i`` of ``onehot`` (0 if none; the OR of them if several), as
    an AND-OR tree. ``balanced=False`` ORs the terms as a chain, for a select off the critical path
    where the chain's shape is the netlist to keep."""
    terms = [Mux(onehot[i], v, 0) for i, v in enumerate(values)]
    return or_tree(terms) if balanced else reduce(operator.or_, terms)


def index_mux(index, values):
    """``values[index]`` as a tree of 2:1 multiplexers on the bits of ``index``, for an ``index``
    below ``len(values)``; a larger one selects some element of ``values`` (unspecified), so a
    subtree that only such indices reach is left out rather than decoded (a ``Switch`` with a
    default, or a read past the end, costs a compare of the high bits in every output bit)."""
    values = list(values)
    if not values:
        raise ValueError("values must not be empty")
    if len(values) > 1 << len(index):
        raise ValueError(f"{len(values)} values cannot be selected by a {len(index)}-bit index")

    def build(vals, bits):
        if len(vals) == 1:
            return vals[0]
        half = 1 << (bits - 1)
        if len(vals) <= half:
            return build(vals, bits - 1)
        return Mux(index[bits - 1], build(vals[half:], bits - 1), build(vals[:half], bits - 1))

    return build(values, len(index))


def below_const(value, n):
    """``value < n`` for a small constant ``n > 0``, as bit tests: the high bits zero and the low
    ones none of the values from ``n`` up (a compare is a carry chain on iCE40)."""
    high = (n - 1).bit_length()
    return (value[high:] == 0) & ~Cat(value[:high] == k for k in range(n, 1 << high)).any()


def above_pow2(value, limit):
    """``value > limit`` for a power of two ``limit``, as bit tests: a bit above ``limit``'s set,
    or ``limit``'s bit with one below it (no term for the bits above when ``value`` has none)."""
    p = exact_log2(limit)
    above = value[p] & (value[:p] != 0)
    return (value[p + 1:] != 0) | above if len(value) > p + 1 else above


def ring_next(slot, size):
    """The slot after ``slot`` in a ring of ``size`` slots (0 after ``size - 1``)."""
    return Mux(slot == size - 1, 0, slot + 1)
