"""cocotb testbench: :class:`hw.lib.spram.SPRAM` on Yosys' ``SB_SPRAM256KA`` model and on the
behavioural :class:`hw.lib.spram.SPRAMCell`, side by side, against :class:`sim.lib.golden.SPRAMModel`.

:class:`SPRAMPair` drives both memories from the same inputs. After every clock edge both data
outputs must equal the reference wherever it is defined (after a read, and while idle after one),
and both error flags must equal it always: so the behavioural model is checked cycle for cycle
against the primitive's model that synthesis maps to.
"""

import random

import cocotb
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.lib.spram import SPRAM
from sim.lib.golden import SPRAMModel
from sim.runner import tb_params

__all__ = ["SPRAMPair", "address_pool"]


class SPRAMPair(wiring.Component):
    """Two :class:`SPRAM` of the same size, one on the primitive, one on the behavioural cells."""

    def __init__(self, depth, width, addr_bits):
        self._mems = [SPRAM(depth, width, addr_bits=addr_bits, primitives=p) for p in (True, False)]
        super().__init__({
            "addr": In(addr_bits), "wdata": In(width), "mask": In(-(-width // 4)), "we": In(1), "en": In(1),
            "err_clear": In(1), "prim_rdata": Out(width), "prim_err": Out(1), "model_rdata": Out(width),
            "model_err": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        for mem, tag in zip(self._mems, ("prim", "model")):
            m.submodules[tag] = mem
            for k in ("addr", "wdata", "mask", "we", "en", "err_clear"):
                m.d.comb += getattr(mem, k).eq(getattr(self, k))
            m.d.comb += [getattr(self, f"{tag}_rdata").eq(mem.rdata), getattr(self, f"{tag}_err").eq(mem.err)]
        return m


def address_pool(rng, depth, addr_bits):
    """A few dozen addresses: random ones, the SPRAM boundaries, ``depth - 1`` and beyond ``depth``."""
    top = (1 << addr_bits) - 1
    corner = {0, 1, depth - 1, min(top, depth), top, 16383, 16384, 32767, 32768}
    pool = sorted({a for a in corner if a <= top} | {rng.randrange(min(depth, 1 << addr_bits))
                                                     for _ in range(40)})
    return pool


@cocotb.test()
async def test_random_accesses(dut):
    p = tb_params()
    depth, width, addr_bits = p["depth"], p["width"], p["addr_bits"]
    rng = random.Random(3)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for k in ("en", "we", "addr", "wdata", "mask", "err_clear"):
        getattr(dut, k).value = 0
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    ref = SPRAMModel(depth, width)
    pool = address_pool(rng, depth, addr_bits)
    full = (1 << -(-width // 4)) - 1
    # The primitive's contents start undefined: write every in-range address of the pool first.
    ops = [{"en": 1, "we": 1, "addr": a, "wdata": rng.randrange(1 << width), "mask": full, "err_clear": 0}
           for a in pool if a < depth]
    for _ in range(3000):
        ops.append({"en": int(rng.random() < 0.85), "we": int(rng.random() < 0.45), "addr": rng.choice(pool),
                    "wdata": rng.randrange(1 << width),
                    "mask": rng.choice([full, 1, 1 << (-(-width // 4) - 1), rng.randrange(full + 1)]),
                    "err_clear": int(rng.random() < 0.05)})
    errors, reads, flagged = [], 0, 0
    for i, op in enumerate(ops):
        for k, v in op.items():
            getattr(dut, k).value = v
        await RisingEdge(dut.clk)
        await ReadOnly()
        ref.access(**op)
        got = {k: int(getattr(dut, k).value) for k in ("prim_rdata", "prim_err", "model_rdata", "model_err")}
        if ref.rdata is not None:
            reads += 1
            if got["prim_rdata"] != ref.rdata or got["model_rdata"] != ref.rdata:
                errors.append(f"op {i} {op}: primitive {got['prim_rdata']:#x}, "
                              f"model {got['model_rdata']:#x}, expected {ref.rdata:#x}")
        flagged += ref.err
        if got["prim_err"] != ref.err or got["model_err"] != ref.err:
            errors.append(f"op {i} {op}: err primitive {got['prim_err']}, model {got['model_err']}, "
                          f"expected {ref.err}")
        await FallingEdge(dut.clk)
    assert not errors, "\n".join(errors[:10])
    assert reads > 1000 and flagged > 10, (reads, flagged)
