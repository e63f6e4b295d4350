"""Golden models of the STDP core (:mod:`hw.stdp`): the integer forward-table rule and exact pair STDP.

The integer rule (stated in full, with the order of events inside a time step, in
:mod:`hw.stdp.spec`):

* synapses: for each presynaptic neuron a row of ``(post, weight)``; unsigned ``w_bits`` weights
  saturate at 0 and ``2**w_bits - 1``;
* each neuron has one timer, steps since its last spike, saturating at the window ``T``;
* on a presynaptic spike (LTD, acausal): for each post in the row with ``0 < tau_post < T``,
  ``w <- sat(w - K-[tau_post])``; then the pre's timer restarts;
* delayed causal update (LTP): when the pre's timer reaches ``T`` (or at its next spike, if earlier)
  the row is walked again; for each post that spiked after that pre spike (at ``d = 1 .. T-1``
  steps after it), ``w <- sat(w + K+[d])``;
* neurons: LIF with leak by shift, threshold, reset, refractory period; a spike's weights reach the
  posts' membranes in the next step;
* with refractory ``>= T`` the cumulative weight change equals exact all-to-all pair STDP
  (:func:`ref_exact_pair_stdp`) as long as no weight saturates.

:class:`ForwardSTDPNetwork` is the bit-exact model of the RTL; :func:`ref_exact_pair_stdp` is the float
reference; :func:`ref_forward_dw` runs the forward rule on given spike trains with unbounded weights
(for the cumulative-Delta-w comparison).
"""

import numpy as np

from hw.stdp import spec

__all__ = ["ForwardSTDPNetwork", "ref_exact_pair_stdp", "ref_forward_dw", "random_rows", "poisson_events"]


class ForwardSTDPNetwork:
    """Integer forward-table STDP network, step by step, exactly as the RTL computes it.

    Parameters
    ----------
    cfg : hw.stdp.spec.STDPConfig
    rows : list of list of (int, int)
        Network rows ``rows[p] = [(post, weight), ...]`` (posts ascending). For the crossbar
        encoding every pair becomes a synapse (absent ones with weight 0).
    """

    def __init__(self, cfg, rows):
        self.cfg = cfg
        self.rows = [list(r) for r in spec.effective_rows(cfg, rows)]
        spec.build_image(cfg, rows)  # same ValueErrors as loading the core
        self.state = [spec.reset_state(cfg)] * cfg.n_neurons
        self.acc = [0] * cfg.n_neurons
        self.t = 0
        self.walks = 0
        self.updates = 0

    def step(self, events=()):
        """Run one time step with input events ``events`` (neuron indices); return (spikes, bad).

        ``spikes`` is the ascending list of neurons that spiked; ``bad`` counts events naming a
        neuron outside the network (dropped; the RTL raises its ``bad_event`` flag).
        """
        cfg = self.cfg
        n = cfg.n_neurons
        ext = [0] * n
        bad = 0
        for e in events:
            if 0 <= e < n:
                ext[e] = 1
            else:
                bad += 1
        walks, spikes = [], []
        for i in range(n):
            s, spike, ltp = spec.lif_step(cfg, self.state[i], self.acc[i], ext[i])
            self.state[i] = s
            self.acc[i] = 0
            if spike:
                spikes.append(i)
            if spike or ltp:
                walks.append((i, spike, ltp, s.tau))
        for p, spike, ltp, tau_pre in walks:
            self.walks += 1
            row = self.rows[p]
            for k, (q, w) in enumerate(row):
                sq = self.state[q]
                w_new, delivered = spec.synapse_update(cfg, w, spike, ltp, tau_pre, sq.tau, sq.spk)
                row[k] = (q, w_new)
                self.acc[q] = min(self.acc[q] + delivered, cfg.v_max)
                self.updates += 1
        self.t += 1
        return spikes, bad

    def weights(self):
        """Current rows (effective synapses, in load order)."""
        return [list(r) for r in self.rows]


