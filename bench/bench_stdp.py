"""STDP core: synapse updates/cycle vs fan-out, memory bits per encoding vs density, resources and Fmax.

1. **Throughput** (measured in the Amaranth simulator): networks of 64 neurons with a fixed fan-out
   F, 16 neurons driven per step; ``updates`` is the number of synapse read-modify-writes the golden
   model performs (each walked synapse once per walk), ``walk cycles`` the cycles the core spends in
   its walk phase. Peak is 1 update/cycle. ``step`` counts every cycle of the step (input, the
   ``N``-cycle neuron sweep, walks, end marker). Baseline in the same table: an unpipelined
   read-modify-write engine (3 cycles per synapse plus 2 per row, a model, not measured). For the
   crossbar, ``useful`` counts only the synapses that exist in the sparse network (the crossbar
   walks all N columns).
2. **Memory bits vs density** (formula of :func:`hw.stdp.spec.memory_bits`, N = 256, 4-bit weights),
   with the crossover density of the forward table against the crossbar, and measured block RAM use
   from synthesis.
3. **Resources and Fmax** via :func:`boards.synth.synthesize` on iCE40UP5K (the largest CSR network
   that fits its 30 block RAMs) and ECP5-85F.

Run: ``python -m bench.bench_stdp`` (``--no-synth`` skips 2's measurement and 3; synthesis results are
cached under ``build/synth``).
"""

import random
import sys
import time

from boards.synth import DEVICES, ToolError, synthesize
from hw.stdp import STDPCore, spec
from sim.stdp.driver import run_core
from sim.stdp.golden import ForwardSTDPNetwork, random_rows

N_BENCH = 64
FANOUTS = (1, 2, 4, 8, 16, 32, 64)


def measure_throughput(encoding, fanout, *, n=N_BENCH, steps=6, drive=16, seed=1):
    rng = random.Random(seed)
    cfg = spec.STDPConfig(n_neurons=n, max_synapses=max(1, n * fanout), w_bits=8, window=16,
                          threshold=(1 << 16) - 1, encoding=encoding)
    rows = random_rows(rng, n, 0, 8, fanout=fanout)
    events = [rng.sample(range(n), drive) for _ in range(steps)]
    net = ForwardSTDPNetwork(cfg, rows)
    for ev in events:
        net.step(ev)
    run = run_core(cfg, rows, events, readback=False, count_cycles=True)
    useful = net.walks * fanout
    return {"updates": net.updates, "walks": net.walks, "walk_cycles": run.walk_cycles, "cycles": run.cycles,
            "useful": useful}


def throughput_table():
    print(f"1. synapse updates per cycle vs fan-out (N={N_BENCH}, Amaranth simulation; peak 1.0)")
    print(f"{'encoding':>9} {'fan-out':>7} {'walks':>6} {'updates':>8} {'walk cyc':>9} {'upd/walk-cyc':>13} "
          f"{'upd/step-cyc':>13} {'useful/cyc':>11} {'unpipelined':>12}")
    at16 = None
    for encoding in ("csr", "bitmap", "crossbar"):
        for f in FANOUTS:
            if encoding == "crossbar" and f not in (1, 16, 64):
                continue
            r = measure_throughput(encoding, f)
            per_walk = r["updates"] / r["walk_cycles"]
            base = r["useful"] / (3 * r["useful"] + 2 * r["walks"])
            print(f"{encoding:>9} {f:>7} {r['walks']:>6} {r['updates']:>8} {r['walk_cycles']:>9} "
                  f"{per_walk:>13.3f} {r['updates'] / r['cycles']:>13.3f} "
                  f"{r['useful'] / r['walk_cycles']:>11.3f} {base:>12.3f}")
            if encoding == "csr" and f == 16:
                at16 = per_walk
    print(f"target >= 0.9 updates/cycle at fan-out >= 16 (csr, walk phase): {at16:.3f} "
          f"({'met' if at16 >= 0.9 else 'NOT met'})")


