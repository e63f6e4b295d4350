"""STDP group: the watchdog's block reset in the middle of a row walk (Amaranth simulator, UART pins).

RESET only arrives once the core is idle; the watchdog is the one block reset that can hit the row
walker with rows in flight. Every part of the handler (its statements, the STDP core, each of the
core's submodules: :func:`hw.lib.reset.module_with_reset_tree` in
:class:`hw.control.core.EdgeLearnCore`) must take it, or the walker keeps
issuing the rows it holds after the reset, and their input deliveries land in the accumulators once
the core's reset sweep has cleared them.
"""

import copy
import random
from functools import partial

import pytest

from firmware.driver import CommandError, Driver
from firmware.transport import SimTransport
from hw.control.core import EdgeLearnCore
from hw.control.protocol import GROUP_STDP, Cmd
from hw.control.stdp_handler import STDPHandler, word_bytes
from hw.stdp import spec
from sim.board.amaranth_board import SimBoard
from sim.stdp.golden import ForwardSTDPNetwork

# 6 neurons, every row all 6 posts: a step in which all spike walks 36 synapses. refractory 0 lets a
# neuron spike in consecutive steps (so the second step's walk changes weights: LTP and LTD).
PARAMS = {"n_neurons": 6, "max_synapses": 36, "refractory": 0, "threshold": 200}
# The handler's cycles from start to done (measured in this configuration): LOAD_SYNAPSES 14 + 6
# per word, READ_WEIGHTS 16 + 10 per word, an all-spiking step 100, its walk phase from its 47th
# cycle to its 94th. The watchdog at 72 ends that step with rows in the walker and lets every other
# command here finish (6 words per load, 4 per read); the test checks that the cut is inside the
# walk (the first rows learned, the later ones not).
WATCHDOG = 72
PER_LOAD, PER_READ = 6, 4


def test_watchdog_reset_mid_walk_leaves_a_fresh_network():
    cfg = spec.STDPConfig(**PARAMS)
    W, N = word_bytes(cfg), cfg.n_neurons
    core = EdgeLearnCore(clk_hz=12_000_000, baud=3_000_000, timeout=500, watchdog=WATCHDOG,
                         handlers={GROUP_STDP: partial(STDPHandler, primitives=False, **PARAMS)})
    drv = Driver(SimTransport(sim_board=SimBoard(core)))

    def write(mem, words):
        for i in range(0, len(words), PER_LOAD):
            drv.command(Cmd.LOAD_SYNAPSES, bytes([mem]) + i.to_bytes(3, "little")
                        + b"".join(w.to_bytes(W, "little") for w in words[i:i + PER_LOAD]))

    def read(mem, count):
        words = []
        for i in range(0, count, PER_READ):
            n = min(PER_READ, count - i)
            reply = drv.command(Cmd.READ_WEIGHTS,
                                bytes([mem]) + i.to_bytes(3, "little") + n.to_bytes(2, "little"))
            words += [int.from_bytes(reply[j * W:(j + 1) * W], "little") for j in range(n)]
        return words

    def load(rows):
        # (no state words: RESET and the watchdog's reset both leave every neuron in its reset state)
        image = spec.build_image(cfg, rows)
        for mem in (spec.MEM_SYN, spec.MEM_ROW):
            write(mem, image[mem])

    def step(events):
        reply = drv.command(Cmd.INJECT_SPIKES, b"".join(e.to_bytes(2, "little") for e in events))
        return [int.from_bytes(reply[i:i + 2], "little") for i in range(0, len(reply), 2)]

    def weights(rows):
        return spec.image_rows(cfg, {spec.MEM_SYN: read(spec.MEM_SYN, N * N)}, rows)

    # Weights below 40: two spikes deliver less than the threshold, so the steps after the reset
    # stay short (below the watchdog); all six deliver up to 234.
    rng = random.Random(3)
    rows = [[(q, rng.randrange(40)) for q in range(N)] for _ in range(N)]
    drv.reset()
    load(rows)
    net = ForwardSTDPNetwork(cfg, rows)
    assert step([0, 1]) == net.step([0, 1])[0] == [0, 1]
    before = net.weights()
    learned = copy.deepcopy(net)
    learned.step(range(N))
    after = learned.weights()

    with pytest.raises(CommandError, match="ERR_TIMEOUT"):
        step(range(N))
    # Cut inside the walk: each row walked (in order) has the step's weights, the rest the old ones.
    got = weights(rows)
    walked = [g == a for g, a in zip(got, after)]
    assert walked == sorted(walked, reverse=True), "rows learned out of walk order"
    assert all(g == b for g, b, w in zip(got, before, walked) if not w)
    assert 0 < sum(walked) < N and after[:sum(walked)] != before[:sum(walked)] \
        and after[sum(walked):] != before[sum(walked):], "the watchdog must reset the core mid-walk"

    # Reloaded, the network runs as a fresh one: no input current, state or walk left from the step
    # the watchdog cut.
    load(rows)
    fresh = ForwardSTDPNetwork(cfg, rows)
    for events in ([2, 5], [1, 5], [3]):
        assert step(events) == fresh.step(events)[0]
    assert [spec.unpack_state(cfg, w) for w in read(spec.MEM_STATE, N)] == fresh.state
    assert weights(rows) == fresh.weights()
    assert fresh.weights() != spec.effective_rows(cfg, rows), "the steps must have learned"
