"""cocotb job runner for :class:`hw.mac.MacArray`: stream a file of tiles through the array.

Not a test of its own: :func:`sim.mac.verilator_run.run_tiles_verilator` uses it to run long jobs (the
digits demo, the benchmark's GEMMs) in Verilator, which is orders of magnitude faster than Amaranth's
simulator for this design. ``tb_params()`` carries the design parameters plus ``job`` (a JSON file
with ``tiles``, ``stall`` and ``seed``) and ``out`` (where to write ``{"rows": [...], "cycles": n}``).
Without stalls one coroutine drives all four streams (two simulator callbacks per cycle): the
streams stay full, so ``cycles`` is the array's own rate.
"""

import json

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from hw.mac import spec
from sim.mac.tb_mac_array import TB
from sim.runner import tb_params


async def run_full_rate(tb, tiles):
    d = tb.dut
    queues = {"i_cmd": [t["cmd"] for t in tiles], "i_act": [w for t in tiles for w in t["act"]],
              "i_wgt": [w for t in tiles for w in t["wgt"]]}
    pos = dict.fromkeys(queues, 0)
    ports = {n: (getattr(d, f"{n}__valid"), getattr(d, f"{n}__payload"), getattr(d, f"{n}__ready"))
             for n in queues}
    n_rows = tb.rows * sum(spec.is_defined_mode(spec.unpack_cmd(t["cmd"], tb.count_bits)["mode"])
                           for t in tiles)
    rows, cycles = [], 0
    d.o_res__ready.value = 1
    while len(rows) < n_rows:
        for name, (valid, payload, _) in ports.items():
            q, i = queues[name], pos[name]
            valid.value = int(i < len(q))
            if i < len(q):
                payload.value = q[i]
        await ReadOnly()
        for name, (_, _, ready) in ports.items():
            if pos[name] < len(queues[name]) and int(ready.value):
                pos[name] += 1
        if int(d.o_res__valid.value):
            rows.append(spec.unpack_res(int(d.o_res__payload.value), rows=tb.rows, cols=tb.cols,
                                        acc_width=tb.acc_width))
        await RisingEdge(d.clk)
        cycles += 1
    for valid, _, _ in ports.values():
        valid.value = 0
    return rows, cycles


@cocotb.test()
async def run_job(dut):
    p = tb_params()
    with open(p["job"]) as f:
        job = json.load(f)
    tb = TB(dut)
    await tb.reset()
    if job.get("stall", 0.0):
        rows, cycles = await tb.run(job["tiles"], stall=job["stall"], seed=job.get("seed", 0))
    else:
        rows, cycles = await run_full_rate(tb, job["tiles"])
    with open(p["out"], "w") as f:
        json.dump({"rows": rows, "cycles": cycles, "overflow": int(dut.o_overflow.value),
                   "mode_error": int(dut.o_mode_error.value)}, f)
