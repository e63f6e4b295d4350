"""The STDP core's experiments through its RTL (:mod:`sim.stdp.experiments`), as :class:`Result` s.

``stdp-dw``: cumulative weight change of the forward-table rule (RTL, Amaranth simulator) against
exact pair STDP over refractory periods, in steps. ``stdp-sma``: the reduced Song-Miller-Abbott
run on the Verilated core (weights become bimodal). The paper-unit error curve is
:mod:`sim.experiments.stdp_error`.
"""

from sim.experiments import Result, Table, new_figure, save_figure
from sim.stdp.experiments import bimodality, dw_sweep, sma_run, text_histogram

__all__ = ["run_dw", "run_sma"]


def run_dw(*, quick=False, seeds=None, plot=None):
    T = 16
    refr = (T, T - 1, 4, 0) if quick else (T, T - 1, T - 2, 12, 8, 4, 2, 0)
    seeds = range(seeds or 1)
    t = Table(f"cumulative dw vs exact pair STDP (RTL in the Amaranth simulator; T={T}, 12 neurons, "
              f"Poisson-driven; relative L1 error)",
              ["seed", "refractory", "sum|dw_exact|", "err vs exact", "err vs exp-exact", "rtl==golden"])
    for s in seeds:
        for r, total, err, err_exp, ok in dw_sweep(refr, T=T, steps=150 if quick else 300, seed=s + 1):
            t.rows.append([s + 1, r, f"{total:.0f}", f"{err:.4f}", f"{err_exp:.4f}", ok])
    res = Result("stdp-dw", [t])
    if plot:
        fig, ax = new_figure()
        ax = ax[0][0]
        ax.plot([r[1] for r in t.rows], [float(r[3]) for r in t.rows], "o")
        ax.set_xlabel("refractory period (steps)")
        ax.set_ylabel("relative L1 error vs exact STDP")
        res.plot = save_figure(fig, plot)
    return res


def run_sma(*, quick=False, seeds=None, plot=None):
    steps = 5000 if quick else 20000
    rows = []
    res = Result("stdp-sma")
    for s in range(seeds or 1):
        r = sma_run(steps=steps, seed=s + 2)
        wmax = r["cfg"].w_max
        rows.append([s + 2, steps, f"{bimodality(r['w0'], wmax):.2f}", f"{bimodality(r['w'], wmax):.2f}",
                     r["out_spikes"], r["golden_ok"]])
        if s == 0:
            res.lines += ["initial weights (seed 2):", text_histogram(r["w0"], wmax),
                          "final weights (seed 2):", text_histogram(r["w"], wmax)]
            first = r
    res.tables.append(Table("competitive Hebbian STDP (Song-Miller-Abbott, reduced): 31 Poisson inputs -> "
                            "1 LIF neuron (RTL, Verilator); bimodality = fraction of weights in the outer "
                            "fifths", ["seed", "steps", "bimodality before", "after", "output spikes",
                                       "rtl==golden"], rows))
    if plot:
        fig, ax = new_figure()
        ax = ax[0][0]
        ax.hist([first["w0"], first["w"]], bins=16, range=(0, first["cfg"].w_max), label=["initial", "final"])
        ax.set_xlabel("weight")
        ax.set_ylabel("synapses")
        ax.legend()
        res.plot = save_figure(fig, plot)
    return res
