"""The STDP core's configuration port (:class:`hw.stdp.config_port.ConfigPort`) in the Amaranth
simulator, against a plain-Python model of the memories and the address checks; shown to fail on a
mutant."""

import random

import pytest

from hw.stdp import spec
from hw.stdp.config_port import ConfigPort
from sim.formal.harness import mutated
from sim.streams import simulate

CFG = spec.STDPConfig(n_neurons=8, max_synapses=24, w_bits=4, v_bits=6, window=4, threshold=20)
MEMS = (spec.MEM_SYN, spec.MEM_ROW, spec.MEM_STATE)


def random_commands(rng, cfg, n):
    """Writes and reads of every memory, a fifth of them at an invalid address or (CSR rows) with an
    invalid row, each address written before a later read of it is likely."""
    cmds = []
    for _ in range(n):
        mem = rng.choice(MEMS)
        depth = cfg.mem_depth(mem)
        addr = rng.randrange(depth) if rng.random() < 0.8 else rng.randrange(depth, depth + 4)
        if mem == spec.MEM_ROW:
            start = rng.randrange(cfg.syn_depth + 1)
            end = rng.randrange(start, cfg.syn_depth + 1) if rng.random() < 0.8 else rng.randrange(start + 1)
            if end == start and rng.random() < 0.5:
                end = cfg.syn_depth + 1
            word = start | end << cfg.ptr_bits
        else:
            word = rng.randrange(1 << min(cfg.cfg_data_bits, 12))
        cmds.append({"write": int(rng.random() < 0.5), "mem": mem, "addr": addr, "data": word})
    return cmds


def expected(cfg, cmds):
    """The read words and the number of refused commands, from the memories as a dict."""
    mems, reads, refused = {}, [], 0
    for cmd in cmds:
        ok = cmd["addr"] < cfg.mem_depth(cmd["mem"])
        if cmd["mem"] == spec.MEM_ROW:
            start, end = cmd["data"] & ((1 << cfg.ptr_bits) - 1), cmd["data"] >> cfg.ptr_bits
            ok = ok and start <= end <= cfg.syn_depth
        refused += not ok
        key = (cmd["mem"], cmd["addr"])
        if cmd["write"] and ok:
            mems[key] = cmd["data"]
        elif not cmd["write"]:
            reads.append(mems.get(key, 0) if ok else 0)
    return reads, refused


def run_port(cfg, cmds, cls=ConfigPort, seed=0):
    """Send ``cmds`` (random stalls); the testbench is also the memories (one cycle of read
    latency, read at ``o_cmd.addr``). Returns the read words, the ``o_bad_cfg`` count and, per
    event, the cycles since the last transfer: ``("next" | "write" | "read", cycles)``."""
    dut = cls(cfg)
    rng = random.Random(seed)
    reads, bad, timing = [], [0], []

    async def tb(ctx):
        ctx.set(dut.i_accept, 1)
        ctx.set(dut.o_rdata.ready, 1)
        mems, rd_key, taken_at, pending = {}, None, None, list(cmds)
        for cycle in range(12 * len(cmds) + 20):
            for port in (dut.i_rd_syn, dut.i_rd_row, dut.i_rd_state):
                ctx.set(port, 0)
            if rd_key is not None:
                ctx.set({spec.MEM_SYN: dut.i_rd_syn, spec.MEM_ROW: dut.i_rd_row,
                         spec.MEM_STATE: dut.i_rd_state}[rd_key[0]], mems.get(rd_key, 0))
            offer = bool(pending) and rng.random() >= 0.3
            ctx.set(dut.i_cfg.valid, offer)
            if offer:
                ctx.set(dut.i_cfg.payload, pending[0])
            cmd = {f: ctx.get(getattr(dut.o_cmd, f)) for f in ("write", "mem", "addr", "data")}
            rd_key = (cmd["mem"], cmd["addr"])
            if ctx.get(dut.o_next_valid):
                timing.append(("next", cycle - taken_at))
            write = ctx.get(dut.o_write)
            if write:
                assert write == 1 << cmd["mem"]
                mems[rd_key] = cmd["data"]
                timing.append(("write", cycle - taken_at))
            bad[0] += ctx.get(dut.o_bad_cfg)
            if ctx.get(dut.o_rdata.valid):
                reads.append(ctx.get(dut.o_rdata.payload))
                timing.append(("read", cycle - taken_at))
            if offer and ctx.get(dut.i_cfg.ready):
                taken_at = cycle
                pending.pop(0)
            await ctx.tick()
        assert not pending

    simulate(dut, tb)
    return reads, bad[0], timing


def check_port(cls=ConfigPort, seed=0):
    cmds = random_commands(random.Random(seed), CFG, 60)
    want_reads, want_refused = expected(CFG, cmds)
    reads, refused, timing = run_port(CFG, cmds, cls, seed)
    assert reads == want_reads
    assert refused == want_refused
    assert {t for kind, t in timing if kind == "next"} == {1}
    assert {t for kind, t in timing if kind == "write"} == {2}
    assert {t for kind, t in timing if kind == "read"} == {5}
    return cmds, reads


def test_config_port_matches_memory_model():
    for seed in range(2):
        cmds, reads = check_port(seed=seed)
        assert any(reads) and 0 < expected(CFG, cmds)[1] < len(cmds)


def test_config_port_check_fails_on_mutant():
    mutant = mutated("hw.stdp.config_port", "ConfigPort", "in_depth[i].eq(payload.addr < c.mem_depth(mem) if",
                     "in_depth[i].eq(payload.addr <= c.mem_depth(mem) if")
    with pytest.raises(AssertionError):
        check_port(mutant)
