"""Where a clock domain fails a period: nextpnr's per-endpoint arrival times, by block.

nextpnr reports one critical path per clock. With ``--detailed-timing-report`` its JSON report
(``--report``) also lists every endpoint of each clock domain (a register or RAM input) with the
*arrival time* of its latest signal (``detailed_net_timings[*].endpoints[*].delay``, ``[min, max]``
in ns from the launching clock edge: clock-to-out and every LUT and route before it — not a net's
own route delay), under the net that reaches it. An endpoint whose arrival exceeds a period fails
that period (less its setup time), so one place-and-route tells how many endpoints a domain would
fail at a higher clock, and in which blocks: the distribution the single critical path does not
show.

:func:`endpoint_arrivals` collects the endpoints of one clock, :func:`failing_by_block` counts
those over a period per block (the cell's hierarchy; :func:`block_of` also gives the signal name
Yosys derived the cell's name from). ``python -m boards.timing REPORT --clock NET --mhz F`` prints
the counts and the latest endpoint of each failing signal with the last cell of its path, for a
build run with ``build_board(..., detailed_timing=True)`` (``boards.build``).
"""

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

__all__ = ["endpoint_arrivals", "block_of", "failing_by_block", "load_report", "main"]


def load_report(path):
    """nextpnr's JSON report at ``path``; ``ValueError`` naming it when it has no
    ``detailed_net_timings`` (the build ran without ``--detailed-timing-report``)."""
    report = json.loads(Path(path).read_text())
    if "detailed_net_timings" not in report:
        raise ValueError(f"{path}: no detailed_net_timings (run nextpnr with --detailed-timing-report, "
                         "build_board(..., detailed_timing=True))")
    return report


def _on_clock(event, clock):
    return event.endswith(clock) and event.startswith(("posedge", "negedge"))


def endpoint_arrivals(report, clock):
    """``{(cell, port): (arrival ns, driver cell)}`` of every endpoint (register or RAM input)
    captured by ``clock`` (a net name as nextpnr's events spell it, e.g.
    ``gemm_clk`` or ``$glbnet$gemm_clk``; matched at the end of the event). nextpnr lists endpoints
    only, each under the net that reaches it; ``driver`` is that net's driver, the last cell of the
    path.

    Every endpoint captured by ``clock`` counts, whatever clock its net is listed under: nextpnr
    lists a net under one launching clock even when paths from several reach its endpoints (on the
    8 x 16 ULX3S board the tile check's enable net was listed under the decoder's clock, while its
    latest arrival, 9.17 ns, was the `gemm` critical path). Arrivals launched by another clock
    (clock crossings, which nextpnr does not constrain) are therefore counted too; they cannot be
    told apart in the report."""
    out = {}
    for net in report["detailed_net_timings"]:
        for ep in net["endpoints"]:
            if _on_clock(ep.get("event", ""), clock):
                key = (ep["cell"], ep["port"])
                if ep["delay"][1] >= out.get(key, (-1.0,))[0]:
                    out[key] = (ep["delay"][1], net["driver"])
    return out


#: What Yosys and nextpnr append to a signal's name when they name a cell after it.
_CELL_SUFFIX = re.compile(r"(_TRELLIS_|_LUT4|_CCU2C|_PFUMX|_L6MUX|_DPR16X4|\$DPRAM|\$CCU2|\[|_SB_)")


def block_of(cell):
    """``(block, signal)`` of a mapped cell's name: the hierarchy before the last ``.`` and the
    signal name before the suffixes Yosys and nextpnr add (``_TRELLIS_FF_Q_3``, ``_LUT4_Z``, ...),
    with bit and instance numbers of the hierarchy folded to ``#`` (``pe3_5`` -> ``pe#_#``)."""
    head, _, tail = cell.rpartition(".")
    cut = _CELL_SUFFIX.search(tail, 1)
    signal = tail[:cut.start()] if cut else tail
    return re.sub(r"\d+", "#", head), signal


def failing_by_block(arrivals, period_ns, setup_ns=0.0):
    """``(failing, total)``: Counters by block (:func:`block_of`'s block) of the endpoints of
    ``arrivals`` (as :func:`endpoint_arrivals` gives them) whose arrival plus ``setup_ns`` exceeds
    ``period_ns``, and of all endpoints."""
    failing, total = Counter(), Counter()
    for (cell, _port), (t, _driver) in arrivals.items():
        block = block_of(cell)[0]
        total[block] += 1
        if t + setup_ns > period_ns:
            failing[block] += 1
    return failing, total


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m boards.timing", description=__doc__.split("\n\n")[0])
    parser.add_argument("report", help="nextpnr JSON report written with --detailed-timing-report")
    parser.add_argument("--clock", required=True, help="clock net (the end of nextpnr's clock name)")
    parser.add_argument("--mhz", type=float, required=True, help="the period to check, as a clock in MHz")
    parser.add_argument("--paths", type=int, default=10, help="failing signals listed (latest first)")
    args = parser.parse_args(argv)
    if args.mhz <= 0:
        parser.error(f"--mhz must be positive, not {args.mhz}")
    try:
        report = load_report(args.report)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    arrivals = endpoint_arrivals(report, args.clock)
    if not arrivals:
        print(f"error: no endpoint on clock {args.clock!r} in {args.report}", file=sys.stderr)
        return 1
    period = 1e3 / args.mhz
    failing, total = failing_by_block(arrivals, period)
    print(f"{args.clock}: {sum(failing.values())} of {len(arrivals)} endpoints arrive after {period:.2f} ns "
          f"({args.mhz:g} MHz)")
    for block, n in failing.most_common():
        print(f"{n:6d} / {total[block]:6d}  {block}")
    worst = {}
    for (cell, port), (t, driver) in arrivals.items():
        sig = block_of(cell)
        if t > period and t > worst.get(sig, (0.0,))[0]:
            worst[sig] = (t, f"{cell}.{port}", driver)
    if worst:
        print(f"\nlatest endpoint of each failing signal (of {len(worst)}), after the last cell of its path:")
    for (t, endpoint, driver) in sorted(worst.values(), reverse=True)[:args.paths]:
        print(f"{t:6.2f} ns  {endpoint}\n            <- {driver}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
