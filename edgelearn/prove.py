"""``edgelearn prove``: run the formal checks of :mod:`sim.formal` and print a table."""

import json
import time

from sim.formal import run_property, select
from sim.runner import build_root

__all__ = ["prove", "format_table"]

_COLUMNS = ("property", "method", "depth", "result", "time")


def _row(res):
    method = "k-induction" if res.method == "prove" else "BMC"
    return {"property": res.name, "method": method, "depth": res.depth, "result": res.status,
            "time": f"{res.seconds:.1f} s", "trace": res.trace, "message": res.message}


def format_table(rows):
    table = [list(_COLUMNS)] + [[str(r[c]) for c in _COLUMNS] for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(_COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip() for t in table)


def prove(names, *, everything=False, as_json=False, progress=None, out=print):
    """Run the selected properties; print the table (or JSON); return the failure lines (one per
    property that did not pass: its name and counterexample trace, or the tool's error).

    ``names`` are blocks or properties (see :func:`sim.formal.select`, which raises ``ValueError``
    for an unknown one)."""
    props = select(names, everything=everything)
    root = build_root() / "formal"
    rows, failures = [], []
    start = time.monotonic()
    for prop in props:
        if progress:
            progress(f"{prop.name}: {'k-induction' if prop.method == 'prove' else 'BMC'} depth {prop.depth} "
                     f"({prop.params})")
        res = run_property(prop, root)
        rows.append(_row(res))
        if res.status == "FAIL":
            failures.append(f"property {res.name} failed; counterexample trace {res.trace}")
        elif res.status == "UNKNOWN":
            failures.append(f"property {res.name} not proved: the induction step failed at depth "
                            f"{res.depth}; induction trace {res.trace}")
        elif res.status != "PASS":
            failures.append(f"property {res.name}: the formal tools failed: {res.message} "
                            f"(files in {res.workdir})")
    if as_json:
        out(json.dumps(rows, indent=1))
    else:
        out(format_table(rows))
        passed = sum(r["result"] == "PASS" for r in rows)
        out(f"{passed} of {len(rows)} properties hold ({time.monotonic() - start:.0f} s)")
    return failures
