"""RegisteredFlagFIFO against the library's SyncFIFOBuffered: the same inputs every cycle give the same
outputs every cycle (it is a re-timing of the same FIFO), and every word comes out once, in order."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.sim import Simulator

from hw.lib.fifo import RegisteredFlagFIFO


@pytest.mark.parametrize("bram", [False, True])
@pytest.mark.parametrize("depth", [2, 3, 4, 5, 40, 64, 512])
def test_cycle_equal_to_sync_fifo_buffered(depth, bram):
    """``bram=True`` (block RAM without collision logic) too: the same cycles, and it never reads
    the entry it writes in that cycle (what makes dropping the collision logic safe)."""
    rng = random.Random(depth)
    m = Module()
    m.submodules.dut = dut = RegisteredFlagFIFO(width=8, depth=depth, bram=bram)
    m.submodules.ref = ref = SyncFIFOBuffered(width=8, depth=depth)
    out = []

    async def tb(ctx):
        written = 0
        # phases of different write/read rates: fill up, drain, and balanced with bursts
        for cycle in range(3000):
            phase = (cycle // 250) % 3
            w = rng.random() < (0.9, 0.2, 0.5)[phase]
            r = rng.random() < (0.2, 0.9, 0.5)[phase]
            data = written & 0xFF
            for f in (dut, ref):
                ctx.set(f.w_en, w)
                ctx.set(f.w_data, data)
                ctx.set(f.r_en, r)
            if bram:
                assert not ctx.get(dut.collision), cycle
            for name in ("w_rdy", "r_rdy", "level", "w_level", "r_level"):
                assert ctx.get(getattr(dut, name)) == ctx.get(getattr(ref, name)), (cycle, name)
            if ctx.get(ref.r_rdy):
                assert ctx.get(dut.r_data) == ctx.get(ref.r_data), cycle
                if r:
                    out.append(ctx.get(dut.r_data))
            if w and ctx.get(ref.w_rdy):
                written += 1
            await ctx.tick()
        assert out == [i & 0xFF for i in range(len(out))]
        assert len(out) > 500

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("depth", [0, 1, "4"])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match="depth must be an integer of at least 2"):
        RegisteredFlagFIFO(width=8, depth=depth)


def test_bram_memory_attributes():
    """``bram=True`` asks Yosys for block RAM and waives its collision logic; the default does not."""
    from amaranth.back import rtlil

    def text(**kw):
        f = RegisteredFlagFIFO(width=8, depth=4, **kw)
        return rtlil.convert(f, ports=[f.w_en, f.w_data, f.r_en, f.r_data, f.r_rdy, f.w_rdy])

    assert "no_rw_check" not in text() and "ram_style" not in text()
    bram = text(bram=True)
    assert "attribute \\no_rw_check 1" in bram and 'attribute \\ram_style "block"' in bram
