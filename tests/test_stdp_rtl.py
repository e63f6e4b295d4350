"""STDP core RTL in the Amaranth simulator against the golden model (:mod:`sim.stdp.golden`)."""

import random

import pytest
from amaranth.sim import Simulator

from hw.blocks import get_block
from hw.stdp import STDPCore, spec
from sim.formal.harness import mutated
from sim.stdp.driver import run_core
from sim.stdp.golden import ForwardSTDPNetwork, poisson_events, random_rows
from sim.streams import stream_get, stream_put


def golden_run(cfg, rows, steps):
    net = ForwardSTDPNetwork(cfg, rows)
    spikes = [net.step(ev)[0] for ev in steps]
    return net, spikes


def check_against_golden(cfg, rows, steps, **kwargs):
    net, spikes = golden_run(cfg, rows, steps)
    got = run_core(cfg, rows, steps, states=True, **kwargs)
    assert got.spikes == spikes
    assert got.rows == net.weights()
    assert got.states == net.state
    return net, got


@pytest.mark.parametrize("encoding", spec.ENCODINGS)
def test_rtl_matches_golden_random_sparse(encoding):
    rng = random.Random(encoding)
    n = 24 if encoding == "crossbar" else 32
    cfg = spec.STDPConfig(n_neurons=n, max_synapses=256, w_bits=6, v_bits=12, window=8, threshold=90,
                          leak_shift=2, refractory=1, encoding=encoding)
    rows = random_rows(rng, n, 0.2, 6, max_synapses=256)
    steps = poisson_events(rng, 60, range(n), 0.06) + [[]] * 8
    net, got = check_against_golden(cfg, rows, steps, stall_in=0.2, stall_out=0.2, seed=7)
    # The run must have exercised spiking, both update directions and recurrent activity.
    assert sum(map(len, got.spikes)) > 60 and net.walks > 60
    loaded = spec.effective_rows(cfg, rows)
    assert any(w > w0 for r, r0 in zip(got.rows, loaded) for (_, w), (_, w0) in zip(r, r0))
    assert any(w < w0 for r, r0 in zip(got.rows, loaded) for (_, w), (_, w0) in zip(r, r0))


def test_rtl_back_pressure_heavy_stalls():
    rng = random.Random(11)
    cfg = spec.STDPConfig(n_neurons=16, max_synapses=96, w_bits=5, window=6, threshold=40, leak_shift=1,
                          refractory=0, encoding="csr")
    rows = random_rows(rng, 16, 0.3, 5, max_synapses=96)
    steps = poisson_events(rng, 30, range(16), 0.2)
    check_against_golden(cfg, rows, steps, stall_in=0.7, stall_out=0.7, seed=3)


@pytest.mark.parametrize("encoding", ["csr", "bitmap"])
def test_rtl_saturation_edges(encoding):
    """2-bit weights with kernels larger than the range, a 4-bit accumulator overflowing, many
    rows sharing one post (back-to-back accumulator updates)."""
    n = 12
    cfg = spec.STDPConfig(n_neurons=n, max_synapses=80, w_bits=2, v_bits=4, window=4, kp=(0, 3, 3, 2),
                          km=(0, 3, 2, 3), threshold=15, leak_shift=4, refractory=0, encoding=encoding)
    rng = random.Random(4)
    rows = [[(q, rng.choice((0, 3))) for q in sorted({0, 1, rng.randrange(n)})] for _ in range(n)]
    steps = poisson_events(rng, 40, range(n), 0.5)
    net, got = check_against_golden(cfg, rows, steps, stall_out=0.3, seed=5)
    ws = [w for r in got.rows for _, w in r]
    assert 0 in ws and 3 in ws


