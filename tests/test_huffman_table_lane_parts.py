"""Parts of the two-context table lane (``hw/huffman/lane_table_cslow.py``) on their own: the
window shifter against Python's shift, for every amount."""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.huffman.lane_table_cslow import window_shift


@pytest.mark.parametrize("in_bits, amount_bits, width", [(91, 6, 28), (40, 6, 28), (20, 3, 7), (9, 4, 16)])
def test_window_shift_is_a_right_shift(in_bits, amount_bits, width):
    m = Module()
    x, amount = Signal(in_bits), Signal(amount_bits)
    y = Signal(width)
    m.d.comb += y.eq(window_shift(x, amount, width))
    rng = random.Random(in_bits * 100 + width)
    values = [0, (1 << in_bits) - 1] + [rng.getrandbits(in_bits) for _ in range(6)]

    async def tb(ctx):
        for v in values:
            ctx.set(x, v)
            for a in range(1 << amount_bits):
                ctx.set(amount, a)
                assert ctx.get(y) == (v >> a) & ((1 << width) - 1), (hex(v), a)

    sim = Simulator(m)                   # combinational: no clock
    sim.add_testbench(tb)
    sim.run()
