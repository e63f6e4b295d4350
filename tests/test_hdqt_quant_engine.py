"""A quantizer engine (hw/hdqt/quant_engine.py) against the golden quantizer (sim/hdqt/golden.py) and the
operand layout of its docstring, in the Amaranth simulator."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.hdqt import spec
from hw.hdqt.jobs import TensorSource
from hw.hdqt.quant_engine import QuantEngine, QuantJob
from sim.hdqt.engines import ram_reader, ram_writer, run_job
from sim.hdqt.golden import LfsrStream, ref_quantize

WIDTH = 20
BANK_BITS = {4: 5, 2: 6}    # words per bank: the largest job's
JOBS = [QuantJob("x", 8, 16, stochastic=False, unsigned=True, transpose=False, reduction=16, bank=0),
        QuantJob("w", 8, 16, stochastic=True, unsigned=False, transpose=True, reduction=8, bank=1),
        QuantJob("t", 8, 8, stochastic=True, unsigned=False, transpose=False, reduction=8, bank=0),
        QuantJob("x", 8, 16, stochastic=False, unsigned=False, transpose=True, reduction=8, bank=1)]


def tensor(rng, rows, cols, bound):
    t = rng.integers(-bound, bound + 1, (rows, cols))
    t.flat[rng.choice(t.size, 4, replace=False)] = [bound, -bound, 0, 1]
    return t


def run_engine(dst_lanes, lane_bits, tensors, x_unsigned):
    """Run every job of JOBS on tensors ``{src: array}``; return each job's operand bank writes, o_shifts
    and the LFSR words taken."""
    x, w, t = tensors["x"], tensors["w"], tensors["t"]
    sources = {"x": TensorSource(7, 16), "w": TensorSource(6, 16, lanes=2), "t": TensorSource(6, WIDTH)}
    dut = QuantEngine(sources=sources, jobs=JOBS, width=WIDTH, dst_lanes=dst_lanes, lane_bits=lane_bits,
                      bank_bits=BANK_BITS[dst_lanes])
    words = LfsrStream().take(1000)
    mem, snaps, taken = {}, [], [0]

    def or_abs(a, unsigned=False):
        return int(np.bitwise_or.reduce(np.abs(np.maximum(a, 0) if unsigned else a).ravel()))

    async def lfsr(ctx):
        ctx.set(dut.i_rnd, int(words[0]))
        async for _, _, take in ctx.tick().sample(dut.o_rnd_take):
            if take:
                taken[0] += 1
                ctx.set(dut.i_rnd, int(words[taken[0]]))

    async def tb(ctx):
        ctx.set(dut.i_x_unsigned, x_unsigned)
        ctx.set(dut.i_x_max, or_abs(x, x_unsigned))
        ctx.set(dut.i_w_max, or_abs(w))
        ctx.set(dut.i_t_max, or_abs(t))
        for jj in range(len(JOBS)):
            def snap(ctx):
                snaps.append(dict(mem))
                mem.clear()
            await run_job(ctx, dut.ctl, jj, at_finish=snap)
        out["shifts"] = [ctx.get(dut.o_shifts[jj]) for jj in range(len(JOBS))]

    out = {}
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(ram_reader(dut.x_rd, [int(v) for v in x.ravel()]))
    sim.add_process(ram_reader(dut.w_rd, [[int(a), int(b)] for a, b in w.reshape(-1, 2)]))
    sim.add_process(ram_reader(dut.t_rd, [int(v) for v in t.ravel()]))
    sim.add_process(ram_writer(dut.wr, mem, lane_bits))
    sim.add_process(lfsr)
    sim.add_testbench(tb)
    sim.run()
    return snaps, out["shifts"], taken[0]


def operand(mem, job, lanes, lane_bits):
    """The operand matrix (operand rows x reduction) of ``job`` read back in the documented layout."""
    rows_, red = (job.cols, job.rows) if job.transpose else (job.rows, job.cols)
    half = lanes // 2
    op = np.zeros((rows_, red), dtype=np.int64)
    for mi in range(rows_):
        for k in range(red):
            word = (job.bank << BANK_BITS[lanes]) + (k >> 1) + (mi // half) * (red // 2)
            v = mem[word, (k & 1) + 2 * (mi % half)]
            op[mi, k] = v - (1 << lane_bits) if v >> (lane_bits - 1) else v
    return op


@pytest.mark.parametrize("dst_lanes,lane_bits,x_unsigned", [(4, 8, 1), (4, 4, 0), (2, 4, 1)])
def test_quant_engine_matches_golden(dst_lanes, lane_bits, x_unsigned):
    rng = np.random.default_rng(dst_lanes * lane_bits + x_unsigned)
    tensors = {"x": tensor(rng, 8, 16, 300), "w": tensor(rng, 8, 16, 32767),
               "t": tensor(rng, 8, 8, (1 << (WIDTH - 1)) - 1)}
    snaps, shifts, taken = run_engine(dst_lanes, lane_bits, tensors, x_unsigned)
    lfsr = LfsrStream()
    for jj, job in enumerate(JOBS):
        unsigned = bool(job.unsigned and x_unsigned)
        q, shift = ref_quantize(tensors[job.src], 4, unsigned, lfsr if job.stochastic else None)
        assert shifts[jj] == shift, f"job {jj}"
        want = q.T if job.transpose else q
        if lane_bits == 4:
            want = ((want + 8) & 15) - 8     # a packed int4 lane keeps the low nibble
        assert (operand(snaps[jj], job, dst_lanes, lane_bits) == want).all(), f"job {jj}"
        assert len(snaps[jj]) == job.rows * job.cols, f"job {jj}"   # one write per element
    assert taken == lfsr.index              # one LFSR word per stochastic element, no more


def test_quant_engine_rejects_bad_parameters():
    src = {"x": TensorSource(7, 16)}
    with pytest.raises(ValueError, match="job source"):
        QuantEngine(sources=src, jobs=[JOBS[1]], width=WIDTH, dst_lanes=4, lane_bits=8, bank_bits=5)
    with pytest.raises(TypeError, match="jobs"):
        QuantEngine(sources=src, jobs=[], width=WIDTH, dst_lanes=4, lane_bits=8, bank_bits=5)
    with pytest.raises(ValueError, match="dst_lanes"):
        QuantEngine(sources=src, jobs=JOBS[:1], width=WIDTH, dst_lanes=3, lane_bits=8, bank_bits=5)
    assert spec.RND_BITS == len(QuantEngine(sources=src, jobs=JOBS[:1], width=WIDTH, dst_lanes=4,
                                            lane_bits=8, bank_bits=5).i_rnd)
