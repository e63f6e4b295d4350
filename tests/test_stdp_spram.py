"""STDP core with its synapse memory on SPRAM (``syn_store="spram"``): the primitives it instantiates
and bit-exact runs against the golden model (Amaranth simulator, behavioural SPRAMs); its parameter
checks are in tests/test_bad_parameters.py."""

import random

import pytest
from amaranth.back import rtlil

from hw.control.boards import BOARD_CONFIGS
from hw.lib.spram import InterleavedSPRAM
from hw.stdp import STDPCore, spec
from sim.stdp.driver import run_core
from sim.stdp.golden import ForwardSTDPNetwork, poisson_events, random_rows


@pytest.mark.parametrize("neurons,synapses,expected", [(256, 32768, 2), (256, 65536, 4), (16, 100, 2)])
def test_spram_store_instantiates_the_primitive(neurons, synapses, expected):
    core = STDPCore(n_neurons=neurons, max_synapses=synapses, w_bits=8, syn_store="spram")
    text = rtlil.convert(core, name="top")
    assert text.count("cell \\SB_SPRAM256KA ") == expected
    # The block RAM store has no SPRAM, and the SPRAM store no synapse block RAM.
    assert "SB_SPRAM256KA" not in rtlil.convert(STDPCore(n_neurons=16, max_synapses=100, w_bits=8))
    assert "\\syn" not in [ln.split()[-1] for ln in text.splitlines() if ln.lstrip().startswith("memory ")]


def run_both(cfg_kwargs, rows, steps, **kwargs):
    """Golden model and the SPRAM core; (golden net, golden spikes, core run)."""
    cfg = spec.STDPConfig(**cfg_kwargs, syn_store="spram")
    net = ForwardSTDPNetwork(cfg, rows)
    spikes = [net.step(ev)[0] for ev in steps]
    return net, spikes, run_core(cfg, rows, steps, states=True, **kwargs)


@pytest.mark.parametrize("encoding", ["csr", "crossbar"])
def test_spram_store_matches_golden_random(encoding):
    rng = random.Random("spram" + encoding)
    n = 24 if encoding == "crossbar" else 32
    kw = dict(n_neurons=n, max_synapses=256, w_bits=6, v_bits=12, window=8, threshold=90, leak_shift=2,
              refractory=1, encoding=encoding)
    rows = random_rows(rng, n, 0.2, 6, max_synapses=256)
    steps = poisson_events(rng, 40 if encoding == "csr" else 25, range(n), 0.06) + [[]] * 4
    net, spikes, got = run_both(kw, rows, steps, stall_in=0.2, stall_out=0.2, seed=3)
    assert got.spikes == spikes
    assert got.rows == net.weights()
    assert got.states == net.state
    assert sum(map(len, spikes)) > 25 and net.walks > 25
    assert got.err == {"bad_event": 0, "bad_cfg": 0}


def test_spram_store_rows_of_every_parity_back_to_back():
    """Rows of 1..5 synapses starting at even and odd addresses, every neuron driven each step: the
    issuer meets the write-back's bank at row starts and must wait, never lose a read."""
    rng = random.Random(9)
    n = 20
    rows = []
    for p in range(n):
        k = 1 + p % 5
        rows.append([(q, rng.randrange(1, 64)) for q in sorted(rng.sample(range(n), k))])
    kw = dict(n_neurons=n, max_synapses=sum(map(len, rows)), w_bits=6, v_bits=12, window=6, threshold=4000,
              leak_shift=2, refractory=0)
    steps = [sorted(rng.sample(range(n), rng.randrange(n // 2, n + 1))) for _ in range(12)]
    net, spikes, got = run_both(kw, rows, steps, seed=4)
    assert got.spikes == spikes and got.rows == net.weights() and got.states == net.state


def test_icebreaker_stdp_group_is_on_spram():
    """The issue's target: the iCEBreaker's STDP network has >= 256 neurons and >= 32768 synapses,
    and its synapses take SPRAMs (the UP5K's 30 block RAMs hold at most 7168 of 4 bits)."""
    cfg = spec.STDPConfig(**BOARD_CONFIGS["icebreaker"].stdp)
    assert cfg.syn_store == "spram" and cfg.n_neurons >= 256 and cfg.syn_depth >= 32768
    assert InterleavedSPRAM(cfg.syn_depth, cfg.syn_bits).count <= 4
