"""The Verilator board: a board that cannot start says why and leaves nothing behind."""

import gc
import types
import warnings

import pytest

import sim.board.verilator_board as vb
from hw.control.boards import check_board
from hw.control.core import EdgeLearnCore
from sim.board import SIM_LINE_DIVISORS, make_board
from sim.runner import to_verilog


def test_board_that_does_not_start_leaves_nothing_behind(monkeypatch):
    # Its temporary directory must be removed at once: left to the garbage collector, the directory's
    # finalizer warns, and under pytest that fails whichever later test happens to be running.
    def no_simulator(*args, **kwargs):
        raise RuntimeError("no simulator here")

    monkeypatch.setattr(vb, "run_cocotb", no_simulator)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="did not start: no simulator here"):
            vb.VerilatorBoard(types.SimpleNamespace(divisor=4, clk_hz=1_000_000), start_timeout=5)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_sim_top_has_no_reset_port_and_only_its_ports_public():
    """The simulated board's top makes its reset inside: a ``rst`` input would put the whole design's
    next-state logic in Verilator's input-combinational region (evaluated at every clock edge)."""
    core = EdgeLearnCore(clk_hz=25_000_000, baud=25_000_000 // 4)
    text = to_verilog(vb.SimTop(core), "top")
    header = text[text.index("module top("):].split(";", 1)[0]
    assert "rst" not in header and "clk" in header and "i_send" in header
    config = vb.port_config("top")
    assert 'public_flat_rw -module "top" -var "clk"' in config
    assert "rst" not in config and config.count("public_flat_rw") == len(vb.SimTop.PORTS)


def test_simulated_line_divisor_is_checked():
    assert SIM_LINE_DIVISORS["ulx3s"] == 4
    with pytest.raises(ValueError, match="divisor must be an integer that divides clk_hz 25000000, not 3"):
        make_board(config=check_board("ulx3s"), divisor=3)
