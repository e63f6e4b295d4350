"""The GEMM engine's activation buffer (:class:`hw.gemm.buffers.ActivationBuffer`) alone, against a
model of its contract: a load takes the next ``row_tiles * groups`` words to addresses 0, 1, ...;
``o_loading`` and ``i_act.ready`` are high exactly until the last of them is written (or a clear);
every word reads back from its address."""

import random

import pytest

from hw.gemm.buffers import ActivationBuffer
from sim.streams import simulate

MAX_TILES, MAX_GROUPS = 3, 4


@pytest.mark.parametrize("rows, addr_reg", [(1, False), (2, True)])
def test_activation_buffer_loads_against_a_model(rows, addr_reg):
    """With ``addr_reg`` (one RAM per row, each behind its own address register) the word read
    comes two cycles after its address, else one."""
    dut = ActivationBuffer(rows=rows, max_row_tiles=MAX_TILES, max_groups=MAX_GROUPS, addr_reg=addr_reg)
    width = 32 * rows
    rng = random.Random(11)
    checked = {"cycles": 0, "words": 0}

    async def tb(ctx):
        left, addr, mem = 0, 0, {}
        for cycle in range(3000):
            load = left == 0 and rng.random() < 0.2 or rng.random() < 0.01     # also mid-load
            clear = not load and rng.random() < 0.005
            tiles, groups = rng.randint(0, MAX_TILES), rng.randint(1, MAX_GROUPS)
            valid, word = rng.random() < 0.6, rng.getrandbits(width)
            ctx.set(dut.i_load, load)
            ctx.set(dut.i_row_tiles, tiles)
            ctx.set(dut.i_groups, groups)
            ctx.set(dut.i_clear, clear)
            ctx.set(dut.i_act.valid, valid)
            ctx.set(dut.i_act.payload, word)
            assert ctx.get(dut.o_loading) == ctx.get(dut.i_act.ready) == (left != 0), cycle
            if load:
                left, addr = tiles * groups, 0
            elif valid and left:
                mem[addr] = word
                addr, left = addr + 1, left - 1
                checked["words"] += 1
            if clear:
                left = 0
            await ctx.tick()
            checked["cycles"] += 1
        ctx.set(dut.i_load, 0)
        ctx.set(dut.i_act.valid, 0)
        ctx.set(dut.rd_en, 1)
        addrs = list(mem)
        latency = 2 if addr_reg else 1
        for k in range(len(addrs) + latency - 1):
            # a new address every cycle: each word read back `latency` cycles after its address
            ctx.set(dut.rd_addr, addrs[k] if k < len(addrs) else 0)
            await ctx.tick()
            if k + 1 >= latency:
                a = addrs[k + 1 - latency]
                assert ctx.get(dut.rd_data) == mem[a], a

    simulate(dut, tb)
    assert checked["words"] > 500
