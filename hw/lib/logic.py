"""Combinational helpers for wide reductions and one-hot selects.

They build expressions, not modules: a block calls them inside its own ``elaborate``.
"""

import operator
from functools import reduce

from amaranth.hdl import Mux

__all__ = ["tree", "or_tree", "onehot_mux"]


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
