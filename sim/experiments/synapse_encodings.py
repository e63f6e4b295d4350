"""Synapse-memory bits and energy per synaptic event: CSR, bitmap, crossbar (``synapse-encodings``).

Schaefer et al. (2020) compare memory organisations by the energy of storing, accessing and updating
synapses. Here, for the three encodings of :mod:`hw.stdp` (layouts in :mod:`hw.stdp.spec`):

* **memory bits**: :func:`hw.stdp.spec.memory_bits` (the layouts' formulas; the RTL's memories have
  exactly these widths and depths);
* **accesses**: counted on the golden model (:class:`sim.stdp.golden.ForwardSTDPNetwork`, bit-exact
  to the RTL), which counts row walks and synapse updates, times the accesses the RTL's walk does
  per walk and per walked synapse (:mod:`hw.stdp.core`): CSR one row-pointer read (2 pointers) per
  walk and one synapse word read + write (post index and weight) per synapse; bitmap one row read
  (1 pointer), every bitmap word of the row, and one weight read + write per set bit; crossbar one
  weight read + write for every one of the N posts (absent synapses are weight-0 synapses that stay
  plastic). Synapse memories only (the post's state and input accumulator are read and written per
  walked synapse in every encoding). The RTL simulation is used as a cross-check, not as the
  counter: its walk phase takes one cycle per walked synapse, and its cycles are printed next to
  the counted synapse accesses for a small network per encoding (walk cycles = synapse accesses
  + a few cycles per row);
* **energy per access**: 10 pJ for a 64-bit read of an 8 KB SRAM, 20 pJ at 32 KB, 100 pJ at 1 MB
  (M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm),
  interpolated log-log in the memory's capacity (extrapolated below 8 KB with the 8-32 KB slope,
  energy ∝ sqrt(capacity)), scaled linearly with the word width, writes as reads. These are ASIC
  SRAM figures, not FPGA block RAM measurements: the ratios between encodings are what to read.

Energy per synaptic event = synapse-memory energy / (row walks x the row's real fan-out): one event
is one existing synapse visited by a presynaptic spike's walk (delivery + LTD) or its delayed
causal (LTP) walk.
"""

import math
import random

import numpy as np

from hw.stdp import spec
from sim.experiments import Result, Table, new_figure, save_figure
from sim.stdp.driver import run_core
from sim.stdp.golden import ForwardSTDPNetwork, poisson_events, random_rows

__all__ = ["run", "access_energy_pj", "count_accesses", "HOROWITZ_64BIT_PJ"]

#: (capacity in bytes, pJ per 64-bit read), Horowitz ISSCC 2014, 45 nm.
HOROWITZ_64BIT_PJ = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))


def access_energy_pj(capacity_bits, width_bits):
    """Energy of one ``width_bits`` access to a memory of ``capacity_bits`` (see the module doc)."""
    cap = max(capacity_bits / 8, 1.0)
    pts = HOROWITZ_64BIT_PJ
    if cap <= pts[1][0]:
        (c0, e0), (c1, e1) = pts[0], pts[1]
    else:
        (c0, e0), (c1, e1) = pts[1], pts[2]
    slope = math.log(e1 / e0) / math.log(c1 / c0)
    e64 = e0 * (cap / c0) ** slope
    return e64 * width_bits / 64


def _config(encoding, n, fanout, w_bits=8):
    T = 16
    return spec.STDPConfig(n_neurons=n, max_synapses=max(1, n * fanout), w_bits=w_bits, v_bits=16, window=T,
                           threshold=(1 << 16) - 1, leak_shift=0, refractory=2, encoding=encoding)


def memories(cfg):
    """``{name: (depth, width)}`` of the synapse memories of ``cfg``'s encoding."""
    mems = {"syn": (cfg.syn_depth, cfg.syn_bits)}
    if cfg.encoding != "crossbar":
        mems["row"] = (cfg.n_neurons, cfg.row_bits)
    if cfg.encoding == "bitmap":
        mems["bmp"] = (cfg.bmp_depth, cfg.bitmap_word)
    return mems


def count_accesses(cfg, walks, updates):
    """``{memory: accesses}`` for ``walks`` row walks touching ``updates`` synapse words in total."""
    acc = {"syn": 2 * updates}                     # read + write of every walked synapse word
    if cfg.encoding != "crossbar":
        acc["row"] = walks
    if cfg.encoding == "bitmap":
        acc["bmp"] = walks * cfg.words_per_row
    return acc


def _simulate(cfg, rows, steps, rate, seed):
    net = ForwardSTDPNetwork(cfg, rows)
    for ev in poisson_events(random.Random(seed), steps, range(cfg.n_neurons), rate):
        net.step(ev)
    return net.walks, net.updates


