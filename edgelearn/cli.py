"""``edgelearn``: generate Verilog, simulate, synthesize, build, flash and run the accelerator blocks.

Every command answers a bad argument, an unknown block or a bad parameter with one line on stderr
(``edgelearn: error: ...``) and exit code 2; a tool or simulation that fails gives one line and exit
code 1. Long steps (the first YoWASP call compiles WebAssembly; place-and-route) print progress
lines on stderr, so stdout carries only results.
"""

import argparse
import importlib
import json
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import UnusedElaboratable

from boards import build as board_build
from boards import config as board_config
from boards import flash, synth
from boards import groups as board_groups
from edgelearn import experiment, prove, sweep
from firmware import jobs as firmware_jobs
from hw.blocks import all_blocks, get_block
from sim import formal, lint, runner

__all__ = ["main"]


class UsageError(Exception):
    """A bad argument: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _progress(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _blocks():
    return all_blocks()


def _block(name):
    try:
        return get_block(name)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _parse_params(spec, items):
    params = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"-p takes name=value, not {item!r}")
        key, text = item.split("=", 1)
        if key in params:
            raise UsageError(f"-p {key} is given twice; give each parameter once")
        if key not in spec.params:
            allowed = ", ".join(spec.params) or "(none)"
            raise UsageError(f"block {spec.name!r} has no parameter {key!r}; its parameters are: {allowed}")
        try:
            params[key] = spec.params[key].parse(key, text)
        except ValueError as e:
            raise UsageError(str(e)) from None
    return params


def _build(spec, params):
    try:
        return spec.build(**params)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None


def _checked(check, value, option):
    """``check(value, option)`` (a parameter check raising ValueError) as a usage error."""
    try:
        return check(value, option)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _writable(path, option, *, directory=False):
    """Make sure ``path`` can be written (creating its directories) before any tool runs.

    The probe really writes (an empty append, or a temporary file in a directory): permission
    bits alone do not tell, e.g. for root or on a read-only file system.
    """
    target = Path(path)
    try:
        if directory:
            target.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=target).close()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            existed = target.exists()
            with open(target, "a"):
                pass
            if not existed:
                target.unlink()
    except OSError as e:
        kind = "directory" if directory else "file"
        raise UsageError(f"{option} must be a writable {kind} path, not {str(path)!r} "
                         f"({e.strerror or type(e).__name__})") from None
    return target


# --- commands -------------------------------------------------------------------------------------

def cmd_list(args):
    print("blocks:")
    for name, spec in _blocks().items():
        print(f"  {name:18s} {spec.summary}")
        for pname, p in spec.params.items():
            choices = f" (one of {', '.join(map(str, p.choices))})" if p.choices else ""
            print(f"      {pname:16s} default {p.default!r}{choices}: {p.help}")
    print("boards:")
    for name, desc in _boards().items():
        print(f"  {name:18s} {desc}")
    jobs = _jobs()
    if jobs:
        print("jobs (edgelearn run JOB):")
        for name, desc in jobs.items():
            print(f"  {name:18s} {desc}")
    return 0


def cmd_generate(args):
    spec = _block(args.block)
    dut = _build(spec, _parse_params(spec, args.param))
    if args.output not in (None, "-"):
        _writable(args.output, "-o/--output")
    if args.rtlil:
        text = rtlil.convert(dut, name=spec.name)
    else:
        text = runner.to_verilog(dut, spec.name)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(f"wrote {args.output} ({len(text.splitlines())} lines, top module {spec.name!r})")
    return 0


def _run_smoke(spec, params, waves=False):
    """Each cocotb test in a simulation of its own, from reset, as the test suite runs them."""
    params = {**spec.smoke_params, **params}
    total, wave_file = 0, None
    for testcase in runner.cocotb_testcases(spec.smoke_test):
        res = runner.run_cocotb(lambda: spec.build(**params), toplevel=spec.name, test_module=spec.smoke_test,
                         testcase=testcase, params={**spec.defaults(), **params}, waves=waves)
        total += res["tests"]
        wave_file = wave_file or res["waves"]
    return {"tests": total, "waves": wave_file}


def cmd_sim(args):
    blocks = [_block(args.block)] if args.block else list(_blocks().values())
    params = {}
    if args.param:
        if not args.block:
            raise UsageError("-p needs a BLOCK")
        params = _parse_params(blocks[0], args.param)
        _build(blocks[0], {**blocks[0].smoke_params, **params})  # bad values fail here, before cocotb
    failed = 0
    for spec in blocks:
        if spec.smoke_test is None:
            print(f"{spec.name}: no cocotb testbench")
            continue
        _progress(f"{spec.name}: Verilog, Verilator build, cocotb tests ({spec.smoke_test})")
        try:
            res = _run_smoke(spec, params, waves=args.waves)
        except AssertionError as e:
            failed += 1
            print(f"{spec.name}: FAILED\n{e}")
            continue
        waves = f", waves {res['waves']}" if res["waves"] else ""
        print(f"{spec.name}: {res['tests']} cocotb tests passed{waves}")
    return 1 if failed else 0


def cmd_synth(args):
    spec = _block(args.block)
    params, from_registry = spec.device_params(args.device, _parse_params(spec, args.param))
    if args.freq is not None:
        _checked(synth.check_freq_mhz, args.freq, "--freq")
    _checked(synth.check_seed, args.seed, "--seed")
    if from_registry:
        _progress(f"{spec.name} at the registry's {args.device} parameters: "
                  + " ".join(f"{k}={v}" for k, v in from_registry.items()) + " (-p NAME=VALUE overrides)")
    dut = _build(spec, params)
    router = spec.synth_router if args.device == "up5k" else None
    row = synth.synthesize(dut, device=args.device, name=spec.name, freq_mhz=args.freq, seed=args.seed,
                     progress=_progress, router=router)
    if args.json:
        print(json.dumps(row, indent=1))
    else:
        print(synth.format_table([row]))
        where = "met" if row["timing_met"] else "NOT met"
        print(f"timing {where} at {row['target_mhz']} MHz (nextpnr seed {args.seed}); files in {row['dir']}")
    return 0


def cmd_sweep(args):
    try:
        return sweep.main(args)
    except sweep.SweepInputError as e:
        raise UsageError(str(e)) from None


def _boards():
    return board_build.BOARDS


def _jobs():
    return firmware_jobs.JOBS


def _check_board(name):
    """``--board``, checked by the one board check (:func:`boards.config.check_board`)."""
    try:
        board_config.check_board(name)
    except ValueError as e:
        raise UsageError(f"--{e}") from None


def _check_groups(args):
    """``--groups`` and ``--gemm-array`` of ``args.board``, checked by
    :func:`boards.groups.config_for_groups` (its messages name ``groups`` and ``gemm_array``)."""
    try:
        board_groups.config_for_groups(args.board, args.groups, args.gemm_array)
    except ValueError as e:       # ParameterTypeError is one too
        raise UsageError("--" + str(e).replace("gemm_array", "gemm-array", 1)) from None


def _engine_clocks(args):
    """``--clock DOMAIN=MHZ`` (repeated) as ``{domain: Hz}``, checked against the board's engine
    clock domains and PLL (:func:`boards.build.with_engine_clocks`); None without ``--clock``."""
    if not args.clock:
        return None
    clocks = {}
    for item in args.clock:
        domain, _, mhz = item.partition("=")
        try:
            hz = round(float(mhz) * 1e6)
        except ValueError:
            hz = None
        if not domain or hz is None:
            raise UsageError(f"--clock must be DOMAIN=MHZ (e.g. gemm=125), not {item!r}")
        clocks[domain] = hz
    cfg = board_groups.config_for_groups(args.board, args.groups, args.gemm_array)
    try:
        board_build.with_engine_clocks(cfg, clocks)
    except (TypeError, ValueError) as e:
        message = re.sub(r"engine_clocks\['(\w+)'\]", r"--clock \1", str(e))
        raise UsageError(message.replace("engine_clocks domain", "--clock domain")) from None
    return clocks


def cmd_build(args):
    _check_board(args.board)
    _check_groups(args)
    try:
        if args.seed is not None:
            synth.check_seed(args.seed)
        if args.attempts is not None:
            board_build.check_max_attempts(args.attempts)
    except ValueError as e:
        raise UsageError("--" + str(e).replace("max_attempts", "attempts", 1)) from None
    clocks = _engine_clocks(args)
    # Clocks named on the command line are built as named: a run that misses timing is repeated
    # at the next placer seed, not at a lower clock; the report says whether timing was met
    # (``timing_met``) and with the margin (``margin_met``).
    pinned = {"engine_clocks": clocks, "hold_clocks": True} if clocks else {}
    if args.attempts is not None:
        pinned["max_attempts"] = args.attempts
    res = board_build.build_board(args.board, groups=args.groups, seed=args.seed, router=args.router,
                                  placer=args.placer,
                                  gemm_array=args.gemm_array, progress=_progress, **pinned)
    if args.json:
        print(json.dumps(res, indent=1, default=str))
        return 0
    for key in ("board", "device", "groups", "gemm_array", "bitstream", "lut4", "lc", "ff", "dsp", "bram",
                "spram", "clock_mhz", "clocks_mhz", "fmax_mhz", "fmax_by_domain", "target_mhz", "timing_met",
                "margin_met", "router", "placer", "seed"):
        if key in res:
            value = res[key]
            if key == "groups":
                value = "+".join(value)
            elif isinstance(value, dict):      # the engine's clock domains: {domain: MHz}
                value = ", ".join(f"{d} {v}" for d, v in value.items())
            print(f"{key:12s} {value}")
    return 0


def cmd_flash(args):
    _check_board(args.board)
    if args.bitstream is not None and not Path(args.bitstream).is_file():
        raise UsageError(f"--bitstream must be an existing bitstream file, not {args.bitstream!r}")
    flash.flash_board(args.board, args.bitstream)
    print(f"flashed {args.board}")
    return 0


def _print_rows(rows, indent="  "):
    width = max((len(str(label)) for label, _ in rows), default=0)
    for label, value in rows:
        print(f"{indent}{str(label):{width}s}  {value}")


def cmd_run(args):
    jobs = _jobs()
    if args.job not in jobs:
        allowed = ", ".join(jobs) or "(none yet)"
        raise UsageError(f"unknown job {args.job!r}; the jobs are: {allowed}")
    if args.board:
        _check_board(args.board)
    if args.port is not None and args.sim:
        raise UsageError("--port is for a board on a serial port; --sim runs a simulated board")
    if args.port is not None and not args.board:
        # A port without a board would silently run on the simulated board.
        allowed = ", ".join(_boards()) or "(none yet)"
        raise UsageError(f"--port needs --board (one of {allowed}): the board sets the line rate "
                         f"and block sizes")
    if args.groups is not None and not args.board:
        raise UsageError("--groups needs --board (the small simulated board carries every group)")
    if args.clock and not args.board:
        raise UsageError("--clock needs --board (the small simulated board has one clock)")
    if args.gemm_array is not None and not args.board:
        raise UsageError("--gemm-array needs --board (the small simulated board has no GEMM engine)")
    if args.board:
        _check_groups(args)
    clocks = _engine_clocks(args) if args.board else None
    sim = args.sim or not args.board
    if not sim:
        where = f"board {args.board}"
    else:
        where = f"the simulated {args.board} core" if args.board else "the simulated board"
    options = {k: v for k, v in (("size", args.size), ("batch", args.batch), ("precisions", args.precision))
               if v is not None}
    if options and args.job != "gemm":
        raise UsageError("--size, --batch and --precision are options of the gemm job")
    for name in ("size", "batch"):
        if options.get(name, 1) < 1:
            raise UsageError(f"--{name} must be a positive integer, not {options[name]}")
    if "precisions" in options:
        options["precisions"] = tuple(p.strip() for p in options["precisions"].split(","))
        bad = [p for p in options["precisions"] if p not in ("int8", "int4", "int2", "ternary")]
        if bad or not options["precisions"]:
            raise UsageError(f"--precision must be a comma-separated list of int8, int4, int2, ternary, "
                             f"not {args.precision!r}")
    _progress(f"running {args.job} on {where}")
    # A job for a group the board lacks raises BlockMissing: one error line, exit 1 (main()).
    _print_rows(firmware_jobs.run_job(args.job, board=args.board, port=args.port, sim=sim,
                                      groups=args.groups, gemm_array=args.gemm_array, clocks=clocks,
                                      **options), indent="")
    return 0


#: Seconds each Yosys or nextpnr run of the demo's UP5K rows may take. The slowest runs measured on
#: the 2-core machine took about 100 s (hdqt_layer's Yosys 93 s; gemm_engine's and huffman_decoder's
#: nextpnr 90-100 s): the limit leaves ~9x for a machine shared with other jobs and for the first
#: YoWASP call's WebAssembly compile, while a router that does not converge (router1 on gemm_engine sat
#: at 47 overused arcs for 15 min) is stopped instead of holding the demo for hours.
DEMO_TOOL_SECONDS = 900


def cmd_demo(args):
    """The main job: every block generated, linted, simulated against its golden model, synthesized."""
    if args.board:
        _check_board(args.board)
    out_dir = _writable(args.output, "-o/--output", directory=True)
    rows, failures = [], 0
    for name, spec in _blocks().items():
        row = {"block": name}
        params = dict(spec.smoke_params)
        try:
            _progress(f"{name}: Verilog")
            text = runner.to_verilog(spec.build(**params), name)
            (out_dir / f"{name}.v").write_text(text)
            row["verilog"] = f"{len(text.splitlines())} lines"
            row["lint"] = "clean" if not lint.lint_verilog(text, name) else "WARN"
            if spec.smoke_test:
                _progress(f"{name}: cocotb on Verilator vs golden model")
                try:
                    res = _run_smoke(spec, {})
                    row["cocotb"] = f"{res['tests']} passed"
                except AssertionError as e:
                    row["cocotb"] = "FAILED"
                    failures += 1
                    print(f"{name}: cocotb failed:\n{e}", file=sys.stderr)
            if not args.no_synth:
                synth_params = spec.synth_overrides()
                if synth_params != params:
                    row["synth at"] = " ".join(f"{k}={v}" for k, v in synth_params.items())
                try:
                    r = synth.synthesize(spec.build(**synth_params), device="up5k", name=name,
                                         progress=_progress, router=spec.synth_router,
                                         timeout=DEMO_TOOL_SECONDS)
                except synth.ToolTimeout as e:
                    # One line now; the other rows go on and the demo ends with exit code 1.
                    failures += 1
                    print(f"edgelearn demo: {name}: {e.tool} stopped after its limit of {e.seconds:g} s "
                          f"(log: {e.log})", file=sys.stderr, flush=True)
                    row["error"] = f"{e.tool} not done within {e.seconds:g} s"
                except synth.DoesNotFit as e:
                    # Reported in the table like any other figure; the other blocks go on.
                    failures += 1
                    row["error"] = "does not fit: " + ", ".join(
                        f"{k} {e.utilisation[k][0]}/{e.utilisation[k][1]}" for k in e.over)
                else:
                    row.update({"LUT4": r["lut4"], "FF": r["ff"], "DSP": r["dsp"], "BRAM": r["bram"],
                                "SPRAM": r["spram"], "Fmax": f"{r['fmax_mhz']} MHz"})
        except Exception as e:  # one block's failure must not hide the others' results
            failures += 1
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
        rows.append(row)

    cols = ["block", "verilog", "lint", "cocotb", "synth at", "LUT4", "FF", "DSP", "BRAM", "SPRAM", "Fmax",
            "error"]
    cols = [c for c in cols if any(c in r for r in rows)]
    table = [cols] + [[str(r.get(c, "-")) for c in cols] for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(cols))]
    print(f"\nedgelearn demo: every block generated ({out_dir}/), linted, simulated in cocotb/Verilator "
          f"against its golden model" + ("" if args.no_synth else ", synthesized for iCE40UP5K"))
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)))

    for name, spec in _blocks().items():
        if not spec.demo:
            continue
        _progress(f"{name}: demo {spec.demo}")
        module, func = spec.demo.split(":")
        print(f"\n{name} demo:")
        try:
            _print_rows(getattr(importlib.import_module(module), func)())
        except Exception as e:
            failures += 1
            print(f"  FAILED: {type(e).__name__}: {e}")

    jobs = _jobs()
    if jobs and not args.no_jobs:
        where = f"board {args.board}" if args.board else "the simulated board (no hardware)"
        print(f"\nend-to-end jobs through the host driver on {where}:")
        for job in jobs:
            _progress(f"job {job}")
            print(f"{job}:")
            try:
                _print_rows(firmware_jobs.run_job(job, board=args.board))
            except firmware_jobs.BlockMissing as e:
                print(f"  skipped: {e}")
            except Exception as e:
                failures += 1
                print(f"  FAILED: {type(e).__name__}: {e}")
    print(f"\n{'all passed' if not failures else f'{failures} FAILED'}")
    return 1 if failures else 0


def cmd_prove(args):
    try:
        formal.select(args.block, everything=args.all)
    except ValueError as e:
        raise UsageError(str(e)) from None
    failures = prove.prove(args.block, everything=args.all, as_json=args.json, progress=_progress)
    for line in failures:
        print(f"edgelearn: error: {line}", file=sys.stderr)
    return 1 if failures else 0


def cmd_experiment(args):
    if args.list or not args.name:
        _print_rows(experiment.describe())
        return 0
    try:
        experiment.check_args(args.name, args.seeds, args.budget)
        if args.plot:
            _writable(args.plot, "--plot")         # before minutes of training, not after
        _progress(f"experiment {args.name}{' (quick)' if args.quick else ''}")
        result = experiment.run_experiment(args.name, quick=args.quick, seeds=args.seeds,
                                           plot=args.plot, budget=args.budget)
    except ValueError as e:
        raise UsageError(str(e)) from None
    experiment.print_result(result, as_json=args.json)
    return 0


# --- parser ---------------------------------------------------------------------------------------

def cmd_compress(args):
    from edgelearn import compress  # deferred: numba (the host codec) adds ~0.35 s to every start-up
    # The output is written to a temporary file beside it and renamed: probe its directory, not the file.
    _writable(Path(args.output).parent, "-o/--output", directory=True)
    fifo = {} if args.fifo_depth is None else {"fifo_depth": args.fifo_depth}     # default: compress's
    if args.plot:
        _writable(args.plot, "--plot")
    try:
        report = compress.compress_file(args.model, args.output, fmt=args.format, max_len=args.max_len,
                                        n_lanes=args.lanes, min_size=args.min_size, escape=args.escape,
                                        force=args.force, **fifo)
        if args.plot:
            compress.plot_tensor(report, args.plot)
    except compress.BadInput as e:
        raise UsageError(str(e)) from None
    print(json.dumps(report) if args.json else "\n".join(compress.report_lines(report)))
    return 0


def cmd_decompress(args):
    from edgelearn import compress  # deferred: numba (the host codec) adds ~0.35 s to every start-up
    _writable(Path(args.output).parent, "-o/--output", directory=True)
    try:
        shapes = compress.decompress_file(args.container, args.output, quantized=args.quantized,
                                          force=args.force)
    except compress.BadInput as e:
        raise UsageError(str(e)) from None
    except compress.CorruptContainer as e:
        print(f"edgelearn: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(shapes) if args.json else f"{len(shapes)} tensors restored, every CRC checked")
    return 0


def _parser():
    p = _Parser(prog="edgelearn", description="Edge-learning accelerator blocks: generate, simulate, "
                "synthesize, build, flash, run.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("list", help="blocks and boards with their parameters and defaults")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("generate", help="write a block's Verilog (or RTLIL)")
    s.add_argument("block")
    s.add_argument("-p", "--param", action="append", metavar="NAME=VALUE", help="block parameter")
    s.add_argument("-o", "--output", default=None, help="output file (default: stdout)")
    s.add_argument("--rtlil", action="store_true", help="write RTLIL instead of Verilog")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("sim", help="run a block's cocotb tests on Verilator (all blocks if none given)")
    s.add_argument("block", nargs="?")
    s.add_argument("-p", "--param", action="append", metavar="NAME=VALUE")
    s.add_argument("--waves", action="store_true", help="dump waves (FST) and print where")
    s.set_defaults(func=cmd_sim)

    s = sub.add_parser("synth", help="out-of-context synthesis + place-and-route: resources and Fmax")
    s.add_argument("block")
    s.add_argument("-p", "--param", action="append", metavar="NAME=VALUE")
    s.add_argument("--device", default="up5k", choices=["up5k", "ecp5-85f"])
    s.add_argument("--freq", type=float, default=None, help="clock constraint in MHz")
    s.add_argument("--seed", type=int, default=1,
                   help="nextpnr placer seed (default 1; Fmax moves by a few %% between seeds, and "
                        "another seed re-runs only nextpnr)")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("sweep", help="design-space sweep on Dask: params x devices x seeds, Pareto plot")
    s.add_argument("block", nargs="?", help="the block (or block = ... in --spec)")
    s.add_argument("-p", "--param", action="append", metavar="NAME=V1,V2,...", help="values to sweep")
    s.add_argument("--device", default=None, help="comma-separated devices (default up5k)")
    s.add_argument("--seed", default=None, help="comma-separated nextpnr seeds (default 1)")
    s.add_argument("--freq", type=float, default=None, help="clock constraint in MHz (default: the device's)")
    s.add_argument("--spec", default=None, metavar="FILE.toml", help="the sweep in a TOML file")
    s.add_argument("--skip", action="append", metavar="NAME=V,...", help="leave out points matching all")
    s.add_argument("--workers", type=int, default=None, help="local cluster size (default: the cores)")
    s.add_argument("--scheduler", default=None, metavar="tcp://HOST:8786", help="an existing Dask cluster")
    s.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to reach --scheduler")
    s.add_argument("--retries", type=int, default=2, help="re-runs of a point whose task failed")
    s.add_argument("--out", default=None, metavar="DIR", help="results.csv, results.json, pareto.png")
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("build", help="build a board's bitstream and print its resource/timing report")
    s.add_argument("--board", required=True)
    s.add_argument("--groups", default=None, metavar="G,G", help="command groups (gemm, hdqt, stdp); "
                   "default: the board's")
    s.add_argument("--gemm-array", default=None, metavar="RxC", help="the GEMM engine's systolic array "
                   "(ulx3s: e.g. 8x16); default: the board's")
    s.add_argument("--seed", type=int, default=None, help="nextpnr placer seed")
    s.add_argument("--router", choices=synth.ROUTERS, default=None,
                   help="nextpnr router (default: the board's; ulx3s router2, icebreaker router1)")
    s.add_argument("--placer", choices=synth.PLACERS, default=None,
                   help="nextpnr placer (default: the board's; ulx3s static, icebreaker heap)")
    s.add_argument("--clock", action="append", default=None, metavar="DOMAIN=MHZ",
                   help="an engine clock domain's PLL clock (ulx3s: gemm, dec; e.g. gemm=125), built "
                   "as named: a miss is retried at the next placer seed, not a lower clock (default: "
                   "the board's clocks, stepped down until they meet timing with a 5%% margin)")
    s.add_argument("--attempts", type=int, default=None, metavar="N",
                   help=f"place-and-route runs at most, 1-16 (default {board_build.MAX_ATTEMPTS}): steps "
                   "down the clock, or with --clock tries the next placer seeds")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("flash", help="flash a board with openFPGALoader")
    s.add_argument("--board", required=True)
    s.add_argument("--bitstream", default=None, help="default: the last build's")
    s.set_defaults(func=cmd_flash)

    s = sub.add_parser("run", help="run a job through the host driver, on a board or the simulated board")
    s.add_argument("job")
    s.add_argument("--board", default=None, help="with --sim: that board's own core in Verilator")
    s.add_argument("--sim", action="store_true",
                   help="a simulated board (the default; alone: the small all-groups board)")
    s.add_argument("--port", default=None, help="serial port (default: found by USB id)")
    s.add_argument("--groups", default=None, metavar="G,G", help="with --board: the bitstream's command "
                   "groups, as build --groups selected them (default: the board's)")
    s.add_argument("--gemm-array", default=None, metavar="RxC", help="with --board: the GEMM engine's "
                   "array, as build --gemm-array set it (default: the board's)")
    s.add_argument("--clock", action="append", default=None, metavar="DOMAIN=MHZ",
                   help="with --board: an engine clock domain's PLL clock, as build --clock set it "
                   "(--sim runs the core at it; default: the board's)")
    s.add_argument("--size", type=int, default=None, help="gemm on the GEMM engine: K = N (default 512)")
    s.add_argument("--batch", type=int, default=None, help="gemm on the GEMM engine: M (default: the "
                   "smallest multiple of the array's rows its cycle model keeps >= 90%% busy at the "
                   "engine's clocks; ulx3s 48 at 95 MHz, 64 at 125)")
    s.add_argument("--precision", default=None, metavar="P,P",
                   help="gemm on the GEMM engine: weight precisions (default int8,int4)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("compress", help="Huffman-compress a model's weights into one container file")
    s.add_argument("model", help=".safetensors, .npz or .npy")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--format", default="int8", help="int8 (default), int4, int4-pairs or bf16")
    s.add_argument("--max-len", type=int, default=16, help="longest code L, 8..16 (default 16)")
    s.add_argument("--lanes", type=int, default=1, help="decoder lanes N (default 1)")
    s.add_argument("--fifo-depth", type=int, default=None,
                   help="the decoder's lane FIFO words: multi-lane blocks are cut to fit it (default 64)")
    s.add_argument("--min-size", type=int, default=4096, help="smaller tensors pass raw (default 4096)")
    s.add_argument("--escape", action="store_true",
                   help="escape codes for rare symbols (L < 16; the RTL decoder does not take them yet)")
    s.add_argument("--plot", default=None, metavar="FILE.png", help="histogram vs code lengths")
    s.add_argument("--force", action="store_true", help="overwrite the output")
    s.add_argument("--json", action="store_true", help="print the per-tensor report as JSON")
    s.set_defaults(func=cmd_compress)

    s = sub.add_parser("decompress", help="restore a model from a container (checks every CRC)")
    s.add_argument("container")
    s.add_argument("-o", "--output", required=True, help=".safetensors, .npz or .npy")
    s.add_argument("--quantized", action="store_true", help="integer tensors + scales, not float32")
    s.add_argument("--force", action="store_true", help="overwrite the output")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_decompress)

    s = sub.add_parser("prove", help="formal checks (SymbiYosys): the fast set, or the blocks named")
    s.add_argument("block", nargs="*", help="blocks or single properties (default: every block)")
    s.add_argument("--all", action="store_true", help="the slow properties too")
    s.add_argument("--json", action="store_true", help="print the results as JSON")
    s.set_defaults(func=cmd_prove)

    s = sub.add_parser("demo", help="the main job: every block generated, simulated, synthesized; jobs")
    s.add_argument("--board", default=None, help="run the jobs on this board instead of in simulation")
    s.add_argument("--no-synth", action="store_true", help="skip synthesis")
    s.add_argument("--no-jobs", action="store_true", help="skip the end-to-end driver jobs")
    s.add_argument("-o", "--output", default="build/demo", help="where the Verilog goes")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("experiment", help="reproduce a paper's claim: tables and figure (--list)")
    s.add_argument("name", nargs="?")
    s.add_argument("--list", action="store_true", help="list the experiments")
    s.add_argument("--quick", action="store_true", help="small settings (a few minutes on 2 cores)")
    s.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the experiment's)")
    s.add_argument("--plot", metavar="FILE", default=None, help="write the figure (PNG) here")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.add_argument("--budget", type=float, default=None,
                   help="mixed-precision: accuracy budget in points (default 1.0)")
    s.set_defaults(func=cmd_experiment)
    return p


def _quiet_unused():
    """After an error: components whose constructor refused a parameter were never elaborated, and
    Amaranth's "created but never used" warnings for them would bury the one error line."""
    warnings.filterwarnings("ignore", category=UnusedElaboratable)


def main(argv=None):
    try:
        args = _parser().parse_args(argv)
        return args.func(args)
    except UsageError as e:
        _quiet_unused()
        print(f"edgelearn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgelearn: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        # Tool failures (ToolError, SimulationError, FlashError) already say what and where in one line.
        _quiet_unused()
        first = str(e).splitlines()[0] if str(e) else ""
        print(f"edgelearn: error: {type(e).__name__}: {first}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
