"""GEMM engine in cocotb/Verilator against the golden model (the block's smoke test, at its smoke
parameters): one pytest item per cocotb test."""

import pytest

from hw.blocks import get_block
from sim.runner import cocotb_testcases, run_cocotb

TB = "sim.gemm.tb_engine"


@pytest.mark.parametrize("testcase", cocotb_testcases(TB))
def test_gemm_engine_cocotb(testcase):
    block = get_block("gemm_engine")
    assert block.smoke_test == TB
    params = {**block.defaults(), **block.smoke_params}
    run_cocotb(lambda: block.build(**block.smoke_params), toplevel="gemm_engine", test_module=TB,
               testcase=testcase, params=params)
