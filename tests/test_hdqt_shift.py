"""The quantizer engines' shift (hw/hdqt/shift.py) against spec.shift_for, in the Amaranth simulator."""

import random

import pytest

from hw.hdqt import spec
from hw.hdqt.shift import SHIFT_LATENCY, TensorShift
from sim.streams import simulate


@pytest.mark.parametrize("width", [16, 19, 23])
def test_shift_matches_spec(width):
    rng = random.Random(width)
    # 0, every single bit, every all-ones prefix, random values
    values = [0] + [1 << b for b in range(width)] + [(1 << b) - 1 for b in range(1, width + 1)]
    values += [rng.getrandbits(rng.randint(1, width)) for _ in range(40)]
    dut = TensorShift(width=width, bits=4)
    got = []

    async def tb(ctx):
        for v in values:
            for uns in (0, 1):
                ctx.set(dut.i_max, v)
                ctx.set(dut.i_unsigned, uns)
                await ctx.tick().repeat(SHIFT_LATENCY)
                got.append(ctx.get(dut.o_shift))

    simulate(dut, tb)
    want = [spec.shift_for(v, 4, bool(uns)) for v in values for uns in (0, 1)]
    assert got == want


def test_shift_rejects_bad_width():
    with pytest.raises(ValueError, match="width"):
        TensorShift(width=2)
