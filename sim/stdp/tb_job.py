"""cocotb runner of one long job on :class:`hw.stdp.STDPCore` (Verilator): the experiments' fast path.

:func:`run_verilator_job` (host side) writes the network and the per-step events to a JSON file, runs the
``run_job`` cocotb test on the Verilated core (:func:`sim.runner.run_cocotb`, build cached per design)
and returns the spikes of every step and the read-back weights. No stalls: the point is speed; the
stall behaviour is covered by the tests. A ``syn_store="spram"`` config runs on the SPRAM's behavioural
model (:class:`hw.lib.spram.SPRAMCell`; Verilator cannot run ``SB_SPRAM256KA``).
"""

import json
import os
import tempfile

import cocotb
from cocotb.triggers import RisingEdge

from hw.stdp import STDPCore, spec
from sim.runner import build_root, run_cocotb, tb_params
from sim.stdp.tb_stdp import TB

__all__ = ["run_verilator_job"]


def run_verilator_job(cfg, rows, steps):
    """Run ``steps`` on a Verilated core; return ``(spikes per step, read-back rows)``."""
    params = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
    folder = build_root() / "stdp-jobs"
    folder.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(suffix=".json", dir=folder)
    with os.fdopen(fd, "w") as f:
        json.dump({"rows": rows, "steps": steps}, f)
    try:
        run_cocotb(STDPCore(primitives=False, **params), toplevel="stdp_core", test_module="sim.stdp.tb_job",
                   testcase="run_job", params={**params, "job": path})
        with open(path + ".out") as f:
            result = json.load(f)
    finally:
        for p in (path, path + ".out"):
            if os.path.exists(p):
                os.remove(p)
    rows_back = [[tuple(s) for s in r] for r in result["rows"]]
    return result["spikes"], rows_back


@cocotb.test()
async def run_job(dut):
    tb = TB(dut)
    await tb.reset()
    path = tb_params()["job"]
    with open(path) as f:
        job = json.load(f)
    rows = [[tuple(s) for s in r] for r in job["rows"]]
    await tb.load(rows)
    d = dut
    spikes, cur = [], []
    d.o_aer__ready.value = 1
    mask = (1 << spec.AER_BITS) - 1
    for events in job["steps"]:
        words = list(events) + [1 << spec.AER_BITS]
        i = 0
        d.i_aer__payload.value = words[0]
        d.i_aer__valid.value = 1
        done = False
        while not done:
            await RisingEdge(d.clk)
            if int(d.o_aer__valid.value):
                word = int(d.o_aer__payload.value)
                if word >> spec.AER_BITS:
                    spikes.append(cur)
                    cur = []
                    done = True
                else:
                    cur.append(word & mask)
            if i < len(words) and int(d.i_aer__valid.value) and int(d.i_aer__ready.value):
                i += 1
                if i < len(words):
                    d.i_aer__payload.value = words[i]
                else:
                    d.i_aer__valid.value = 0
    d.o_aer__ready.value = 0
    back = await tb.read_rows(rows)
    with open(path + ".out", "w") as f:
        json.dump({"spikes": spikes, "rows": back}, f)

