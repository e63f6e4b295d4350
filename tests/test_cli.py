"""The ``edgelearn`` CLI: every block generates lint-clean Verilog; bad input gets one clear line."""

import subprocess
import sys

import pytest

from edgelearn.cli import main
from hw.blocks import all_blocks
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


def test_sim_runs_cocotb_smoke_test(capsys):
    assert main(["sim", "lfsr"]) == 0
    assert "lfsr: 3 cocotb tests passed" in capsys.readouterr().out
