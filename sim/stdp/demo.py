"""``edgelearn demo stdp_core``: the forward-table STDP core on short versions of the experiments.

Rows: exactness against all-to-all pair STDP at refractory >= T and the error at a short refractory
period (RTL in the Amaranth simulator), then a reduced Song-Miller-Abbott run on the Verilated core
(31 Poisson inputs onto one LIF neuron, twice the experiment's learning rate): weights move from a
mid-range start towards 0 and the maximum. Each RTL run is checked bit-exactly against the golden
model. About a minute on an idle machine (mostly the Verilator build, cached afterwards).
"""

from sim.stdp.experiments import bimodality, dw_sweep, sma_run

__all__ = ["run"]


def run():
    rows = []
    T = 16
    for r, total, err, _, ok in dw_sweep((T, 2), T=T, steps=120):
        rows.append((f"cumulative dw vs exact STDP, refractory={r}, T={T}",
                     f"relative L1 error {err:.4f} (sum|dw|={total:.0f}; rtl==golden {ok})"))
    # Twice the experiment's learning rate, so that 3000 steps show the split.
    res = sma_run(steps=3000, amplitudes=(40, 42))
    wmax = res["cfg"].w_max
    rows.append(("Song-Miller-Abbott (31 inputs -> 1 LIF, 3000 steps), weights in outer fifths",
                 f"{bimodality(res['w0'], wmax):.2f} -> {bimodality(res['w'], wmax):.2f}"))
    rows.append(("  final weights (sorted)", " ".join(map(str, sorted(res["w"])))))
    rows.append(("  output spikes; rtl==golden", f"{res['out_spikes']}; {res['golden_ok']}"))
    return rows
