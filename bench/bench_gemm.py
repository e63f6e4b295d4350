"""Benchmark of the GEMM engine (issue 18, deliverable 2): how busy compressed weights keep the
systolic array, as a function of the batch.

Run: ``python -m bench.bench_gemm`` (``--no-8x16``: skip the slow 8 x 16 validation runs).

Assumptions (stated in the output): the array at 125 MHz (the issue's target clock), the Huffman
decoder (``contexts=2``, L = 16: the C-slow lanes, 101.9 MHz on the ECP5-85F, ``docs/huffman.md``)
in its own 100 MHz domain behind an ``AsyncFIFO``; 4 hardware lanes (8 format lanes).

1. Decode rate per lane, measured: the decoder alone in Amaranth's simulator on the first four
   weight tiles (16 output channels x K = 512 each: one block of 8192 int8 symbols, or 4096 int4
   pair bytes) of a 512 x 512 Gaussian weight matrix quantized per channel (int8, int4), checked
   against the golden decoder; bits per weight of the coded tiles.
2. The engine's cycle model (:mod:`sim.gemm.model`) against the engine simulated cycle by cycle
   (two clocks, behavioural multipliers, results equal to numpy) at 2 x 4, 4 x 8 and 8 x 16,
   several batches, lanes and precisions, each model fed with the lane rate measured on its own
   job's blocks.
3. The model on the 8 x 16 array (peak 128 int8 / 256 int4 MAC/cycle), 512 x 512 layer: MAC/cycle
   and busy fraction against the batch M, the smallest batch with >= 90 % busy, GEMV (M = 1), and
   the same for 1 and 2 lanes. Baseline in the same script: no weight-tile reuse (every row tile
   decodes its weights again), whose rate is the GEMV rate at any batch.
4. The ULX3S's GEMM group (the board's engine, ``hw/control/boards.py``; ``--no-board`` skips it):
   its decoder's lane rate measured as in 1 (``contexts=1``, the array's clock), the model's
   MAC/cycle on the 512 x 512 layer at the job's batch per precision (int8, int4, int2) and, with
   ``--board-sim``, the ``gemm`` job run on the board's core in Verilator (measured; several
   minutes). Against, in the same table: the device's limit (156 MULT18X18D x the clock, x2 at
   int4: the issue's) and the peak of the 4 x 4 array the board carried before (16 MULT18X18D);
   MAC/s at the build's clock and at its Fmax; the int2 : int4 : int8 ratio; the build's LUT4, FF,
   DSP, BRAM and Fmax read from ``--board-json`` (``edgelearn build --board ulx3s --json``'s
   output; default: the figures in docs/boards.md). No place and route is run here. ``--gemm-array
   RxC`` (e.g. 8x16): the engine at that shape instead of the board's (as ``edgelearn build/run
   --gemm-array``, :func:`boards.groups.config_for_groups`).
5. ``--synth-engine SEEDS`` (only this section): the ULX3S's engine (its shape, DSP sites and
   prefetch queue from the board's ``gemm`` dict; the shape from ``--gemm-array``) placed and
   routed out of context on the ECP5-85F at 125 MHz, once per nextpnr seed, with router2 as the
   board build (:func:`bench.bench_mac_systolic.synth_bounded`, Yosys run once and cached); the
   decoder in its own ``dec`` domain, both domains' resets from pins through the board's registered
   reset trees (:class:`EngineWithResetTrees`). Prints the array clock's routed Fmax and its
   critical path (source, sink, logic and routing) from the nextpnr log.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring

from bench.bench_mac_systolic import synth_bounded
from boards.groups import DEVICE_MULTIPLIERS, config_for_groups
from firmware.engine import default_batch, engine_config
from firmware.jobs import run_job
from hw.gemm import GemmEngine
from hw.huffman.decoder import HuffmanDecoder
from hw.lib.reset import add_with_reset_domains
from hw.mac import spec as mac_spec
from sim.gemm.golden import compress_tiles, gemm_job, weight_tiles
from sim.gemm.harness import run_engine
from sim.gemm.model import busy_fraction, engine_cycles
from sim.huffman.golden import table_stream
from sim.huffman.harness import run_decoder
from sim.mac.golden import quantize_weights, random_acts

ARRAY_MHZ, DECODE_MHZ = 125.0, 100.0
RATIO = ARRAY_MHZ / DECODE_MHZ           # array cycles per decode cycle
ROWS, COLS, LANES, CONTEXTS, MAX_LEN = 8, 16, 4, 2, 16
LAYER = 512
BATCHES = [1, 8, 16, 24, 32, 40, 48, 64, 96, 128]


def layer_weights(mode, n=LAYER, k=LAYER, seed=0):
    """A Gaussian ``n x k`` float matrix quantized per output channel (the array's int8/int4)."""
    w = np.random.default_rng(seed).normal(0.0, 1.0, (n, k))
    return quantize_weights(w, mode, per_channel=True)[0]


def measure_lane_rate(mode, tiles=4, *, cols=COLS, lanes=LANES, contexts=CONTEXTS):
    """Symbols per decode cycle per hardware lane of the decoder alone (first output to last) on
    the first ``tiles`` weight tiles of the layer, exactness, and the coded bits per weight
    (blocks + table)."""
    w = layer_weights(mode)
    syms = weight_tiles(w[:tiles * cols], mode, cols)
    dut = HuffmanDecoder(max_len=MAX_LEN, lanes=lanes, raw_bits=0, contexts=contexts, chain=True)
    table, blocks = compress_tiles(syms, format_lanes=lanes * contexts, max_len=MAX_LEN,
                                   max_drift=dut.max_drift)
    n_sym = sum(len(s) for s in syms)
    res = run_decoder(dut, [b for blk in blocks for b in blk], table_stream([table]),
                      expect_beats=n_sym // lanes)
    got = [v for values, *_ in res["beats"] for v in values]
    exact = got == [s for t in syms for s in t]
    bits = sum(16 * len(b.words) for blk in blocks for b in blk) + 16 * len(table)
    weights = n_sym * mac_spec.lanes(mode)
    return {"rate": res["symbols"] / (res["cycles"] * lanes), "exact": exact, "symbols": n_sym,
            "cycles": res["cycles"], "bits_per_weight": bits / weights, "table_words": len(table)}


def validate(rows, cols, lanes, m, k, tiles, mode, seed=1):
    """Simulated engine cycles vs the model, and exactness, for one job."""
    rng = np.random.default_rng(seed)
    dut = GemmEngine(rows=rows, cols=cols, max_k=k, max_batch=-(-m // rows) * rows, lanes=lanes,
                     contexts=CONTEXTS, max_len=MAX_LEN, decode_domain="dec", primitives=False)
    x = random_acts(rng, (m, k))
    w = layer_weights(mode, n=cols * tiles, k=k, seed=seed)
    job = gemm_job(x, w, [mode] * tiles, rows=rows, cols=cols, format_lanes=lanes * CONTEXTS,
                   max_len=MAX_LEN, row_tile_bits=dut.row_tile_bits, group_bits=dut.group_bits,
                   max_drift=dut.max_drift)
    print(f"  simulating {rows}x{cols} engine, {m}x{k}x{cols * tiles} {mode}, {lanes} lanes ...",
          file=sys.stderr, flush=True)
    res = run_engine(dut, job, period=1e-6 / ARRAY_MHZ, decode_period=1e-6 / DECODE_MHZ)
    dec = HuffmanDecoder(max_len=MAX_LEN, lanes=lanes, raw_bits=0, contexts=CONTEXTS, chain=True)
    n_sym = cols * k // mac_spec.lanes(mode) * tiles
    d = run_decoder(dec, [b for blk in job["blocks"] for b in blk], job["table"], expect_beats=n_sym // lanes)
    rate = d["symbols"] / (d["cycles"] * lanes)
    row_tiles = -(-m // rows)
    model = engine_cycles([k // mac_spec.lanes(mode)] * tiles, row_tiles, rows=rows, cols=cols,
                          rate=lanes * rate / RATIO, table_words=len(job["table"]), clock_ratio=RATIO,
                          act_words=row_tiles * k // 4)
    return {"sim": res["cycles"], "model": model, "rate": rate,
            "exact": res["finished"] and res["rows"] == job["rows"] and res["errors"] == 0}


def no_reuse(m, mode_lanes, rate):
    """Baseline MAC/cycle without weight-tile reuse: every beat needs ``cols`` freshly decoded
    symbols, so beats/cycle = min(1, rate / cols), each with the row tile's useful rows."""
    row_tiles = -(-m // ROWS)
    return min(1.0, rate / COLS) * (m / row_tiles) * COLS * mode_lanes


#: The ULX3S board build with the GEMM engine, used when ``--board-json`` is not given: the board's
#: default build (8 x 16 array, every group, static placer), three clocks, the engine's at the
#: config's 95 / 65 MHz, seed 1, at 1492d8e (the slower of the two seeds measured; docs/boards.md
#: "The ULX3S build"). The config's clocks are those both seeds carry with the margin.
ULX3S_BUILD = {"lut4": 39251, "ff": 49843, "dsp": 145, "bram": 165, "clock_mhz": 25.0, "fmax_mhz": 46.75,
               "fmax_by_domain": {"gemm": 99.96, "dec": 72.46},
               "source": "docs/boards.md, the full board at 1492d8e, seed 1, engine clocks 95 / 65 MHz "
                         "(edgelearn build --board ulx3s --json; --board-json for the board's own)"}
DEVICE_MULTS = DEVICE_MULTIPLIERS["LFE5U-85F"]          # MULT18X18D of the ECP5-85F
BASELINE_PES = 16           # the 4 x 4 array the ULX3S carried before the engine (16 MULT18X18D)
BOARD_MODES = ("int8", "int4", "int2")


def domain_fmax(build, domain):
    """Routed Fmax (MHz) of clock domain ``domain`` in a board build's JSON: the build's own
    ``fmax_by_domain`` (its PLL domains, :func:`boards.build.domain_fmax`), else ``fmax_by_clock``
    keyed by nextpnr's clock net (``$glbnet$clk`` for ``sync``, ``$glbnet$<domain>_clk``
    otherwise); the build's one ``fmax_mhz`` for a build with neither."""
    if (build.get("fmax_by_domain") or {}).get(domain) is not None:
        return build["fmax_by_domain"][domain]
    net = "$glbnet$clk" if domain == "sync" else f"$glbnet${domain}_clk"
    return build.get("fmax_by_clock", {}).get(net, {}).get("fmax_mhz", build["fmax_mhz"])


def usable_array_fmax(build, array_domain, decode_domain, ratio):
    """The array clock at which the build's timing holds in both engine domains with the board's
    clock ratio kept (array : decoder = ``ratio``, the ratio the MAC/cycle were measured at): the
    array's routed Fmax, or the decoder's times ``ratio`` if that is lower."""
    return min(domain_fmax(build, array_domain), domain_fmax(build, decode_domain) * ratio)


def board_section(build, *, batch, sim, gemm_array=None):
    """Section 4: the ULX3S's GEMM group (its engine at ``gemm_array``, default the board's shape)
    against the device limit and the 4 x 4 array."""
    board = config_for_groups("ulx3s", gemm_array=gemm_array)
    cfg = engine_config(board.gemm)
    rows, cols, lanes, contexts = cfg["rows"], cfg["cols"], cfg["lanes"], cfg["contexts"]
    # The array's clock (its own domain where the board has one) and the decoder's: the build's
    # (``clocks_mhz`` of its JSON: a build with ``--clock`` runs at other clocks than the
    # config's), else the board config's.
    built = build.get("clocks_mhz") or {}
    clk = (built.get(cfg["array_domain"])
           or board.clocks.get(cfg["array_domain"], build["clock_mhz"] * 1e6) / 1e6)
    dec_mhz = built.get(cfg["decode_domain"]) or board.clocks.get(cfg["decode_domain"], clk * 1e6) / 1e6
    ratio = clk / dec_mhz
    fmax = usable_array_fmax(build, cfg["array_domain"], cfg["decode_domain"], ratio)
    if batch is None:       # the gemm job's default at these clocks
        batch = default_batch(cfg, clk * 1e6, dec_mhz * 1e6, LAYER)
    print(f"\n## 4. The ULX3S's GEMM group: {rows}x{cols} array at {clk:g} MHz, {lanes} decoder lanes "
          f"(contexts={contexts}, {dec_mhz:g} MHz), {LAYER}x{LAYER} layer, batch {batch}\n")
    print(f"Board build ({build['source']}): {build['lut4']} LUT4, {build['ff']} FF, "
          f"{build['dsp']} / {DEVICE_MULTS} MULT18X18D, {build['bram']} DP16KD; clock {clk:g} MHz, "
          f"array clock usable at {fmax:g} MHz (routed Fmax: array domain "
          f"{domain_fmax(build, cfg['array_domain']):g}, decoder domain "
          f"{domain_fmax(build, cfg['decode_domain']):g} MHz at the clock ratio {ratio:g}).\n")
    measured = {}
    if sim:
        # The simulated core runs at the build's engine clocks (edgelearn run --clock).
        clocks = {d: round(mhz * 1e6) for d, mhz in built.items()} or None
        out = dict(run_job("gemm", board="ulx3s", sim=True, gemm_array=gemm_array, size=LAYER, batch=batch,
                           precisions=BOARD_MODES, clocks=clocks))
        for mode in BOARD_MODES:
            measured[mode] = float(out[f"{mode} MAC/cycle"].split()[0])
            print(f"  {mode}: {out[f'{mode} result']}; {out[f'{mode} MAC/cycle']}")
        print()
    print(f"{'mode':<6}{'sym/c/lane':>11}{'peak':>6}{'model':>8}{'measured':>10}{'busy':>7}"
          f"{f'G MAC/s @{clk:g}':>14}{f'@Fmax {fmax:g}':>13}{'device limit':>14}{'of limit':>10}"
          f"{'4x4 peak':>10}{'x 4x4':>7}")
    per_mode = {}
    for mode in BOARD_MODES:
        r = measure_lane_rate(mode, tiles=4, cols=cols, lanes=lanes, contexts=contexts)
        ml = mac_spec.lanes(mode)
        model, _ = busy_fraction(batch, LAYER, LAYER, ml, rows=rows, cols=cols,
                                 rate=lanes * r["rate"] / ratio, table_words=r["table_words"],
                                 clock_ratio=ratio)
        mac = measured.get(mode, model)
        per_mode[mode] = mac
        peak = rows * cols * ml
        # The device limit: every multiplier at the clock, two products each at int4 (and
        # none stated for int2: shown against the int4 limit).
        limit = DEVICE_MULTS * min(ml, 2) * clk / 1e3
        base = BASELINE_PES * ml * clk / 1e3
        meas = f"{measured[mode]:.2f}" if mode in measured else "-"
        print(f"{mode:<6}{r['rate']:>11.3f}{peak:>6}{model:>8.2f}{meas:>10}{100 * mac / peak:>6.1f}%"
              f"{mac * clk / 1e3:>14.3f}{mac * fmax / 1e3:>13.3f}{limit:>14.2f}"
              f"{100 * mac * clk / 1e3 / limit:>9.1f}%"
              f"{base:>10.2f}{mac * clk / 1e3 / base:>7.2f}")
    src = "measured" if measured else "model"
    print(f"\nint2 : int4 : int8 throughput ({src}) = "
          f"{per_mode['int2'] / per_mode['int8']:.2f} : {per_mode['int4'] / per_mode['int8']:.2f} : 1 "
          f"(the array's lanes: 4 : 2 : 1)")
    print(f"4x4 peak: {BASELINE_PES} PEs x the mode's products x {clk:g} MHz (its peak, not a measured "
          f"rate). Device limit: {DEVICE_MULTS} MULT18X18D x {clk:g} MHz, x2 at int4 and int2.")


#: The array's clock in the out-of-context netlist (the wrapper's ``clk`` pin; ``dec_clk`` is the decoder's).
_ARRAY_CLOCK = "$glbnet$clk$TRELLIS_IO_IN"


def critical_path(log_text, clock=_ARRAY_CLOCK):
    """``(fmax MHz, [path lines])`` of ``clock`` from a nextpnr log: the last (routed) Fmax line and
    the last critical path report of that clock (the report's lines, ``Info:`` stripped)."""
    fmax = re.findall(rf"Max frequency for clock +'{re.escape(clock)}': ([0-9.]+) MHz", log_text)
    head = rf"Critical path report for clock '{re.escape(clock)}'[^\n]*\n"
    reports = re.findall(head + r"((?:Info: .*\n)*?Info: [0-9.]+ ns logic, [0-9.]+ ns routing)", log_text)
    lines = [ln[6:].rstrip() for ln in reports[-1].splitlines()] if reports else []
    return (float(fmax[-1]) if fmax else None), lines


class EngineWithResetTrees(wiring.Component):
    """:class:`~hw.gemm.GemmEngine` (its parameters) with the reset trees the board gives it
    (:func:`hw.lib.reset.add_with_reset_domains` over ``sync`` and ``dec``, as
    :class:`hw.gemm.crossing.EngineCrossing` does for the array and decoder domains, the same
    parts: depth 2 from the engine is the crossing's depth 3 from its own module): out of context,
    its domains' resets then reach its parts as in the board build, not from a pin to every
    flip-flop. The same ports as the engine."""

    def __init__(self, **params):
        self._engine = GemmEngine(**params)
        super().__init__(self._engine.signature)

    def elaborate(self, platform):
        m = Module()
        add_with_reset_domains(m, "engine", self._engine, domain=("sync", "dec"), depth=2,
                               platform=platform)
        wiring.connect(m, wiring.flipped(self), self._engine)
        return m


def synth_engine(seeds, timeout=3000, gemm_array=None):
    """Section 5: the ULX3S's engine (at ``gemm_array``, default the board's shape) placed and routed
    out of context, one run per seed."""
    cfg = engine_config(config_for_groups("ulx3s", gemm_array=gemm_array).gemm)
    params = {k: cfg[k] for k in ("rows", "cols", "max_k", "max_batch", "lanes", "contexts", "max_len",
                                  "dsp_layout", "prefetch")}
    params.update(decode_domain="dec", primitives=True)
    factory = "__import__('bench.bench_gemm', fromlist=['EngineWithResetTrees']).EngineWithResetTrees(" + \
        ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")"
    print("## 5. The ULX3S's engine out of context, ECP5-85F, 125 MHz, router2: "
          + " ".join(f"{k}={v}" for k, v in params.items()) + "\n")
    for seed in seeds:
        r = synth_bounded(factory, "gemm_engine_ulx3s", seed, timeout, router="router2")
        if "error" in r:
            print(f"seed {seed}: {r['error']}")
            continue
        fmax, path = critical_path((Path(r["dir"]) / "pnr.log").read_text(errors="replace"))
        print(f"seed {seed}: array clock {fmax} MHz routed (target 125); LUT4 {r['lut4']}, FF {r['ff']}, "
              f"DSP {r['dsp']}, BRAM {r['bram']}; {r['seconds']} s; {r['dir']}")
        for ln in path:
            print("    " + ln)
        print()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-8x16", action="store_true",
                    help="skip the 8 x 16 validation runs (about 10 minutes)")
    ap.add_argument("--only-board", action="store_true", help="run section 4 only")
    ap.add_argument("--no-board", action="store_true", help="skip section 4 (the ULX3S's GEMM group)")
    ap.add_argument("--board-sim", action="store_true",
                    help="section 4: run the gemm job on the ULX3S core in Verilator (several minutes)")
    ap.add_argument("--board-json", default=None, metavar="FILE",
                    help="section 4: the board build's resources (edgelearn build --board ulx3s --json)")
    ap.add_argument("--batch", type=int, default=None,
                    help="section 4: the batch M (default: the gemm job's at the build's clocks, "
                         "firmware.engine.default_batch)")
    ap.add_argument("--synth-engine", default=None, metavar="SEEDS",
                    help="section 5 only: the ULX3S's engine placed and routed at these seeds (1,2,...)")
    ap.add_argument("--gemm-array", default=None, metavar="RxC",
                    help="sections 4 and 5: the engine's array (e.g. 8x16; default: the board's)")
    args = ap.parse_args(argv)
    try:
        config_for_groups("ulx3s", gemm_array=args.gemm_array)
    except ValueError as e:        # one line, exit 2
        ap.error("--" + str(e).replace("gemm_array", "gemm-array", 1))
    if args.synth_engine:
        synth_engine([int(s) for s in args.synth_engine.split(",")], gemm_array=args.gemm_array)
        return
    build = dict(ULX3S_BUILD)
    if args.board_json:
        with open(args.board_json) as f:
            build = {**json.load(f), "source": args.board_json}
    if args.only_board:
        board_section(build, batch=args.batch, sim=args.board_sim, gemm_array=args.gemm_array)
        return

    print(f"# GEMM engine: compressed weights through the {ROWS}x{COLS} systolic array\n")
    print(f"Assumptions: array {ARRAY_MHZ:.0f} MHz; Huffman decoder contexts={CONTEXTS}, L={MAX_LEN}, "
          f"{LANES} hardware lanes ({LANES * CONTEXTS} format lanes), own clock domain at "
          f"{DECODE_MHZ:.0f} MHz (ECP5 Fmax 101.9 MHz), AsyncFIFO between; one weight tile = one block; "
          f"weights Gaussian, quantized per channel.\n")

    print("## 1. Decode rate per lane (decoder alone, Amaranth simulation, 4 tiles of the 512x512 layer)\n")
    print(f"{'mode':<6}{'symbols':>9}{'cycles':>8}{'sym/cycle/lane':>16}{'bits/weight':>13}{'exact':>7}")
    rates, tables = {}, {}
    for mode in ("int8", "int4"):
        r = measure_lane_rate(mode)
        rates[mode], tables[mode] = r["rate"], r["table_words"]
        print(f"{mode:<6}{r['symbols']:>9}{r['cycles']:>8}{r['rate']:>16.3f}{r['bits_per_weight']:>13.3f}"
              f"{str(r['exact']):>7}")

    print("\n## 2. Cycle model vs the engine simulated (two clocks, results == numpy)\n")
    configs = [(2, 4, 2, 2, 64, 4, "int8"), (2, 4, 1, 6, 64, 4, "int4"), (2, 4, 2, 16, 64, 4, "int8"),
               (4, 8, 4, 4, 64, 4, "int8"), (4, 8, 4, 24, 64, 4, "int8"), (4, 8, 2, 12, 128, 3, "int4")]
    if not args.no_8x16:
        configs += [(8, 16, 4, 8, 64, 2, "int8"), (8, 16, 4, 40, 32, 2, "int4"),
                    (8, 16, 4, 1, 512, 2, "int8"), (8, 16, 4, 40, 128, 3, "int8")]
    print(f"{'array':<7}{'lanes':>6}{'M x K x N':>14}{'mode':>6}{'sym/c/lane':>11}{'sim':>7}{'model':>8}"
          f"{'error':>8}{'exact':>7}")
    worst = 0.0
    for rows, cols, lanes, m, k, tiles, mode in configs:
        v = validate(rows, cols, lanes, m, k, tiles, mode)
        err = v["model"] / v["sim"] - 1
        worst = max(worst, abs(err))
        print(f"{rows}x{cols:<5}{lanes:>6}{f'{m}x{k}x{cols * tiles}':>14}{mode:>6}{v['rate']:>11.3f}"
              f"{v['sim']:>7}{v['model']:>8.0f}{100 * err:>7.1f}%{str(v['exact']):>7}")
    print(f"\nworst model error {100 * worst:.1f} %")

    print(f"\n## 3. {LAYER}x{LAYER} layer on the {ROWS}x{COLS} array (model, measured lane rates)\n")
    for mode in ("int8", "int4"):
        lanes_m = mac_spec.lanes(mode)
        peak = ROWS * COLS * lanes_m
        table_words = tables[mode]
        print(f"### {mode} (peak {peak} MAC/cycle = {peak * ARRAY_MHZ / 1e3:.1f} G MAC/s at "
              f"{ARRAY_MHZ:.0f} MHz; lane rate {rates[mode]:.3f} symbols/decode cycle)\n")
        print(f"{'batch M':>8}" + "".join(f"{f'{n} lanes':>16}" for n in (1, 2, LANES))
              + f"{f'no reuse, {LANES} l.':>16}")
        reach = {}
        for m in BATCHES:
            row = f"{m:>8}"
            for n in (1, 2, LANES):
                rate = n * rates[mode] / RATIO
                mac, busy = busy_fraction(m, LAYER, LAYER, lanes_m, rows=ROWS, cols=COLS, rate=rate,
                                          table_words=table_words, clock_ratio=RATIO)
                row += f"{mac:>9.1f} {100 * busy:>5.1f}%"
            row += f"{no_reuse(m, lanes_m, LANES * rates[mode] / RATIO):>16.1f}"
            print(row)
        for n in (1, 2, LANES):
            rate = n * rates[mode] / RATIO
            reach[n] = next((m for m in range(1, 1025) if busy_fraction(
                m, LAYER, LAYER, lanes_m, rows=ROWS, cols=COLS, rate=rate, table_words=table_words,
                clock_ratio=RATIO)[1] >= 0.9), None)
        gemv, gbusy = busy_fraction(1, LAYER, LAYER, lanes_m, rows=ROWS, cols=COLS,
                                    rate=LANES * rates[mode] / RATIO,
                                    table_words=table_words, clock_ratio=RATIO)
        print("\n>= 90 % busy from batch: " + ", ".join(f"{reach[n]} ({n} lanes)" for n in (1, 2, LANES)))
        print(f"GEMV (M = 1), {LANES} lanes: {gemv:.2f} MAC/cycle ({100 * gbusy:.1f} % of peak, "
              f"{gemv * ARRAY_MHZ / 1e3:.2f} G MAC/s)\n")

    if not args.no_board:
        board_section(build, batch=args.batch, sim=args.board_sim, gemm_array=args.gemm_array)


if __name__ == "__main__":
    main()
