"""The cocotb runner: failures are reported with their waves; the optional Icarus path works."""

import shutil

import pytest

from hw.lfsr import GaloisLFSR
from sim.runner import cocotb_testcases, run_cocotb


def test_failing_test_is_reported_with_waves():
    with pytest.raises(AssertionError) as info:
        run_cocotb(GaloisLFSR(width=7), toplevel="lfsr_fail", test_module="tests.tb_deliberate_failure")
    message = str(info.value)
    assert "1 of 1 cocotb tests failed" in message
    assert "test_fails_on_purpose" in message and "must fail" in message
    waves = message.split("waves: ")[1].splitlines()[0]
    assert waves.endswith((".fst", ".vcd"))
    with open(waves, "rb") as f:
        assert len(f.read()) > 100


def test_waves_on_request(monkeypatch):
    monkeypatch.setenv("EDGELEARN_WAVES", "1")
    res = run_cocotb(GaloisLFSR(width=9), toplevel="lfsr_waves", test_module="sim.lfsr.tb_lfsr",
                     testcase="test_sequence_matches_golden", params={"width": 9})
    assert res["tests"] == 1 and res["waves"] is not None and res["waves"].stat().st_size > 100


@pytest.mark.skipif(shutil.which("iverilog") is None,
                    reason="Icarus Verilog is optional (apt-get install iverilog)")
@pytest.mark.parametrize("testcase", cocotb_testcases("sim.lfsr.tb_lfsr"))
def test_icarus(monkeypatch, testcase):
    monkeypatch.setenv("EDGELEARN_SIM", "icarus")
    run_cocotb(GaloisLFSR(width=16), toplevel="lfsr", test_module="sim.lfsr.tb_lfsr", testcase=testcase,
               params={"width": 16})


def test_unknown_simulator(monkeypatch):
    from sim.runner import SimulationError
    monkeypatch.setenv("EDGELEARN_SIM", "questa")
    with pytest.raises(SimulationError, match="EDGELEARN_SIM must be 'verilator' or 'icarus', not 'questa'"):
        run_cocotb(GaloisLFSR(), toplevel="lfsr", test_module="sim.lfsr.tb_lfsr")


def test_build_is_not_reused_from_another_environment(monkeypatch, tmp_path):
    # A Verilator model links cocotb's library by absolute path: a build made from another virtual
    # environment (perhaps deleted since) must not be reused, or the model fails to load.
    import sys

    def build_dir():
        res = run_cocotb(GaloisLFSR(width=5), toplevel="lfsr_env", test_module="sim.lfsr.tb_lfsr",
                         testcase="test_sequence_matches_golden", params={"width": 5})
        return res["run_dir"].parent.parent

    here = build_dir()
    assert build_dir() == here  # the same environment reuses its build
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "other-venv"))
    assert build_dir() != here
