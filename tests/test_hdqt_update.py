"""HDQT weight updater (hw/hdqt/update.py) against the spec's update, in the Amaranth simulator."""

import random

import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from hw.hdqt import spec
from hw.hdqt.update import UPDATE_LATENCY, WeightUpdater
from sim.streams import stream_put

ACC = 24


def run_updater(cols, lanes, w, rows, exp_base, shift_dy, shift_x, *, gap=0.0, seed=0):
    """Send ``rows`` (``[(word, [cols results])]``) through a WeightUpdater on a W memory holding ``w``
    (a flat list of weights, ``lanes`` per word, one cycle read latency); return the final W, the words
    written with ``o_clip`` high, the OR of ``o_w_abs`` and whether ``o_busy`` fell at the end."""
    words = len(w) // lanes
    dut = WeightUpdater(cols=cols, lanes=lanes, acc_width=ACC, words=words)
    mem = [w[i * lanes:(i + 1) * lanes] for i in range(words)]
    out = {"clip": set(), "abs": 0, "writes": []}
    rng = random.Random(seed)

    async def ram(ctx):
        # a block RAM port pair: read data a cycle after the enable, writes at the clock edge
        async for _, _, ren, raddr, wen, waddr, wdata, clip, av, a in ctx.tick().sample(
                dut.o_w_rd_en, dut.o_w_rd_addr, dut.o_w_wr_en, dut.o_w_wr_addr, dut.o_w_wr_data,
                dut.o_clip, dut.o_w_abs_valid, dut.o_w_abs):
            if wen:
                mem[waddr] = [int(x) for x in wdata]
                out["writes"].append(waddr)
                if clip:
                    out["clip"].add(waddr)
            if av:
                out["abs"] |= a
            if ren:
                ctx.set(dut.i_w_rd_data, mem[raddr])

    async def tb(ctx):
        ctx.set(dut.i_exp_base, exp_base)
        ctx.set(dut.i_shift_dy, shift_dy)
        ctx.set(dut.i_shift_x, shift_x)
        await ctx.tick().repeat(4)     # u settles in three register stages
        for word, data in rows:
            await stream_put(ctx, dut.i_dw, {"data": data, "word": word}, rng=rng, stall=gap)
        await ctx.tick().repeat(UPDATE_LATENCY + 1)
        out["idle"] = not ctx.get(dut.o_busy)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(ram)
    sim.add_testbench(tb)
    sim.run()
    return [x for word in mem for x in word], out


