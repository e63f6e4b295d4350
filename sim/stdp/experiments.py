"""STDP experiments through the RTL simulation (``python -m sim.stdp.experiments [--quick]``).

1. **Cumulative weight change vs exact STDP over refractory periods** (Pedroni et al., 2016, Fig. 5
   in spirit): a small network whose neurons are all driven by Poisson input events (so the spike
   trains do not depend on the weights), 16-bit weights started mid-range (no saturation). The RTL
   (Amaranth simulator) runs the forward-table rule; the exact all-to-all pair STDP of the spike
   trains the RTL emitted is the reference. Printed: the relative L1 error
   ``sum|dw_rtl - dw_exact| / sum|dw_exact|`` for each refractory period, also against exact STDP
   with the continuous exponential kernels the tables were rounded from. Expected: 0 for
   ``refractory >= T - 1``, growing as the refractory period shrinks.
2. **Competitive Hebbian learning** (Song, Miller & Abbott, 2000, reduced): ``n_in`` Poisson inputs
   onto one LIF neuron, LTD slightly stronger than LTP; the weights start unimodal (uniform in the
   middle of the range) and become bimodal (piled at 0 and at the maximum). Runs on the Verilated
   core (:mod:`sim.stdp.tb_job`); the golden model is run alongside and must agree bit-exactly.
   A text histogram is always printed; a PNG (``build/stdp-sma.png``) is written when matplotlib is
   importable.
"""

import argparse
import math
import random

import numpy as np

from hw.stdp import spec
from sim.runner import build_root
from sim.stdp.driver import run_core
from sim.stdp.golden import ForwardSTDPNetwork, ref_exact_pair_stdp
from sim.stdp.tb_job import run_verilator_job

__all__ = ["dw_sweep", "sma_run", "text_histogram", "bimodality", "main"]


def dw_sweep(refractories, *, T=16, n=12, steps=300, rate=0.12, seed=1):
    """Rows ``(refractory, sum|dw_exact|, rel. error vs exact (tables), vs exact (exp), rtl==golden)``.

    The neurons' potentials are 24 bits with the threshold at the top, beyond any input sum, so only
    the input events make spikes.
    """
    amp_p, amp_m, tau = 40, 44, T / 4
    kp, km = spec.exp_kernel(T, amp_p, tau), spec.exp_kernel(T, amp_m, tau)
    out = []
    for refractory in refractories:
        cfg = spec.STDPConfig(n_neurons=n, max_synapses=n * n, w_bits=16, v_bits=24, window=T, kp=kp, km=km,
                              threshold=(1 << 24) - 1, leak_shift=0, refractory=refractory)
        rng = random.Random(seed)
        w0 = 1 << 15
        rows = [[(q, w0) for q in range(n) if q != p and rng.random() < 0.5] for p in range(n)]
        events = [[i for i in range(n) if rng.random() < rate] for _ in range(steps)] + [[]] * T
        run = run_core(cfg, rows, events)
        net = ForwardSTDPNetwork(cfg, rows)
        golden_ok = [net.step(ev)[0] for ev in events] == run.spikes and net.weights() == run.rows
        trains = [[] for _ in range(n)]
        for t, spikes in enumerate(run.spikes):
            for i in spikes:
                trains[i].append(t)
        syn = [(p, q) for p in range(n) for q, _ in rows[p]]
        dw = np.array([w - w0 for row in run.rows for _, w in row], dtype=float)
        exact = ref_exact_pair_stdp(trains, syn, kp, km, T)
        exact_exp = ref_exact_pair_stdp(trains, syn, lambda d: amp_p * math.exp(-d / tau),
                                        lambda d: amp_m * math.exp(-d / tau), T)
        total = np.abs(exact).sum()
        out.append((refractory, total, np.abs(dw - exact).sum() / total,
                    np.abs(dw - exact_exp).sum() / np.abs(exact_exp).sum(), golden_ok))
    return out


