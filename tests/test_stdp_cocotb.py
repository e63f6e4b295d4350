"""STDP core in cocotb/Verilator against the golden model (one design: the block's smoke parameters)."""

import pytest

from hw.blocks import get_block
from sim.runner import cocotb_testcases, run_cocotb


@pytest.mark.parametrize("testcase", cocotb_testcases("sim.stdp.tb_stdp"))
def test_stdp_cocotb(testcase):
    block = get_block("stdp_core")
    params = {**block.defaults(), **block.smoke_params}
    run_cocotb(block.build(**block.smoke_params), toplevel="stdp_core", test_module="sim.stdp.tb_stdp",
               testcase=testcase, params=params)


def test_stdp_registered_and_builds_every_encoding():
    block = get_block("stdp_core")
    assert block.demo == "sim.stdp.demo:run"
    for encoding in ("csr", "bitmap", "crossbar"):
        core = block.build(**block.smoke_params, encoding=encoding)
        assert core.cfg.encoding == encoding
