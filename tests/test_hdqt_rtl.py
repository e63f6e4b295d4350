"""HDQT FWHT and shift quantizer RTL in the Amaranth simulator against the golden model."""

import random

import numpy as np
import pytest

from hw.hdqt import FWHT, ShiftQuantizer
from sim.hdqt.golden import LfsrStream, ref_fwht, ref_quantize
from sim.streams import run_streams, simulate, stream_get, stream_put

# --- RTL: FWHT -------------------------------------------------------------------------------------


def rtl_fwht(n, width, vectors, *, stall=0.0, seed=0):
    dut = FWHT(n=n, width=width)
    flat = [int(v) for v in np.ravel(vectors)]
    got, = run_streams(dut, [(dut.i_data, flat)], [(dut.o_data, len(flat))], stall=stall, seed=seed)
    return np.array(got).reshape(np.shape(vectors))


def extreme_vectors(n, width, count, seed):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    v = np.random.default_rng(seed).integers(lo, hi + 1, (count, n))
    v[0], v[1] = hi, lo
    v[2] = np.where(np.arange(n) % 2, lo, hi)
    return v


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32, 64, 128])
def test_fwht_rtl_every_size(n):
    width = 16 if n <= 64 else 8
    v = extreme_vectors(n, width, 4, n)
    assert (rtl_fwht(n, width, v) == ref_fwht(v, n)).all()


@pytest.mark.parametrize("n,width", [(16, 12), (64, 24)])
def test_fwht_rtl_random_stalls(n, width):
    v = extreme_vectors(n, width, 5, n + 1)
    assert (rtl_fwht(n, width, v, stall=0.5, seed=n) == ref_fwht(v, n)).all()


def test_fwht_sustains_one_element_per_cycle():
    n, count = 32, 6
    dut = FWHT(n=n, width=16)
    v = extreme_vectors(n, 16, count, 9)
    cycles = []

    async def tb(ctx):
        ctx.set(dut.o_data.ready, 1)
        ctx.set(dut.i_data.valid, 1)
        i, out, t = 0, 0, 0
        flat = list(v.ravel())
        while out < len(flat):
            ctx.set(dut.i_data.valid, i < len(flat))
            ctx.set(dut.i_data.payload, int(flat[i]) if i < len(flat) else 0)
            if i < len(flat) and ctx.get(dut.i_data.ready):
                i += 1
            if ctx.get(dut.o_data.valid):
                out += 1
                cycles.append(t)
            await ctx.tick()
            t += 1

    simulate(dut, tb)
    # once the first element is out, one element leaves every cycle until the end
    assert cycles == list(range(cycles[0], cycles[0] + n * count))


# --- RTL: quantizer --------------------------------------------------------------------------------


def rtl_quantize(tensors, modes, *, width=24, bits=4, depth=64, stall=0.0, seed=0, clear_after=None):
    """Quantize ``tensors`` one after the other; ``modes[i] = (stochastic, unsigned)``."""
    dut = ShiftQuantizer(width=width, bits=bits, depth=depth)
    outs, flags = [], []

    async def producer(ctx):
        rng = random.Random(seed)
        for t, (stochastic, unsigned) in zip(tensors, modes):
            ctx.set(dut.i_stochastic, stochastic)
            ctx.set(dut.i_unsigned, unsigned)
            flat = [int(v) for v in np.ravel(t)]
            for i, v in enumerate(flat):
                await stream_put(ctx, dut.i_data, {"value": v, "last": int(i == len(flat) - 1)},
                                 rng=rng, stall=stall)
            await ctx.tick().until(dut.i_data.ready)  # the tensor has left: modes may change
            flags.append(ctx.get(dut.o_overflow))
            if clear_after is not None and len(flags) == clear_after:
                ctx.set(dut.i_clear, 1)
                await ctx.tick()
                ctx.set(dut.i_clear, 0)

    async def consumer(ctx):
        rng = random.Random(seed + 1)
        for _ in tensors:
            cur = []
            while True:
                p = await stream_get(ctx, dut.o_data, rng=rng, stall=stall)
                cur.append((p.q, p.shift))
                if p.last:
                    break
            outs.append(cur)

    simulate(dut, producer, consumer)
    return outs, flags


def check_quantized(tensors, modes, outs, bits=4):
    lfsr = LfsrStream()
    for t, (stochastic, unsigned), got in zip(tensors, modes, outs):
        q, s = ref_quantize(t, bits, unsigned=bool(unsigned), lfsr=lfsr if stochastic else None)
        assert [a for a, _ in got] == list(q.ravel())
        assert {b for _, b in got} == {s}


@pytest.mark.parametrize("bits", [4, 8, 2])
def test_quantizer_rtl_matches_golden(bits):
    rng = np.random.default_rng(bits)
    tensors = [rng.integers(-2 ** 20, 2 ** 20, (5, 7)), np.zeros((3, 3), dtype=np.int64),
               rng.integers(-300, 300, 6), rng.integers(-2 ** 23, 2 ** 23, 40), rng.integers(-50, 1000, 9),
               np.array([-2 ** 23, 2 ** 23 - 1, 0, 1]), np.array([60, -60, 4, -4, 12, 3])]
    modes = [(0, 0), (1, 0), (1, 0), (1, 0), (0, 1), (1, 0), (0, 0)]
    outs, flags = rtl_quantize(tensors, modes, bits=bits, stall=0.3, seed=bits)
    check_quantized(tensors, modes, outs, bits)
    assert not any(flags)


def test_quantizer_overflow_flag_and_recovery():
    rng = np.random.default_rng(7)
    tensors = [rng.integers(-100, 100, 12), rng.integers(-1000, 1000, 20), rng.integers(-100, 100, 8)]
    modes = [(1, 0), (1, 0), (1, 0)]
    outs, flags = rtl_quantize(tensors, modes, depth=16, clear_after=2)
    # the 20-element tensor keeps its first 16 elements and raises the sticky flag; i_clear clears it
    check_quantized([tensors[0], tensors[1][:16], tensors[2]], modes, outs)
    assert flags == [0, 1, 0]
