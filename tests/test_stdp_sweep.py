"""The STDP core's sweep components (:mod:`hw.stdp.sweep`) in the Amaranth simulator, against the
golden step function (:func:`hw.stdp.spec.lif_step`) and a plain-Python count; each check is shown
to fail on a mutant of the component."""

import random

import pytest

from hw.stdp import spec
from hw.stdp.config_port import ConfigPort
from hw.stdp.pipeline import UpdatePipeline
from hw.stdp.sweep import NeuronSweep, ResetSweep
from sim.formal.harness import mutated
from sim.streams import simulate

CFG = spec.STDPConfig(n_neurons=20, max_synapses=64, w_bits=4, v_bits=6, window=5, threshold=20,
                      leak_shift=2, refractory=2, v_reset=3)


def reset_sweep_trace(cls=ResetSweep, cfg=CFG, cycles=None):
    """``(o_clearing, o_n)`` in each of the first ``cycles`` cycles after reset."""
    dut = cls(cfg)
    cycles = cycles or cfg.n_neurons + 4
    trace = []

    async def tb(ctx):
        for _ in range(cycles):
            trace.append((ctx.get(dut.o_clearing), ctx.get(dut.o_n)))
            await ctx.tick()

    simulate(dut, tb)
    return trace


def check_reset_sweep(cls=ResetSweep, cfg=CFG):
    trace = reset_sweep_trace(cls, cfg)
    n = cfg.n_neurons
    assert trace[:n] == [(1, i) for i in range(n)]
    assert all(clearing == 0 for clearing, _ in trace[n:])


def test_reset_sweep_clears_each_neuron_once():
    check_reset_sweep()
    check_reset_sweep(cfg=spec.STDPConfig(n_neurons=16, max_synapses=16, threshold=8))   # o_n wraps


def test_reset_sweep_check_fails_on_mutant():
    mutant = mutated("hw.stdp.sweep", "ResetSweep", "self.o_n == self.cfg.n_neurons - 1",
                     "self.o_n == self.cfg.n_neurons - 2")
    with pytest.raises(AssertionError):
        check_reset_sweep(mutant)


def random_neurons(rng, cfg):
    """States, accumulators and input bits, with sums at the threshold and refractory, pending and
    saturated-timer neurons among them."""
    neurons = []
    for i in range(cfg.n_neurons):
        s = spec.NeuronState(v=rng.randrange(cfg.threshold), r=rng.choice([0, 0, 0, 1, cfg.refractory]),
                             tau=rng.randrange(cfg.window + 1), pend=rng.randrange(2), spk=rng.randrange(2))
        leaked = s.v - (s.v >> cfg.leak_shift)
        acc = cfg.threshold - leaked if i % 3 == 0 else rng.randrange(cfg.v_max + 1)
        neurons.append((s, acc, int(rng.random() < 0.15)))
    return neurons


def run_neuron_sweep(neurons, cls=NeuronSweep, cfg=CFG):
    """One sweep over ``neurons`` (memories modelled with one cycle of read latency): the writes
    ``(n, state)``, the pushes ``(n, spike, ltp, tau)`` and the cycle of ``o_done`` (0: the cycle
    ``i_run`` rose)."""
    dut = cls(cfg)
    writes, pushes, done = [], [], []

    async def tb(ctx):
        ctx.set(dut.i_run, 1)
        prev = None
        for cycle in range(cfg.n_neurons + 8):
            addr = ctx.get(dut.o_rd_n)
            if prev is not None and prev < cfg.n_neurons:
                s, acc, ext = neurons[prev]
                ctx.set(dut.i_state.as_value(), spec.pack_state(cfg, s))
                ctx.set(dut.i_acc, acc)
                ctx.set(dut.i_ext, ext)
            prev = addr
            if ctx.get(dut.o_wr_en):
                state = spec.unpack_state(cfg, ctx.get(dut.o_wr_state.as_value()))
                writes.append((ctx.get(dut.o_wr_n), state))
            if ctx.get(dut.o_push):
                pushes.append(tuple(ctx.get(f) for f in (dut.o_entry.n, dut.o_entry.spike, dut.o_entry.ltp,
                                                         dut.o_entry.tau)))
            if ctx.get(dut.o_done):
                done.append(cycle)
                ctx.set(dut.i_run, 0)
            await ctx.tick()

    simulate(dut, tb)
    return writes, pushes, done


def check_neuron_sweep(seed, cls=NeuronSweep, cfg=CFG):
    neurons = random_neurons(random.Random(seed), cfg)
    writes, pushes, done = run_neuron_sweep(neurons, cls, cfg)
    steps = [spec.lif_step(cfg, s, acc, ext) for s, acc, ext in neurons]
    assert writes == [(n, st) for n, (st, _, _) in enumerate(steps)]
    assert pushes == [(n, spike, ltp, st.tau) for n, (st, spike, ltp) in enumerate(steps) if spike or ltp]
    assert done == [cfg.n_neurons + 3]
    return steps


def test_neuron_sweep_matches_lif_step():
    for seed in range(3):
        steps = check_neuron_sweep(seed)
        # The vectors exercise spikes, refractory neurons and LTP walks.
        assert any(spike for _, spike, _ in steps) and any(ltp for _, _, ltp in steps)
        assert any(st.r for st, _, _ in steps) and not all(spike for _, spike, _ in steps)


def test_neuron_sweep_check_fails_on_mutant():
    mutant = mutated("hw.stdp.sweep", "NeuronSweep", "(sw2_sum >= c.threshold)", "(sw2_sum > c.threshold)")
    with pytest.raises(AssertionError):
        check_neuron_sweep(0, mutant)


def test_components_take_an_stdpconfig():
    for cls in (ResetSweep, NeuronSweep, ConfigPort, UpdatePipeline):
        with pytest.raises(TypeError, match="cfg must be an STDPConfig, not dict"):
            cls({"n_neurons": 8})
