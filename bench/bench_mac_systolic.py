"""Benchmark of the systolic ECP5 MAC array (issue 18): resources, Fmax, MAC/s against the device limit.

Run: ``python -m bench.bench_mac_systolic`` (``--no-synth``: the simulation part only; ``--seeds 1 2 3``;
``--timeout`` seconds per nextpnr run, default 3600; ``--shape 4x8`` or ``8x16``: place and route
only that shape; ``--cells``: only the Yosys cells of both shapes, minutes instead of hours).

1. Throughput, measured in Amaranth's simulator (behavioural multipliers, streams always full,
   results checked against :mod:`sim.mac.golden`): a GEMM per mode through the 8x16 array, its
   cycles against :func:`cycle_model`, MAC/cycle, and the ratio int2 : int4 : int8. The model
   (checked against the simulated cycles here and in ``tests/test_mac_systolic.py``) then gives
   the MAC/cycle of a 512 x 512 x 512 GEMM, too long to simulate here.
2. Out-of-context synthesis and place-and-route of the array on the ECP5-85F
   (:func:`boards.synth.synthesize`, all block ports registered) at nextpnr seeds 1, 2, 3 with
   nextpnr's router2 (router1 rips up the 8x16 array's dense DSP neighbourhoods for hours) and the
   placer options :data:`SYSTOLIC_NEXTPNR`, each run bounded by ``--timeout`` (a run that does not
   finish is reported with nextpnr's last routing line): LUT4, FF, DSP, BRAM, Fmax; and the 4x4
   ``MacArray`` (ecp5 backend) the ULX3S carries today, synthesized the same way, as the baseline.
3. MAC/s = MAC/cycle x Fmax per mode, against the device limit at the same clock (156
   multipliers x clock, x2 for int4, whose products pack two per multiplier) and against the 4x4
   array, at its own out-of-context Fmax and at the 25 MHz the board runs it at today.
"""

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from amaranth.lib import data
from amaranth.sim import Simulator

from boards.synth import yosys_cells
from boards.toolchain import ToolTimeout, run_bounded
from hw.mac import spec
from hw.mac.systolic import SystolicArray, SystolicPair
from sim.mac.amaranth_run import payload_int, run_tiles
from sim.mac.golden import gemm_tiles, random_acts, random_weights
from sim.runner import build_root
from sim.streams import stream_get, stream_put_all

MODES = list(spec.MODES)
ECP5_MULTS = 156           # MULT18X18D in the LFE5U-85F
BOARD_CLOCK_MHZ = 25       # the ULX3S GEMM group's clock today (the oscillator)
ROWS, COLS = 8, 16
#: nextpnr options of the systolic array's ECP5 builds. HeAP's maximum placement density down from
#: its 0.9 default: the pairs' logic crowds the DSP rows. Together with the DSP control pins left
#: unrouted (hw.mac.ecp5_dsp) it gave the 8x16 array a better post-placement estimate (109.5
#: against 96.6 MHz) and fewer overused wires (5972 against 9365 at router2 iteration 8), seed 1,
#: when it was chosen; the 4x8 slice places identically either way. (docs/mac.md gives the
#: current builds with it, not that comparison.)
SYSTOLIC_NEXTPNR = ("--placer-heap-beta", "0.7")


def cycle_model(beats_per_tile, rows, cols):
    """Cycles of a run of back-to-back tiles with full streams: each tile occupies
    ``max(beats, 2 * rows - 1, 2)`` cycles at the input (the drain gap; 2 is the command
    handshake), then the last tile's rows leave ``cols // 2 + 13 + 2 * (rows - 1)`` cycles after
    its last beat, plus the cycle of the first command."""
    gap = max(2 * rows - 1, 2)
    return sum(max(b, gap) for b in beats_per_tile) + cols // 2 + 14 + 2 * (rows - 1)


