"""The STDP core's row walker (:class:`hw.stdp.walker.RowWalker`) in the Amaranth simulator: the
synapses it issues and the spikes it pops, against the rows of the network image
(:func:`hw.stdp.spec.build_image`); the testbench is the walk queue and the row and bitmap
memories. Shown to fail on a mutant."""

import random

import pytest

from hw.stdp import spec
from hw.stdp.walker import RowWalker
from sim.formal.harness import mutated
from sim.stdp.golden import random_rows
from sim.streams import simulate

N = 20


def config(encoding):
    return spec.STDPConfig(n_neurons=N, max_synapses=200, w_bits=4, window=4, threshold=20,
                           encoding=encoding, bitmap_word=8)


def random_walk(rng, cfg):
    """Network rows (empty, single and long rows among them) and the queue entries of one step."""
    rows = random_rows(rng, N, 0.25, cfg.w_bits, max_synapses=cfg.max_synapses)
    rows[0], rows[1] = [], [(3, 1)]
    entries = [{"n": n, "spike": rng.randrange(2), "ltp": 1, "tau": 1}
               for n in sorted(rng.sample(range(2, N), 12) + [0, 1])]
    return rows, entries


def expected(cfg, rows, entries):
    """``(synapse address, post, row)`` per issue, in order, and the spiking rows in order."""
    rows = spec.effective_rows(cfg, rows)
    starts = [sum(len(r) for r in rows[:p]) for p in range(N)]
    issues = []
    for e in entries:
        p = e["n"]
        if cfg.encoding == "crossbar":
            issues += [(p * N + q, q, p) for q in range(N)]
        else:
            issues += [(starts[p] + i, q, p) for i, (q, _) in enumerate(rows[p])]
    return issues, [e["n"] for e in entries if e["spike"]]


def run_walker(cfg, rows, entries, cls=RowWalker, seed=0):
    dut = cls(cfg)
    rng = random.Random(seed)
    image = spec.build_image(cfg, rows)
    issues, spikes = [], []

    async def tb(ctx):
        ctx.set(dut.i_run, 1)
        rp = 0
        head_addr = row_addr = bmp_addr = 0
        for _ in range(40 * N + 20 * len(entries)):
            # Memory words read at the previous cycle's addresses.
            ctx.set(dut.i_head, entries[head_addr] if head_addr < len(entries) else {})
            ctx.set(dut.i_nonempty, rp < len(entries))
            if image[spec.MEM_ROW]:
                ctx.set(dut.i_row, image[spec.MEM_ROW][row_addr])
            if image[spec.MEM_BMP]:
                ctx.set(dut.i_bmp, image[spec.MEM_BMP][bmp_addr])
            ready = rng.random() < 0.6
            ctx.set(dut.i_spike_ready, ready)
            if ctx.get(dut.o_issue):
                post = ctx.get(dut.o_q) if cfg.encoding != "csr" else None
                issues.append((ctx.get(dut.o_addr), post, ctx.get(dut.o_entry.n)))
            if ctx.get(dut.o_spike_valid) and ready:
                spikes.append(ctx.get(dut.i_head.n))
            head_addr, pop = rp, ctx.get(dut.o_pop)
            rp += pop
            row_addr, bmp_addr = ctx.get(dut.o_row_addr), ctx.get(dut.o_bmp_addr)
            await ctx.tick()
        assert rp == len(entries) and not ctx.get(dut.o_busy)

    simulate(dut, tb)
    return issues, spikes


def check_walker(encoding, cls=RowWalker, seed=0):
    cfg = config(encoding)
    rows, entries = random_walk(random.Random(seed), cfg)
    want_issues, want_spikes = expected(cfg, rows, entries)
    if encoding == "csr":
        want_issues = [(a, None, p) for a, _, p in want_issues]
    issues, spikes = run_walker(cfg, rows, entries, cls, seed)
    assert issues == want_issues
    assert spikes == want_spikes


@pytest.mark.parametrize("encoding", spec.ENCODINGS)
def test_row_walker_issues_every_row(encoding):
    for seed in range(2):
        check_walker(encoding, seed=seed)


def test_row_walker_check_fails_on_mutant():
    mutant = mutated("hw.stdp.walker", "RowWalker", "g_last.eq(s_len == 1)", "g_last.eq(0)")
    with pytest.raises(AssertionError):
        check_walker("csr", mutant)
