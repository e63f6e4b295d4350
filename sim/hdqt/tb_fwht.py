"""cocotb testbench of :class:`hw.hdqt.FWHT` against :func:`sim.hdqt.golden.ref_fwht`."""

import random

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from sim.cocotb_streams import BlockTestbench
from sim.hdqt.golden import ref_fwht


class TB(BlockTestbench):
    BLOCK = "fwht"
    IDLE_INPUTS = ("i_data__valid", "i_data__payload", "o_data__ready")

    async def run(self, vectors, p_in=1.0, p_out=1.0, seed=0):
        """Stream ``vectors`` through; returns (outputs, cycles from first offer to last output)."""
        dut, rng = self.dut, random.Random(seed)
        flat = [int(v) for v in np.ravel(vectors)]
        got, i, cycles = [], 0, 0
        while len(got) < len(flat):
            offer = i < len(flat) and rng.random() < p_in
            dut.i_data__valid.value = int(offer)
            dut.i_data__payload.value = flat[i] if offer else 0
            ready = rng.random() < p_out
            dut.o_data__ready.value = int(ready)
            await ReadOnly()
            if offer and int(dut.i_data__ready.value):
                i += 1
            if ready and int(dut.o_data__valid.value):
                got.append(dut.o_data__payload.value.to_signed())
            await RisingEdge(dut.clk)
            cycles += 1
            assert cycles < 20 * len(flat) + 10 * self.n, "FWHT stopped making progress"
        dut.i_data__valid.value = 0
        return np.array(got).reshape(np.shape(vectors)), cycles

    def random_vectors(self, rng, count):
        lo, hi = -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        v = rng.integers(lo, hi + 1, (count, self.n))
        v[0, :] = hi          # extreme inputs: all max (the DC output grows by log2 n bits)
        v[1, :] = lo          # all min
        v[2, :] = np.where(np.arange(self.n) % 2, lo, hi)
        return v


@cocotb.test()
async def test_matches_golden_one_element_per_cycle(dut):
    tb, _ = await TB.started(dut)
    count = 6
    v = tb.random_vectors(np.random.default_rng(1), count)
    got, cycles = await tb.run(v)
    assert (got == ref_fwht(v, tb.n)).all()
    # n*count elements in, plus the pipeline's fill and flush (at most two bubble vectors + stages)
    assert cycles <= tb.n * count + 3 * tb.n, cycles


@cocotb.test()
async def test_random_stalls(dut):
    tb, _ = await TB.started(dut)
    v = tb.random_vectors(np.random.default_rng(2), 5)
    got, _ = await tb.run(v, p_in=0.6, p_out=0.6, seed=3)
    assert (got == ref_fwht(v, tb.n)).all()
