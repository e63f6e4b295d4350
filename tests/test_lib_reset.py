"""The registered reset tree (:mod:`hw.lib.reset`): behaviour, and that synthesis keeps its copies."""

import json

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Elaboratable, Fragment, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from boards.toolchain import run_yosys
from hw.lib.reset import (
    KEEP_REGISTERS,
    add_with_reset_domains,
    add_with_reset_tree,
    module_with_reset_tree,
    reset_root,
)


class Counter(wiring.Component):
    o_count: Out(4)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o_count.eq(self.o_count + 1)
        return m


class Parts(wiring.Component):
    """Three counters as submodules of one module with a counter of its own."""
    o_counts: Out(16)

    def elaborate(self, platform):
        m = Module()
        own = Signal(4)
        m.d.sync += own.eq(own + 1)
        parts = [Counter() for _ in range(3)]
        for i, p in enumerate(parts):
            m.submodules[f"part{i}"] = p
        m.d.comb += self.o_counts.eq(
            own | parts[0].o_count << 4 | parts[1].o_count << 8 | parts[2].o_count << 12)
        return m


def _with_parts(dut, m, add):
    """``m`` with a ``Parts`` added by ``add(m, parts)`` (its leaves kept in ``dut.leaves``)."""
    parts = Parts()
    dut.leaves = add(m, parts)
    m.d.comb += dut.o_counts.eq(parts.o_counts)
    return m


class Top(wiring.Component):
    i_clear: In(1)
    o_counts: Out(16)

    def elaborate(self, platform):
        return _with_parts(self, Module(), lambda m, parts: add_with_reset_tree(
            m, "parts", parts, self.i_clear, platform=platform))


def _counts(dut, pin, high_at, cycles=9):
    """``o_counts`` after each of ``cycles`` edges (the first before any), ``pin`` high for the
    edge after ``high_at`` only."""
    seen = []

    async def tb(ctx):
        for cycle in range(cycles):
            ctx.set(pin, cycle == high_at)
            seen.append(ctx.get(dut.o_counts))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return seen


def test_every_part_is_cleared_one_cycle_after_the_clear():
    dut = Top()
    seen = _counts(dut, dut.i_clear, 5)
    # Held in the first cycle (the clear registers start asserted). After the edge that took the
    # clear: still counting; one edge later every part is 0.
    assert seen == [0x0000, 0x0000, 0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x0000, 0x1111]
    assert [leaf.name for leaf in dut.leaves] == ["parts_clear", "part0_clear", "part1_clear", "part2_clear"]


def _flip_flops(tmp_path, keep, dut=None, ports=None):
    (tmp_path / "t.il").write_text(rtlil.convert(dut or Top(), name="top", ports=ports))
    script = ["read_rtlil t.il", *([KEEP_REGISTERS] if keep else []), "synth_ecp5 -top top",
              "tee -q -o stat.json stat -json"]
    run_yosys("\n".join(script) + "\n", log=tmp_path / "yosys.log", cwd=tmp_path)
    return json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]["TRELLIS_FF"]


def test_synthesis_keeps_one_clear_register_per_part(tmp_path):
    # 16 counter bits plus the four clear registers; without the keep step Yosys merges them into one.
    assert _flip_flops(tmp_path, keep=True) == 16 + 4
    assert _flip_flops(tmp_path, keep=False) == 16 + 1


class ClearTop(Elaboratable):
    """``Parts`` under a clear tree (``tree``: ``"add"``, :func:`add_with_reset_tree`, or
    ``"module"``, :func:`module_with_reset_tree`) in a ``sync`` domain whose reset is the input
    ``rst``."""

    def __init__(self, tree="add"):
        self.cd, self.rst, self.i_clear, self.o_counts = ClockDomain("sync"), Signal(), Signal(), Signal(16)
        self.tree = tree

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.cd
        m.d.comb += self.cd.rst.eq(self.rst)
        if self.tree in ("module", "root"):
            def add(m, parts):
                rooted = self.tree == "root"
                clear = reset_root(m, self.i_clear, name="root") if rooted else self.i_clear
                m.submodules.block = module_with_reset_tree(parts, clear, name="parts", depth=1,
                                                            platform=platform, with_reset=not rooted)
            return _with_parts(self, m, add)
        return _with_parts(self, m, lambda m, parts: add_with_reset_tree(
            m, "parts", parts, self.i_clear, platform=platform))


