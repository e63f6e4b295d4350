"""Benchmark of ``edgelearn sweep`` (issue 19): speedup with 2 Dask workers, scheduler overhead per point.

Run: ``python -m bench.bench_sweep`` (about 10 min of CPU on 2 idle cores); ``--quick``: eight LFSR
widths instead (the same flow, a few seconds per point).

1. The same 8-point synthesis-bound sweep (MAC array, cols {2, 4} x backend {lut, ice40} x
   acc_width {17, 24}, one row, on iCE40UP5K, nextpnr seed 1: eight different netlists, so no
   point reuses another's Yosys run) on an embedded ``LocalCluster`` of 1 and of 2 single-threaded
   worker processes, each run in a fresh synthesis directory and without the result cache. Wall
   time from the first submit to the last row (cluster start-up excluded, printed apart);
   speedup = wall(1) / wall(2).
2. Scheduler overhead per point: in the 1-worker run the points run one after another, so
   ``(wall - sum of the points' own times) / points`` is what Dask adds per point (submit, schedule,
   pickle the row back, the client's bookkeeping); printed against the mean point's own time. And the
   same through 200 points that do nothing, which isolates Dask's fixed cost per point.

The machine's load average is printed before and after: other processes on the same cores lower the
speedup (the two workers then share fewer than two cores).
"""

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from distributed import Client, LocalCluster

from edgelearn import sweep
from hw.blocks import get_block


def noop_point(point, synth_dir):
    """A point that does nothing: the row comes straight back (for Dask's fixed cost per point)."""
    return {"block": point["block"], **point["params"], "device": point["device"], "seed": point["seed"],
            "status": "ok", "reason": "", "seconds": 0.0}


def _timed_sweep(points, workers, point_fn=sweep.run_point):
    """Rows, wall time (first submit to last row) and cluster start-up time of ``points`` on a new
    ``LocalCluster`` of ``workers`` processes, in a fresh synthesis directory, without the result cache."""
    synth = Path(tempfile.mkdtemp(prefix=f"bench_sweep_w{workers}_"))
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    # Workers import the point's modules on first use; warm them so start-up is not in the sweep's wall.
    client.run(lambda: __import__("edgelearn.sweep") and __import__("boards.synth"))
    startup = time.perf_counter() - t0
    timings = {}
    try:
        rows = sweep.run_sweep(points, dhash="bench", scheduler=cluster.scheduler_address, cache_dir=None,
                               synth_dir=synth, point_fn=point_fn, progress=None, timings=timings)
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(synth, ignore_errors=True)
    return rows, timings["wall"], startup


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noop-points", type=int, default=200)
    ap.add_argument("--quick", action="store_true",
                    help="8 LFSR widths instead of the MAC designs (seconds per point, not minutes)")
    args = ap.parse_args(argv)

    if args.quick:
        what = "lfsr width 8,10,...,22, up5k, seed 1"
        points = sweep.expand_points(get_block("lfsr"), {"width": list(range(8, 24, 2))}, ["up5k"], [1])
    else:
        what = "mac_array cols 2,4 x backend lut,ice40 x acc_width 17,24, rows=1, tile_k=0, up5k, seed 1"
        points = sweep.expand_points(get_block("mac_array"),
                                     {"cols": [2, 4], "backend": ["lut", "ice40"], "acc_width": [17, 24],
                                      "rows": [1], "tile_k": [0]}, ["up5k"], [1])
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"({os.cpu_count()} cores)")
    print(f"\n## {len(points)}-point sweep ({what})\n")
    runs = {}
    for workers in (1, 2):
        rows, wall, startup = _timed_sweep(points, workers)
        own = [r["seconds"] for r in rows]
        runs[workers] = (wall, own)
        bad = [r for r in rows if r["status"] not in ("ok", "timing missed")]
        print(f"{workers} worker{'s' if workers > 1 else ' '}: wall {wall:7.1f} s   sum of point times "
              f"{sum(own):7.1f} s   cluster start {startup:4.1f} s"
              + (f"   {len(bad)} failed: {bad[0]['reason']}" if bad else ""))
    (w1, own1), (w2, own2) = runs[1], runs[2]
    print(f"\nspeedup 2 workers vs 1: {w1 / w2:.2f}x   (target >= 1.8x on 2 idle cores)")
    # Independent of how fast the cores were: how many points ran at once on average, i.e. how well
    # the scheduler kept the workers busy (2.00 = both all the time).
    print(f"points running at once on average (sum of point times / wall): 1 worker {sum(own1) / w1:.2f}, "
          f"2 workers {sum(own2) / w2:.2f}")
    per_point = (w1 - sum(own1)) / len(points)
    mean_own = statistics.fmean(own1)
    print(f"overhead per point (1 worker, wall - sum of point times): {1000 * per_point:.0f} ms = "
          f"{100 * per_point / mean_own:.2f} % of the mean point ({mean_own:.1f} s)   (target <= 1 %)")

    noop = sweep.expand_points(get_block("lfsr"), {"width": list(range(3, 3 + args.noop_points // 10))},
                               ["up5k"], list(range(10)))
    _, wall, _ = _timed_sweep(noop, 1, point_fn=noop_point)
    print(f"Dask's fixed cost per point ({len(noop)} no-op points, 1 worker): "
          f"{1000 * wall / len(noop):.1f} ms = {100 * wall / len(noop) / mean_own:.3f} % of the mean "
          "synthesis point")
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