def measure_throughput(m_dim=16, n_dim=32, k_dim=256):
    """``{mode: (macs, cycles, model_cycles)}`` of an ``m x n x k`` GEMM through the 8x16 array."""


    rng = np.random.default_rng(0)
    out = {}
    for mode in MODES:
        dut = SystolicArray(rows=ROWS, cols=COLS, tile_k=0, primitives=False)
        x = random_acts(rng, (m_dim, k_dim), unsigned=True)
        w = random_weights(rng, (n_dim, k_dim), mode)
        tiles = gemm_tiles(x, w, mode, rows=ROWS, cols=COLS, act_unsigned=True)
        print(f"  simulating {m_dim}x{n_dim}x{k_dim} {mode} ...", file=sys.stderr, flush=True)
        res = run_tiles(dut, tiles, max_cycles=20 * k_dim * len(tiles))
        expect = [[int(v) for v in t["y"][r]] for t in tiles for r in range(ROWS)]
        if [r["values"] for r in res["rows"]] != expect:
            raise AssertionError(f"{mode} GEMM differs from the golden model")
        model = cycle_model([len(t["act"]) for t in tiles], ROWS, COLS)
        out[mode] = (m_dim * n_dim * k_dim, res["cycles"], model)
    return out


def print_throughput(results):
    print(f"\n## Throughput, systolic {ROWS}x{COLS}, Amaranth simulation, streams full (results == golden)\n")
    print(f"{'mode':<9}{'MACs':>9}{'cycles':>8}{'model':>8}{'MAC/cycle':>11}{'peak':>6}{'util':>8}")
    rate = {}
    for mode, (macs, cycles, model) in results.items():
        peak = ROWS * COLS * spec.lanes(mode)
        rate[mode] = macs / cycles
        print(f"{mode:<9}{macs:>9}{cycles:>8}{model:>8}{rate[mode]:>11.1f}{peak:>6}"
              f"{100 * rate[mode] / peak:>7.1f}%")
    print(f"\nthroughput int2 : int4 : int8 = {rate['int2'] / rate['int8']:.2f} : "
          f"{rate['int4'] / rate['int8']:.2f} : 1   (target 4 : 2 : 1; the fill/drain latency is "
          f"amortised over fewer cycles at int2)")
    big = {}
    for mode in MODES:
        beats = spec.beats_for_k(512, mode)
        tiles = (512 // ROWS) * (512 // COLS)
        cycles = cycle_model([beats] * tiles, ROWS, COLS)
        big[mode] = 512 ** 3 / cycles
    print("512x512x512 GEMM (cycle model, streams full): " + ", ".join(
        f"{m} {big[m]:.1f} MAC/cycle ({100 * big[m] / (ROWS * COLS * spec.lanes(m)):.1f} %)" for m in MODES)
          + f"; ratio {big['int2'] / big['int8']:.3f} : {big['int4'] / big['int8']:.3f} : 1")
    return big


def feed_model(batch, lanes, lane_rate, mode="int8", rows=ROWS, cols=COLS, k_dim=512, n_dim=512):
    """Array busy fraction of a ``batch x k_dim x n_dim`` GEMM whose weights come compressed through
    ``lanes`` Huffman lanes of ``lane_rate`` packed bytes per array cycle each.

    Schedule: per column tile (``cols`` output channels) the decoded weight tile (``cols`` bytes per
    beat, ``beats_for_k(k_dim)`` beats) is written to a double-buffered block RAM while the array
    works on the previous one, and is read once per row tile of the batch (``ceil(batch / rows)``
    tiles, each ``beats`` cycles, at least the drain gap). So a column tile takes
    ``max(decode, compute)`` cycles: busy = compute / max(decode, compute) (the fill of the first
    tile and the drain of the last are left out: one tile in 32 at 512 x 512)."""
    beats = spec.beats_for_k(k_dim, mode)
    row_tiles = -(-batch // rows)
    compute = row_tiles * max(beats, 2 * rows - 1)
    decode = cols * beats / (lanes * lane_rate)
    useful = batch * cols * k_dim / (rows * cols * spec.lanes(mode))   # cycles at full use of every PE
    span = max(decode, compute)
    return {"busy": compute / span, "mac_per_cycle": batch * cols * k_dim / span, "pe_use": useful / span}


def measure_throttled(rate, rows=4, cols=8, k_dim=96, m_dim=8, n_dim=16, seed=0):
    """Simulated cycles of an int8 GEMM whose weight beats are offered at ``rate`` beats per cycle
    (a token bucket: the feed of a decoder that delivers ``rate * cols`` bytes per cycle, no
    reuse), against ``beats / rate`` plus the array's latency (:func:`cycle_model`)."""


    rng = np.random.default_rng(seed)
    dut = SystolicArray(rows=rows, cols=cols, tile_k=0, primitives=False)
    x = random_acts(rng, (m_dim, k_dim))
    w = random_weights(rng, (n_dim, k_dim), "int8")
    tiles = gemm_tiles(x, w, "int8", rows=rows, cols=cols)
    n_rows = rows * len(tiles)
    got, cycles = [], [0]

    async def cmds(ctx):
        layout = dut.i_cmd.payload.shape()
        await stream_put_all(ctx, dut.i_cmd, [data.Const(layout, t["cmd"]) for t in tiles])

    async def acts(ctx):
        await stream_put_all(ctx, dut.i_act, [a for t in tiles for a in t["act"]])

    async def wgts(ctx):
        # Beat i is offered from cycle i / rate on (the decoder's output, buffered).
        for i, word in enumerate(v for t in tiles for v in t["wgt"]):
            while cycles[0] < i / rate:
                await ctx.tick()
            ctx.set(dut.i_wgt.payload, word)
            ctx.set(dut.i_wgt.valid, 1)
            await ctx.tick().until(dut.i_wgt.ready)
            ctx.set(dut.i_wgt.valid, 0)

    async def results(ctx):
        for _ in range(n_rows):
            got.append(await stream_get(ctx, dut.o_res))

    async def counter(ctx):
        async for _ in ctx.tick():
            if len(got) < n_rows:
                cycles[0] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(counter, background=True)
    for tb in (cmds, acts, wgts, results):
        sim.add_testbench(tb)
    sim.run()
    values = [spec.unpack_res(payload_int(g), rows=rows, cols=cols, acc_width=dut.acc_width)["values"]
              for g in got]
    if values != [[int(v) for v in t["y"][r]] for t in tiles for r in range(rows)]:
        raise AssertionError("throttled GEMM differs from the golden model")
    beats = sum(len(t["act"]) for t in tiles)
    model = beats / rate + cycle_model([1], rows, cols) - max(2 * rows - 1, 2)
    return beats, cycles[0], model


def print_feed():
    print("\n## Feeding the array from Huffman lanes (model; decoded weight tiles reused across the batch)\n")
    print("Array-side check of the model's premise (simulation, 4x8, int8, weights offered at a fixed rate, "
          "no reuse): cycles = beats / rate + latency")
    for rate in (1.0, 0.5, 0.25):
        beats, cycles, model = measure_throttled(rate)
        print(f"  rate {rate:.2f} beat/cycle: {beats} beats, simulated {cycles} cycles, model {model:.0f}")
    # ECP5-85F Huffman lane (README, bench_huffman): 0.989 symbols/cycle per hardware lane (C = 2,
    # L = 16) at 101.9 MHz, one symbol = one packed byte (int8 weight or int4 pair).
    lane_rate = 0.989 * 101.9 / 125
    print(f"\nlane rate {lane_rate:.3f} packed bytes per 125 MHz cycle (0.989 symbol/cycle at 101.9 MHz); "
          "512 x 512 layer, int8 (int4 pairs: same bytes, twice the MACs)")
    print(f"{'lanes':>6}{'GEMV MAC/cycle int8':>21}{'int4':>7}   batch -> busy")
    for lanes in (2, 4, 8):
        g8 = feed_model(1, lanes, lane_rate)["mac_per_cycle"]
        g4 = feed_model(1, lanes, lane_rate, "int4")["mac_per_cycle"]
        cells = []
        first90 = None
        for batch in range(8, 129, 8):
            busy = feed_model(batch, lanes, lane_rate)["busy"]
            if first90 is None and busy >= 0.9:
                first90 = batch
            if batch in (8, 16, 32, 64):
                cells.append(f"{batch}: {100 * busy:.0f} %")
        print(f"{lanes:>6}{g8:>21.2f}{g4:>7.2f}   " + ", ".join(cells) + f"; >= 90 % from batch {first90}")


def _synth_child(factory, name, seed, router, options):
    """Source of a child process that synthesizes one configuration and prints its result as JSON."""
    root = str(Path(__file__).resolve().parents[1])
    return (f"import sys\nsys.path.insert(0, {root!r})\n"
            f"import json\nfrom boards.synth import synthesize\nfrom hw.mac import MacArray\n"
            f"from hw.mac.systolic import SystolicArray\n"
            f"r = synthesize({factory}, device='ecp5-85f', name={name!r}, seed={seed}, router={router!r},"
            f" nextpnr_options={tuple(options)!r})\n"
            f"print('RESULT ' + json.dumps(r))\n")


def synth_bounded(factory, name, seed, timeout, router=None, options=()):
    """:func:`boards.synth.synthesize` in a child process (:func:`boards.toolchain.run_bounded`: its
    own session, killed with everything it started — Yosys and nextpnr — after ``timeout`` seconds
    in all); returns the result dict or ``{"error": ...}``."""
    source = _synth_child(factory, name, seed, router, options)
    with tempfile.TemporaryFile("w+") as out:
        try:
            run_bounded([sys.executable, "-c", source], cwd=None, out=out, timeout=timeout, name="synthesis",
                        log=None)
        except ToolTimeout:
            return {"error": f"nextpnr not done after {timeout} s; {_router_state(name)}", "name": name}
        out.seek(0)
        text = out.read()
    for line in text.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (text.strip().splitlines() or ["no output"])[-1][:160]}


def _newest_log(name):
    logs = sorted(Path(build_root(), "synth").glob(f"{name}-ecp5-85f-*/pnr.log"),
                  key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def _router_state(name):
    """The last placement/routing progress line of the newest nextpnr log of ``name``."""
    log = _newest_log(name)
    if log is None:
        return "no log"
    lines = [ln for ln in log.read_text(errors="replace").splitlines()
             if re.search(r"overuse|iter|Routing|placement|HeAP", ln)]
    return "last log line: " + (lines[-1].strip() if lines else "(none)")


def router2_overuse(log):
    """``[(iteration, overuse)]`` from router2's lines in a nextpnr log (a path, or a result dict
    whose ``dir`` holds ``pnr.log``)."""
    if isinstance(log, dict):
        log = Path(log["dir"]) / "pnr.log"
    text = Path(log).read_text(errors="replace") if log and Path(log).exists() else ""
    return [(int(i), int(o)) for i, o in re.findall(r"iter=(\d+) .*?overuse=(\d+)", text)]


def format_overuse(trace, every=5):
    """Router2's overuse at iteration 1, every ``every``-th iteration and the last."""
    keep = [(i, o) for i, o in trace if i == 1 or i % every == 0 or (i, o) == trace[-1]]
    return " -> ".join(f"{o} ({i})" for i, o in keep) if keep else "(no router2 iterations)"


def print_cells():
    """Yosys cells of one PE pair, the 4x8 slice and the 8x16 array (no place and route)."""
    print("\n## Yosys cells, ECP5-85F, tile_k = 0, acc_width = 24 (boards.synth.yosys_cells; per pair: "
          "the design's cells / its pairs, edges included)\n")
    print(f"{'design':<22}{'LUT4':>7}{'CCU2C':>7}{'FF':>7}{'DSP':>5}{'LUTRAM':>7}"
          f"{'LUT4/pair':>10}{'CCU2C/pair':>11}{'FF/pair':>8}")
    designs = [("SystolicPair (one)", "systolic_pair", lambda: SystolicPair(acc_width=24, tile_k=0), 1)]
    designs += [(f"SystolicArray {r}x{c}", f"systolic_{r}x{c}",
                 lambda r=r, c=c: SystolicArray(rows=r, cols=c, tile_k=0), r * c // 2)
                for r, c in ((4, 8), (ROWS, COLS))]
    for label, name, make, pairs in designs:
        c = yosys_cells(make(), name=name)
        print(f"{label:<22}{c['lut4']:>7}{c['carry']:>7}{c['ff']:>7}{c['dsp']:>5}"
              f"{c.get('lutram', 0):>7}{c['lut4'] / pairs:>10.1f}{c['carry'] / pairs:>11.1f}"
              f"{c['ff'] / pairs:>8.1f}")


def print_synth(rows, base, seeds):
    print(f"\n## Out-of-context synthesis + PnR, ECP5-85F, target 125 MHz (boards.synth; systolic: "
          f"router2, seeds {seeds})\n")
    print(f"{'design':<28}{'seed':>5}{'LUT4':>7}{'CCU2C':>7}{'FF':>7}{'DSP':>5}{'BRAM':>5}{'LUTRAM':>7}"
          f"{'Fmax MHz':>10}")
    for label, seed, r in rows + [("MacArray 4x4 ecp5 (today)", 1, base)]:
        if "error" in r:
            print(f"{label:<28}{seed:>5}  {r['error']}")
            continue
        print(f"{label:<28}{seed:>5}{r['lut4']:>7}{r['carry']:>7}{r['ff']:>7}{r['dsp']:>5}{r['bram']:>5}"
              f"{r.get('lutram', 0):>7}{r['fmax_mhz']:>10.1f}")
    print("\nrouter2 overuse (wires) by iteration:")
    for label, seed, r in rows:
        trace = router2_overuse(r if "error" not in r else _newest_log(r.get("name", "")))
        print(f"  {label} seed {seed}: {format_overuse(trace)}")


def print_rates(rate_big, rows, base):
    fmaxes = [r["fmax_mhz"] for label, _, r in rows if "error" not in r and f"{ROWS}x{COLS}" in label]
    if not fmaxes:
        print("\nno Fmax measured: MAC/s not computed")
        return
    f = min(fmaxes)
    f_base = base.get("fmax_mhz") or float("nan")
    print(f"\n## MAC/s at the lowest Fmax over the seeds ({f:.1f} MHz), 512^3 GEMM, streams full\n")
    print(f"{'mode':<9}{'MAC/cycle':>10}{'GMAC/s':>8}{'device limit':>14}{'of limit':>10}"
          f"{'4x4 @Fmax':>11}{'x':>7}{'4x4 @25MHz':>12}{'x':>7}")
    for mode in MODES:
        macs = rate_big[mode]
        g = macs * f / 1000
        per_mult = 1 if mode == "int8" else 2
        limit = ECP5_MULTS * per_mult * f / 1000
        b = 16 * spec.lanes(mode)
        g_base, g_board = b * f_base / 1000, b * BOARD_CLOCK_MHZ / 1000
        print(f"{mode:<9}{macs:>10.1f}{g:>8.2f}{limit:>12.2f}  {100 * g / limit:>8.1f}%"
              f"{g_base:>11.2f}{g / g_base:>7.1f}{g_board:>12.2f}{g / g_board:>7.1f}")
    print("device limit: 156 MULT18X18D x clock, x2 for int4/int2/ternary (two products per multiplier);"
          " int2/ternary here exceed one product pair per multiplier by computing lanes 2, 3 in fabric")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-synth", action="store_true", help="skip synthesis and place-and-route")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per synthesis and nextpnr run")
    ap.add_argument("--shape", choices=["both", "4x8", f"{ROWS}x{COLS}"], default="both",
                    help="place and route the 4x8 slice, the full array (at --seeds) or both")
    ap.add_argument("--cells", action="store_true",
                    help="only the Yosys cells of the 4x8 slice and the full array (no nextpnr)")
    args = ap.parse_args(argv)
    if args.cells:
        print_cells()
        return
    rate_big = print_throughput(measure_throughput())
    print_feed()
    if args.no_synth:
        return
    rows = []
    # The 4x8 slice of the same design first (minutes): the pair's own Fmax.
    for seed in (args.seeds if args.shape == "4x8" else [1] if args.shape == "both" else []):
        print(f"  synthesizing systolic 4x8 seed {seed} ...", file=sys.stderr, flush=True)
        r = synth_bounded("SystolicArray(rows=4, cols=8, tile_k=0)", "systolic_4x8", seed, args.timeout,
                          router="router2", options=SYSTOLIC_NEXTPNR)
        rows.append(("SystolicArray 4x8", seed, r))
    for seed in (args.seeds if args.shape != "4x8" else []):
        print(f"  synthesizing systolic {ROWS}x{COLS} seed {seed} ...", file=sys.stderr, flush=True)
        r = synth_bounded(f"SystolicArray(rows={ROWS}, cols={COLS}, tile_k=0)", f"systolic_{ROWS}x{COLS}",
                          seed, args.timeout, router="router2", options=SYSTOLIC_NEXTPNR)
        rows.append((f"SystolicArray {ROWS}x{COLS}", seed, r))
    print("  synthesizing MacArray 4x4 ecp5 ...", file=sys.stderr, flush=True)
    base = synth_bounded("MacArray(rows=4, cols=4, tile_k=0, backend='ecp5')", "mac_4x4_ecp5", 1,
                         args.timeout)
    print_synth(rows, base, args.seeds)
    print_rates(rate_big, rows, base)


if __name__ == "__main__":
    main()
