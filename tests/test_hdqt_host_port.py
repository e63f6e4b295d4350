"""HDQT layer host port (hw/hdqt/host_port.py): loads, maxima, W read-back in the Amaranth simulator."""

import random

import pytest
from amaranth.sim import Simulator

from hw.hdqt.host_port import BUF_DY, BUF_W, BUF_X, LOAD_LATENCY, HostPort
from sim.streams import stream_get, stream_put


def run_port(lanes, loads, reads, *, x_unsigned, max_w_load=None, stall=0.3, seed=0):
    """Load ``loads`` (``[(buf, addr, value)]``) into buffers modelled as dicts, then read W's elements
    ``reads`` back; return the buffers, the maxima after the loads (and after ``max_w_load``), the read
    values and whether ``o_busy`` fell."""
    dut = HostPort(lanes=lanes)
    bufs = {BUF_X: {}, BUF_W: {}, BUF_DY: {}}
    w_words = {}
    out = {}
    rng = random.Random(seed)

    async def ram(ctx):
        async for _, _, addr, data, xen, dyen, wen, ren, raddr in ctx.tick().sample(
                dut.o_wr_addr, dut.o_wr_data, dut.o_x_wr_en, dut.o_dy_wr_en, dut.o_w_wr_en,
                dut.o_w_rd_en, dut.o_w_rd_addr):
            if xen:
                bufs[BUF_X][addr] = data
            if dyen:
                bufs[BUF_DY][addr] = data
            for ln in range(lanes):
                if (wen >> ln) & 1:
                    w_words.setdefault(addr // lanes, [0] * lanes)[ln] = data
                    assert addr % lanes == ln, "W lane enable does not match the element's lane"
            if ren:
                ctx.set(dut.i_w_rd_data, w_words.get(raddr, [0] * lanes))

    async def tb(ctx):
        ctx.set(dut.i_idle, 1)
        ctx.set(dut.i_x_unsigned, x_unsigned)
        for buf, addr, value in loads:
            await stream_put(ctx, dut.i_load, {"buf": buf, "addr": addr, "data": value}, rng=rng, stall=stall)
        await ctx.tick().repeat(LOAD_LATENCY)
        out["idle"] = not ctx.get(dut.o_busy)
        out["max_x"], out["max_w"] = ctx.get(dut.o_max_x), ctx.get(dut.o_max_w)
        if max_w_load is not None:
            ctx.set(dut.i_max_w, max_w_load)
            ctx.set(dut.i_max_w_load, 1)
            await ctx.tick()
            ctx.set(dut.i_max_w_load, 0)
            out["max_w_loaded"] = ctx.get(dut.o_max_w)
        # a load while busy (not idle) is refused
        ctx.set(dut.i_idle, 0)
        ctx.set(dut.i_load.valid, 1)
        out["ready_busy"] = ctx.get(dut.i_load.ready)
        ctx.set(dut.i_load.valid, 0)
        ctx.set(dut.i_idle, 1)

    async def reader(ctx):
        await ctx.tick().until(dut.o_busy)     # after the loads (o_busy low for LOAD_LATENCY cycles)
        while True:
            idle_for = 0
            while idle_for <= LOAD_LATENCY + 2 and not ctx.get(dut.o_busy):
                await ctx.tick()
                idle_for += 1
            if idle_for > LOAD_LATENCY + 2:
                break
            await ctx.tick()
        for r in reads:
            await stream_put(ctx, dut.i_rd, r, rng=rng, stall=stall)

    async def drain(ctx):
        got = []
        for _ in reads:
            got.append(await stream_get(ctx, dut.o_rd, rng=rng, stall=stall))
        out["reads"] = got

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(ram)
    sim.add_testbench(tb)
    sim.add_testbench(reader)
    sim.add_testbench(drain)
    sim.run()
    return bufs, w_words, out


def tensor_loads(rng, buf, n, lo, hi):
    return [(buf, a, rng.randint(lo, hi)) for a in range(n)]


def or_abs(values):
    r = 0
    for v in values:
        r |= abs(v)
    return r


@pytest.mark.parametrize("lanes", [1, 2])
@pytest.mark.parametrize("x_unsigned", [0, 1])
def test_loads_maxima_and_readback(lanes, x_unsigned):
    rng = random.Random(10 * lanes + x_unsigned)
    # small elements and a few large negative ones: whether the negatives count shows in the maximum
    x = [(b, a, v if a % 5 else -rng.randint(256, 300)) for b, a, v in tensor_loads(rng, BUF_X, 16, 0, 15)]
    # a first W that the second (element 0 first) replaces: the maximum restarts
    w_old = tensor_loads(rng, BUF_W, 8, -32767, 32767)
    w = tensor_loads(rng, BUF_W, 16, -2000, 2000)
    dy = tensor_loads(rng, BUF_DY, 8, -32768, 32767)
    reads = list(range(16))
    rng.shuffle(reads)
    bufs, w_words, out = run_port(lanes, x + w_old + dy + w, reads, x_unsigned=x_unsigned, max_w_load=0x123)
    assert bufs[BUF_X] == {a: v for _, a, v in x}
    assert bufs[BUF_DY] == {a: v for _, a, v in dy}
    flat_w = {i * lanes + ln: v for i, word in w_words.items() for ln, v in enumerate(word)}
    assert {a: flat_w[a] for a in range(16)} == {a: v for _, a, v in w}
    # X: negative elements of an unsigned tensor quantize to 0 and do not count
    assert out["max_x"] == or_abs(max(v, 0) if x_unsigned else v for _, _, v in x)
    assert out["max_w"] == or_abs(v for _, _, v in w)
    assert out["max_w_loaded"] == 0x123
    assert out["idle"] and not out["ready_busy"]
    assert out["reads"] == [flat_w[r] for r in reads]


def test_rejects_bad_lanes():
    with pytest.raises(ValueError, match="lanes"):
        HostPort(lanes=3)
