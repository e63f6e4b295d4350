"""hw/lib/spram: parameter checks, the SPRAM wrapper and the interleaved banks in Amaranth's simulator
against a reference model (:mod:`sim.lib.golden`), and the behavioural cell against Yosys' own model
of ``SB_SPRAM256KA`` in Verilator."""

import random

import pytest
from amaranth.sim import Simulator

from hw.lib.spram import SPRAM, InterleavedSPRAM, spram_count
from hw.params import ParameterTypeError
from sim.lib.golden import SPRAMModel
from sim.lib.tb_spram import SPRAMPair, address_pool
from sim.runner import cocotb_testcases, ice40_cell_models, run_cocotb


def test_parameter_types_and_counts():
    with pytest.raises(ParameterTypeError, match="width must be an integer"):
        SPRAM(100, width=16.0)
    with pytest.raises(ValueError, match="depth must be an integer from 2 to 65536"):
        InterleavedSPRAM(1)
    with pytest.raises(ValueError, match="width must be an integer from 1 to 16, not 17"):
        InterleavedSPRAM(1024, 17)
    assert [SPRAM(d, w).count for d, w in ((1, 1), (16384, 16), (16385, 16), (40000, 8), (100, 33),
                                          (16384, 64))] == [1, 1, 2, 3, 3, 4]
    assert spram_count(65536, 16) == 4 and InterleavedSPRAM(32768).count == 2
    assert InterleavedSPRAM(65536).count == 4 and InterleavedSPRAM(3).count == 2


def random_ops(rng, depth, width, addr_bits, n):
    """Random accesses over a small address pool (so reads meet earlier writes) with corner addresses."""
    pool = address_pool(rng, depth, addr_bits)
    ops = []
    for _ in range(n):
        r = rng.random()
        op = {"en": int(r < 0.85), "we": int(rng.random() < 0.45), "addr": rng.choice(pool),
              "wdata": rng.randrange(1 << width), "mask": rng.choice([(1 << -(-width // 4)) - 1, 0,
                                                                       rng.randrange(1 << -(-width // 4))]),
              "err_clear": int(rng.random() < 0.05)}
        ops.append(op)
    return ops


@pytest.mark.parametrize("depth,width,addr_bits", [
    (40000, 16, 16),   # three stacked SPRAMs, addresses 40000.. out of range
    (1000, 24, 11),    # two side by side, a 6-nibble mask
    (16384, 16, 14),   # exactly one, every address valid
    (32768, 8, 16),    # two stacked, an 8-bit word (two nibbles)
])
def test_spram_matches_model(depth, width, addr_bits):
    rng = random.Random(depth * 7 + width)
    dut = SPRAM(depth, width, addr_bits=addr_bits, primitives=False)
    ops = random_ops(rng, depth, width, addr_bits, 1500)
    ref = SPRAMModel(depth, width)
    bad = []
    checked = {"reads": 0, "errs": 0}

    async def tb(ctx):
        for i, op in enumerate(ops):
            for k in ("en", "we", "addr", "wdata", "mask", "err_clear"):
                ctx.set(getattr(dut, k), op[k])
            await ctx.tick()
            ref.access(**op)
            if ref.rdata is not None:
                checked["reads"] += 1
                if ctx.get(dut.rdata) != ref.rdata:
                    bad.append((i, op, ctx.get(dut.rdata), ref.rdata))
            checked["errs"] += ref.err
            if ctx.get(dut.err) != ref.err:
                bad.append((i, op, "err", ctx.get(dut.err), ref.err))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert not bad, bad[:5]
    assert checked["reads"] > 500
    assert (checked["errs"] > 0) == ((1 << addr_bits) > depth)


def test_interleaved_banks_read_and_write_each_cycle():
    """A read and a write every cycle; the write trails the reads by an odd delay, as in a
    read-modify-write pipeline, with row jumps that make both hit one bank (the read is then lost)."""
    depth = 3000
    rng = random.Random(5)
    dut = InterleavedSPRAM(depth, 12, primitives=False)
    ref = [0] * depth
    bad = []
    counts = {"checked": 0, "lost": 0}

    async def tb(ctx):
        # Load every word through the write port.
        for a in range(depth):
            ref[a] = rng.randrange(1 << 12)
            ctx.set(dut.waddr, a)
            ctx.set(dut.wdata, ref[a])
            ctx.set(dut.we, 1)
            ctx.set(dut.raddr, rng.randrange(depth))
            await ctx.tick()
        delay = 7
        reads = []
        addr = 0
        for cycle in range(4000):
            if rng.random() < 0.05:
                addr = rng.randrange(depth)       # a row jump: any parity
            raddr = addr
            addr = (addr + 1) % depth
            w = reads[-delay] if len(reads) >= delay else None
            ctx.set(dut.raddr, raddr)
            if w is not None:
                ref[w] = rng.randrange(1 << 12)
                ctx.set(dut.waddr, w)
                ctx.set(dut.wdata, ref[w])
            ctx.set(dut.we, int(w is not None))
            lost = ctx.get(dut.wbank_busy)
            if w is not None and (w % 2 == raddr % 2) != bool(lost):
                bad.append((cycle, "busy", w, raddr, lost))
            expect = ref[raddr]
            await ctx.tick()
            reads.append(raddr)
            if lost:
                counts["lost"] += 1
            else:
                counts["checked"] += 1
                if ctx.get(dut.rdata) != expect:
                    bad.append((cycle, raddr, ctx.get(dut.rdata), expect))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert not bad, bad[:5]
    assert counts["checked"] > 3000 and counts["lost"] > 20


@pytest.mark.slow
@pytest.mark.parametrize("testcase", cocotb_testcases("sim.lib.tb_spram"))
def test_spram_cell_model_against_yosys_model(testcase):
    depth, width, addr_bits = 40000, 20, 16
    with pytest.raises(ValueError):
        SPRAMPair(depth, width, addr_bits)     # 2 columns x 3 rows: more than the UP5K has
    depth = 20000
    run_cocotb(SPRAMPair(depth, width, addr_bits), toplevel="spram_pair", test_module="sim.lib.tb_spram",
               testcase=testcase, params={"depth": depth, "width": width, "addr_bits": addr_bits},
               extra_verilog=ice40_cell_models("SB_SPRAM256KA"))


