"""Every subcommand's bad arguments: one line on stderr naming the argument, exit code 2, no tool run.

The table is the whole test: add a row ``(argv, exit code, substring of the stderr line)`` for each
new argument. ``{notdir}`` in an argument is replaced by a path under a regular file (never
writable, whoever runs the test). :func:`test_table_covers_every_argument` fails when a subcommand
or an option that takes a value has no row.
"""

import argparse
import gc
import subprocess
import warnings

import numpy as np
import pytest

from edgelearn import cli

ROWS = [
    # top level
    ([], 2, "the following arguments are required: COMMAND"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    # list
    (["list", "extra"], 2, "unrecognized arguments: extra"),
    # generate
    (["generate"], 2, "the following arguments are required: block"),
    (["generate", "nosuchblock"], 2, "unknown block 'nosuchblock'; the blocks are: "),
    (["generate", "lfsr", "-p", "width=99"], 2, "width must be an integer from 3 to 32, not 99"),
    (["generate", "lfsr", "-p", "width=0"], 2, "width must be an integer from 3 to 32, not 0"),
    (["generate", "lfsr", "-p", "nosuch=1"], 2, "block 'lfsr' has no parameter 'nosuch'"),
    (["generate", "lfsr", "-p", "width"], 2, "-p takes name=value, not 'width'"),
    (["generate", "lfsr", "-p", "width=abc"], 2, "width must be an integer, not 'abc'"),
    (["generate", "lfsr", "-p", "width=8", "-p", "width=9"], 2, "-p width is given twice"),
    (["generate", "control", "-p", "baud=7"], 2, "baud must be an integer from 184 to 3000000 at 12 MHz"),
    (["generate", "control", "-p", "baud=4000000"], 2, "baud must be an integer from 184 to 3000000"),
    (["generate", "control", "-p", "baud=3100000"], 2, "baud must be within 2% of 12 MHz / n"),
    (["generate", "control", "-p", "clk_hz=5"], 2, "clk_hz must be an integer from 1000000 to"),
    (["generate", "mac_array", "-p", "backend=zz"], 2, "backend must be one of"),
    (["generate", "mac_array", "-p", "primitives=maybe"], 2, "primitives must be true or false, not 'maybe'"),
    (["generate", "lfsr", "-o", "{notdir}/lfsr.v"], 2, "-o/--output must be a writable file path"),
    (["generate", "lfsr", "--rtlil=1"], 2, "argument --rtlil: ignored explicit argument '1'"),
    # sim
    (["sim", "nosuchblock"], 2, "unknown block 'nosuchblock'"),
    (["sim", "lfsr", "-p", "width=0"], 2, "width must be an integer from 3 to 32, not 0"),
    (["sim", "lfsr", "-p", "width=8", "-p", "width=8"], 2, "-p width is given twice"),
    (["sim", "-p", "width=8"], 2, "-p needs a BLOCK"),
    (["sim", "lfsr", "--waves=yes"], 2, "argument --waves: ignored explicit argument 'yes'"),
    # synth
    (["synth"], 2, "the following arguments are required: block"),
    (["synth", "nosuchblock"], 2, "unknown block 'nosuchblock'"),
    (["synth", "lfsr", "-p", "width=0"], 2, "width must be an integer from 3 to 32, not 0"),
    (["synth", "lfsr", "--device", "virtex"], 2, "argument --device: invalid choice: 'virtex'"),
    (["synth", "lfsr", "--freq", "0"], 2, "--freq must be a number of MHz above 0 and at most 1000, not 0.0"),
    (["synth", "lfsr", "--freq", "-48"], 2, "--freq must be a number of MHz above 0"),
    (["synth", "lfsr", "--freq", "inf"], 2, "MHz above 0 and at most 1000, not inf"),
    (["synth", "lfsr", "--freq", "nan"], 2, "MHz above 0 and at most 1000, not nan"),
    (["synth", "lfsr", "--freq", "1001"], 2, "--freq must be a number of MHz above 0 and at most 1000"),
    (["synth", "lfsr", "--freq", "fast"], 2, "argument --freq: invalid float value: 'fast'"),
    (["synth", "lfsr", "--seed", "-1"], 2, "--seed must be an integer from 0 to 2147483647, not -1"),
    (["synth", "lfsr", "--seed", "2147483648"], 2, "--seed must be an integer from 0 to 2147483647"),
    (["synth", "lfsr", "--seed", "x"], 2, "argument --seed: invalid int value: 'x'"),
    (["synth", "lfsr", "--json=1"], 2, "argument --json: ignored explicit argument '1'"),
    # build
    (["build"], 2, "the following arguments are required: --board"),
    (["build", "--board", "nosuchboard"], 2, "--board must be one of icebreaker, ulx3s, not 'nosuchboard'"),
    (["build", "--board", "icebreaker", "--groups", "gemm,mac"], 2,
     "--groups must be a comma-separated selection of system, gemm, hdqt, stdp (each once; the system "
     "group is always carried), not 'gemm,mac'"),
    (["build", "--board", "ulx3s", "--gemm-array", "8x17"], 2,
     "--gemm-array must be RxC on ulx3s with rows one of 1, 2, 4, 8, 16 (dividing max_batch 64), cols one "
     "of 4, 8, 12, 16 (even, divided by the decoder's 4 lanes) and rows x cols at most 156 (the "
     "LFE5U-85F's multipliers), not '8x17'"),
    (["build", "--board", "ulx3s", "--gemm-array", "16x16"], 2, "rows x cols at most 156"),
    (["build", "--board", "ulx3s", "--gemm-array", "8by16"], 2,
     "--gemm-array must be RxC (rows x columns of the systolic array, e.g. 8x16), not '8by16'"),
    (["build", "--board", "icebreaker", "--gemm-array", "4x8"], 2,
     "--gemm-array is for a board carrying the GEMM engine (ulx3s); icebreaker carries no GEMM group"),
    (["build", "--board", "ulx3s", "--groups", "stdp", "--gemm-array", "4x8"], 2,
     "--gemm-array is for a board carrying the GEMM engine (ulx3s); ulx3s with groups 'stdp' carries no "
     "GEMM group"),
    (["build", "--board", "icebreaker", "--seed", "-1"], 2, "--seed must be an integer from 0 to"),
    (["build", "--board", "icebreaker", "--seed", "x"], 2, "argument --seed: invalid int value: 'x'"),
    (["build", "--board", "ulx3s", "--router", "router3"], 2,
     "argument --router: invalid choice: 'router3' (choose from 'router1', 'router2')"),
    (["build", "--board", "ulx3s", "--placer", "analytic"], 2,
     "argument --placer: invalid choice: 'analytic' (choose from 'heap', 'sa', 'static')"),
    (["build", "--board", "ulx3s", "--clock", "gemm=123.4"], 2,
     "--clock gemm must be a clock the PLL makes from 25 MHz exactly, not 123.4 MHz (the nearest: "
     "121.875 MHz)"),
    (["build", "--board", "ulx3s", "--clock", "array=125"], 2,
     "--clock domain must be one of gemm, dec, not 'array'"),
    (["build", "--board", "ulx3s", "--clock", "gemm"], 2,
     "--clock must be DOMAIN=MHZ (e.g. gemm=125), not 'gemm'"),
    (["build", "--board", "icebreaker", "--clock", "gemm=48"], 2,
     "--clock domain must be one of (none: this board's engine has no clock domains of its own)"),
    (["build", "--board", "ulx3s", "--attempts", "0"], 2,
     "--attempts must be an integer from 1 to 16, not 0"),
    (["build", "--board", "ulx3s", "--attempts", "two"], 2, "argument --attempts: invalid int value: 'two'"),
    # flash
    (["flash"], 2, "the following arguments are required: --board"),
    (["flash", "--board", "nosuchboard"], 2, "--board must be one of icebreaker, ulx3s, not 'nosuchboard'"),
    (["flash", "--board", "icebreaker", "--bitstream", "{notdir}/top.bin"], 2,
     "--bitstream must be an existing bitstream file"),
    # run
    (["run"], 2, "the following arguments are required: job"),
    (["run", "nosuchjob"], 2, "unknown job 'nosuchjob'; the jobs are: status"),
    (["run", "status", "--board", "nosuchboard"], 2, "--board must be one of icebreaker, ulx3s"),
    (["run", "status", "--port", "/dev/ttyUSB1"], 2, "--port needs --board (one of icebreaker, ulx3s)"),
    (["run", "status", "--sim", "--port", "/dev/ttyUSB1"], 2, "--port is for a board on a serial port"),
    (["run", "mlp", "--groups", "gemm"], 2, "--groups needs --board"),
    (["run", "mlp", "--board", "icebreaker", "--groups", "gemm,mac"], 2,
     "--groups must be a comma-separated selection of system, gemm, hdqt, stdp"),
    (["run", "gemm", "--gemm-array", "8x16"], 2, "--gemm-array needs --board"),
    (["run", "gemm", "--sim", "--clock", "gemm=125"], 2, "--clock needs --board"),
    (["run", "gemm", "--sim", "--board", "ulx3s", "--clock", "gemm=123.4"], 2,
     "--clock gemm must be a clock the PLL makes from 25 MHz exactly"),
    (["run", "gemm", "--sim", "--board", "ulx3s", "--gemm-array", "8x6"], 2,
     "--gemm-array must be RxC on ulx3s with rows one of 1, 2, 4, 8, 16"),
    (["run", "mlp", "--sim", "--board", "icebreaker", "--groups", "gemm", "--gemm-array", "1x2"], 2,
     "icebreaker with groups 'gemm' has the spram GEMM group, not '1x2'"),
    (["run", "status", "--sim", "--board", "icebreaker", "--port", "/dev/ttyUSB1"], 2,
     "--port is for a board on a serial port; --sim runs a simulated board"),
    (["run", "status", "--sim", "--board", "nosuchboard"], 2, "--board must be one of icebreaker, ulx3s"),
    (["run", "gemm", "--size", "0"], 2, "--size must be a positive integer, not 0"),
    (["run", "gemm", "--batch", "x"], 2, "--batch: invalid int value: 'x'"),
    (["run", "gemm", "--precision", "int3"], 2, "--precision must be a comma-separated list of int8, int4"),
    (["run", "status", "--size", "64"], 2, "--size, --batch and --precision are options of the gemm job"),
    # prove
    (["prove", "nosuchblock"], 2, "unknown block or property 'nosuchblock'; the blocks are: "),
    (["prove", "fifo", "nosuch.property"], 2, "unknown block or property 'nosuch.property'"),
    (["prove", "--all=1"], 2, "argument --all: ignored explicit argument '1'"),
    # demo
    (["demo", "--board", "nosuchboard"], 2, "--board must be one of icebreaker, ulx3s"),
    (["demo", "-o", "{notdir}/demo"], 2, "-o/--output must be a writable directory path"),
    (["demo", "--no-synth=1"], 2, "argument --no-synth: ignored explicit argument '1'"),
    # compress ({model} is a small float32 .npy matrix)
    (["compress"], 2, "the following arguments are required: model, -o/--output"),
    (["compress", "{notdir}/m.npy", "-o", "out.elh"], 2, "no such model file"),
    (["compress", "{model}", "-o", "{notdir}/out.elh"], 2, "-o/--output must be a writable directory path"),
    (["compress", "{model}", "-o", "out.elh", "--format", "int3"], 2,
     "--format must be one of int8, int4, int4-pairs, bf16, not 'int3'"),
    (["compress", "{model}", "-o", "out.elh", "--max-len", "7"], 2,
     "max_len must be an integer from 8 to 16"),
    (["compress", "{model}", "-o", "out.elh", "--lanes", "0"], 2, "--lanes must be from 1 to 16, not 0"),
    (["compress", "{model}", "-o", "out.elh", "--fifo-depth", "48"], 2,
     "--fifo-depth must be a power of two from 4 to 512 (the decoder's lane FIFO), not 48"),
    (["compress", "{model}", "-o", "out.elh", "--fifo-depth", "x"], 2,
     "argument --fifo-depth: invalid int value"),
    (["compress", "{model}", "-o", "out.elh", "--min-size", "-1"], 2, "--min-size must be positive"),
    (["compress", "{model}", "-o", "out.elh", "--plot", "{notdir}/h.png"], 2,
     "--plot must be a writable file path"),
    # sweep (checked before any cluster starts)
    (["sweep"], 2, "a BLOCK (or --spec with block = ...) is needed"),
    (["sweep", "nosuchblock"], 2, "unknown block 'nosuchblock'"),
    (["sweep", "lfsr", "-p", "width=0,8"], 2, "width must be an integer from 3 to 32, not 0"),
    (["sweep", "lfsr", "--device", "virtex"], 2, "--device must be among up5k, ecp5-85f, not 'virtex'"),
    (["sweep", "lfsr", "--seed", "-1"], 2, "--seed must be non-negative integers, not -1"),
    (["sweep", "lfsr", "--freq", "0"], 2, "--freq must be a clock in MHz, 0 < F <= 1000, not 0.0"),
    (["sweep", "lfsr", "--spec", "{notdir}/s.toml"], 2, "--spec"),
    (["sweep", "lfsr", "--skip", "width"], 2, "--skip takes NAME=VALUE[,NAME=VALUE...], not 'width'"),
    (["sweep", "lfsr", "--workers", "0"], 2, "--workers must be an integer >= 1, not 0"),
    (["sweep", "lfsr", "--scheduler", "foo"], 2, "--scheduler must be a Dask address"),
    (["sweep", "lfsr", "--connect-timeout", "0"], 2, "--connect-timeout must be a number of seconds above 0"),
    (["sweep", "lfsr", "--retries", "-1"], 2, "--retries must be an integer >= 0, not -1"),
    (["sweep", "lfsr", "--out", "{notdir}/out"], 2, "--out must be a writable directory"),
    # experiment
    (["experiment", "nosuch"], 2, "unknown experiment name 'nosuch'; the experiments are: mixed-precision"),
    (["experiment", "hdqt", "--seeds", "0"], 2, "--seeds must be a positive integer, not 0"),
    (["experiment", "hdqt", "--budget", "1"], 2, "--budget applies only to mixed-precision"),
    (["experiment", "mixed-precision", "--budget", "-1"], 2, "--budget must be a non-negative number"),
    (["experiment", "hdqt", "--plot", "{notdir}/h.png"], 2, "--plot must be a writable file path"),
    # decompress
    (["decompress"], 2, "the following arguments are required: container, -o/--output"),
    (["decompress", "{notdir}/m.elh", "-o", "m.npz"], 2, "no such file"),
    (["decompress", "{model}", "-o", "{notdir}/m.npz"], 2, "-o/--output must be a writable directory path"),
]


class ToolRan(BaseException):
    """A bad argument reached a tool (BaseException: the CLI's own handler must not swallow it)."""


@pytest.fixture
def no_tools(monkeypatch):
    """Every tool and long step the CLI can reach raises :class:`ToolRan`."""
    import boards.build
    import boards.flash
    import boards.synth
    import firmware.jobs
    import sim.lint
    import sim.runner

    def ran(*args, **kwargs):
        raise ToolRan(args[:1])
    for module, name in [(sim.runner, "to_verilog"), (sim.runner, "run_cocotb"), (sim.lint, "lint_verilog"),
                         (boards.synth, "synthesize"), (boards.build, "build_board"),
                         (boards.flash, "flash_board"), (firmware.jobs, "run_job"),
                         (subprocess, "run"), (subprocess, "Popen")]:
        monkeypatch.setattr(module, name, ran)


def _fill(argv, tmp_path, monkeypatch):
    regular = tmp_path / "a-file"
    regular.write_text("")
    model = tmp_path / "model.npy"
    np.save(model, np.zeros((8, 8), np.float32))
    monkeypatch.chdir(tmp_path)            # relative outputs of rows that must not be written land here
    return [a.replace("{notdir}", str(regular)).replace("{model}", str(model)) for a in argv]


@pytest.mark.parametrize("argv,code,needle", ROWS, ids=[" ".join(r[0]) or "(none)" for r in ROWS])
def test_bad_argument(argv, code, needle, no_tools, capsys, tmp_path, monkeypatch):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = cli.main(_fill(argv, tmp_path, monkeypatch))
        gc.collect()                       # warnings of objects dropped on the error path show now
    out, err = capsys.readouterr()
    lines = err.splitlines() + [f"warning: {w.message}" for w in caught]
    assert (got, out) == (code, ""), err
    assert len(lines) == 1, lines
    assert lines[0].startswith("edgelearn: error: ") and needle in lines[0], lines[0]


def _subcommands():
    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_table_covers_every_argument():
    rows = {}
    for argv, _, needle in ROWS:
        if argv:
            rows.setdefault(argv[0], []).append((argv, needle))
    for name, parser in _subcommands().items():
        assert name in rows, f"no bad-argument row for subcommand {name!r}"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.nargs == 0:
                continue
            if action.option_strings:
                assert any(set(action.option_strings) & set(argv) for argv, _ in rows[name]), \
                    f"no bad-argument row for {name} {action.option_strings[0]}"
            else:
                assert any(action.dest in needle for _, needle in rows[name]), \
                    f"no bad-argument row for {name}'s {action.dest}"
