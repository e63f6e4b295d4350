"""A cocotb test that fails on purpose: the runner must report it and keep its waves."""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles


@cocotb.test()
async def test_fails_on_purpose(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await ClockCycles(dut.clk, 5)
    assert int(dut.o_random__valid.value) == 0, "the LFSR is always valid; this test must fail"