@pytest.mark.parametrize("pattern", ["row_boundary", "single"])
def test_rtl_accumulator_forwarding_back_to_back(pattern):
    """All pres spike in one step. "row_boundary": rows alternate [0, 1] and [1, 2], so post 1 ends
    one row and starts the next: its accumulator is read-modify-written on consecutive cycles.
    "single": rows of one synapse, all to post 0. The next step's membranes must hold the full sums."""
    n = 12
    cfg = spec.STDPConfig(n_neurons=n, max_synapses=2 * n, w_bits=8, v_bits=12, window=4, threshold=4000,
                          leak_shift=12, refractory=0)
    if pattern == "row_boundary":
        posts = [(0, 1) if p % 2 else (1, 2) for p in range(n)]
    else:
        posts = [(0,)] * n
    rows = [[(q, 10 * p + q + 1) for q in posts[p]] for p in range(n)]
    steps = [list(range(3, n)), [], []]
    net, got = check_against_golden(cfg, rows, steps)
    for q in (0, 1, 2):
        assert got.states[q].v == sum(w for p in range(3, n) for qq, w in rows[p] if qq == q)


def test_rtl_check_fails_on_late_walk_queue():
    """Rows of one synapse pop the walk queue as fast as the walker allows; a queue whose pointers
    follow a pop two cycles later (the next head a cycle late) fails the check."""
    late = mutated("hw.stdp.core", "STDPCore", "m.d.sync += q_popped.eq(q_pop)",
                   "q_pop_1 = Signal()\n        m.d.sync += [q_pop_1.eq(q_pop), q_popped.eq(q_pop_1)]")
    n = 12
    params = dict(n_neurons=n, max_synapses=n, w_bits=8, v_bits=12, window=4, threshold=4000,
                  leak_shift=12, refractory=0)
    rows = [[(p % 3, p + 1)] for p in range(n)]
    steps = [list(range(3, n)), [], []]
    check_against_golden(spec.STDPConfig(**params), rows, steps)
    with pytest.raises(AssertionError):
        check_against_golden(spec.STDPConfig(**params), rows, steps, dut=late(**params))


def test_rtl_bad_events_flag_and_keep_running():
    rng = random.Random(9)
    n = 16
    cfg = spec.STDPConfig(n_neurons=n, max_synapses=64, w_bits=6, window=8, threshold=50, refractory=1)
    rows = random_rows(rng, n, 0.2, 6, max_synapses=64)
    steps = poisson_events(rng, 20, range(n), 0.2)
    bad = [ev + [n, 0xFFFF] if t % 5 == 2 else ev for t, ev in enumerate(steps)]
    net, spikes = golden_run(cfg, rows, steps)
    got = run_core(cfg, rows, bad, stall_in=0.2, seed=1)
    assert got.err == {"bad_event": 1, "bad_cfg": 0}
    assert got.spikes == spikes and got.rows == net.weights()


def test_rtl_bad_cfg_flag_and_read_back():
    n = 8
    cfg = spec.STDPConfig(n_neurons=n, max_synapses=16, w_bits=4, window=4, encoding="csr")
    rows = [[(1, 5), (3, 7)], [(0, 2)]] + [[]] * (n - 2)
    image = spec.build_image(cfg, rows)
    extra = [
        {"write": 1, "mem": spec.MEM_SYN, "addr": 16, "data": 1},          # beyond the memory
        {"write": 0, "mem": spec.MEM_SYN, "addr": 1, "data": 0},           # good read
        {"write": 0, "mem": spec.MEM_BMP, "addr": 0, "data": 0},           # csr has no bitmap
        {"write": 1, "mem": spec.MEM_ROW, "addr": 2, "data": 17 << cfg.ptr_bits},  # row ends beyond
        {"write": 0, "mem": spec.MEM_ROW, "addr": 2, "data": 0},
        {"write": 0, "mem": spec.MEM_ROW, "addr": 0, "data": 0},
        {"write": 0, "mem": spec.MEM_STATE, "addr": 7, "data": 0},
    ]
    got = run_core(cfg, rows, [[]], extra_cfg=extra)
    reset = spec.pack_state(cfg, spec.reset_state(cfg))
    assert got.image["extra"] == [image[spec.MEM_SYN][1], 0, image[spec.MEM_ROW][2],
                                  image[spec.MEM_ROW][0], reset]
    assert got.err == {"bad_event": 0, "bad_cfg": 1}
    assert got.image[spec.MEM_SYN] == image[spec.MEM_SYN]


