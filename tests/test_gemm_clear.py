"""``i_clear`` of the GEMM engine in any state (:class:`hw.gemm.GemmEngine`, and behind its clock
crossings, :class:`hw.gemm.crossing.EngineCrossing`): the run-time recovery without a re-flash.

Each test leaves the engine in a state a host can leave it in (a command waiting for a weight block
that never comes; a run stopped at an arbitrary cycle with its results not taken), clears it, and
requires the next GEMM bit-exact to the golden model with exactly its result rows, exactly its
array beats and no error flag.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.gemm import GemmEngine, spec
from hw.gemm.crossing import EngineCrossing
from hw.mac import spec as mac_spec
from sim.formal.harness import mutated
from sim.gemm.golden import gemm_job
from sim.gemm.harness import run_crossing, run_engine_cleared, run_engine_phases
from sim.mac.golden import random_acts, random_weights

SMALL = {"rows": 2, "cols": 4, "max_k": 32, "max_batch": 6, "lanes": 2, "max_len": 12}


def job_for(engine, rng, m, k, modes):
    x = random_acts(rng, (m, k))
    w = np.concatenate([random_weights(rng, (engine.cols, k), mode) for mode in modes])
    return gemm_job(x, w, modes, rows=engine.rows, cols=engine.cols,
                    format_lanes=engine.lanes * engine.contexts, max_len=12,
                    row_tile_bits=engine.row_tile_bits, group_bits=engine.group_bits,
                    max_drift=engine.max_drift)


def job_beats(modes, m, k, rows):
    """Array beats of a GEMM: per weight tile and row tile, the tile's beats."""
    return sum(spec.beats(mac_spec.MODES[mode], k // spec.GROUP) for mode in modes) * -(-m // rows)


def withheld(job, tile):
    """``job`` with the weight blocks from ``tile`` on never sent (its commands still are)."""
    return {**job, "blocks": job["blocks"][:tile]}


def check_exact(out, job, beats):
    assert out["finished"], f"{len(out['rows'])} of {len(job['rows'])} rows"
    assert out["rows"] == job["rows"]
    assert out.get("extra", 0) == 0
    assert out["errors"] == 0
    assert out["beats"] == beats


@pytest.mark.parametrize("domain", ["sync", "dec"])
def test_clear_while_a_command_waits_for_its_block(domain):
    """Two weight tiles are commanded, only the first one's block is sent: its rows come out and
    the second command waits in the sequencer. ``i_clear``, then a GEMM of another shape."""
    rng = np.random.default_rng(21)
    dut = GemmEngine(**SMALL, decode_domain=domain)
    first = job_for(dut, rng, 4, 16, ["int8", "int4"])
    good = job_for(dut, rng, 3, 12, ["int2", "int8"])
    tile_rows = len(first["rows"]) // 2
    a, b = run_engine_phases(dut, [withheld(first, 1), good], expect_rows=[tile_rows, None],
                             stall=0.2, max_cycles=20_000, period=8e-9, decode_period=10e-9)
    assert a["finished"] and a["rows"] == first["rows"][:tile_rows] and not a["idle"]
    # The next job's inputs wait for o_idle: with one clock it rises after the engine's clear time.
    assert b["clear_cycles"] is not None
    if domain == "sync":
        assert b["clear_cycles"] == dut.clear_cycles
    check_exact(b, good, job_beats(["int2", "int8"], 3, 12, 2))


def test_harness_fails_when_o_idle_does_not_rise_after_a_clear():
    """The harness bounds its wait for ``o_idle`` after ``i_clear``: a limit one cycle short of
    the engine's clear time is an ``AssertionError`` naming the limit, not a hang or a silent pass."""
    rng = np.random.default_rng(24)
    dut = GemmEngine(**SMALL)
    jobs = [job_for(dut, rng, 2, 8, ["int8"]), job_for(dut, rng, 2, 8, ["int4"])]
    with pytest.raises(AssertionError, match=f"o_idle did not rise within {dut.clear_cycles - 1} cycles"):
        run_engine_phases(dut, jobs, clear_limit=dut.clear_cycles - 1, max_cycles=5000)


@pytest.mark.parametrize("domain, decode_period, clear_at, take_first, in_array", [
    ("sync", 8e-9, 120, True, False), ("sync", 8e-9, 350, False, True), ("sync", 8e-9, 520, True, True),
    ("dec", 10e-9, 400, True, True), ("dec", 40e-9, 800, True, False), ("dec", 40e-9, 1600, False, True),
    ("dec", 120e-9, 4000, True, False),
])
@pytest.mark.parametrize("prefetch", [False, True])
def test_clear_at_any_cycle(domain, decode_period, clear_at, take_first, in_array, prefetch):
    """The first GEMM's inputs stop and ``i_clear`` comes at a cycle of its run: its table or a
    block half decoded (``in_array`` False), or its beats in the MAC array with its rows taken or
    backed up (``take_first`` False). The engine becomes idle within its clear time (with a
    decoder 5 and 15 times slower than the array, after its acknowledge) and the next GEMM is
    exact."""
    rng = np.random.default_rng(23)
    dut = GemmEngine(**SMALL, decode_domain=domain, prefetch=prefetch)
    first = job_for(dut, rng, 6, 32, ["int8", "int4", "int8"])
    good = job_for(dut, rng, 5, 20, ["int4", "int2"])
    out = run_engine_cleared(dut, first, good, clear_at=clear_at, take_first=take_first, stall=0.1,
                             period=8e-9, decode_period=decode_period, max_cycles=3000)
    assert not out["at_clear"]["idle"] and (out["at_clear"]["beats"] > 0) == in_array
    assert out["clear_cycles"] is not None
    if domain == "sync":
        assert out["clear_cycles"] == dut.clear_cycles
    else:
        # Not idle before the decoder's acknowledge: DECODE_HOLD decoder cycles at least.
        assert out["clear_cycles"] >= max(dut.clear_cycles, dut.DECODE_HOLD * decode_period / 8e-9)
    check_exact(out, good, job_beats(["int4", "int2"], 5, 20, 2))


@pytest.mark.parametrize("array, decode, periods, limit", [
    ("sync", "sync", (8e-9,) * 3, 300),
    ("gemm", "dec", (40e-9, 7.9e-9, 10.1e-9), 100),
    ("gemm", "dec", (7.9e-9, 40e-9, 51e-9), 1500),
], ids=["one-domain", "three-domain-controller-slow", "three-domain-controller-fast"])
def test_crossing_flush_while_a_command_waits_for_its_block(array, decode, periods, limit):
    """As above behind :class:`EngineCrossing` (its flush is the clear): the first GEMM's run ends
    without its second block; the flush, then a GEMM of another shape."""
    rng = np.random.default_rng(22)
    dut = EngineCrossing(array_domain=array, decode_domain=decode, stage_depth=64, **SMALL)
    first = job_for(dut.engine, rng, 4, 16, ["int8", "int4"])
    good = job_for(dut.engine, rng, 6, 16, ["int4", "ternary"])
    # The first run cannot finish: it ends after ``limit`` controller cycles, about twice what
    # the whole job takes when its second block is sent (its first tile's rows are out by then).
    a, b = run_crossing(dut, [{**withheld(first, 1), "max_cycles": limit}, good], periods=periods,
                        stall=0.2, max_cycles=5000)
    assert not a["finished"] and a["rows"] == first["rows"][:len(first["rows"]) // 2]
    check_exact(b, good, job_beats(["int4", "ternary"], 6, 16, 2))


@pytest.mark.parametrize("array, decode", [("sync", "sync"), ("gemm", "dec")])
def test_crossing_flush_ends_with_the_engine_cleared(array, decode):
    """``o_clearing`` falls only once the engine's own clear is over: the engine is idle (it takes
    a command) in the cycle the flush ends, after at least its clear time."""
    dut = EngineCrossing(array_domain=array, decode_domain=decode, stage_depth=64, **SMALL)
    seen = {}

    async def tb(ctx):
        ctx.set(dut.i_clear, 1)
        await ctx.tick()
        ctx.set(dut.i_clear, 0)
        for cycle in range(1, 1000):
            _, _, clearing, idle = await ctx.tick().sample(dut.o_clearing, dut.engine.o_idle)
            if not clearing:
                seen.update(cycle=cycle, idle=idle)
                return

    sim = Simulator(dut)
    for domain, period in {"sync": 8e-9, array: 8e-9, decode: 10e-9}.items():
        sim.add_clock(period, domain=domain)
    sim.add_testbench(tb)
    sim.run()
    assert seen["idle"] and seen["cycle"] >= dut.engine.clear_cycles


@pytest.mark.parametrize("array, decode", [("sync", "sync"), ("gemm", "dec")])
def test_crossing_acknowledge_follows_the_engine_idle(array, decode):
    """The array domain's flush acknowledge is high only in a cycle after one in which the engine
    was idle (checked from an idle engine, whose clear starts a cycle after the flush reaches it:
    an acknowledge from the engine's idle before that is early)."""
    dut = EngineCrossing(array_domain=array, decode_domain=decode, stage_depth=64, **SMALL)
    seen = []

    async def tb(ctx):
        ctx.set(dut.i_clear, 1)
        await ctx.tick()
        ctx.set(dut.i_clear, 0)

    async def watch(ctx):
        idle_before = 0
        for _ in range(400):
            *_, ack, idle = await ctx.tick(array).sample(dut.cleared_a, dut.engine.o_idle)
            seen.append((ack, idle_before))
            idle_before = idle

    sim = Simulator(dut)
    for domain, period in {"sync": 8e-9, array: 8e-9, decode: 10e-9}.items():
        sim.add_clock(period, domain=domain)
    sim.add_testbench(tb)
    sim.add_testbench(watch)
    sim.run()
    assert any(ack for ack, _ in seen)
    assert all(idle for ack, idle in seen if ack)



def test_commands_wait_for_the_sequencer_root():
    """With the prefetch queue the sequencer's reset tree has a root register, so the sequencer
    leaves a reset a cycle after the command buffer: the buffer takes no command while the root is
    high. A mutant without that gate gives the held sequencer the first GEMM's first command, which
    is lost (the run does not reach its beats in the array)."""
    def run(cls):
        rng = np.random.default_rng(23)
        dut = cls(**SMALL, decode_domain="sync", prefetch=True)
        first = job_for(dut, rng, 6, 32, ["int8", "int4", "int8"])
        good = job_for(dut, rng, 5, 20, ["int4", "int2"])
        out = run_engine_cleared(dut, first, good, clear_at=520, take_first=True, stall=0.1,
                                 period=8e-9, decode_period=8e-9, max_cycles=3000)
        return out["at_clear"]["beats"] > 0 and not out["at_clear"]["idle"] and out["finished"] \
            and out["rows"] == good["rows"]

    assert run(GemmEngine)
    mutant = mutated("hw.gemm.engine", "GemmEngine", "self.i_clear | clearing | seq_root if",
                     "self.i_clear | clearing if")
    assert not run(mutant)