def memory_table(n=256, w=4):
    print(f"\n2. synapse memory bits vs density (N={n}, {w}-bit weights; formula)")
    print(f"{'density':>8} {'synapses':>9} {'csr':>9} {'bitmap':>9} {'crossbar':>9} {'csr/xbar':>9}")
    for d in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.3, 0.35, 0.5):
        s = int(d * n * n)
        b = {e: spec.memory_bits(e, n, s, w) for e in spec.ENCODINGS}
        print(f"{d:>8.2f} {s:>9} {b['csr']:>9} {b['bitmap']:>9} {b['crossbar']:>9} "
              f"{b['csr'] / b['crossbar']:>9.2f}")
    cross = next(s for s in range(1, n * n)
                 if spec.memory_bits("csr", n, s, w) >= spec.memory_bits("crossbar", n, s, w))
    cross_bmp = next(s for s in range(1, n * n)
                     if spec.memory_bits("csr", n, s, w) >= spec.memory_bits("bitmap", n, s, w))
    print(f"forward table (csr) below the crossbar up to density {cross / n / n:.3f} "
          f"(target ~0.30: {'met' if cross / n / n >= 0.28 else 'NOT met'}); below the bitmap up to "
          f"{cross_bmp / n / n:.3f}")


SYNTH_POINTS = [
    # (label, device, params). UP5K: 30 block RAMs of 4 kbit; 7168 CSR synapses (N=256, 4-bit
    # weights) is the largest forward table that fits next to the neuron state (8192 needs 31).
    ("csr N=256 S=4096 w=4", "up5k", {"n_neurons": 256, "max_synapses": 4096, "w_bits": 4}),
    ("csr N=256 S=7168 w=4", "up5k", {"n_neurons": 256, "max_synapses": 7168, "w_bits": 4}),
    ("bitmap N=256 S=4096 w=4", "up5k", {"n_neurons": 256, "max_synapses": 4096, "w_bits": 4,
                                         "encoding": "bitmap"}),
    ("crossbar N=64 w=4", "up5k", {"n_neurons": 64, "w_bits": 4, "encoding": "crossbar"}),
    ("csr N=256 S=16384 w=4", "ecp5-85f", {"n_neurons": 256, "max_synapses": 16384, "w_bits": 4}),
    ("crossbar N=256 w=4", "ecp5-85f", {"n_neurons": 256, "w_bits": 4, "encoding": "crossbar"}),
]


def synth_table(points=SYNTH_POINTS):
    print("\n3. resources and Fmax (boards.synth, out of context; v_bits=12, window=16)")
    print(f"{'design':<26} {'device':<9} {'syn bits':>9} {'LUT4':>6} {'FF':>6} {'BRAM':>5} {'SPRAM':>5} "
          f"{'Fmax MHz':>9} {'target':>7}")
    for label, device, params in points:
        params = {"v_bits": 12, "threshold": 64, **params}
        core = STDPCore(**params)
        c = core.cfg
        bits = c.syn_depth * c.syn_bits + (0 if c.encoding == "crossbar" else c.n_neurons * c.row_bits) \
            + (c.bmp_depth * c.bitmap_word if c.encoding == "bitmap" else 0)
        name = "stdp_" + label.replace(" ", "_").replace("=", "")
        try:
            # The core itself, in boards.synth's register wrapper: the same netlist as
            # `edgelearn synth stdp_core` with these parameters.
            r = synthesize(core, device=device, name=name)
        except ToolError as e:
            print(f"{label:<26} {device:<9} {bits:>9}  {str(e).splitlines()[0][:100]}")
            continue
        fmax = r.get("fmax_mhz")
        met = "" if r.get("timing_met", True) else " (missed)"
        print(f"{label:<26} {device:<9} {bits:>9} {r.get('lut4', 0):>6} {r.get('ff', 0):>6} "
              f"{r.get('bram', 0):>5} {r.get('spram', 0):>5} {fmax if fmax is None else round(fmax, 1):>9} "
              f"{DEVICES[device]['target_mhz']:>7}{met}")


def main():
    t0 = time.monotonic()
    throughput_table()
    memory_table()
    print(f"[{time.monotonic() - t0:.0f} s]")
    if "--no-synth" not in sys.argv:
        synth_table()
        print(f"[{time.monotonic() - t0:.0f} s]")


if __name__ == "__main__":
    main()
