"""HDQT FWHT in cocotb/Verilator against the golden model (:mod:`sim.hdqt.tb_fwht`); the layer's cocotb
runs are in tests/test_hdqt_layer.py."""

import pytest

from hw.hdqt import FWHT
from sim.runner import cocotb_testcases, run_cocotb


@pytest.mark.parametrize("testcase", cocotb_testcases("sim.hdqt.tb_fwht"))
def test_fwht_cocotb(testcase):
    params = {"n": 16, "width": 16}
    run_cocotb(FWHT(**params), toplevel="fwht", test_module="sim.hdqt.tb_fwht", testcase=testcase,
               params=params)
