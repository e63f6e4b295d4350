"""STDP golden model (:mod:`sim.stdp.golden`, :mod:`hw.stdp.spec`): the forward rule against exact
pair STDP, the neuron and synapse updates, the memory formula and the network checks."""

import random

import numpy as np
import pytest

from hw.stdp import spec
from sim.stdp.golden import (
    ForwardSTDPNetwork,
    poisson_events,
    ref_exact_pair_stdp,
    ref_forward_dw,
)


def refractory_trains(rng, n, steps, rate, refractory):
    trains = []
    for _ in range(n):
        t, last = [], -10 ** 9
        for s in range(steps):
            if s - last > refractory and rng.random() < rate:
                t.append(s)
                last = s
        trains.append(t)
    return trains


# ------------------------------------------------------------------ golden-model properties

@pytest.mark.parametrize("T", [2, 5, 16, 33])
def test_forward_rule_is_exact_stdp_when_refractory_covers_window(T):
    rng = random.Random(T)
    cfg = spec.STDPConfig(window=T)
    for refractory in (T - 1, T, T + 3):
        trains = refractory_trains(rng, 12, 1500, 0.08, refractory)
        syn = [(p, q) for p in range(12) for q in range(12) if rng.random() < 0.4]
        exact = ref_exact_pair_stdp(trains, syn, cfg.kp, cfg.km, T)
        fwd = ref_forward_dw(trains, syn, cfg.kp, cfg.km, T, 1500)
        assert np.abs(exact).sum() > 0
        np.testing.assert_array_equal(fwd, exact)


