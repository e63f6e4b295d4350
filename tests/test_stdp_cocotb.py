"""STDP core in cocotb/Verilator against the golden model: the block's smoke parameters, and (slow)
the iCEBreaker's network with its synapse memory on SPRAM, simulated with Yosys' ``SB_SPRAM256KA``
model (the primitive synthesis maps to)."""

import pytest

from hw.blocks import get_block
from hw.control.boards import BOARD_CONFIGS
from hw.stdp import STDPCore, spec
from sim.runner import cocotb_testcases, ice40_cell_models, run_cocotb


@pytest.mark.parametrize("testcase", cocotb_testcases("sim.stdp.tb_stdp"))
def test_stdp_cocotb(testcase):
    block = get_block("stdp_core")
    params = {**block.defaults(), **block.smoke_params}
    run_cocotb(block.build(**block.smoke_params), toplevel="stdp_core", test_module="sim.stdp.tb_stdp",
               testcase=testcase, params=params)


@pytest.mark.slow
@pytest.mark.parametrize("testcase", ["test_full_synapse_memory", "test_bad_input_flags_and_recovery"])
def test_icebreaker_stdp_on_spram_primitives(testcase):
    params = dict(BOARD_CONFIGS["icebreaker"].stdp)
    cfg = spec.STDPConfig(**params)
    assert cfg.syn_store == "spram" and cfg.n_neurons >= 256 and cfg.syn_depth >= 32768
    run_cocotb(STDPCore(primitives=True, **params), toplevel="stdp_core", test_module="sim.stdp.tb_stdp",
               testcase=testcase, params=params, extra_verilog=ice40_cell_models("SB_SPRAM256KA"))
