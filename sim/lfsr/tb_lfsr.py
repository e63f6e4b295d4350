"""cocotb testbench of :class:`hw.lfsr.GaloisLFSR` against :mod:`sim.lfsr.golden`."""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from sim.cocotb_streams import BlockTestbench
from sim.lfsr.golden import ref_lfsr_words


class TB(BlockTestbench):
    BLOCK = "lfsr"
    IDLE_INPUTS = ("o_random__ready", "i_load", "i_seed")

    async def read(self, n):
        """``n`` words, one a cycle (``ready`` must be high: the LFSR offers a word every cycle)."""
        got = []
        for _ in range(n):
            await ReadOnly()
            got.append(int(self.dut.o_random__payload.value))
            await RisingEdge(self.dut.clk)
        return got


@cocotb.test()
async def test_sequence_matches_golden(dut):
    tb = TB(dut)
    await tb.reset()
    expected = ref_lfsr_words(200, width=tb.width, steps=tb.steps, seed=tb.seed)
    dut.o_random__ready.value = 1
    assert await tb.read(200) == expected


@cocotb.test()
async def test_stalls_do_not_advance(dut):
    tb = TB(dut)
    await tb.reset()
    rng = random.Random(1)
    expected = ref_lfsr_words(150, width=tb.width, steps=tb.steps, seed=tb.seed)
    got = []
    while len(got) < 150:
        ready = rng.random() > 0.4
        dut.o_random__ready.value = int(ready)
        await ReadOnly()
        if ready and int(dut.o_random__valid.value):
            got.append(int(dut.o_random__payload.value))
        await RisingEdge(dut.clk)
    assert got == expected


@cocotb.test()
async def test_reseed(dut):
    tb = TB(dut)
    await tb.reset()
    dut.o_random__ready.value = 1
    for seed in (0x1234 & ((1 << tb.width) - 1), 0):
        dut.i_seed.value = seed
        dut.i_load.value = 1
        await RisingEdge(dut.clk)
        dut.i_load.value = 0
        expected = ref_lfsr_words(20, width=tb.width, steps=tb.steps, seed=seed)
        assert await tb.read(20) == expected, f"seed {seed:#x}"