@pytest.mark.parametrize("tree", ["add", "module"])
def test_the_domain_reset_reaches_the_parts_through_the_clear_registers(tree):
    dut = ClearTop(tree)
    seen = _counts(dut, dut.rst, 5)
    # Held in the first cycle (the registers start asserted); the domain's reset, high before
    # edge 6, resets every part one edge later, as the clear does.
    assert seen == [0x0000, 0x0000, 0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x0000, 0x1111]


def test_a_root_register_resets_the_parts_a_cycle_later():
    """A :func:`reset_root` above the tree: the clear and the domain's reset reach the parts two
    edges after they are taken, one later than without; held in the first two cycles (every
    register starts asserted); the root is high the cycle before the parts are held."""
    for pin in ("i_clear", "rst"):
        dut = ClearTop("root")
        seen = _counts(dut, getattr(dut, pin), 5)
        assert seen == [0x0000, 0x0000, 0x0000, 0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x0000]


@pytest.mark.parametrize("tree", ["add", "module", "root"])
def test_every_flip_flop_of_a_part_has_one_reset_driven_by_a_clear_register(tmp_path, tree):
    # With the domain's reset and the clear ORed in front of the flip-flops, each part's reset
    # would be a logic cell's output; here every synchronous reset is a clear register's output.
    dut = ClearTop(tree)
    (tmp_path / "t.il").write_text(rtlil.convert(dut, name="top", ports=[dut.cd.clk, dut.rst, dut.i_clear,
                                                                         dut.o_counts]))
    run_yosys("read_rtlil t.il\nproc\nflatten\nopt_clean\nopt_dff\nwrite_json t.json\n",
              log=tmp_path / "yosys.log", cwd=tmp_path)
    module = json.loads((tmp_path / "t.json").read_text())["modules"]["top"]
    drivers = {}
    for cell in module["cells"].values():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "output":
                drivers.update({bit: cell["type"] for bit in bits})
    names = {bit: name for name, net in module["netnames"].items() for bit in net["bits"]}
    resets = {cell["connections"]["SRST"][0] for cell in module["cells"].values()
              if "SRST" in cell["connections"]}
    assert len(resets) == 4         # the block's own counter and three parts, each its own register
    for bit in resets:
        assert drivers[bit] == "$dff" and names[bit].endswith("_clear"), (drivers.get(bit), names.get(bit))


class ClearInDomainsTop(Elaboratable):
    """A clear tree inside a block that reset domains split below it (as the GEMM engine's decoder
    in the ULX3S crossing): the parts moved out of the block still see its clear domains."""

    def __init__(self):
        self.i_clear, self.o_counts = Signal(), Signal(16)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        parts, block = Parts(), Module()
        add_with_reset_tree(block, "parts", parts, self.i_clear, platform=platform)
        add_with_reset_domains(m, "outer", block, depth=2, platform=platform)
        m.d.comb += self.o_counts.eq(parts.o_counts)
        return m


class ClearInTreeTop(Elaboratable):
    """A clear tree inside a block under :func:`module_with_reset_tree` (as a Huffman decoder in a
    control core's handler), split below it: the parts moved out still see its clear domains."""

    def __init__(self):
        self.i_clear, self.i_outer, self.o_counts = Signal(), Signal(), Signal(16)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        parts, block = Parts(), Module()
        add_with_reset_tree(block, "parts", parts, self.i_clear, platform=platform)
        m.submodules.outer = module_with_reset_tree(block, self.i_outer, name="outer", depth=2,
                                                    platform=platform)
        m.d.comb += self.o_counts.eq(parts.o_counts)
        return m


