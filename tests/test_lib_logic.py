"""hw.lib.logic against plain Python on every input of small widths."""

import itertools
import operator

import pytest
from amaranth.hdl import Const, Module, Signal
from amaranth.sim import Simulator

from hw.lib.logic import above_pow2, below_const, index_mux, onehot_mux, or_tree, tree


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


def _check_bit_tests(width, exprs, values):
    """Each ``{name: (make(value signal), want(v))}`` of ``exprs`` on a ``width``-bit signal for
    every v of ``values``."""
    value = Signal(width)
    outs = {name: Signal(name=name) for name in exprs}
    m = Module()
    m.d.comb += [outs[name].eq(make(value)) for name, (make, _) in exprs.items()]
    sim = Simulator(m)

    async def tb(ctx):
        for v in values:
            ctx.set(value, v)
            for name, (_, want) in exprs.items():
                assert ctx.get(outs[name]) == want(v), (name, v)

    sim.add_testbench(tb)
    sim.run()


def test_compares_with_constants_as_bit_tests():
    # the HDQT handler's READ limits (128, 256) and header lengths (2, 3, 5), against the compare
    values = [*range(1100), *(1 << b for b in range(16)), *((1 << b) + 1 for b in range(16)), 0xFFFF]
    exprs = {f"above_{lim}": (lambda v, lim=lim: above_pow2(v, lim), lambda v, lim=lim: v > lim)
             for lim in (1, 2, 128, 256)}
    exprs.update({f"below_{n}": (lambda v, n=n: below_const(v, n), lambda v, n=n: v < n)
                  for n in (1, 2, 3, 5, 7, 8)})
    _check_bit_tests(16, exprs, values)


def test_above_pow2_at_the_values_width():
    # a value exactly as wide as the limit's bit and those below it (the SPRAM GEMM handler's
    # n_out and k): no bits above
    _check_bit_tests(8, {"above_128": (lambda v: above_pow2(v, 128), lambda v: v > 128)}, range(256))