def measure(encoding, n, fanout, *, steps, rate=0.05, seed=0):
    """One point: memory bits, accesses, energy per synaptic event (pJ)."""
    cfg = _config(encoding, n, fanout)
    rows = random_rows(random.Random(seed), n, None, cfg.w_bits, fanout=fanout)
    walks, updates = _simulate(cfg, rows, steps, rate, seed)
    events = walks * fanout
    acc = count_accesses(cfg, walks, updates)
    mems = memories(cfg)
    energy = sum(acc[name] * access_energy_pj(depth * width, width) for name, (depth, width) in mems.items())
    return {"bits": spec.memory_bits(encoding, n, n * fanout, cfg.w_bits, cfg.bitmap_word),
            "walks": walks, "events": events, "accesses": acc,
            "pj_per_event": energy / events if events else float("nan")}


def rtl_check(n=32, fanout=6, steps=12, seed=3):
    """The RTL (Amaranth simulator) on a small network per encoding: walk cycles vs counted synapse
    accesses, weights and spikes vs the golden model."""
    rows_out = []
    for encoding in spec.ENCODINGS:
        cfg = _config(encoding, n, fanout)
        rows = random_rows(random.Random(seed), n, None, cfg.w_bits, fanout=fanout)
        events = poisson_events(random.Random(seed), steps, range(n), 0.1)
        run = run_core(cfg, rows, events, count_cycles=True)
        net = ForwardSTDPNetwork(cfg, rows)
        spikes = [net.step(ev)[0] for ev in events]
        ok = spikes == run.spikes and net.weights() == run.rows
        rows_out.append([encoding, net.walks, net.updates, run.walk_cycles,
                         f"{(run.walk_cycles - net.updates) / max(net.walks, 1):.1f}", ok])
    return Table(f"RTL cross-check ({n} neurons, fan-out {fanout}, {steps} steps, Amaranth simulator)",
                 ["encoding", "row walks (golden)", "synapse words walked (golden)", "RTL walk cycles",
                  "extra cycles per walk", "rtl==golden"], rows_out)


def run(*, quick=False, seeds=None, plot=None):
    seeds = range(seeds or 1)
    sizes = (64, 256) if quick else (64, 256, 1024)
    densities = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
    steps = 10 if quick else 30
    res = Result("synapse-encodings")
    t = Table(f"synapse memory: bits and energy per synaptic event (pJ; Horowitz 2014 SRAM figures, see "
              f"docs) — 8-bit weights, golden-model access counts, {steps} steps of 5 % Poisson input, "
              f"fixed fan-out per row", ["neurons", "density %", "fan-out"] +
              [f"{e} {k}" for k in ("kbit", "pJ/event") for e in spec.ENCODINGS] + ["lowest energy"])
    points = {}
    for n in sizes:
        for d in densities:
            fanout = max(1, round(d * n))
            if n * fanout > 1 << 16 or (n > 1024):
                continue
            row = [n, f"{100 * d:g}", fanout]
            vals = {}
            for e in spec.ENCODINGS:
                ms = [measure(e, n, fanout, steps=steps, seed=s) for s in seeds]
                vals[e] = (ms[0]["bits"], float(np.mean([m["pj_per_event"] for m in ms])))
                points[e, n, d] = vals[e]
            row += [f"{vals[e][0] / 1000:.1f}" for e in spec.ENCODINGS]
            row += [f"{vals[e][1]:.2f}" for e in spec.ENCODINGS]
            row.append(min(spec.ENCODINGS, key=lambda e: vals[e][1]))
            t.rows.append(row)
    res.tables.append(t)
    res.tables.append(rtl_check())
    figures = ", ".join(f"{c // 1024} KB {e:g} pJ" for c, e in HOROWITZ_64BIT_PJ)
    res.lines.append(f"energy per access: {figures} per 64-bit read (Horowitz, ISSCC 2014, 45 nm), log-log "
                     "interpolated in capacity, linear in word width; the access counts are exact, the pJ an "
                     "ASIC-SRAM estimate.")
    if plot:
        fig, axes = new_figure(2, 4.5, 3.4)
        for i, e in enumerate(spec.ENCODINGS):
            for n, ls in zip(sizes, ("-", "--", ":")):
                ds = [d for d in densities if (e, n, d) in points]
                x = [100 * d for d in ds]
                for j in (0, 1):
                    y = [points[e, n, d][j] / (1000 if j == 0 else 1) for d in ds]
                    axes[0][j].plot(x, y, ls, color=f"C{i}", marker="o", ms=3, label=f"{e}, N={n}")
        for ax, yl in ((axes[0][0], "synapse memory (kbit)"), (axes[0][1], "energy per synaptic event (pJ)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("connection density (%)")
            ax.set_ylabel(yl)
        axes[0][1].legend(fontsize=6)
        res.plot = save_figure(fig, plot)
    return res