def test_a_clear_tree_split_by_an_outer_tree_keeps_its_domains():
    dut = ClearInTreeTop()
    # Held for the first two cycles (the outer register starts asserted and holds the inner ones,
    # which start asserted too); the inner clear, high before edge 6, clears every part one edge
    # later.
    assert _counts(dut, dut.i_clear, 5) == [0x0000, 0x0000, 0x0000, 0x1111, 0x2222, 0x3333, 0x4444, 0x0000,
                                            0x1111]


def test_a_clear_tree_split_by_reset_domains_keeps_its_domains():
    dut = ClearInDomainsTop()
    # The reset domains' registers start asserted, and the clear registers follow them: counting
    # from the fourth edge; the clear, high before edge 6, clears every part one edge later.
    assert _counts(dut, dut.i_clear, 5) == [0x0000, 0x0000, 0x0000, 0x0000, 0x1111, 0x2222, 0x3333, 0x0000,
                                            0x1111]


class DomainTop(Elaboratable):
    """``Parts`` in a ``sync`` domain whose reset is the input ``rst``, through reset domains; with
    ``nested``, one level down in a block (split two levels deep: the branch ``parts__inner`` has
    four parts, the block's own statements and three counters)."""

    def __init__(self, depth=1, *, nested=False, fanout=8, root=False):
        self.cd = ClockDomain("sync")
        self.rst = Signal()
        self.o_counts = Signal(16)
        self.depth, self.nested, self.fanout, self.root = depth, nested, fanout, root

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.cd
        m.d.comb += self.cd.rst.eq(self.rst)

        def add(m, parts):
            block = parts
            if self.nested:
                block = Module()
                block.submodules.inner = parts
            return add_with_reset_domains(m, "parts", block, depth=self.depth + self.nested,
                                          fanout=self.fanout, platform=platform, root=self.root)
        return _with_parts(self, m, add)


def test_every_part_leaves_the_domain_reset_two_cycles_late_together():
    dut = DomainTop()
    seen = _counts(dut, dut.rst, 5)
    # The tree's registers start asserted: every part counts from the third edge on. The domain's
    # reset, high before edge 6, resets every part at edge 8 (two edges later than the domain's own
    # registers), all in the same cycle.
    assert seen == [0x0000, 0x0000, 0x0000, 0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x0000]
    assert [leaf.name for leaf in dut.leaves] == ["parts_rst", "parts__part0_rst", "parts__part1_rst",
                                                  "parts__part2_rst"]
    whole = DomainTop(depth=0)
    Fragment.get(whole, None)
    assert [leaf.name for leaf in whole.leaves] == ["parts_rst"]


def test_a_root_register_holds_the_parts_a_cycle_longer():
    dut = DomainTop(root=True)
    # Three registers from the domain's reset to every part (root, branch, part), all starting
    # asserted: every part counts from the fourth edge on, and the reset, high before edge 6,
    # resets every part at edge 9, all in the same cycle.
    assert _counts(dut, dut.rst, 5, cycles=10) == [0x0000, 0x0000, 0x0000, 0x0000, 0x1111, 0x2222, 0x3333,
                                                   0x4444, 0x5555, 0x0000]
    with pytest.raises(TypeError, match="root"):
        Fragment.get(DomainTop(root=1), None)


def NestedDomainTop(fanout=2):
    return DomainTop(nested=True, fanout=fanout)