def ref_exact_pair_stdp(spike_trains, synapses, kp, km, T):
    """Exact all-to-all pair STDP: the cumulative weight change of each synapse (float).

    Parameters
    ----------
    spike_trains : sequence of sequence of int
        Spike steps of each neuron.
    synapses : sequence of (int, int)
        ``(pre, post)`` pairs.
    kp, km : sequence of float or callable
        Kernels by time difference ``d`` (``1 .. T-1``): tables or functions of ``d``.
    T : int
        Window: pairs with ``1 <= |d| <= T-1`` count.

    Returns
    -------
    numpy.ndarray
        ``sum K+[t_post - t_pre] - sum K-[t_pre - t_post]`` over all spike pairs of each synapse.
    """
    fp = kp if callable(kp) else (lambda d: float(kp[d]))
    fm = km if callable(km) else (lambda d: float(km[d]))
    trains = [np.asarray(sorted(t), dtype=np.int64) for t in spike_trains]
    out = np.zeros(len(synapses))
    for i, (p, q) in enumerate(synapses):
        tp, tq = trains[p], trains[q]
        if not len(tp) or not len(tq):
            continue
        d = (tq[None, :] - tp[:, None]).ravel()
        d = d[(np.abs(d) >= 1) & (np.abs(d) <= T - 1)]
        out[i] = sum(fp(int(x)) for x in d[d > 0]) - sum(fm(int(-x)) for x in d[d < 0])
    return out


def ref_forward_dw(spike_trains, synapses, kp, km, T, n_steps):
    """The forward-table rule's cumulative weight change on given spike trains, unbounded weights.

    Uses the same timers, pending flags and walk conditions as :func:`hw.stdp.spec.lif_step` /
    :func:`hw.stdp.spec.synapse_update`, but takes the spikes as given (no LIF) and does not
    saturate, so it isolates the single-timer approximation from saturation. It runs ``T`` extra
    silent steps after ``n_steps`` so that every pending causal walk is done (the flush a
    comparison with exact STDP needs).
    """
    n = len(spike_trains)
    spiking = [set() for _ in range(n_steps + T)]
    for i, t in enumerate(spike_trains):
        for s in t:
            spiking[s].add(i)
    rows = [[] for _ in range(n)]
    for k, (p, q) in enumerate(synapses):
        rows[p].append((q, k))
    dw = np.zeros(len(synapses))
    tau = [T] * n
    spk = [0] * n
    pend = [0] * n
    for t in range(n_steps + T):
        walks = []
        for i in range(n):
            tau[i] = 1 if spk[i] else min(tau[i] + 1, T)
            spike = int(i in spiking[t])
            ltp = int(bool(pend[i]) and (spike == 1 or tau[i] == T))
            pend[i] = int(spike == 1 or (bool(pend[i]) and not ltp))
            spk[i] = spike
            if spike or ltp:
                walks.append((i, spike, ltp, tau[i]))
        for p, spike, ltp, tau_pre in walks:
            for q, k in rows[p]:
                if ltp:
                    d = tau_pre - (0 if spk[q] else tau[q])
                    if 1 <= d <= T - 1:
                        dw[k] += kp[d]
                if spike and tau[q] < T:
                    dw[k] -= km[tau[q]]
    return dw


def random_rows(rng, n, density, w_bits, *, max_synapses=None, fanout=None):
    """A random sparse network: each pair connected with probability ``density`` (or exactly
    ``fanout`` random posts per row), random weights."""
    rows = []
    for _ in range(n):
        if fanout is not None:
            posts = sorted(rng.sample(range(n), fanout))
        else:
            posts = [q for q in range(n) if rng.random() < density]
        rows.append([(q, rng.randrange(1 << w_bits)) for q in posts])
    if max_synapses is not None:
        total = 0
        for p, row in enumerate(rows):
            room = max(0, max_synapses - total)
            rows[p] = row[:room]
            total += len(rows[p])
    return rows


def poisson_events(rng, n_steps, neurons, rate):
    """Per step, the neurons of ``neurons`` that receive an input event (Bernoulli ``rate`` each)."""
    return [[i for i in neurons if rng.random() < rate] for _ in range(n_steps)]
