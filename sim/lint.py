"""Verilator lint of generated Verilog.

"Lint-clean" here means: ``verilator --lint-only`` with its default warnings (width mismatches,
implicit nets, multi-driven signals, combinational loops, latches, case coverage, ...) reports
nothing. ``-Wall``'s style warnings are not used: Yosys' Verilog backend writes initial values on
registers that also have a reset (PROCASSINIT), keeps unused intermediate wires (UNUSEDSIGNAL)
and does not name files after modules (DECLFILENAME) by construction, so those say nothing about
the design.
"""

import subprocess
import tempfile
from pathlib import Path

__all__ = ["lint_verilog"]


def lint_verilog(text, top):
    """Lint Verilog ``text`` whose top module is ``top``; return the warning lines (empty: clean)."""
    from sim.runner import _setup_verilator
    _setup_verilator()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"{top}.v"
        src.write_text(text)
        proc = subprocess.run(["verilator", "--lint-only", "-Wno-fatal", "--top-module", top, str(src)],
                              capture_output=True, text=True)
    lines = (proc.stdout + proc.stderr).splitlines()
    warnings = [ln for ln in lines if ln.startswith("%Warning") or ln.startswith("%Error")]
    if proc.returncode != 0 and not warnings:
        warnings = lines[-5:] or [f"verilator exited with {proc.returncode}"]
    return warnings
