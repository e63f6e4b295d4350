"""The matmul engine (hw/hdqt/matmul_engine.py) on a MacArray against the golden tiled matmul
(sim/hdqt/golden.py), operands in the layout of the quantizer engines, in the Amaranth simulator."""

import random

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from hw.hdqt import spec
from hw.hdqt.matmul_engine import KIND_DX, KIND_Y, MatmulEngine, MatmulJob
from hw.mac.array import MacArray
from sim.hdqt.engines import ram_reader, run_job
from sim.hdqt.golden import ref_tiled_matmul
from sim.streams import stream_get_n

R, C, ACC, TILE_BITS, BANK_BITS = 2, 2, 24, 8, 6
JOBS = [MatmulJob(4, 4, 64, bank=0, result="y", x_act=True),   # two tiles of tile_k along k
        MatmulJob(4, 8, 8, bank=1, result="dx"),
        MatmulJob(8, 4, 8, bank=0, result="dw")]


class EngineOnArray(Elaboratable):
    """The engine driving a MacArray, as in the layer."""

    def __init__(self):
        self.eng = MatmulEngine(rows=R, cols=C, acc_width=ACC, jobs=JOBS, a_bits=BANK_BITS, b_bits=BANK_BITS,
                                dw_word_bits=spec.log2(8 * 4 // C))
        self.mac = MacArray(rows=R, cols=C, acc_width=ACC, tile_k=spec.TILE_K, tile_bits=TILE_BITS,
                            count_bits=8, backend="lut")

    def elaborate(self, platform):
        m = Module()
        m.submodules.eng, m.submodules.mac = eng, mac = self.eng, self.mac
        wiring.connect(m, eng.o_cmd, mac.i_cmd)
        wiring.connect(m, eng.o_act, mac.i_act)
        wiring.connect(m, eng.o_wgt, mac.i_wgt)
        wiring.connect(m, mac.o_res, eng.i_res)
        return m


def fill(a_words, b_words, job, a, bop):
    """Write operands ``a`` (m x k) and ``bop`` (n x k, the weights transposed) into the banks in the
    quantizer engines' layout: A word (m/rows)*(k/2) + k/2, a 16-bit lane per row holding two int8; B
    word (n/cols)*(k/2) + k/2, a byte per column holding two int4 (even k in the low half)."""
    half_k = job.k // 2
    for mi in range(job.m):
        for kk in range(job.k):
            addr = (job.bank << BANK_BITS) + (mi // R) * half_k + (kk >> 1)
            shift = 16 * (mi % R) + 8 * (kk & 1)
            a_words[addr] = (a_words[addr] & ~(0xFF << shift)) | ((int(a[mi, kk]) & 0xFF) << shift)
    for ni in range(job.n):
        for kk in range(job.k):
            addr = (job.bank << BANK_BITS) + (ni // C) * half_k + (kk >> 1)
            shift = 8 * (ni % C) + 4 * (kk & 1)
            b_words[addr] = (b_words[addr] & ~(0xF << shift)) | ((int(bop[ni, kk]) & 0xF) << shift)


@pytest.mark.parametrize("x_unsigned", [1, 0])
def test_matmul_engine_matches_golden(x_unsigned):
    rng = np.random.default_rng(x_unsigned)
    ops = []
    for job in JOBS:
        lo, hi = (0, 15) if job.x_act and x_unsigned else (-8, 7)
        a = rng.integers(lo, hi + 1, (job.m, job.k))
        a[0, :] = hi                                   # a saturating tile
        ops.append((a, rng.integers(-8, 8, (job.n, job.k))))
    ops[0][1][0, :] = 7                              # with a[0]: beyond the tile limit
    dut = EngineOnArray()
    eng = dut.eng
    a_words, b_words = [0] * (2 << BANK_BITS), [0] * (2 << BANK_BITS)
    got = {}

    async def control(ctx):
        ctx.set(eng.i_x_unsigned, x_unsigned)
        for jj, job in enumerate(JOBS):
            fill(a_words, b_words, job, *ops[jj])
            await run_job(ctx, eng.ctl, jj)

    async def results(ctx):
        prng = random.Random(1)
        for jj, job in enumerate(JOBS):
            n = job.m * job.n // C
            port = eng.o_dw if job.result == "dw" else eng.o_res
            got[jj] = await stream_get_n(ctx, port, n, rng=prng, stall=0.3)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(ram_reader(eng.a_rd, a_words))
    sim.add_process(ram_reader(eng.b_rd, b_words))
    sim.add_testbench(control)
    sim.add_testbench(results)
    sim.run()

    for jj, job in enumerate(JOBS):
        a, bop = ops[jj]
        want = ref_tiled_matmul(a, bop.T, tile_k=spec.TILE_K, tile_bits=TILE_BITS, acc_bits=ACC)
        rows = got[jj]
        if job.result == "dw":
            # each row once, at word o*(n/cols) + rn
            words = {int(r.word): [int(v) for v in r.data] for r in rows}
            assert sorted(words) == list(range(job.m * job.n // C))
            for word, data in words.items():
                o, rn = divmod(word, job.n // C)
                assert data == list(want[o, rn * C:(rn + 1) * C]), f"dW word {word}"
            continue
        # Y / dX: tiles row-major, `rows` rows each; `last` on the job's last row only
        i = 0
        for tm in range(job.m // R):
            for tn in range(job.n // C):
                for r in range(R):
                    row = rows[i]
                    assert [int(v) for v in row.data] == list(want[tm * R + r, tn * C:(tn + 1) * C])
                    assert row.kind == (KIND_DX if job.result == "dx" else KIND_Y)
                    assert row.last == (i == len(rows) - 1)
                    i += 1


def test_matmul_engine_rejects_bad_parameters():
    with pytest.raises(ValueError, match="job result"):
        MatmulEngine(rows=R, cols=C, acc_width=ACC, jobs=[MatmulJob(4, 4, 8, 0, "z")], a_bits=4, b_bits=4,
                     dw_word_bits=3)
    with pytest.raises(ValueError, match="rows"):
        MatmulEngine(rows=3, cols=C, acc_width=ACC, jobs=JOBS, a_bits=4, b_bits=4, dw_word_bits=3)