def expected(cols, lanes, w, rows, u):
    """The spec's update (:func:`hw.hdqt.spec.update_shift`'s clamp of ``u``, rshift_rtn, sat)."""
    u = max(-ACC, min(spec.W_BITS, u))
    w = list(w)
    clip = set()
    for word, data in rows:
        for c, dw in enumerate(data):
            i = word * cols + c
            raw = w[i] - spec.rshift_rtn(dw, -u)
            w[i] = spec.sat(raw, spec.W_BITS)
            if raw != w[i]:
                clip.add(i // lanes)
    return w, clip


def corner_rows(rng, cols, n_rows):
    lo, hi = -(1 << (ACC - 1)), (1 << (ACC - 1)) - 1
    corners = [0, 1, -1, 2, -2, 3, -3, hi, lo, lo + 1, 127, -128, 1 << 12, -(1 << 12) - 1]
    rows = []
    for r in range(n_rows):
        data = [rng.choice(corners) if rng.random() < 0.3 else rng.randint(-5000, 5000) for _ in range(cols)]
        rows.append((r, data))
    rng.shuffle(rows)
    return rows


@pytest.mark.parametrize("cols, lanes", [(4, 2), (2, 1), (2, 2)])
@pytest.mark.parametrize("u", [-30, -24, -5, -1, 0, 3, 16, 20])
def test_updater_matches_spec(cols, lanes, u):
    rng = random.Random(1000 * cols + 10 * lanes + u)
    n_rows = 8
    w = [rng.choice([0, 32767, -32767, 1, -1]) if rng.random() < 0.2 else rng.randint(-32767, 32767)
         for _ in range(n_rows * cols)]
    rows = corner_rows(rng, cols, n_rows)
    shift_dy, shift_x = rng.randint(0, 20), rng.randint(0, 20)
    got_w, out = run_updater(cols, lanes, w, rows, u - shift_dy - shift_x, shift_dy, shift_x,
                             gap=0.3, seed=u)
    want_w, want_clip = expected(cols, lanes, w, rows, u)
    assert got_w == want_w
    assert out["clip"] == want_clip
    # every word written once, the OR of the written magnitudes, idle afterwards
    assert sorted(out["writes"]) == list(range(n_rows * cols // lanes))
    want_abs = 0
    for x in want_w:
        want_abs |= abs(x)
    assert out["abs"] == want_abs
    assert out["idle"]


def test_updater_back_to_back_rows():
    # rows offered in consecutive cycles: one chunk per cycle, a row taken with its last chunk
    rng = random.Random(7)
    cols, lanes = 4, 1
    w = [rng.randint(-20000, 20000) for _ in range(8 * cols)]
    rows = corner_rows(rng, cols, 8)
    got_w, out = run_updater(cols, lanes, w, rows, -10, 2, 1)
    assert got_w == expected(cols, lanes, w, rows, -7)[0]


def test_updater_reset_mid_row_then_exact():
    # The domain's reset in the middle of a row and of the pipeline (the group's watchdog reset):
    # nothing of the aborted rows is written after it, and the next rows update W exactly (the data
    # registers are reset-less; the valid bits and the sub-word count are not).
    cols, lanes = 4, 2
    rng = random.Random(11)
    w = [rng.randint(-20000, 20000) for _ in range(8 * cols)]
    aborted = corner_rows(rng, cols, 8)[:3]
    rows = corner_rows(rng, cols, 8)
    rst = Signal()
    dut = WeightUpdater(cols=cols, lanes=lanes, acc_width=ACC, words=len(w) // lanes)
    top = ResetInserter(rst)(dut)
    mem = [w[i * lanes:(i + 1) * lanes] for i in range(len(w) // lanes)]
    log = {"writes": [], "reset_at": None, "snapshot": None}

    async def ram(ctx):
        async for _, _, ren, raddr, wen, waddr, wdata in ctx.tick().sample(
                dut.o_w_rd_en, dut.o_w_rd_addr, dut.o_w_wr_en, dut.o_w_wr_addr, dut.o_w_wr_data):
            if wen:
                mem[waddr] = [int(x) for x in wdata]
                log["writes"].append((waddr, log["reset_at"] is not None, log["snapshot"] is not None))
            if ren:
                ctx.set(dut.i_w_rd_data, mem[raddr])

    async def tb(ctx):
        ctx.set(dut.i_exp_base, -10)
        ctx.set(dut.i_shift_dy, 2)
        ctx.set(dut.i_shift_x, 1)
        await ctx.tick().repeat(4)
        for word, data in aborted:
            await stream_put(ctx, dut.i_dw, {"data": data, "word": word})
        # half of the next row's chunks, then the reset
        ctx.set(dut.i_dw.payload, {"data": aborted[0][1], "word": 0})
        ctx.set(dut.i_dw.valid, 1)
        await ctx.tick()
        ctx.set(dut.i_dw.valid, 0)
        ctx.set(rst, 1)
        await ctx.tick()     # a write in the reset's own cycle is the last the aborted rows make
        log["reset_at"] = True
        ctx.set(rst, 0)
        await ctx.tick().repeat(UPDATE_LATENCY + 2)
        log["snapshot"] = [x for word in mem for x in word]
        for word, data in rows:
            await stream_put(ctx, dut.i_dw, {"data": data, "word": word}, rng=rng, stall=0.3)
        await ctx.tick().repeat(UPDATE_LATENCY + 1)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_process(ram)
    sim.add_testbench(tb)
    sim.run()
    assert not [waddr for waddr, after_reset, started in log["writes"] if after_reset and not started]
    assert [x for word in mem for x in word] == expected(cols, lanes, log["snapshot"], rows, -7)[0]


@pytest.mark.parametrize("kw, name", [
    (dict(cols=3, lanes=1, words=8), "cols"),
    (dict(cols=2, lanes=4, words=8), "lanes"),
    (dict(cols=4, lanes=1, words=2), "words"),
    (dict(cols=4, lanes=1, words=8, acc_width=8), "acc_width"),
])
def test_updater_rejects_bad_parameters(kw, name):
    with pytest.raises(ValueError, match=name):
        WeightUpdater(**{"acc_width": ACC, **kw})
