"""hw.lib.logic against plain Python on every input of small widths."""

import itertools
import operator

import pytest
from amaranth.hdl import Const, Module, Signal
from amaranth.sim import Simulator

from hw.lib.logic import index_mux, onehot_mux, or_tree, tree


def _eval(expr, sigs, values):
    """``expr`` evaluated by Amaranth's simulator with ``sigs`` set to ``values``."""
    out = []

    async def tb(ctx):
        for sig, v in zip(sigs, values):
            ctx.set(sig, v)
        out.append(ctx.get(expr))

    sim = Simulator(_module_with(expr))
    sim.add_testbench(tb)
    sim.run()
    return out[0]


def _module_with(expr):
    m = Module()
    probe = Signal(len(expr))
    m.d.comb += probe.eq(expr)
    return m


def test_tree_is_balanced_and_keeps_order():
    # A non-commutative op shows the pairing: ((a b)(c d)) e, depth ceil(log2(5)) = 3.
    assert tree("abcde", lambda x, y: f"({x}{y})") == "(((ab)(cd))e)"
    assert tree(["x"], operator.or_) == "x"
    with pytest.raises(ValueError, match="terms"):
        tree([], operator.or_)


@pytest.mark.parametrize("balanced", [True, False])
def test_onehot_mux_selects_and_ors(balanced):
    sel = Signal(4)
    values = [Const(v, 8) for v in (0x11, 0x22, 0x44, 0x88)]
    expr = onehot_mux(sel, values, balanced=balanced)
    for bits in range(16):
        want = 0
        for i in range(4):
            if bits >> i & 1:
                want |= values[i].value
        assert _eval(expr, [sel], [bits]) == want


def test_or_tree_matches_any():
    bits = [Signal(name=f"b{i}") for i in range(5)]
    expr = or_tree(bits)
    for vec in itertools.product((0, 1), repeat=5):
        assert _eval(expr, bits, vec) == int(any(vec))


@pytest.mark.parametrize("n, width", [(1, 1), (3, 2), (4, 2), (5, 3), (19, 5)])
def test_index_mux_selects_every_value_in_range(n, width):
    index = Signal(width)
    values = [Const((37 * i + 5) % 256, 8) for i in range(n)]
    expr = index_mux(index, values)
    for i in range(1 << width):
        got = _eval(expr, [index], [i])
        if i < n:
            assert got == values[i].value
        else:   # past the end: some value of the list
            assert got in [v.value for v in values]


def test_index_mux_refuses_too_many_values_or_none():
    with pytest.raises(ValueError, match="values"):
        index_mux(Signal(2), [Const(0, 1)] * 5)
    with pytest.raises(ValueError, match="values"):
        index_mux(Signal(2), [])
