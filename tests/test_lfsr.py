"""GaloisLFSR: golden model properties, Amaranth-simulator and cocotb/Verilator runs against it."""

import random

import pytest

from hw.lfsr import GaloisLFSR, spec
from sim.lfsr.golden import ref_lfsr_words, ref_period
from sim.runner import cocotb_testcases, run_cocotb
from sim.streams import simulate, stream_get


@pytest.mark.parametrize("width", range(spec.MIN_WIDTH, 19))
def test_taps_are_maximal_length(width):
    assert ref_period(width) == 2 ** width - 1


def rtl_lfsr_words(dut, n, *, stall=0.0, seed=0):
    words = []

    async def consumer(ctx):
        rng = random.Random(seed)
        for _ in range(n):
            words.append(await stream_get(ctx, dut.o_random, rng=rng, stall=stall))

    simulate(dut, consumer)
    return words


@pytest.mark.parametrize("width,steps,seed", [(16, None, 1), (8, 1, 0x5A), (32, 7, 0xDEADBEEF), (5, 64, 0)])
def test_rtl_matches_golden_with_stalls(width, steps, seed):
    dut = GaloisLFSR(width=width, steps=steps, seed=seed)
    got = rtl_lfsr_words(dut, 120, stall=0.5, seed=width)
    assert got == ref_lfsr_words(120, width=width, steps=steps, seed=seed)


def test_load_seed_in_simulator():
    dut = GaloisLFSR(width=12)
    got = []

    async def tb(ctx):
        ctx.set(dut.i_seed, 0)  # 0 is a fixed point: loading it must give state 1
        ctx.set(dut.i_load, 1)
        await ctx.tick()
        ctx.set(dut.i_load, 0)
        for _ in range(10):
            got.append(await stream_get(ctx, dut.o_random))

    simulate(dut, tb)
    assert got == ref_lfsr_words(10, width=12, seed=1)



@pytest.mark.parametrize("testcase", cocotb_testcases("sim.lfsr.tb_lfsr"))
def test_lfsr_cocotb(testcase):
    params = {"width": 16, "steps": 5, "seed": 0xACE1}
    run_cocotb(GaloisLFSR(**params), toplevel="lfsr", test_module="sim.lfsr.tb_lfsr", testcase=testcase,
               params=params)
