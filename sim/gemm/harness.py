"""Amaranth-simulator harness of :class:`hw.gemm.GemmEngine` (tests and bench share it).

One producer testbench per input stream (seeded random stalls, :mod:`sim.streams`; the decoder's
streams in its own clock domain when the engine has one) and one consumer for ``o_res``. The
consumer gives up after ``max_cycles``, so an engine that hangs fails instead of blocking.
"""

import random

from amaranth.lib import data
from amaranth.sim import Simulator

from hw.mac import spec as mac_spec
from sim.streams import stream_put_all

__all__ = ["run_engine"]


def run_engine(dut, job, *, stall=0.0, stall_out=None, seed=0, period=8e-9, decode_period=None,
               max_cycles=200_000, idle_cycles=64, expect_rows=None):
    """Run ``job`` (:func:`sim.gemm.golden.gemm_job`) through ``dut``.

    ``period`` / ``decode_period``: the clocks of the array's and the decoder's domains (the latter
    only if the engine has a decode domain). ``stall`` is the stall probability of every producer,
    ``stall_out`` of the consumer (default ``stall``). Returns a dict: ``rows`` (``(values,
    overflow)`` per result row), ``cycles`` (array cycles from the start to the last row),
    ``finished``, ``extra`` (rows offered after the expected ones), ``errors``, ``overflow``,
    ``beats``, ``idle``.
    """
    dom = dut.decode_domain
    expect = len(job["rows"]) if expect_rows is None else expect_rows
    stall_out = stall if stall_out is None else stall_out
    out = {"rows": [], "cycles": None, "finished": False, "extra": 0}
    sim = Simulator(dut)
    sim.add_clock(period)
    if dom != "sync":
        sim.add_clock(decode_period or period, domain=dom)

    def producer(stream, payloads, k, domain="sync"):
        async def tb(ctx):
            await stream_put_all(ctx, stream, payloads, rng=random.Random(seed + k), stall=stall,
                                 domain=domain)
        return tb

    sim.add_testbench(producer(dut.i_table, [{"data": w, "first": int(f)} for w, f in job["table"]], 1, dom),
                      background=True)
    sim.add_testbench(producer(dut.i_data, [{"data": list(b.words), "first": int(b.first)}
                                            for blk in job["blocks"] for b in blk], 2, dom), background=True)
    layout = dut.i_cmd.payload.shape()
    sim.add_testbench(producer(dut.i_cmd, [data.Const(layout, c) for c in job["cmds"]], 3), background=True)
    sim.add_testbench(producer(dut.i_act, job["acts"], 4), background=True)

    async def consumer(ctx):
        rng = random.Random(seed + 5)
        cycle = 0
        while len(out["rows"]) < expect and cycle < max_cycles:
            ready = not (stall_out and rng.random() < stall_out)
            ctx.set(dut.o_res.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o_res.valid, dut.o_res.payload)
            cycle += 1
            if valid and ready:
                out["rows"].append(([int(v) for v in payload.data], bool(payload.overflow)))
                out["cycles"] = cycle
        out["finished"] = len(out["rows"]) == expect
        ctx.set(dut.o_res.ready, 1)
        for _ in range(idle_cycles):
            _, _, valid = await ctx.tick().sample(dut.o_res.valid)
            out["extra"] += int(valid)
        out.update(errors=ctx.get(dut.o_errors), overflow=ctx.get(dut.o_overflow),
                   beats=ctx.get(dut.o_beats), idle=ctx.get(dut.o_idle))

    sim.add_testbench(consumer)
    sim.run()
    return out


def peak_macs(rows, cols, mode):
    """MAC per cycle of the array in ``mode`` with every PE busy."""
    return rows * cols * mac_spec.lanes(mode)
