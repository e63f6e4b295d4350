"""Amaranth-simulator harness for :class:`hw.huffman.HuffmanDecoder` (tests, bench and demo share it).

One producer testbench per input stream and one consumer for the output, with seeded random stalls
(:mod:`sim.streams`), so nothing is lost, duplicated or reordered unnoticed.
"""

import random

from amaranth.sim import Simulator

from sim.streams import stream_get, stream_put

__all__ = ["run_decoder", "group_blocks"]


def group_blocks(beats):
    """Output beats ``(values, first, last, err)`` -> list of dict(values=[...], err=bool)."""
    blocks, cur = [], None
    for values, first, last, err in beats:
        if first or cur is None:
            cur = {"values": [], "err": False}
            blocks.append(cur)
        cur["values"].append(tuple(values))
        if last:
            cur["err"] = bool(err)
            cur = None
    return blocks


def run_decoder(dut, beats, tables, *, expect_beats, stall_in=0.0, stall_out=0.0, seed=0, idle_cycles=64,
                max_cycles=None, clear_at=None):
    """Feed ``beats`` (Beat list) and ``tables`` (``(word, first)`` pairs); collect the output.

    The consumer takes ``expect_beats`` output beats, then checks for ``idle_cycles`` cycles that no
    further beat is offered (``extra`` counts cycles with one) and waits until all input was taken.
    The simulation stops at ``max_cycles`` (default: generous), so a decoder that hangs fails instead
    of blocking the test.

    Returns
    -------
    dict
        ``beats`` (list of (values, first, last, err)), ``errors``, the counters, ``cycles`` (first
        output to last, for throughput), ``total_cycles``, ``extra`` and ``finished`` (False if the
        simulation hit ``max_cycles`` before the consumer was done).
    """
    n_lanes = dut.lanes
    out = []
    state = {"cycle": 0, "out_cycles": [], "extra": 0, "inputs_done": 0}

    async def data_producer(ctx):
        rng = random.Random(seed)
        for b in beats:
            await stream_put(ctx, dut.i_data, {"data": list(b[0]), "first": int(b[1])}, rng=rng,
                             stall=stall_in)
        state["inputs_done"] += 1

    async def table_producer(ctx):
        rng = random.Random(seed + 1)
        for w, first in tables:
            await stream_put(ctx, dut.i_table, {"data": w, "first": int(first)}, rng=rng, stall=stall_in)
        state["inputs_done"] += 1

    async def clock(ctx):
        while True:
            await ctx.tick()
            state["cycle"] += 1

    async def consumer(ctx):
        rng = random.Random(seed + 2)
        while len(out) < expect_beats:
            payload = await stream_get(ctx, dut.o_data, rng=rng, stall=stall_out)
            out.append(([int(x) for x in payload.data], int(payload.first), int(payload.last),
                         int(payload.err)))
            state["out_cycles"].append(state["cycle"])
        # nothing more may come out
        ctx.set(dut.o_data.ready, 1)
        for _ in range(idle_cycles):
            await ctx.tick()
            if ctx.get(dut.o_data.valid):
                state["extra"] += 1
        # and every input was taken (no producer is left in the middle of a handshake)
        while state["inputs_done"] < 2:
            await ctx.tick()

    async def clearer(ctx):
        await ctx.tick().repeat(clear_at)
        ctx.set(dut.i_clear, 1)
        await ctx.tick()
        ctx.set(dut.i_clear, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(clock, background=True)
    sim.add_testbench(data_producer, background=True)
    sim.add_testbench(table_producer, background=True)
    if clear_at is not None:
        sim.add_testbench(clearer, background=True)
    result = {}

    async def reader(ctx):
        await consumer(ctx)
        await ctx.tick()
        for name in ("o_errors", "o_beats_in", "o_symbols", "o_blocks", "o_err_blocks", "o_fires"):
            result[name[2:]] = ctx.get(getattr(dut, name))

    sim.add_testbench(reader)
    if max_cycles is None:
        slow = 1 / max(1e-3, 1 - max(stall_in, stall_out))
        max_cycles = int(1000 + 4 * slow * (len(beats) + len(tables) + expect_beats + idle_cycles))
    while sim.advance():              # until the consumer is done, or the cycle budget is spent
        if state["cycle"] >= max_cycles:
            break
    oc = state["out_cycles"]
    result.update(beats=out, total_cycles=state["cycle"],
                  cycles=(oc[-1] - oc[0] + 1) if oc else 0, n_lanes=n_lanes, extra=state["extra"],
                  out_cycles=oc,
                  finished="errors" in result)
    return result
