"""cocotb: replay recorded HDQT training steps on :class:`hw.hdqt.layer.HdqtLayer` and check them bit-exactly.

``tb_params()["replay"]`` names an ``.npz`` written by :func:`save_replay` (the layer's inputs of one
or more steps of a training run: master weights, input, output gradient, exponents, LFSR state);
the testbench loads the LFSR state, runs each step on the RTL (no stalls, so the cycle count is the
step's cost), checks Y, dX, the updated W and the shifts against :func:`sim.hdqt.golden.ref_layer_step`,
and writes ``{"cycles": [...], "phase_cycles": {...}}`` (phases of the last step) next to the
``.npz`` as ``<name>.json``.
"""

import json
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from sim.hdqt.golden import LfsrStream, ref_layer_step
from sim.hdqt.tb_layer import TB, check
from sim.runner import tb_params

__all__ = ["save_replay"]


def save_replay(path, steps):
    """Write recorded steps (dicts with w, x, x_exp, dy, dy_exp, lfsr_index) for this testbench."""
    arrays = {}
    for i, st in enumerate(steps):
        for key in ("w", "x", "dy"):
            arrays[f"{key}{i}"] = np.asarray(st[key], dtype=np.int64)
        arrays[f"meta{i}"] = np.array([st["x_exp"], st["dy_exp"], st["lfsr_index"]], dtype=np.int64)
    np.savez(path, n=np.array(len(steps)), **arrays)


@cocotb.test()
async def test_replay(dut):
    tb = TB(dut)
    path = Path(tb_params()["replay"])
    data = np.load(path)
    await tb.reset()
    cycles = []
    for i in range(int(data["n"])):
        x_exp, dy_exp, index = (int(v) for v in data[f"meta{i}"])
        lfsr = LfsrStream(index)
        dut.i_lfsr_seed.value = lfsr.state
        dut.i_lfsr_load.value = 1
        await RisingEdge(dut.clk)
        dut.i_lfsr_load.value = 0
        w, x, dy = data[f"w{i}"], data[f"x{i}"], data[f"dy{i}"]
        got = await tb.step(w, x, x_exp, dy, dy_exp, stall=0.0)
        check(got, ref_layer_step(tb.cfg, w, x, x_exp, dy, dy_exp, lfsr))
        cycles.append(got["cycles"])
        phases = got["phase_cycles"]
    path.with_suffix(".json").write_text(json.dumps({"cycles": cycles, "phase_cycles": phases}))