def test_rtl_error_clear_and_crossbar_has_no_row_table():
    cfg = spec.STDPConfig(n_neurons=4, w_bits=4, window=4, encoding="crossbar")
    dut = STDPCore(n_neurons=4, w_bits=4, window=4, encoding="crossbar")
    flags = []

    async def tb(ctx):
        await stream_put(ctx, dut.i_cfg, {"write": 0, "mem": spec.MEM_ROW, "addr": 0, "data": 0})
        assert await stream_get(ctx, dut.o_rdata) == 0
        await stream_put(ctx, dut.i_aer, {"neuron": 4, "eos": 0})
        await ctx.tick()
        flags.append((ctx.get(dut.o_err.bad_cfg), ctx.get(dut.o_err.bad_event)))
        ctx.set(dut.i_err_clear, 1)
        await ctx.tick()
        ctx.set(dut.i_err_clear, 0)
        flags.append((ctx.get(dut.o_err.bad_cfg), ctx.get(dut.o_err.bad_event)))
        await stream_put(ctx, dut.i_cfg, {"write": 1, "mem": spec.MEM_SYN, "addr": 15, "data": 9})
        await stream_put(ctx, dut.i_cfg, {"write": 0, "mem": spec.MEM_SYN, "addr": 15, "data": 0})
        flags.append(await stream_get(ctx, dut.o_rdata))
        flags.append((ctx.get(dut.o_err.bad_cfg), ctx.get(dut.o_err.bad_event)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert cfg.mem_depth(spec.MEM_ROW) == 0
    assert flags == [(1, 1), (0, 0), 9, (0, 0)]


@pytest.mark.parametrize("encoding", ["bitmap", "crossbar"])
def test_rtl_memory_read_back_other_encodings(encoding):
    n = 12
    cfg = spec.STDPConfig(n_neurons=n, max_synapses=40, w_bits=5, window=4, bitmap_word=8, encoding=encoding)
    rows = random_rows(random.Random(8), n, 0.25, 5, max_synapses=40)
    image = spec.build_image(cfg, rows)
    reads = [(mem, a) for mem in (spec.MEM_ROW, spec.MEM_BMP) for a in range(len(image[mem]))]
    extra = [{"write": 0, "mem": mem, "addr": a, "data": 0} for mem, a in reads]
    got = run_core(cfg, rows, [], extra_cfg=extra)
    assert got.image["extra"] == [image[mem][a] for mem, a in reads]
    assert got.image[spec.MEM_SYN] == image[spec.MEM_SYN]
    assert got.rows == spec.effective_rows(cfg, rows)
    assert got.err == {"bad_event": 0, "bad_cfg": 0}


@pytest.mark.parametrize("encoding", spec.ENCODINGS)
def test_registry_builds_every_encoding_matching_golden(encoding):
    """The registry's block at its smoke parameters, in each encoding: spikes, weights and neuron
    states of a short run equal the golden model's."""
    block = get_block("stdp_core")
    core = block.build(**block.smoke_params, encoding=encoding)
    rng = random.Random(encoding)
    n = core.cfg.n_neurons
    # sparse, so that neurons stay quiet long enough for their timers to reach the window's end
    rows = random_rows(rng, n, 0.05, core.cfg.w_bits, max_synapses=core.cfg.max_synapses)
    steps = poisson_events(rng, 40, range(n), 0.04) + [[]] * core.cfg.window
    net, spikes = golden_run(core.cfg, rows, steps)
    got = run_core(core.cfg, rows, steps, states=True, dut=core, stall_in=0.2, stall_out=0.2, seed=2)
    assert got.spikes == spikes and got.rows == net.weights() and got.states == net.state
    assert sum(map(len, spikes)) > 0
