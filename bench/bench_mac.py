"""Benchmark of the mixed-precision MAC array (issue 3): throughput per mode, resources, Fmax, baseline.

Run: ``python -m bench.bench_mac`` (``--no-synth`` for the throughput part only, ``--quick`` for the
small synthesis set).

1. Throughput, measured in Verilator (cocotb, streams always full): MAC/cycle of GEMMs per mode
   (64^3, 32^3 and 16^3, i.e. 16x, 8x and 4x the 4x4 array) against the array's peak
   ``rows * cols * lanes``; the ratio 2-bit : 4-bit : 8-bit.
2. Synthesis + place-and-route via :func:`boards.synth.synthesize` (out of context, I/O registered):
   LUT4, FF, DSP, BRAM and Fmax of the array per backend on iCE40UP5K and ECP5-85F, and of a naive
   int8 array built from plain ``a * b`` MACs (:class:`NaiveInt8Array`, below).
3. Ratios: MAC/cycle per LUT4 and MAC/s (MAC/cycle x Fmax) of the array per mode vs the naive array.

The naive baseline has the same broadcast organisation and register stages but nothing else: one
``acc += a * w`` per PE per cycle with int8 operands, a wrapping accumulator, no streams, no
saturation, no result buffer. It is therefore a lower bound on a real int8 array's cost, which
makes the per-LUT4 ratios conservative. Yosys maps its ``a * b`` to DSP blocks where it can
(``synth_ice40 -dsp``, ``synth_ecp5``), which is what "plain a*b" gets you; the UP5K has 8 DSPs, so
the naive array is synthesized there at 2x4 (8 multipliers) as well.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from boards import synth
from boards.synth import ToolError, synthesize
from boards.toolchain import run_yosys
from hw.mac import MacArray, spec
from sim.mac.golden import gemm_tiles, random_acts, random_weights
from sim.mac.verilator_run import run_tiles_verilator
from sim.runner import build_root

MODES = list(spec.MODES)
UP5K_LC = 5280   # iCE40UP5K logic cells


class NaiveInt8Array(wiring.Component):
    """Baseline: ``rows x cols`` PEs, each ``acc += a * w`` (int8 x int8, ``acc_width`` bits, wrapping).

    Ports are plain vectors: ``act`` (row ``r`` at byte ``r``), ``wgt`` (column ``c`` at byte ``c``),
    ``first`` (the beat starts a tile), ``acc`` (PE (r, c) at ``acc_width * (r * cols + c)``).
    """

    def __init__(self, rows=4, cols=4, acc_width=24):
        self.rows, self.cols, self.acc_width = rows, cols, acc_width
        super().__init__({"act": In(8 * rows), "wgt": In(8 * cols), "first": In(1),
                          "acc": Out(acc_width * rows * cols)})

    def elaborate(self, platform):
        m = Module()
        R, C, W = self.rows, self.cols, self.acc_width
        a = [Signal(signed(8), name=f"a{r}") for r in range(R)]
        w = [Signal(signed(8), name=f"w{c}") for c in range(C)]
        first0, first1 = Signal(), Signal()
        m.d.sync += [x.eq(self.act[8 * r:8 * r + 8]) for r, x in enumerate(a)]
        m.d.sync += [x.eq(self.wgt[8 * c:8 * c + 8]) for c, x in enumerate(w)]
        m.d.sync += [first0.eq(self.first), first1.eq(first0)]
        for r in range(R):
            for c in range(C):
                p = Signal(signed(16), name=f"p{r}_{c}")
                m.d.sync += p.eq(a[r] * w[c])
                acc = Signal(signed(W), name=f"acc{r}_{c}")
                with m.If(first1):
                    m.d.sync += acc.eq(p)
                with m.Else():
                    m.d.sync += acc.eq(acc + p)
                m.d.comb += self.acc[W * (r * C + c):W * (r * C + c + 1)].eq(acc)
        return m


def measure_throughput(rows=4, cols=4):
    """``{(mode, M, N, K): (macs, cycles)}`` of GEMMs through the array in Verilator, plus a mixed run."""
    rng = np.random.default_rng(0)
    jobs, results = [], {}
    for size in (64, 32, 16):
        for mode in MODES:
            x = random_acts(rng, (size, size), unsigned=True)
            w = random_weights(rng, (size, size), mode)
            tiles = gemm_tiles(x, w, mode, rows=rows, cols=cols, act_unsigned=True)
            jobs.append(((mode, size), tiles, size ** 3))
    for key, tiles, macs in jobs:
        res = run_tiles_verilator(tiles, rows=rows, cols=cols)
        expect = [[int(v) for v in t["y"][r]] for t in tiles for r in range(rows)]
        if [r["values"] for r in res["rows"]] != expect:
            raise AssertionError(f"GEMM {key} differs from the golden model")
        results[key] = (macs, res["cycles"])
    return results


def print_throughput(results, rows=4, cols=4):
    print(f"\n## Throughput, {rows}x{cols} array, Verilator, streams always full (results == golden)\n")
    print(f"{'GEMM':<22}{'mode':<9}{'cycles':>8}{'MAC/cycle':>11}{'peak':>6}{'util':>8}")
    for (mode, size), (macs, cycles) in results.items():
        peak = rows * cols * spec.lanes(mode)
        print(f"{size}x{size}x{size:<14}{mode:<9}{cycles:>8}{macs / cycles:>11.2f}{peak:>6}"
              f"{100 * macs / cycles / peak:>7.1f}%")
    r = {m: results[(m, 64)][0] / results[(m, 64)][1] for m in MODES}
    print(f"\nthroughput int2 : int4 : int8 (64^3) = {r['int2'] / r['int8']:.2f} : "
          f"{r['int4'] / r['int8']:.2f} : 1   (target 4 : 2 : 1)")
    return r


def synth_rows(quick=False):
    """Synthesis configurations: (label, device, factory, MAC/cycle per mode or None for the naive)."""

    configs = [
        ("mac 4x4 ice40 tile_k=0", "up5k", lambda: MacArray(rows=4, cols=4, tile_k=0, backend="ice40")),
        ("mac 2x4 ice40 tile_k=0", "up5k", lambda: MacArray(rows=2, cols=4, tile_k=0, backend="ice40")),
        ("mac 2x4 lut tile_k=0", "up5k", lambda: MacArray(rows=2, cols=4, tile_k=0)),
        ("naive int8 2x4 (a*b)", "up5k", lambda: NaiveInt8Array(2, 4)),
        ("mac 4x4 lut tile_k=0", "ecp5-85f", lambda: MacArray(rows=4, cols=4, tile_k=0)),
        ("mac 4x4 ecp5 tile_k=0", "ecp5-85f", lambda: MacArray(rows=4, cols=4, tile_k=0, backend="ecp5")),
        ("naive int8 4x4 (a*b)", "ecp5-85f", lambda: NaiveInt8Array(4, 4)),
    ]
    if not quick:
        configs += [
            ("mac 2x4 ice40 tile_k=32", "up5k", lambda: MacArray(rows=2, cols=4, backend="ice40")),
            ("mac 4x4 ice40 tile_k=32", "up5k", lambda: MacArray(rows=4, cols=4, backend="ice40")),
            ("mac 4x4 ecp5 tile_k=32", "ecp5-85f", lambda: MacArray(rows=4, cols=4, backend="ecp5")),
            ("mac 4x4 lut tile_k=32", "ecp5-85f", lambda: MacArray(rows=4, cols=4)),
            ("mac 8x8 lut tile_k=0", "ecp5-85f", lambda: MacArray(rows=8, cols=8, tile_k=0)),
        ]
    rows = []
    for label, device, factory in configs:
        print(f"  synthesizing {label} for {device} ...", file=sys.stderr, flush=True)
        name = re.sub(r"[^A-Za-z0-9_]", "", label.replace(" ", "_"))
        try:
            rows.append((label, device, synthesize(factory(), device=device, name=name), None))
        except ToolError as e:
            # nextpnr fails when the design misses the clock or does not fit; keep what it measured.
            r = _salvage(name, device)
            rows.append((label, device, r, None if r and r.get("fmax_mhz") else str(e).splitlines()[0][:90]))
    return rows


def _salvage(name, device):
    """Resources and Fmax of the newest failed run of ``name`` (timing miss: nextpnr exits non-zero)."""
    dirs = sorted(Path(build_root(), "synth").glob(f"{name}-{device}-*"), key=lambda p: p.stat().st_mtime)
    if not dirs or not (dirs[-1] / "stat.json").exists():
        return None
    work, fam = dirs[-1], synth.DEVICES[device]["family"]
    r = synth.count_cells(synth.module_cells(json.loads((work / "stat.json").read_text()), "top.dut"), fam)
    r["fmax_mhz"] = None
    log = (work / "pnr.log").read_text() if (work / "pnr.log").exists() else ""
    # Only the final timing report counts (placement prints estimates too): nextpnr's closing
    # "ERROR: Max frequency ... (FAIL at ...)" line.
    found = re.findall(r"ERROR: Max frequency for clock .*?: ([0-9.]+) MHz \(FAIL", log)
    if found:
        r["fmax_mhz"] = min(float(f) for f in found)
    r["target_mhz"] = synth.DEVICES[device]["target_mhz"]
    util = re.search(r"(ICESTORM_LC|TRELLIS_COMB):\s+(\d+)/\s*(\d+)", log)
    r["util"] = f"{util.group(2)}/{util.group(3)}" if util else "?"
    return r


def lut_only_counts(quick=False):
    """Yosys-only cell counts with DSP inference off (``synth_ice40`` without ``-dsp``): the naive
    array's ``a * b`` then costs LUTs, the like-for-like comparison with the LUT backend.
    (boards.synth always lets Yosys use DSPs; no place-and-route here, so no Fmax.)"""
    configs = [("mac 2x4 lut tile_k=0", lambda: MacArray(rows=2, cols=4, tile_k=0)),
               ("naive int8 2x4 (a*b)", lambda: NaiveInt8Array(2, 4))]
    if not quick:
        configs += [("mac 4x4 lut tile_k=0", lambda: MacArray(rows=4, cols=4, tile_k=0)),
                    ("naive int8 4x4 (a*b)", lambda: NaiveInt8Array(4, 4))]
    out = []
    for label, factory in configs:
        print(f"  yosys (no DSP) {label} ...", file=sys.stderr, flush=True)
        name = re.sub(r"[^A-Za-z0-9_]", "", label.replace(" ", "_"))
        work = Path(build_root(), "synth", f"nodsp_{name}")
        work.mkdir(parents=True, exist_ok=True)
        (work / "design.il").write_text(rtlil.convert(synth.RegisterWrapper(factory()), name="top"))
        run_yosys("read_rtlil design.il\nsetattr -mod -set keep_hierarchy 1 top.dut\n"
                  "synth_ice40 -top top\ntee -q -o stat.json stat -json\n", log=work / "yosys.log", cwd=work)
        stat = json.loads((work / "stat.json").read_text())
        out.append((label, synth.count_cells(synth.module_cells(stat, "top.dut"), "ice40")))
    return out


def print_lut_only(rows):
    print("\n## iCE40 LUT-only (Yosys synth_ice40 without -dsp; cells of the block, no PnR)\n")
    naive = {}
    for label, r in rows:
        if label.startswith("naive"):
            naive[label.split()[2]] = _macs(label)["int8"] / max(r["lut4"], 1)
    print(f"{'design':<26}{'LUT4':>6}{'FF':>6}{'carry':>7}   "
          "MAC/cycle/kLUT4 per mode (x naive of the same size)")
    for label, r in rows:
        per = {m: v / max(r["lut4"], 1) for m, v in _macs(label).items()}
        dims = label.split()[2] if label.startswith("naive") else label.split()[1]
        ref = naive.get(dims)
        cells = "  ".join(f"{m} {1000 * v:.2f}" + (f" ({v / ref:.2f}x)" if ref else "")
                          for m, v in per.items())
        print(f"{label:<26}{r['lut4']:>6}{r['ff']:>6}{r['carry']:>7}   {cells}")


def _macs(label):
    """MAC/cycle per mode of a synthesized configuration."""
    dims = label.split()[2] if label.startswith("naive") else label.split()[1]
    r, c = (int(v) for v in dims.split("x"))
    if label.startswith("naive"):
        return {"int8": r * c}
    return {m: r * c * spec.lanes(m) for m in MODES}


def print_synth(rows):
    print("\n## Synthesis + PnR (boards.synth, out of context)\n")
    print(f"{'design':<30}{'device':<10}{'LUT4':>6}{'FF':>6}{'DSP':>5}{'BRAM':>5}{'Fmax MHz':>10}"
          f"{'target':>8}   placed (whole wrapped design)")
    for label, device, r, err in rows:
        if r is None:
            print(f"{label:<30}{device:<10}  FAILED: {err}")
            continue
        fmax = r["fmax_mhz"] if r["fmax_mhz"] is not None else float("nan")
        note = f"  ({err})" if err else ""
        if "util" in r:
            note += f"  PnR failed, cells {r['util']}"
        elif r.get("lc"):
            note += f"   {r['lc']}/{UP5K_LC} LC, {UP5K_LC - r['lc']} free"
        elif r.get("slices"):
            note += f"   {r['slices']} slices"
        print(f"{label:<30}{device:<10}{r['lut4']:>6}{r['ff']:>6}{r['dsp']:>5}{r['bram']:>5}{fmax:>10.1f}"
              f"{r['target_mhz']:>8}{note}")
    print("\n## Ratios vs the naive int8 a*b array on the same device (peak MAC/cycle)\n")
    print(f"{'design':<30}{'device':<10}{'mode':<9}{'MAC/cyc':>8}{'MAC/cyc/kLUT4':>15}{'x naive':>9}"
          f"{'GMAC/s':>8}{'x naive':>9}")
    naive = {}
    for label, device, r, _ in rows:
        if r is not None and label.startswith("naive") and device not in naive:
            naive[device] = (_macs(label)["int8"], r)
    for label, device, r, _ in rows:
        if r is None or device not in naive:
            continue
        n_macs, nr = naive[device]
        n_per_lut = n_macs / max(nr["lut4"], 1) * 1000
        n_rate = n_macs * (nr["fmax_mhz"] or 0) / 1000
        for mode, macs in _macs(label).items():
            per_lut = macs / max(r["lut4"], 1) * 1000
            rate = macs * (r["fmax_mhz"] or 0) / 1000
            print(f"{label:<30}{device:<10}{mode:<9}{macs:>8}{per_lut:>15.2f}{per_lut / n_per_lut:>9.2f}"
                  f"{rate:>8.2f}{(rate / n_rate if n_rate else float('nan')):>9.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-synth", action="store_true", help="skip synthesis and place-and-route")
    ap.add_argument("--quick", action="store_true", help="the small synthesis set only")
    args = ap.parse_args(argv)
    print_throughput(measure_throughput())
    if not args.no_synth:
        print_lut_only(lut_only_counts(quick=args.quick))
        print_synth(synth_rows(quick=args.quick))


if __name__ == "__main__":
    main()
