"""Forward-table STDP vs exact pair STDP in the paper's units (``edgelearn experiment stdp-error``).

Pedroni et al. (2016) state that the single-timer forward-table rule "closely approximates exact
STDP cumulative weight updates for neuron refractory periods greater than 10 ms, and reduces to
exact STDP for refractory periods greater than the STDP time window". Here, with a 1 ms time step:

* spike trains: ``n`` presynaptic and ``n`` postsynaptic neurons, Poisson at ``rate`` Hz with an
  absolute refractory period of ``refractory`` ms (no spike in the ``refractory`` steps after a
  spike), all-to-all synapses (pre -> post), ``duration`` seconds;
* STDP window T = 50 ms (and 20 ms in the full run), exponential kernels with τ = T / 4 rounded to
  integer tables (:func:`hw.stdp.spec.exp_kernel`, amplitudes 40 / 44);
* the forward-table rule's cumulative weight change on those trains
  (:func:`sim.stdp.golden.ref_forward_dw`: the core's timers, pending flags and walk conditions,
  unbounded weights) against exact all-to-all pair STDP on the *same* trains with the *same*
  tables (:func:`sim.stdp.golden.ref_exact_pair_stdp`), LTP (causal, post after pre) and LTD
  (acausal) separately: each run once with the other kernel set to zero (the two parts are
  independent when no weight saturates).

Reported per (refractory, rate): relative L1 error over synapses, ``sum|dw_fwd - dw_exact| /
sum|dw_exact|``, for LTP and LTD, in %, mean ± standard error over seeds. The golden rule is the
RTL's (bit-exact in ``tests/test_stdp*.py``; ``edgelearn experiment stdp-dw`` runs the RTL itself).
"""

import numpy as np

from hw.stdp import spec
from sim.experiments import Result, Table, mean_se, new_figure, save_figure
from sim.stdp.golden import ref_exact_pair_stdp, ref_forward_dw

__all__ = ["run", "spike_trains", "ltp_ltd_errors", "WINDOW_MS"]

WINDOW_MS = 50


def spike_trains(rng, n, steps, rate_hz, refractory_ms, dt_ms=1.0):
    """``n`` Poisson trains (spike steps) at ``rate_hz`` with an absolute refractory period.

    The rate is the Poisson process's while not refractory (``p = rate * dt`` per step)."""
    p = rate_hz * dt_ms * 1e-3
    trains = []
    draws = rng.random((n, steps)) < p
    for i in range(n):
        t, last = [], -(10 ** 9)
        for s in np.flatnonzero(draws[i]):
            if s - last > refractory_ms:
                t.append(int(s))
                last = s
        trains.append(t)
    return trains


def ltp_ltd_errors(trains, synapses, kp, km, T, steps):
    """Relative L1 errors (LTP, LTD) of the forward rule against exact pair STDP on ``trains``."""
    zero = [0] * T
    out = []
    for a, b in ((kp, zero), (zero, km)):
        fwd = ref_forward_dw(trains, synapses, a, b, T, steps)
        exact = ref_exact_pair_stdp(trains, synapses, a, b, T)
        total = np.abs(exact).sum()
        out.append(float(np.abs(fwd - exact).sum() / total) if total else 0.0)
    return tuple(out)


def _sweep(T, seeds, quick):
    kp, km = spec.exp_kernel(T, 40, T / 4), spec.exp_kernel(T, 44, T / 4)
    base = (0, 2, 5, 10, 20, 30, 40) if quick else (0, 1, 2, 5, 10, 15, 20, 30, 40, 45)
    refractories = sorted({r for r in base if r < T - 1} | {T - 1, T + 10})
    rates = (10, 50) if quick else (5, 10, 20, 50)
    n, duration = (4, 5) if quick else (6, 10)
    steps = duration * 1000
    synapses = [(p, n + q) for p in range(n) for q in range(n)]
    err = {}
    for rate in rates:
        for r in refractories:
            vals = []
            for s in seeds:
                rng = np.random.default_rng([s, rate, r])
                trains = spike_trains(rng, 2 * n, steps, rate, r)
                vals.append(ltp_ltd_errors(trains, synapses, kp, km, T, steps))
            err[rate, r] = np.array(vals) * 100
    t = Table(f"forward-table STDP vs exact pair STDP on the same spike trains: relative L1 error of the "
              f"cumulative dw (%), mean ± se over {len(seeds)} seeds; window {T} ms, τ {T / 4:g} ms, 1 ms "
              f"steps, {n} pre x {n} post neurons all-to-all, {duration} s",
              ["refractory ms"] + [f"{k} {rate} Hz" for rate in rates for k in ("LTP", "LTD")])
    for r in refractories:
        row = [r]
        for rate in rates:
            for j in (0, 1):
                m, se = mean_se(err[rate, r][:, j])
                row.append(f"{m:.2f} ± {se:.2f}")
        t.rows.append(row)
    lines = []
    exact_from = [r for r in refractories if all(err[rate, r].max() == 0 for rate in rates)]
    lines.append(f"window {T} ms: exact (0 % for LTP and LTD at every rate and seed) from refractory "
                 f"{min(exact_from) if exact_from else '-'} ms (exact for refractory >= T - 1 = {T - 1} ms)")
    for rate in rates:
        if (rate, 10) in err:
            r10 = err[rate, 10].mean(0)
            lines.append(f"window {T} ms, {rate} Hz, 10 ms refractory: LTP {r10[0]:.2f} %, "
                         f"LTD {r10[1]:.2f} %")
    return t, lines, (refractories, rates, err)


def run(*, quick=False, seeds=None, plot=None, windows=None):
    """``windows``: STDP windows in ms (τ = window / 4); default 50 (quick) or 20 and 50."""
    seeds = range(seeds or (2 if quick else 5))
    windows = windows or ((WINDOW_MS,) if quick else (20, WINDOW_MS))
    res = Result("stdp-error")
    curves = {}
    for T in windows:
        t, lines, curves[T] = _sweep(T, seeds, quick)
        res.tables.append(t)
        res.lines += lines
    if plot:
        fig, axes = new_figure(2, 4.5, 3.4, nrows=len(windows))
        for i, T in enumerate(windows):
            refractories, rates, err = curves[T]
            for j, name in ((0, "LTP (causal)"), (1, "LTD (acausal)")):
                ax = axes[i][j]
                for rate in rates:
                    ms = [mean_se(err[rate, r][:, j]) for r in refractories]
                    ax.errorbar(refractories, [m for m, _ in ms], yerr=[s for _, s in ms], marker="o", ms=3,
                                capsize=2, label=f"{rate} Hz")
                ax.axvline(T - 1, color="k", ls=":", lw=0.8)
                ax.set_xlabel("refractory period (ms)")
                ax.set_ylabel("relative error of cumulative dw (%)")
                ax.set_title(f"{name}, window {T} ms")
                ax.legend(fontsize=7)
        res.plot = save_figure(fig, plot)
    return res
