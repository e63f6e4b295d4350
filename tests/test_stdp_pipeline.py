"""The STDP core's synapse update pipeline (:class:`hw.stdp.pipeline.UpdatePipeline`) in the
Amaranth simulator, against :func:`hw.stdp.spec.synapse_update` and the golden accumulation; the
testbench is the memories (the accumulator's read returns the old word when it is written in the
same cycle, so a missing forward loses an update). Shown to fail on a mutant."""

import random

import pytest

from hw.stdp import spec
from hw.stdp.pipeline import UpdatePipeline
from sim.formal.harness import mutated
from sim.streams import simulate

N = 4
CFG = spec.STDPConfig(n_neurons=N, max_synapses=64, w_bits=2, v_bits=6, window=4, kp=(0, 3, 3, 2),
                      km=(0, 3, 2, 3), threshold=15, leak_shift=4, refractory=0)


def random_walk(rng, cfg):
    """Post states, and walked rows ``(entry, [(synapse address, post, weight)])``: few posts, so
    that consecutive synapses (across row ends) often share a post; every synapse walked once."""
    states = [spec.NeuronState(v=0, r=0, tau=rng.randrange(cfg.window + 1), pend=0, spk=rng.randrange(2))
              for _ in range(cfg.n_neurons)]
    rows, addr = [], 0
    while addr < cfg.syn_depth - cfg.n_neurons:
        posts = sorted(rng.sample(range(cfg.n_neurons), rng.choice((1, 1, 2, cfg.n_neurons))))
        entry = {"n": rng.randrange(cfg.n_neurons), "spike": int(rng.random() < 0.7),
                 "ltp": int(rng.random() < 0.6), "tau": rng.randrange(1, cfg.window + 1)}
        rows.append((entry, [(addr + i, q, rng.randrange(cfg.w_max + 1)) for i, q in enumerate(posts)]))
        addr += len(posts)
    return states, rows


def expected(cfg, states, rows):
    """The weights by address and the accumulators after the walk (:mod:`sim.stdp.golden`'s order)."""
    weights, acc = {}, [0] * cfg.n_neurons
    for entry, syns in rows:
        for addr, q, w in syns:
            s = states[q]
            weights[addr], delivered = spec.synapse_update(cfg, w, entry["spike"], entry["ltp"], entry["tau"],
                                                           s.tau, s.spk)
            if entry["spike"]:
                acc[q] = min(acc[q] + delivered, cfg.v_max)
    return weights, acc


def run_pipeline(cfg, states, rows, cls=UpdatePipeline, seed=0):
    dut = cls(cfg)
    rng = random.Random(seed)
    syn = {addr: q | w << cfg.neuron_bits for _, syns in rows for addr, q, w in syns}
    acc = [0] * cfg.n_neurons
    issues = [(entry, addr, q) for entry, syns in rows for addr, q, _ in syns]
    written = {}

    async def tb(ctx):
        syn_addr = post_n = acc_word = None
        for _ in range(2 * len(issues) + 20):
            # The words read at the previous cycle's addresses, as they were before that cycle's
            # writes (read-first).
            if syn_addr is not None:
                ctx.set(dut.i_syn, syn[syn_addr])
            if post_n is not None:
                ctx.set(dut.i_post.as_value(), spec.pack_state(cfg, states[post_n]))
                ctx.set(dut.i_acc, acc_word)
            issue = bool(issues) and rng.random() < 0.8
            ctx.set(dut.i_issue, issue)
            syn_addr = None
            if issue:
                entry, syn_addr, q = issues.pop(0)
                ctx.set(dut.i_entry, entry)
                ctx.set(dut.i_addr, syn_addr)
                ctx.set(dut.i_q, q)
            post_n = ctx.get(dut.o_post_n)
            acc_word = acc[post_n]
            if ctx.get(dut.o_acc_wr_en):
                acc[ctx.get(dut.o_acc_wr_n)] = ctx.get(dut.o_acc_wr_data)
            if ctx.get(dut.o_syn_wr_en):
                addr, word = ctx.get(dut.o_syn_wr_addr), ctx.get(dut.o_syn_wr_data)
                index = (1 << cfg.neuron_bits) - 1
                assert addr not in written and word & index == syn[addr] & index
                written[addr] = word >> cfg.neuron_bits
                syn[addr] = word
            await ctx.tick()
        assert not issues and not ctx.get(dut.o_busy)

    simulate(dut, tb)
    return written, acc


def check_pipeline(cls=UpdatePipeline, seed=0):
    states, rows = random_walk(random.Random(seed), CFG)
    want_weights, want_acc = expected(CFG, states, rows)
    weights, acc = run_pipeline(CFG, states, rows, cls, seed)
    assert weights == want_weights
    assert acc == want_acc
    return want_weights, rows


def test_update_pipeline_matches_synapse_update():
    for seed in range(2):
        weights, rows = check_pipeline(seed=seed)
        before = {addr: w for _, syns in rows for addr, _, w in syns}
        # Both update directions and both saturations occur.
        assert any(weights[a] > before[a] for a in weights) and any(weights[a] < before[a] for a in weights)
        assert CFG.w_max in weights.values() and 0 in weights.values()


@pytest.mark.parametrize("forward", ["fwd_s3.eq(s2_valid & s2_entry.spike & (s2_q == r_q))",
                                     "fwd_s4.eq(s3_valid & s3_deliver & (s3_q == r_q))",
                                     "fwd_s5.eq(s4_valid & s4_deliver & (s4_q == r_q))"])
def test_update_pipeline_check_fails_without_a_forward(forward):
    mutant = mutated("hw.stdp.pipeline", "UpdatePipeline", forward, forward[:len("fwd_s3.eq(")] + "0)")
    with pytest.raises(AssertionError):
        check_pipeline(mutant)
