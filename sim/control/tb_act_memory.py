"""cocotb testbench of the SPRAM GEMM handler's activation memory
(:class:`hw.control.spram_gemm_handler._ActMemory`, through ``ActMemoryTop`` of
``tests/test_control_spram_gemm.py``).

Used with ``primitives=True`` and Yosys' own ``SB_RAM40_4K`` model (the two block RAMs the
handler instantiates for synthesis: byte lanes by ``MASK``, ``data`` their output registers) and
with the Amaranth memory it uses otherwise: random byte-lane writes and reads (never of the
address written in the same cycle, as the handler never does), ``data`` compared every cycle with
a model (the word at the address of the last read, held while ``rd_en`` is low).
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from sim.runner import tb_params


@cocotb.test()
async def test_lane_writes_and_held_reads(dut):
    depth = tb_params()["depth"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.wr_en.value = 0
    dut.rd_en.value = 0
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    rng = random.Random(7)
    mem = [[None] * 4 for _ in range(depth)]
    expect = None                 # the data register's word (None: not read yet)
    for cycle in range(3000):
        await FallingEdge(dut.clk)
        if expect is not None:
            got = int(dut.rd_data.value)
            for lane in range(4):
                if expect[lane] is not None:
                    assert (got >> (8 * lane)) & 0xFF == expect[lane], (cycle, lane, expect, hex(got))
        # Writes to a few addresses, so that reads find written words.
        waddr = rng.randrange(8) if rng.random() < 0.8 else rng.randrange(depth)
        wen = rng.randrange(16) if rng.random() < 0.6 else 0
        wdata = rng.getrandbits(32)
        raddr = rng.randrange(8) if rng.random() < 0.8 else rng.randrange(depth)
        ren = int(rng.random() < 0.5)
        if wen and raddr == waddr:
            ren = 0
        dut.wr_addr.value = waddr
        dut.wr_en.value = wen
        dut.wr_data.value = wdata
        dut.rd_addr.value = raddr
        dut.rd_en.value = ren
        if ren:
            expect = list(mem[raddr])
        for lane in range(4):
            if wen >> lane & 1:
                mem[waddr][lane] = wdata >> (8 * lane) & 0xFF
