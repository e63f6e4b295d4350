"""The Verilator board: a board that cannot start says why and leaves nothing behind."""

import gc
import types
import warnings

import pytest

import sim.board.verilator_board as vb


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
