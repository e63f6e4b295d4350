"""The ``edgelearn`` CLI: every block generates lint-clean Verilog; bad input gets one clear line."""

import subprocess
import sys

import pytest

from edgelearn.cli import main
from hw.blocks import all_blocks, get_block
from sim.lint import lint_verilog

BLOCKS = sorted(all_blocks())


def run_cli(*args):
    """Run the CLI in a fresh interpreter, as a user would; return (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "edgelearn.cli", *args], capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("block", BLOCKS)
def test_generate_is_lint_clean(block, tmp_path):
    out = tmp_path / f"{block}.v"
    assert main(["generate", block, "-o", str(out)]) == 0
    text = out.read_text()
    assert f"module {block}(" in text
    assert lint_verilog(text, block) == []


def test_lint_detects_structural_problems():
    # The lint check itself must be able to fail: two drivers of one net, and a combinational loop.
    warnings = lint_verilog("module t(input a, output b); assign b = a; assign b = ~a; endmodule\n", "t")
    assert any("MULTIDRIVEN" in w or "Error" in w for w in warnings), warnings
    warnings = lint_verilog("module t(input a, output b); wire x, y; assign x = y & a; assign y = x | a; "
                            "assign b = y; endmodule\n", "t")
    assert any("UNOPTFLAT" in w or "ALWCOMBORDER" in w or "loop" in w.lower() for w in warnings), warnings


def test_generate_rtlil_to_stdout(capsys):
    assert main(["generate", "lfsr", "--rtlil", "-p", "width=8"]) == 0
    assert "module \\lfsr" in capsys.readouterr().out


def test_list_names_every_block(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for block in BLOCKS:
        assert f"  {block} " in out


@pytest.mark.parametrize("args,needle", [
    (["generate", "nosuchblock"], "unknown block 'nosuchblock'; the blocks are: "),
    (["generate", "lfsr", "-p", "width=99"], "width must be an integer from 3 to 32, not 99"),
    (["generate", "lfsr", "-p", "nosuch=1"], "block 'lfsr' has no parameter 'nosuch'; its parameters are:"),
    (["generate", "lfsr", "-p", "width"], "-p takes name=value, not 'width'"),
    (["generate", "lfsr", "-p", "width=abc"], "width must be an integer, not 'abc'"),
    (["synth", "lfsr", "--device", "virtex"], "invalid choice: 'virtex'"),
    (["synth", "lfsr", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
    (["build", "--board", "nosuchboard"], "--board must be one of"),
    (["run", "nosuchjob"], "unknown job 'nosuchjob'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_bad_argument_is_one_line(args, needle):
    code, out, err = run_cli(*args)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("edgelearn: error: ")
    assert needle in lines[0]


def test_synth_passes_seed_and_clock_to_the_flow(monkeypatch, capsys):
    import boards.synth
    seen = {}

    def fake_synthesize(dut, **kw):
        seen.update(kw)
        return {"name": "lfsr", "device": kw["device"], "fmax_mhz": 50.0, "target_mhz": 48,
                "timing_met": True, "dir": "d"}
    monkeypatch.setattr(boards.synth, "synthesize", fake_synthesize)
    assert main(["synth", "lfsr", "--seed", "3", "--freq", "60", "--json"]) == 0
    assert (seen["seed"], seen["freq_mhz"], seen["device"]) == (3, 60.0, "up5k")
    assert main(["synth", "lfsr", "--json"]) == 0
    assert seen["seed"] == 1


def test_synth_takes_the_registry_parameters_of_the_device(monkeypatch, capsys):
    """``synth`` without ``-p``: the registry's UP5K size (and router) on the UP5K, printed; the
    block's defaults (the ECP5 size) on the ECP5; each ``-p`` wins over the registry's value."""
    import boards.synth
    seen = {}

    def fake_synthesize(dut, **kw):
        seen.update(kw, dut=dut)
        return {"name": "gemm_engine", "device": kw["device"], "fmax_mhz": 50.0, "target_mhz": 48,
                "timing_met": True, "dir": "d"}
    monkeypatch.setattr(boards.synth, "synthesize", fake_synthesize)
    spec = get_block("gemm_engine")
    up5k = spec.synth_params
    assert (up5k["rows"], up5k["cols"]) != (spec.defaults()["rows"], spec.defaults()["cols"])

    assert main(["synth", "gemm_engine", "--json"]) == 0
    dut = seen["dut"]
    assert (dut.rows, dut.cols, dut.lanes) == (up5k["rows"], up5k["cols"], up5k["lanes"])
    assert seen["router"] == spec.synth_router
    err = capsys.readouterr().err
    assert f"registry's up5k parameters: rows={up5k['rows']} cols={up5k['cols']}" in err

    assert main(["synth", "gemm_engine", "-p", "rows=1", "--json"]) == 0
    assert (seen["dut"].rows, seen["dut"].cols) == (1, up5k["cols"])
    assert "rows=" not in capsys.readouterr().err

    assert main(["synth", "gemm_engine", "--device", "ecp5-85f", "--json"]) == 0
    assert (seen["dut"].rows, seen["dut"].cols) == (spec.defaults()["rows"], spec.defaults()["cols"])
    assert seen["router"] is None
    assert "registry" not in capsys.readouterr().err


def test_sim_runs_cocotb_smoke_test(capsys):
    assert main(["sim", "lfsr"]) == 0
    assert "lfsr: 3 cocotb tests passed" in capsys.readouterr().out
