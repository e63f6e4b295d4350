"""Board PLL clock: which clock the build chooses, and the Fmax behind it, over nextpnr seeds.

For each seed, :func:`boards.build.build_board` builds the board's default design (or ``--groups``)
the way ``edgelearn build`` does: place-and-route at the board's ``clk_hz``, then, if nextpnr's Fmax
does not carry it with the margin, again at the highest PLL clock that Fmax carries. The table has
every attempt (clock, Fmax) and the chosen clock; the summary gives the mean and standard error over
the seeds of the Fmax at the first clock and of the chosen clock, and the chosen clock against the
baseline, the board's oscillator (the clock without a PLL).

Run: ``python -m bench.bench_board_clock [--board icebreaker] [--seeds 1,2,3] [--groups G,G]``
(each seed is one or two full builds, minutes each; build trees under ``build/bench_board_clock``).
``--attempts 1`` (with ``--clock-mhz F``, a PLL candidate) is one place-and-route at a fixed clock,
for reading the critical paths (``<build tree>/<top>.tim``) between gateware changes.
"""

import argparse
import statistics
import sys

from boards.build import MAX_ATTEMPTS, build_board
from boards.clock import MARGIN
from hw.control.boards import check_board
from hw.paths import build_root


def _mean_se(values):
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")
    return mean, se


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--board", default="icebreaker")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--groups", default=None)
    p.add_argument("--clock-mhz", type=float, default=None, help="first clock (default: the board's)")
    p.add_argument("--attempts", type=int, default=MAX_ATTEMPTS, help="place-and-route runs at most")
    args = p.parse_args(argv)
    first_hz = None if args.clock_mhz is None else round(args.clock_mhz * 1e6)
    seeds = [int(s) for s in args.seeds.split(",")]
    cfg = check_board(args.board)
    if not cfg.osc_hz:
        print(f"{args.board} has no PLL clock (it runs from its {cfg.clk_hz / 1e6:g} MHz oscillator)")
        return 1
    rows = []
    for seed in seeds:
        r = build_board(args.board, groups=args.groups, seed=seed, clk_hz=first_hz,
                        max_attempts=args.attempts,
                        build_dir=build_root() / "bench_board_clock" / f"{args.board}-seed{seed}",
                        progress=lambda msg, s=seed: print(f"  seed {s}: {msg}", file=sys.stderr, flush=True))
        rows.append((seed, r))
    groups = "+".join(rows[0][1]["groups"])
    print(f"{args.board} ({groups}), PLL from {cfg.osc_hz / 1e6:g} MHz, margin {MARGIN:.0%}, "
          f"UART {cfg.baud} baud")
    print(f"{'seed':>4}  {'attempts (clock MHz -> Fmax MHz)':40s}  {'chosen MHz':>10}  {'LC':>5}  timing met")
    for seed, r in rows:
        tries = ", ".join(f"{a['clock_mhz']:g} -> {a['fmax_mhz']}" for a in r["attempts"])
        placed = f" (no legal placement at seeds {r['unplaced_seeds']}: seed {r['seed']})" \
            if r.get("unplaced_seeds") else ""
        print(f"{seed:>4}  {tries:40s}  {r['clock_mhz']:>10g}  {r['lc']:>5}  {r['margin_met']}{placed}")
    first = [r["attempts"][0]["fmax_mhz"] for _, r in rows]
    chosen = [r["clock_mhz"] for _, r in rows]
    m1, s1 = _mean_se(first)
    mc, sc = _mean_se(chosen)
    osc = cfg.osc_hz / 1e6
    print(f"Fmax at {rows[0][1]['attempts'][0]['clock_mhz']:g} MHz: {m1:.2f} +- {s1:.2f} MHz (mean +- s.e., "
          f"{len(seeds)} seeds)")
    print(f"chosen clock: {mc:.2f} +- {sc:.2f} MHz = {mc / osc:.2f}x the {osc:g} MHz oscillator (baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
