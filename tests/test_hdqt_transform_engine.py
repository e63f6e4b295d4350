"""The transform engine (hw/hdqt/transform_engine.py) against the golden FWHT (sim/hdqt/golden.py), in the
Amaranth simulator."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.hdqt.jobs import TensorSource
from hw.hdqt.transform_engine import TransformEngine, TransformJob
from sim.hdqt.engines import ram_reader, ram_writer, run_job
from sim.hdqt.golden import ref_fwht

# W (8 x 16, two per word) transformed along its rows' direction (columns of 8, n_o) and along its rows
# (n_b); dY (8 x 8) along its rows (n_b) and its columns (n_o), into two destinations
JOBS = [TransformJob("w", 8, 16, colwise=True, use_nb=False, dst="ta"),
        TransformJob("dy", 8, 8, colwise=False, use_nb=True, dst="tb"),
        TransformJob("dy", 8, 8, colwise=True, use_nb=False, dst="ta"),
        TransformJob("w", 8, 16, colwise=False, use_nb=True, dst="tb")]


def run_engine(n_o, n_b, w, dy):
    dut = TransformEngine(sources={"w": TensorSource(6, lanes=2), "dy": TensorSource(6)},
                          dsts={"ta": 7, "tb": 7}, jobs=JOBS, n_o=n_o, n_b=n_b)
    mems = {"ta": {}, "tb": {}}
    snaps = []

    async def tb(ctx):
        for jj, job in enumerate(JOBS):
            def snap(ctx, dst=job.dst):
                snaps.append((dict(mems[dst]), ctx.get(getattr(dut, f"o_{dst}_max"))))
                mems[dst].clear()
            await run_job(ctx, dut.ctl, jj, at_finish=snap)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(ram_reader(dut.w_rd, [[int(a), int(b)] for a, b in w.reshape(-1, 2)]))
    sim.add_process(ram_reader(dut.dy_rd, [int(v) for v in dy.ravel()]))
    for d in mems:
        sim.add_process(ram_writer(getattr(dut, f"{d}_wr"), mems[d]))
    sim.add_testbench(tb)
    sim.run()
    return snaps


@pytest.mark.parametrize("n_o,n_b", [(8, 4), (8, 8), (2, 8)])
def test_transform_engine_matches_golden(n_o, n_b):
    rng = np.random.default_rng(n_o * 100 + n_b)
    w = rng.integers(-32768, 32768, (8, 16))
    w[0, :] = -32768                       # the extreme sum of a block
    dy = rng.integers(-32768, 32768, (8, 8))
    snaps = run_engine(n_o, n_b, w, dy)
    for jj, job in enumerate(JOBS):
        src = {"w": w, "dy": dy}[job.src]
        n = n_b if job.use_nb else n_o
        want = ref_fwht(src, n, axis=0 if job.colwise else 1)
        got_mem, got_max = snaps[jj]
        assert len(got_mem) == want.size, f"job {jj}"     # each element written once
        got = np.array([got_mem[a] for a in range(want.size)]).reshape(want.shape)
        assert (got == want).all(), f"job {jj}"
        assert got_max == int(np.bitwise_or.reduce(np.abs(want).ravel())), f"job {jj}"


def test_transform_engine_rejects_bad_parameters():
    src = {"w": TensorSource(6, lanes=2)}
    with pytest.raises(ValueError, match="job source"):
        TransformEngine(sources=src, dsts={"ta": 7}, jobs=JOBS[1:2], n_o=8, n_b=8)
    with pytest.raises(ValueError, match="n_b"):
        TransformEngine(sources=src, dsts={"ta": 7}, jobs=JOBS[:1], n_o=8, n_b=6)
    with pytest.raises(TypeError, match="jobs"):
        TransformEngine(sources=src, dsts={"ta": 7}, jobs=[("w", 8, 16)], n_o=8, n_b=8)