def test_forward_rule_error_grows_as_refractory_shrinks():
    T = 16
    cfg = spec.STDPConfig(window=T)
    errors = []
    for refractory in (T - 1, T // 2, 0):
        rng = random.Random(5)
        trains = refractory_trains(rng, 12, 2000, 0.1, refractory)
        syn = [(p, q) for p in range(12) for q in range(12) if p != q]
        exact = ref_exact_pair_stdp(trains, syn, cfg.kp, cfg.km, T)
        fwd = ref_forward_dw(trains, syn, cfg.kp, cfg.km, T, 2000)
        errors.append(np.abs(fwd - exact).sum() / np.abs(exact).sum())
    assert errors[0] == 0 and 0 < errors[1] < errors[2]


def test_integer_network_equals_exact_stdp_with_forced_spikes():
    """The bit-exact network model (not just the spike-train rule): all neurons driven by input
    events, refractory = T, weights far from saturation -> cumulative change is exact STDP."""
    T, n, steps = 8, 10, 600
    cfg = spec.STDPConfig(n_neurons=n, max_synapses=100, w_bits=16, v_bits=16, window=T,
                          threshold=(1 << 16) - 1, leak_shift=0, refractory=T,
                          kp=spec.exp_kernel(T, 40, 3), km=spec.exp_kernel(T, 45, 3))
    rng = random.Random(2)
    rows = [[(q, 30000) for q in range(n) if q != p and rng.random() < 0.5] for p in range(n)]
    net = ForwardSTDPNetwork(cfg, rows)
    events = poisson_events(rng, steps, range(n), 0.2) + [[]] * T
    trains = [[] for _ in range(n)]
    for t, ev in enumerate(events):
        for i in net.step(ev)[0]:
            trains[i].append(t)
    syn = [(p, q) for p in range(n) for q, _ in rows[p]]
    exact = ref_exact_pair_stdp(trains, syn, cfg.kp, cfg.km, T)
    got = [w - 30000 for row in net.weights() for _, w in row]
    assert np.abs(exact).sum() > 0
    np.testing.assert_array_equal(got, exact)


def test_exp_kernel_and_defaults():
    assert spec.exp_kernel(4, 8, 1.0) == (0, 3, 1, 0)
    cfg = spec.STDPConfig(w_bits=4, window=8)
    assert len(cfg.kp) == 8 and cfg.kp[0] == 0 and max(cfg.kp) <= 15
    assert all(a >= b for a, b in zip(cfg.kp[1:], cfg.kp[2:]))


def test_lif_step_leak_threshold_refractory():
    cfg = spec.STDPConfig(v_bits=8, threshold=200, leak_shift=2, v_reset=5, refractory=2, window=4)
    s = spec.NeuronState(v=100, r=0, tau=4, pend=0, spk=0)
    s, spike, ltp = spec.lif_step(cfg, s, 255, 0)     # 100 - 25 + 255 saturates at 255 -> spike
    assert (spike, ltp, s.v, s.r, s.tau, s.pend) == (1, 0, 5, 2, 4, 1)
    s, spike, ltp = spec.lif_step(cfg, s, 255, 1)     # refractory: input and event discarded
    assert (spike, ltp, s.v, s.r, s.tau) == (0, 0, 5, 1, 1)
    s, spike, ltp = spec.lif_step(cfg, s, 0, 1)
    assert (spike, s.r, s.tau) == (0, 0, 2)
    s, spike, ltp = spec.lif_step(cfg, s, 0, 0)       # 5 - 1 = 4; timer 3
    assert (spike, ltp, s.v, s.tau, s.pend) == (0, 0, 4, 3, 1)
    s, spike, ltp = spec.lif_step(cfg, s, 0, 0)       # timer reaches T: the causal walk is due
    assert (spike, ltp, s.tau, s.pend) == (0, 1, 4, 0)
    s, spike, ltp = spec.lif_step(cfg, s, 0, 1)       # external event forces a spike
    assert (spike, ltp, s.v, s.tau) == (1, 0, 5, 4)


def test_synapse_update_saturates():
    cfg = spec.STDPConfig(w_bits=4, window=4, kp=(0, 9, 5, 2), km=(0, 7, 4, 1))
    assert spec.synapse_update(cfg, 10, 0, 1, 3, 2, 0) == (15, 0)   # 10 + K+[1], saturates at 15
    assert spec.synapse_update(cfg, 3, 1, 0, 1, 1, 0) == (0, 3)     # 3 - K-[1], saturates at 0
    assert spec.synapse_update(cfg, 3, 1, 1, 3, 4, 1) == (5, 3)     # post spiked now: d = 3, K+[3] = 2
    assert spec.synapse_update(cfg, 3, 1, 1, 3, 1, 1) == (0, 3)     # LTP (+2) then LTD (-7) -> 0
    assert spec.synapse_update(cfg, 3, 0, 1, 4, 1, 1) == (3, 0)     # d = T: outside the window
    assert spec.synapse_update(cfg, 3, 1, 0, 1, 4, 0) == (3, 3)     # tau_post = T: no LTD


def test_memory_bits_formula():
    assert spec.memory_bits("crossbar", 256, 0, 4) == 256 * 256 * 4
    assert spec.memory_bits("csr", 256, 1000, 4) == 1000 * 12 + 256 * 2 * 10
    assert spec.memory_bits("bitmap", 256, 1000, 4, 16) == 256 * 256 + 1000 * 4 + 256 * 10
    # The target: the forward table is below the crossbar up to ~30 % density (N=256, 4 bits).
    n = 256
    assert spec.memory_bits("csr", n, int(0.29 * n * n), 4) < spec.memory_bits("crossbar", n, 0, 4)
    assert spec.memory_bits("csr", n, int(0.35 * n * n), 4) > spec.memory_bits("crossbar", n, 0, 4)


def test_bad_networks():
    cfg = spec.STDPConfig(n_neurons=4, max_synapses=4, w_bits=4)
    with pytest.raises(ValueError, match="post index must be an integer from 0 to 3, not 4"):
        spec.build_image(cfg, [[(4, 1)], [], [], []])
    with pytest.raises(ValueError, match="row 2 ends at synapse 5, beyond the synapse memory"):
        spec.build_image(cfg, [[(0, 1), (1, 1)], [(0, 1), (1, 1)], [(3, 1)], []])
    with pytest.raises(ValueError, match="weight must be an integer from 0 to 15, not 16"):
        spec.build_image(cfg, [[(0, 16)], [], [], []])
    with pytest.raises(ValueError, match="row 0 must list distinct posts in ascending order"):
        spec.build_image(cfg, [[(1, 1), (0, 1)], [], [], []])
    with pytest.raises(ValueError, match="rows must be a list of n_neurons=4 rows"):
        ForwardSTDPNetwork(cfg, [[]] * 3)
