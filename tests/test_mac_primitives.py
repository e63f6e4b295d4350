"""The ice40 DSP backend with its real primitive: SB_MAC16 simulated with Yosys' own model (slow).

The Amaranth and cocotb tests of the DSP backends use their behavioural models (vendor primitives
cannot be simulated there); this test checks that the SB_MAC16 configuration the backend
instantiates computes the same thing, bit for bit, in every mode. (Yosys ships no simulation model of
ECP5's MULT18X18D, so the ecp5 backend's primitive configuration is checked by synthesis only.)
"""

import pytest

from hw.mac.products import ProductGrid
from sim.runner import ice40_cell_models, run_cocotb

pytestmark = pytest.mark.slow


def test_ice40_grid_with_sb_mac16_model():
    rows, cols = 2, 4
    grid = ProductGrid(rows, cols, backend="ice40", primitives=True)
    run_cocotb(grid, toplevel="grid", test_module="sim.mac.tb_product_grid",
               params={"rows": rows, "cols": cols}, extra_verilog=ice40_cell_models("SB_MAC16"))


def test_ice40_lane_dsps_grid_with_sb_mac16_model():
    """The same with every activation lane on its own SB_MAC16 (``lane_dsps``)."""
    rows, cols = 2, 4
    grid = ProductGrid(rows, cols, backend="ice40", primitives=True, lane_dsps=True)
    run_cocotb(grid, toplevel="grid", test_module="sim.mac.tb_product_grid",
               params={"rows": rows, "cols": cols, "lane_dsps": True},
               extra_verilog=ice40_cell_models("SB_MAC16"))
