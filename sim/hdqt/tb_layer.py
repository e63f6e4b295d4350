"""cocotb testbench of :class:`hw.hdqt.layer.HdqtLayer`: whole training steps against
:func:`sim.hdqt.golden.ref_layer_step`, with random stalls on the load, result and read-back streams."""

import random

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from hw.hdqt.host_port import BUF_DY, BUF_W, BUF_X
from hw.hdqt.layer import Phase
from sim.cocotb_streams import BlockTestbench
from sim.hdqt.golden import HdqtConfig, LfsrStream, ref_exp_base, ref_layer_step


def _signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


class TB(BlockTestbench):
    BLOCK = "hdqt_layer"
    IDLE_INPUTS = ("i_load__valid", "i_load__payload", "i_rd__valid", "i_rd__payload", "o_rd__ready",
                   "i_start", "i_x_unsigned", "i_exp_base", "o_res__ready", "i_clear", "i_lfsr_seed",
                   "i_lfsr_load")

    def __init__(self, dut):
        super().__init__(dut)
        p = self.params
        self.b, self.k, self.o = p["batch"], p["k_dim"], p["o_dim"]
        self.r, self.c = p["rows"], p["cols"]
        self.had_cap = p["had_cap"]
        self.acc = p["acc_width"]
        self.cfg = HdqtConfig(had_cap=self.had_cap, lr_shift=p.get("lr_shift", 3), acc_bits=self.acc,
                              tile_bits=p["tile_bits"])

    async def load(self, buf, tensor, rng, stall):
        d = self.dut
        for addr, v in enumerate(np.ravel(tensor)):
            while rng.random() < stall:
                d.i_load__valid.value = 0
                await RisingEdge(d.clk)
            d.i_load__payload.value = (buf & 3) | (addr << 2) | ((int(v) & 0xFFFF) << 18)
            d.i_load__valid.value = 1
            await ReadOnly()
            while not int(d.i_load__ready.value):
                await RisingEdge(d.clk)
                await ReadOnly()
            await RisingEdge(d.clk)
        d.i_load__valid.value = 0

    async def step(self, w, x, x_exp, dy, dy_exp, *, x_unsigned=True, stall=0.3, seed=0):
        """Load, run one step, collect Y and dX, read W back. Returns a dict like the golden model's."""
        d, rng = self.dut, random.Random(seed)
        if w is not None:
            await self.load(BUF_W, w, rng, stall)
        await self.load(BUF_X, x, rng, stall)
        await self.load(BUF_DY, dy, rng, stall)
        d.i_x_unsigned.value = int(x_unsigned)
        d.i_exp_base.value = ref_exp_base(self.cfg, x_exp, dy_exp, self.b) & 0xFFFF
        d.i_start.value = 1
        await RisingEdge(d.clk)
        d.i_start.value = 0
        y = np.zeros((self.b, self.o), dtype=np.int64)
        dx = np.zeros((self.b, self.k), dtype=np.int64)
        counts = [0, 0]
        cycles = 0
        phase_cycles = {}
        while True:
            ready = rng.random() >= stall
            d.o_res__ready.value = int(ready)
            await ReadOnly()
            ph = int(d.o_phase.value)
            if ph == Phase.IDLE.value:
                break
            phase_cycles[Phase(ph).name] = phase_cycles.get(Phase(ph).name, 0) + 1
            if ready and int(d.o_res__valid.value):
                word = int(d.o_res__payload.value)
                kind = (word >> (self.c * self.acc)) & 1
                vals = [_signed(word >> (self.acc * c), self.acc) for c in range(self.c)]
                tile, row = divmod(counts[kind], self.r)
                counts[kind] += 1
                n_cols = self.o if kind == 0 else self.k
                mb, nb = divmod(tile, n_cols // self.c)
                (y if kind == 0 else dx)[mb * self.r + row, nb * self.c:(nb + 1) * self.c] = vals
            await RisingEdge(d.clk)
            cycles += 1
            assert cycles < 1_000_000, "the step did not finish"
        shifts_word = int(d.o_shifts.value)
        shifts = tuple((shifts_word >> (6 * i)) & 63 for i in range(6))
        sat = bool(int(d.o_w_saturated.value))
        await RisingEdge(d.clk)
        d.o_res__ready.value = 0
        w_out = await self.read_w(rng, stall)
        return {"y": y, "dx": dx, "w": w_out, "shifts": shifts, "w_saturated": sat, "cycles": cycles,
                "phase_cycles": phase_cycles}

    async def read_w(self, rng, stall):
        d = self.dut
        out, addr, n = [], 0, self.o * self.k
        while len(out) < n:
            d.i_rd__valid.value = int(addr < n)
            d.i_rd__payload.value = min(addr, n - 1)
            ready = rng.random() >= stall
            d.o_rd__ready.value = int(ready)
            await ReadOnly()
            if addr < n and int(d.i_rd__ready.value):
                addr += 1
            if ready and int(d.o_rd__valid.value):
                out.append(d.o_rd__payload.value.to_signed())
            await RisingEdge(d.clk)
        d.i_rd__valid.value = 0
        d.o_rd__ready.value = 0
        return np.array(out).reshape(self.o, self.k)


def check(got, ref):
    assert got["shifts"] == ref["shifts"], (got["shifts"], ref["shifts"])
    assert (got["y"] == ref["y"]).all(), "Y differs"
    assert (got["dx"] == ref["dx"]).all(), "dX differs"
    assert (got["w"] == ref["w"]).all(), "updated W differs"
    assert got["w_saturated"] == ref["w_saturated"]


@cocotb.test()
async def test_step_bit_exact_with_stalls(dut):
    tb, rng = await TB.started(dut, seed=11)
    w = rng.integers(-4000, 4000, (tb.o, tb.k))
    lfsr = LfsrStream()
    for i in range(2):   # two steps: W, its maximum and the LFSR carry over
        x = rng.integers(0, 200, (tb.b, tb.k))
        dy = rng.integers(-20000, 20000, (tb.b, tb.o))
        got = await tb.step(w if i == 0 else None, x, -6, dy, -22, seed=i)
        ref = ref_layer_step(tb.cfg, w, x, -6, dy, -22, lfsr)
        check(got, ref)
        w = ref["w"]


@cocotb.test()
async def test_zero_gradient_leaves_weights(dut):
    # all-zero dY: every gradient quantizes to zero (shift 0, no division), W unchanged
    tb, rng = await TB.started(dut, seed=12)
    w = rng.integers(-4000, 4000, (tb.o, tb.k))
    x = rng.integers(0, 200, (tb.b, tb.k))
    dy = np.zeros((tb.b, tb.o), dtype=np.int64)
    got = await tb.step(w, x, -6, dy, -22, stall=0.0)
    ref = ref_layer_step(tb.cfg, w, x, -6, dy, -22, LfsrStream())
    check(got, ref)
    assert (got["w"] == w).all() and not got["dx"].any()