def test_a_branch_wider_than_the_fanout_gets_a_level_more_for_every_part():
    dut = NestedDomainTop()
    # Three registers from the domain's reset to every part: the tree starts asserted, so the
    # counters count from the fourth edge on; the domain's reset, high before edge 6, resets every
    # part at edge 9 (one edge later than with two levels), all in the same cycle.
    assert _counts(dut, dut.rst, 5, cycles=10) == [0x0000, 0x0000, 0x0000, 0x0000, 0x1111, 0x2222, 0x3333,
                                                   0x4444, 0x5555, 0x0000]
    assert [leaf.name for leaf in dut.leaves] == ["parts_rst", "parts__inner_rst", "parts__inner__part0_rst",
                                                  "parts__inner__part1_rst", "parts__inner__part2_rst"]
    # Fan-out 4 holds the widest branch: the tree keeps its two levels.
    wide = NestedDomainTop(fanout=4)
    assert _counts(wide, wide.rst, 5)[3] == 0x1111
    with pytest.raises(ValueError, match="fanout must be an integer >= 2, not 1"):
        Fragment.get(NestedDomainTop(fanout=1), None)


def test_synthesis_keeps_one_group_register_per_run_of_fanout_parts(tmp_path):
    # 16 counter bits; registers: two branches (the block's own statements, inner), three groups
    # (one for the block, two for inner's four parts at fan-out 2), five parts.
    dut = NestedDomainTop()
    assert _flip_flops(tmp_path, True, dut, ports=[dut.cd.clk, dut.rst, dut.o_counts]) == 16 + 2 + 3 + 5


class TwoDomainCounter(wiring.Component):
    """A counter in ``sync`` (low nibble) and one in ``b`` (high nibble)."""
    o_count: Out(8)

    def elaborate(self, platform):
        m = Module()
        a, b = Signal(4), Signal(4)
        m.d.sync += a.eq(a + 1)
        m.d.b += b.eq(b + 1)
        m.d.comb += self.o_count.eq(Cat(a, b))
        return m


class TwoDomainTop(Elaboratable):
    """Two ``TwoDomainCounter`` parts; ``sync`` and ``b`` on one clock, with resets ``rst``, ``rst_b``."""

    def __init__(self):
        self.rst, self.rst_b, self.o_counts = Signal(), Signal(), Signal(16)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync, m.domains.b = ClockDomain("sync"), ClockDomain("b")
        m.d.comb += [ClockSignal("b").eq(ClockSignal("sync")), ResetSignal("sync").eq(self.rst),
                     ResetSignal("b").eq(self.rst_b)]
        block = Module()
        block.submodules.p0, block.submodules.p1 = p0, p1 = TwoDomainCounter(), TwoDomainCounter()
        self.leaves = add_with_reset_domains(m, "parts", block, domain=("sync", "b"), depth=1,
                                             platform=platform)
        m.d.comb += self.o_counts.eq(Cat(p0.o_count, p1.o_count))
        return m


def test_each_domain_of_a_tuple_gets_its_own_tree():
    # b's reset, high before edge 5, resets b's counters (high nibbles) two edges later, in both
    # parts; sync's counters go on. Both trees start asserted: everything counts from edge 2 on.
    dut = TwoDomainTop()
    assert _counts(dut, dut.rst_b, 5) == [0x0000, 0x0000, 0x0000, 0x1111, 0x2222, 0x3333, 0x4444, 0x5555,
                                          0x0606]
    dut = TwoDomainTop()
    assert _counts(dut, dut.rst, 5)[-1] == 0x6060
    assert [leaf.name for leaf in dut.leaves] == ["parts_rst", "parts__p0_rst", "parts__p1_rst"]


def test_synthesis_keeps_one_reset_register_per_branch_and_part(tmp_path):
    # 16 counter bits, four branch and four part registers; without the keep step Yosys merges each
    # level into one.
    for keep, flip_flops in ((True, 16 + 4 + 4), (False, 16 + 1 + 1)):
        dut = DomainTop()
        assert _flip_flops(tmp_path, keep, dut, ports=[dut.cd.clk, dut.rst, dut.o_counts]) == flip_flops
