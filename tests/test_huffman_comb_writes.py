"""``_CombWrites`` (the two-context table lane's counters in block RAM): ``d.sync`` statements to
the target signals become combinational with their write-enable flag, in their ``If`` context;
every other statement stays synchronous."""

from amaranth.hdl import Module, Signal

from hw.huffman.lane_table_cslow import _CombWrites
from sim.streams import simulate


def test_comb_writes_route_only_the_targets():
    m = Module()
    cond = Signal()
    target, flag, other = Signal(8), Signal(), Signal(8)
    proxy = _CombWrites(m, [(target, flag)])
    with proxy.If(cond):
        proxy.d.sync += [target.eq(5), other.eq(7)]
    proxy.d.sync += other.eq(other + 1)         # outside the If: still synchronous

    async def tb(ctx):
        assert ctx.get(target) == 0 and ctx.get(flag) == 0
        ctx.set(cond, 1)
        assert ctx.get(target) == 5 and ctx.get(flag) == 1 and ctx.get(other) == 0   # at once
        await ctx.tick()
        assert ctx.get(other) == 1             # the later statement wins, a cycle later
        ctx.set(cond, 0)
        assert ctx.get(target) == 0 and ctx.get(flag) == 0
        await ctx.tick()
        assert ctx.get(other) == 2

    simulate(m, tb)
