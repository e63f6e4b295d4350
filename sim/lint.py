"""Verilator lint of generated Verilog.

"Lint-clean" here means: ``verilator --lint-only`` with its default warnings reports nothing,
except four categories that Yosys' Verilog backend (which writes Amaranth's Verilog) produces by
construction and that say nothing about the design:

* ``WIDTH`` (WIDTHEXPAND/WIDTHTRUNC): the backend writes ``state == 1'h1`` on a 2-bit state, ``!x``
  for ``x == 0`` on a vector, ``(x >> s)[0]`` — operand extension and truncation are exactly
  defined by Verilog's rules and match the RTLIL semantics; Amaranth itself makes every width
  explicit, so these are not the width bugs the warning exists to catch in hand-written code;
* ``CASEINCOMPLETE``: the backend assigns a default before every ``case`` in ``always @*``, so an
  uncovered value cannot infer a latch (Verilator's LATCH check still runs);
* ``ALWNEVER``: ``always @*`` blocks that only assign constants;
* ``ASCRANGE``: the ``[-1:0]`` declaration of zero-width signals (e.g. the address of a one-entry
  FIFO in ``amaranth.lib.fifo``), which nothing reads.

Everything structural stays checked: multiple drivers, combinational loops (UNOPTFLAT), latches,
implicit nets, blocking/non-blocking mixes, out-of-range selects, and every error. ``-Wall``'s
style warnings are not used either (PROCASSINIT, UNUSEDSIGNAL, DECLFILENAME are also backend
artifacts).
"""

import subprocess
import tempfile
from pathlib import Path

from sim.runner import setup_verilator

__all__ = ["lint_verilog", "WAIVED"]

#: Warning categories of Yosys' Verilog backend that say nothing about the design (see above).
WAIVED = ("-Wno-WIDTH", "-Wno-CASEINCOMPLETE", "-Wno-ALWNEVER", "-Wno-ASCRANGE")


def lint_verilog(text, top):
    """Lint Verilog ``text`` whose top module is ``top``; return the warning lines (empty: clean)."""
    setup_verilator()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"{top}.v"
        src.write_text(text)
        cmd = ["verilator", "--lint-only", "-Wno-fatal", *WAIVED, "--top-module", top, str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = (proc.stdout + proc.stderr).splitlines()
    warnings = [ln for ln in lines if ln.startswith("%Warning") or ln.startswith("%Error")]
    if proc.returncode != 0 and not warnings:
        warnings = lines[-5:] or [f"verilator exited with {proc.returncode}"]
    return warnings