def sma_config(n_in=31, T=24, amplitudes=(20, 21)):
    """8-bit weights, exponential kernels (time constant 6 steps) with LTD 5 % stronger than LTP."""
    a_plus, a_minus = amplitudes
    return spec.STDPConfig(n_neurons=n_in + 1, max_synapses=n_in, w_bits=8, v_bits=16, window=T,
                           kp=spec.exp_kernel(T, a_plus, 6), km=spec.exp_kernel(T, a_minus, 6),
                           threshold=3000, leak_shift=3, refractory=2)


def sma_run(*, n_in=31, steps=20000, rate=0.1, seed=2, amplitudes=(20, 21), engine="verilator"):
    """Song-Miller-Abbott style run; returns a dict with initial / final weights and checks."""
    cfg = sma_config(n_in, amplitudes=amplitudes)
    rng = random.Random(seed)
    rows = [[(n_in, rng.randrange(96, 160))] for _ in range(n_in)] + [[]]
    events = [[i for i in range(n_in) if rng.random() < rate] for _ in range(steps)]
    if engine == "verilator":
        spikes, rows_back = run_verilator_job(cfg, rows, events)
    else:
        run = run_core(cfg, rows, events)
        spikes, rows_back = run.spikes, run.rows
    net = ForwardSTDPNetwork(cfg, rows)
    golden_ok = [net.step(ev)[0] for ev in events] == spikes and net.weights() == rows_back
    return {
        "cfg": cfg, "w0": [r[0][1] for r in rows[:n_in]], "w": [r[0][1] for r in rows_back[:n_in]],
        "out_spikes": sum(n_in in s for s in spikes), "steps": steps, "golden_ok": golden_ok,
    }


def bimodality(weights, w_max):
    """Fraction of weights in the outer fifths of the range (0 for a mid-range start, -> 1 when bimodal)."""
    lo, hi = w_max / 5, w_max * 4 / 5
    return sum(w < lo or w > hi for w in weights) / len(weights)


def text_histogram(weights, w_max, bins=8, width=40):
    counts = [0] * bins
    for w in weights:
        counts[min(bins - 1, w * bins // (w_max + 1))] += 1
    top = max(counts) or 1
    lines = []
    for b, c in enumerate(counts):
        lo, hi = b * (w_max + 1) // bins, (b + 1) * (w_max + 1) // bins - 1
        lines.append(f"  {lo:4d}-{hi:<4d} {'#' * round(width * c / top):<{width}} {c}")
    return "\n".join(lines)


def _plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist([res["w0"], res["w"]], bins=16, range=(0, res["cfg"].w_max), label=["initial", "final"])
    ax.set_xlabel("weight")
    ax.set_ylabel("synapses")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer refractory values and steps")
    args = ap.parse_args(argv)
    T = 16
    refr = (T, T - 1, T - 2, 12, 8, 4, 2, 0) if not args.quick else (T, T - 1, 4, 0)
    print(f"Cumulative dw vs exact pair STDP (RTL, Amaranth sim; T={T}, 12 neurons, Poisson-driven)")
    print(f"  {'refractory':>10} {'sum|dw_exact|':>14} {'err vs exact':>13} {'err vs exp-exact':>17} "
          f"{'rtl==golden':>12}")
    for r, total, err, err_exp, ok in dw_sweep(refr, T=T, steps=150 if args.quick else 300):
        print(f"  {r:>10} {total:>14.0f} {err:>13.4f} {err_exp:>17.4f} {ok!s:>12}")
    steps = 5000 if args.quick else 20000
    print(f"\nCompetitive Hebbian STDP (Song-Miller-Abbott, reduced): 31 Poisson inputs -> 1 LIF neuron, "
          f"{steps} steps (RTL, Verilator)")
    res = sma_run(steps=steps)
    wmax = res["cfg"].w_max
    print("initial weights:\n" + text_histogram(res["w0"], wmax))
    print("final weights:\n" + text_histogram(res["w"], wmax))
    print(f"bimodality (fraction in outer fifths): {bimodality(res['w0'], wmax):.2f} -> "
          f"{bimodality(res['w'], wmax):.2f}; output spikes {res['out_spikes']}; "
          f"rtl==golden {res['golden_ok']}")
    png = _plot(res, build_root() / "stdp-sma.png")
    if png:
        print(f"histogram plot: {png}")


if __name__ == "__main__":
    main()
