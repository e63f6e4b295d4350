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
1b. **SPRAM store** (``syn_store="spram"``) against block RAM on the same CSR networks: walk-phase
   cycles and their ratio (the issuer waits when a row's first read meets the write-back's bank).
3. **Resources and Fmax** via :func:`boards.synth.synthesize` on iCE40UP5K (the largest CSR network
   that fits its 30 block RAMs, and the iCEBreaker's network on SPRAM) and ECP5-85F, at nextpnr
   seeds 1, 2, 3.
4. **The iCEBreaker core** (controller + STDP on SPRAM, :func:`hw.control.boards.make_core`) out of
   context at the UP5K target clock, seeds 1, 2, 3.

Run: ``python -m bench.bench_stdp`` (``--no-synth`` skips 2's measurement and 3; ``--spram`` runs only
1b, the SPRAM rows of 3 with their block RAM baseline, and 4; synthesis results are cached under
``build/synth``).
"""

import random
import sys
import time

from boards.synth import DEVICES, ToolError, synthesize
from hw.control.boards import check_board, make_core
from hw.stdp import STDPCore, spec
from sim.stdp.driver import run_core
from sim.stdp.golden import ForwardSTDPNetwork, poisson_events, random_rows

N_BENCH = 64
FANOUTS = (1, 2, 4, 8, 16, 32, 64)


def measure_throughput(encoding, fanout, *, n=N_BENCH, steps=6, drive=16, seed=1, syn_store="bram"):
    rng = random.Random(seed)
    cfg = spec.STDPConfig(n_neurons=n, max_synapses=max(2, n * fanout), w_bits=8, window=16,
                          threshold=(1 << 16) - 1, encoding=encoding, syn_store=syn_store)
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


def spram_throughput_table():
    """The SPRAM store against block RAM on the same networks (walk-phase cycles, ratio)."""
    print(f"\n1b. synapse memory on SPRAM vs block RAM (csr, N={N_BENCH}, same networks; "
          f"Amaranth simulation)")
    print(f"{'fan-out':>7} {'updates':>8} {'bram cyc':>9} {'spram cyc':>10} {'spram/bram':>11} "
          f"{'spram upd/cyc':>14}")
    for f in FANOUTS:
        bram = measure_throughput("csr", f)
        sp = measure_throughput("csr", f, syn_store="spram")
        assert sp["updates"] == bram["updates"]
        print(f"{f:>7} {sp['updates']:>8} {bram['walk_cycles']:>9} {sp['walk_cycles']:>10} "
              f"{sp['walk_cycles'] / bram['walk_cycles']:>11.3f} {sp['updates'] / sp['walk_cycles']:>14.3f}")
    # Rows of every length (both address parities at row starts) and random stalls on both streams.
    rng = random.Random(3)
    n = 32
    rows = random_rows(rng, n, 0.2, 6, max_synapses=256)
    events = poisson_events(rng, 60, range(n), 0.06) + [[]] * 8
    cyc = {}
    for store in spec.SYN_STORES:
        cfg = spec.STDPConfig(n_neurons=n, max_synapses=256, w_bits=6, v_bits=12, window=8, threshold=90,
                              leak_shift=2, refractory=1, syn_store=store)
        cyc[store] = run_core(cfg, rows, events, readback=False, count_cycles=True, stall_in=0.2,
                              stall_out=0.2, seed=7).walk_cycles
    print(f"random sparse N={n}, density 0.2, stalls 0.2: bram {cyc['bram']}, spram {cyc['spram']} "
          f"walk cycles, ratio {cyc['spram'] / cyc['bram']:.3f}")


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
    # The iCEBreaker board's STDP group (hw.control.boards): synapses in two of the four SPRAMs; its
    # block RAM baseline at the same widths (4096 synapses of 16 bits: 16 block RAMs).
    ("csr N=256 S=4096 w=8 bram", "up5k", {"n_neurons": 256, "max_synapses": 4096, "w_bits": 8,
                                           "v_bits": 16, "threshold": 256}),
    ("csr N=256 S=32768 w=8 spram", "up5k", {"n_neurons": 256, "max_synapses": 32768, "w_bits": 8,
                                             "v_bits": 16, "threshold": 256, "syn_store": "spram"}),
    ("csr N=256 S=65536 w=8 spram", "up5k", {"n_neurons": 256, "max_synapses": 65536, "w_bits": 8,
                                             "v_bits": 16, "threshold": 256, "syn_store": "spram"}),
    ("csr N=256 S=16384 w=4", "ecp5-85f", {"n_neurons": 256, "max_synapses": 16384, "w_bits": 4}),
    ("crossbar N=256 w=4", "ecp5-85f", {"n_neurons": 256, "w_bits": 4, "encoding": "crossbar"}),
]


#: nextpnr seeds of the UP5K points (Fmax moves by a few % between seeds); ECP5 points: the first.
SEEDS = (1, 2, 3)


def synth_table(points=SYNTH_POINTS, seeds=SEEDS):
    print(f"\n3. resources and Fmax (boards.synth, out of context; v_bits=12 unless given, window=16; "
          f"Fmax at nextpnr seeds {'/'.join(map(str, seeds))}, mean)")
    print(f"{'design':<28} {'device':<9} {'syn bits':>9} {'LUT4':>6} {'LC':>5} {'FF':>6} {'BRAM':>5} "
          f"{'SPRAM':>5} {'Fmax MHz':>20} {'mean':>6} {'target':>7}")
    for label, device, params in points:
        params = {"v_bits": 12, "threshold": 64, **params}
        core = STDPCore(**params)
        c = core.cfg
        bits = c.syn_depth * c.syn_bits + (0 if c.encoding == "crossbar" else c.n_neurons * c.row_bits) \
            + (c.bmp_depth * c.bitmap_word if c.encoding == "bitmap" else 0)
        name = "stdp_" + label.replace(" ", "_").replace("=", "")
        try:
            # The core itself, in boards.synth's register wrapper: the same netlist as
            # `edgelearn synth stdp_core` with these parameters (another seed re-runs nextpnr only).
            runs = [synthesize(core, device=device, name=name, seed=seed)
                    for seed in (seeds if device == "up5k" else seeds[:1])]
        except ToolError as e:
            print(f"{label:<28} {device:<9} {bits:>9}  {str(e).splitlines()[0][:100]}")
            continue
        r = runs[0]
        fmaxes = [x.get("fmax_mhz") or 0.0 for x in runs]
        met = "" if all(x.get("timing_met", True) for x in runs) else " (missed)"
        print(f"{label:<28} {device:<9} {bits:>9} {r.get('lut4', 0):>6} {r.get('lc') or '':>5} "
              f"{r.get('ff', 0):>6} {r.get('bram', 0):>5} {r.get('spram', 0):>5} "
              f"{'/'.join(f'{f:.1f}' for f in fmaxes):>20} "
              f"{sum(fmaxes) / len(fmaxes):>6.1f} {DEVICES[device]['target_mhz']:>7}{met}")


def board_core_table(board="icebreaker", seeds=SEEDS):
    """The whole core a board carries (controller + its groups; here the iCEBreaker's STDP on SPRAM),
    out of context at the device's target clock, at several nextpnr seeds."""
    cfg = check_board(board)
    print(f"\n4. the {board} core (controller + groups {', '.join(_groups(cfg))}; STDP {cfg.stdp}), "
          f"boards.synth out of context")
    runs = []
    for seed in seeds:
        r = synthesize(make_core(board), device="up5k", name=f"core_{board}", seed=seed)
        runs.append(r)
        t = r["total"]
        print(f"seed {seed}: LC {r.get('lc')}, LUT4 {t['lut4']}, FF {t['ff']}, BRAM {t['bram']}, "
              f"SPRAM {t['spram']}, DSP {t['dsp']}, Fmax {r['fmax_mhz']} MHz (target {r['target_mhz']})")
    f = [r["fmax_mhz"] for r in runs]
    print(f"Fmax mean {sum(f) / len(f):.1f} MHz over seeds {'/'.join(map(str, seeds))}")


def _groups(cfg):
    return [g for g in ("gemm", "hdqt", "stdp") if getattr(cfg, g)]


def main():
    t0 = time.monotonic()
    if "--spram" in sys.argv:
        spram_throughput_table()
        synth_table([p for p in SYNTH_POINTS if p[2].get("v_bits") == 16])
        board_core_table()
        print(f"[{time.monotonic() - t0:.0f} s]")
        return
    throughput_table()
    spram_throughput_table()
    memory_table()
    print(f"[{time.monotonic() - t0:.0f} s]")
    if "--no-synth" not in sys.argv:
        synth_table()
        board_core_table()
        print(f"[{time.monotonic() - t0:.0f} s]")


if __name__ == "__main__":
    main()
