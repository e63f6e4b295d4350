"""MAC array in cocotb/Verilator against the golden model: one pytest item per cocotb test.

Default run: one design (4x4, LUT backend, HDQT tile option). The DSP backends' behavioural models
get a design each under ``-m slow`` (their arithmetic is also covered in the Amaranth tests).
"""

import pytest

from hw.mac import MacArray
from sim.runner import cocotb_testcases, run_cocotb

TB = "sim.mac.tb_mac_array"


DEFAULT = {"rows": 4, "cols": 4, "acc_width": 24, "tile_k": 32, "tile_bits": 8, "count_bits": 12}


@pytest.mark.parametrize("testcase", cocotb_testcases(TB))
def test_mac_array_cocotb(testcase):
    run_cocotb(MacArray(**DEFAULT, backend="lut", primitives=False), toplevel="mac_array", test_module=TB,
               testcase=testcase, params=DEFAULT)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["ice40", "ecp5"])
def test_mac_array_cocotb_dsp_models(backend):
    params = {**DEFAULT, "rows": 2, "acc_width": 20, "tile_k": 16}
    run_cocotb(MacArray(**params, backend=backend, primitives=False), toplevel="mac_array", test_module=TB,
               params=params)
