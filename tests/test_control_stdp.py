"""STDP group at the UART pins: driver <-> simulated board, bit-exact against the golden network."""

import random

import pytest

from boards.config import SIM_CONFIG
from firmware.api import Accelerator
from firmware.driver import CommandError, Driver
from firmware.transport import SimTransport
from hw.control.protocol import Cmd
from hw.control.stdp_handler import word_bytes
from hw.stdp import spec
from sim.stdp.golden import ForwardSTDPNetwork, poisson_events, random_rows


@pytest.fixture(scope="module")
def acc():
    # The shared simulated board (every command group, Verilator); RESET gives each module a clean one.
    a = Accelerator(Driver(SimTransport()), "sim", SIM_CONFIG)
    a.reset()
    return a


def test_stdp_run_matches_golden(acc):
    cfg = acc.stdp_config()
    rng = random.Random(7)
    rows = random_rows(rng, cfg.n_neurons, 0.3, cfg.w_bits)
    steps = poisson_events(rng, 8, range(cfg.n_neurons), 0.35)
    spikes, learned = acc.run_snn(rows, steps)
    net = ForwardSTDPNetwork(cfg, rows)
    ref = [net.step(ev)[0] for ev in steps]
    assert sum(map(len, ref)) > 5, "the run must exercise spikes and weight updates"
    assert spikes == ref
    assert learned == net.weights()
    assert learned != spec.effective_rows(cfg, rows), "STDP must have changed some weight"
    # Neuron states read back through the same path match too.
    states = [spec.unpack_state(cfg, w) for w in acc.stdp_read(spec.MEM_STATE, cfg.n_neurons)]
    assert states == net.state


def test_reset_restarts_the_network_from_a_fresh_state(acc):
    # A run leaves input current delivered ahead to the next step in the core's accumulators (and
    # membrane potentials in its state memory); after RESET the same run must again equal a fresh
    # golden network, with no trace of the first.
    cfg = acc.stdp_config()
    rng = random.Random(11)
    rows = random_rows(rng, cfg.n_neurons, 0.4, cfg.w_bits)
    steps = poisson_events(rng, 6, range(cfg.n_neurons), 0.5)
    acc.reset()
    first, _ = acc.run_snn(rows, steps)
    net = ForwardSTDPNetwork(cfg, rows)
    ref = [net.step(ev)[0] for ev in steps]
    assert first == ref
    assert any(net.acc), "the first run must leave input current for a next step"
    acc.reset()
    again, learned = acc.run_snn(rows, steps)
    fresh = ForwardSTDPNetwork(cfg, rows)
    assert again == [fresh.step(ev)[0] for ev in steps]
    assert learned == fresh.weights()
    states = [spec.unpack_state(cfg, w) for w in acc.stdp_read(spec.MEM_STATE, cfg.n_neurons)]
    assert states == fresh.state


def test_bad_event_flags_block_error_and_board_keeps_working(acc):
    cfg = acc.stdp_config()
    rows = random_rows(random.Random(8), cfg.n_neurons, 0.2, cfg.w_bits)
    acc.reset()
    acc.load_network(rows)
    with pytest.raises(CommandError, match="ERR_BLOCK"):
        acc.snn_step([1, 999])
    assert acc.status()["block_flags"] & (1 << 3)
    acc.reset()
    assert acc.status()["block_flags"] == 0
    assert acc.driver.ping(b"alive") == b"alive"


def test_length_errors(acc):
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        acc.driver.command(Cmd.READ_WEIGHTS, b"\x00\x00\x00")
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        acc.driver.command(Cmd.INJECT_SPIKES, b"\x01")
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        acc.driver.command(Cmd.LOAD_SYNAPSES, b"\x00\x00\x00\x00\x01\x02")  # ends inside a word
    with pytest.raises(CommandError, match="ERR_UNKNOWN_CMD"):
        acc.driver.command(0x3F)
    assert acc.driver.ping(b"ok") == b"ok"


def test_write_beyond_a_memory_answers_block_error_in_its_own_command(acc):
    # The core checks a write's address cycles after it took the word; the handler answers only
    # once that check is done, so the command whose last word is out of range is the one that
    # answers ERR_BLOCK (not the next command, nor only STATUS).
    cfg = acc.stdp_config()
    W = word_bytes(cfg)
    acc.reset()
    acc.driver.command(Cmd.LOAD_SYNAPSES, bytes([spec.MEM_STATE]) + (cfg.n_neurons - 1).to_bytes(3, "little")
                       + bytes(W))
    with pytest.raises(CommandError, match="ERR_BLOCK"):
        acc.driver.command(Cmd.LOAD_SYNAPSES, bytes([spec.MEM_STATE]) + cfg.n_neurons.to_bytes(3, "little")
                           + bytes(W))
    assert acc.status()["block_flags"] & (1 << 3)
    acc.reset()
    assert acc.status()["block_flags"] == 0
