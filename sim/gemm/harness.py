"""Amaranth-simulator harness of :class:`hw.gemm.GemmEngine` (tests and bench share it).

One producer testbench per input stream (seeded random stalls, :mod:`sim.streams`; the decoder's
streams in its own clock domain when the engine has one) and one consumer for ``o_res``. The
consumer gives up after ``max_cycles``, so an engine that hangs fails instead of blocking.
Several jobs can run one after the other with an ``i_clear`` pulse between them.
"""

import math
import random

from amaranth.lib import data
from amaranth.sim import Simulator

from sim.streams import stream_offer, stream_put, stream_put_all

__all__ = ["run_engine", "run_engine_phases", "run_engine_cleared", "run_crossing"]

#: :func:`run_engine_phases` and the cocotb testbench (:mod:`sim.gemm.tb_engine`) fail when ``o_idle``
#: has not risen this many times the engine's ``clear_cycles`` after an ``i_clear`` pulse, instead of
#: letting the next job's inputs wait forever.
CLEAR_LIMIT_FACTOR = 4


def run_engine(dut, job, *, expect_rows=None, **kw):
    """Run ``job`` (:func:`sim.gemm.golden.gemm_job`) through ``dut``; see :func:`run_engine_phases`
    (``expect_rows``: rows to wait for, default all of the job's)."""
    return run_engine_phases(dut, [job], expect_rows=[expect_rows], **kw)[0]


def run_engine_phases(dut, jobs, *, stall=0.0, stall_out=None, seed=0, period=8e-9, decode_period=None,
                      max_cycles=200_000, idle_cycles=64, clear_limit=None, expect_rows=None):
    """Run ``jobs`` one after the other; between two, once the first's rows are out and the engine
    has been quiet for ``idle_cycles``, pulse ``i_clear`` and wait for ``o_idle`` before any input
    of the next job is offered (as the cocotb testbench, :mod:`sim.gemm.tb_engine`, does).

    ``period`` / ``decode_period``: the clocks of the array's and the decoder's domains (the latter
    only if the engine has a decode domain). ``stall`` is the stall probability of every producer,
    ``stall_out`` of the consumer (default ``stall``). ``clear_limit``: array cycles after the pulse
    by which ``o_idle`` must have risen, else ``AssertionError`` (default :data:`CLEAR_LIMIT_FACTOR`
    times the engine's ``clear_cycles``, times the decoder's clock period in array periods, rounded
    up, with a decode domain). Returns per job a dict: ``rows`` (``(values, overflow)`` per result
    row), ``cycles`` (array cycles from the job's start to its last row), ``finished``, ``extra``
    (rows offered after the expected ones), ``clear_cycles`` (array cycles from the ``i_clear``
    pulse before the job to ``o_idle``, the pulse's cycle being cycle 0; None for the first job),
    and at its end ``errors``, ``overflow``, ``beats``, ``idle``.
    """
    expect = [len(job["rows"]) if n is None else n
              for job, n in zip(jobs, expect_rows or [None] * len(jobs), strict=True)]
    stall_out = stall if stall_out is None else stall_out
    outs = [{"rows": [], "cycles": None, "finished": False, "extra": 0, "clear_cycles": None} for _ in jobs]
    phase = [0]
    if clear_limit is None:
        slower = 1 if dut.decode_domain == "sync" else math.ceil((decode_period or period) / period)
        clear_limit = CLEAR_LIMIT_FACTOR * dut.clear_cycles * max(1, slower)
    sim = _engine_simulator(dut, period, decode_period)

    def producer(stream, payloads_of, k, domain="sync"):
        async def tb(ctx):
            rng = random.Random(seed + k)
            for p, job in enumerate(jobs):
                while phase[0] < p:
                    await ctx.tick(domain)
                await stream_put_all(ctx, stream, payloads_of(job), rng=rng, stall=stall, domain=domain)
        return tb

    for k, (stream, payloads_of, domain) in enumerate(_engine_feeds(dut)):
        sim.add_testbench(producer(stream, payloads_of, k + 1, domain), background=True)

    async def consumer(ctx):
        rng = random.Random(seed + 5)
        for p, out in enumerate(outs):
            await _collect(ctx, dut, out, expect[p], rng, stall_out, max_cycles, idle_cycles)
            if p + 1 < len(outs):
                cycles = await _clear(ctx, dut, clear_limit)
                if cycles is None:
                    raise AssertionError(f"o_idle did not rise within {clear_limit} cycles of the "
                                         f"i_clear pulse after job {p}")
                outs[p + 1]["clear_cycles"] = cycles
                phase[0] = p + 1

    sim.add_testbench(consumer)
    sim.run()
    return outs


def run_crossing(dut, jobs, *, periods=(40e-9, 7.9e-9, 7.9e-9), stall=0.0, seed=0, max_cycles=100_000):
    """Run ``jobs`` through an :class:`hw.gemm.crossing.EngineCrossing` as its handler does, with an
    ``i_clear`` (flush) before each job, all streams written and read in ``sync``.

    ``periods``: the clocks of ``sync``, the array's and the decoder's domain (seconds; a domain
    named ``sync`` takes the first). Per job: the table, commands and activations are offered with
    random stalls while the weight beats are staged; then ``i_run`` rises and the run lasts until the
    snapshot says the engine took every command and is idle, every staged beat was taken and every
    row it wrote came out (as the handler's ``GEMM_RUN``), or ``max_cycles`` of ``sync``. Returns
    per job a dict: ``rows``, ``finished``, and the snapshot's ``cycles``, ``beats``, ``errors``,
    ``overflow`` at the end of the run. A job's ``stale_beats`` (optional) are staged after its run
    and never run: the next flush must discard them; its ``max_cycles`` (optional) bounds its run
    instead of ``max_cycles``; its ``hold_results`` (optional): no result row is taken until the
    snapshot says the engine took every command and is idle (``rows_at_idle``: the snapshot's
    ``o_rows`` then), or at all if ``"never"``, or (an int) for that many ``sync`` cycles of the run.
    """
    outs = []
    sim = Simulator(dut)
    sim.add_clock(periods[0])
    clocked = {"sync"}
    for domain, period in ((dut.array_domain, periods[1]), (dut.decode_domain, periods[2])):
        if domain not in clocked:
            sim.add_clock(period, domain=domain)
            clocked.add(domain)
    layout = dut.i_cmd.payload.shape()

    async def tb(ctx):
        rng = random.Random(seed)
        for job in jobs:
            ctx.set(dut.i_clear, 1)
            await ctx.tick()
            ctx.set(dut.i_clear, 0)
            for _ in range(max_cycles):
                if not ctx.get(dut.o_clearing):
                    break
                await ctx.tick()
            else:
                outs.append({"rows": [], "finished": False, "flushed": False})
                return
            await stream_put_all(ctx, dut.i_table, _table_words(job), rng=rng, stall=stall)
            await stream_put(ctx, dut.i_cmd, data.Const(layout, job["cmds"][0]), rng=rng, stall=stall)
            await stream_put_all(ctx, dut.i_act, job["acts"], rng=rng, stall=stall)
            await stream_put_all(ctx, dut.i_stage, _beats(job["blocks"]), rng=rng, stall=stall)
            ctx.set(dut.i_run, 1)
            out = {"rows": [], "finished": False}
            cmds = list(job["cmds"][1:])
            cycle = 0
            hold = job.get("hold_results", False)
            hold_cycles = hold if type(hold) is int else None
            while cycle < job.get("max_cycles", max_cycles):
                if hold_cycles is not None and cycle >= hold_cycles:
                    hold = False
                ctx.set(dut.i_cmd.valid, bool(cmds))
                if cmds:
                    ctx.set(dut.i_cmd.payload, data.Const(layout, cmds[0]))
                ready = not (stall and rng.random() < stall) and not hold
                ctx.set(dut.o_res.ready, ready)
                _, _, *s = await ctx.tick().sample(
                    dut.i_cmd.ready, dut.o_res.valid, dut.o_res.payload, dut.o_fresh, dut.o_idle, dut.o_cmds,
                    dut.o_stage_level, dut.o_rows)
                cmd_ready, res_valid, res, fresh, idle, n_cmds, level, n_rows = s
                cycle += 1
                if cmds and cmd_ready:
                    cmds.pop(0)
                if res_valid and ready:
                    out["rows"].append(([int(v) for v in res.data], bool(res.overflow)))
                if hold is True and not cmds and fresh and idle and n_cmds == len(job["cmds"]) % 65536:
                    out["rows_at_idle"], hold = n_rows, False
                done = (not cmds and fresh and idle and n_cmds == len(job["cmds"]) % 65536
                        and level == 0 and n_rows == len(out["rows"]) % 65536)
                if done:
                    out["finished"] = True
                    break
            ctx.set(dut.i_cmd.valid, 0)
            ctx.set(dut.o_res.ready, 0)
            out.update(cycles=ctx.get(dut.o_cycles), beats=ctx.get(dut.o_beats), errors=ctx.get(dut.o_errors),
                       overflow=ctx.get(dut.o_overflow), sync_cycles=cycle,
                       stage_level=ctx.get(dut.o_stage_level), cmds=ctx.get(dut.o_cmds),
                       idle=ctx.get(dut.o_idle), fresh=ctx.get(dut.o_fresh))
            ctx.set(dut.i_run, 0)
            await ctx.tick().repeat(8)
            # Beats staged after the run (never run): the next flush must discard them.
            await stream_put_all(ctx, dut.i_stage, _beats([job.get("stale_beats", [])]))
            outs.append(out)

    sim.add_testbench(tb)
    sim.run()
    return outs


def run_engine_cleared(dut, first, second, *, clear_at, take_first=True, stall=0.0, seed=0, period=8e-9,
                       decode_period=None, max_cycles=20_000, idle_cycles=64):
    """Offer ``first`` (a job) to ``dut``, stop offering and pulse ``i_clear`` ``clear_at`` array
    cycles later whatever the engine is doing (taking the results of ``first`` if ``take_first``,
    else none: they back up in the array), wait for ``o_idle`` (at most ``max_cycles``), then run
    ``second`` as :func:`run_engine_phases` does. Returns ``second``'s dict as there, with
    ``clear_cycles``: the array cycles from the pulse to ``o_idle`` (None: it never rose), and
    ``at_clear``: ``beats`` (``o_beats``), ``idle``, ``res_valid`` in the pulse's cycle."""
    phase, stop = [0], [False]
    out = {"rows": [], "cycles": None, "finished": False, "extra": 0, "clear_cycles": None}
    sim = _engine_simulator(dut, period, decode_period)

    def producer(stream, payloads_of, k, domain):
        async def tb(ctx):
            rng = random.Random(seed + k)
            for p, job in enumerate((first, second)):
                while phase[0] < p:
                    await ctx.tick(domain)
                for payload in payloads_of(job):
                    if not await stream_offer(ctx, stream, payload, lambda p=p: p == 0 and stop[0],
                                              rng=rng, stall=stall, domain=domain):
                        break
        return tb

    for k, (stream, payloads_of, domain) in enumerate(_engine_feeds(dut)):
        sim.add_testbench(producer(stream, payloads_of, k + 1, domain), background=True)

    async def consumer(ctx):
        rng = random.Random(seed + 5)
        ctx.set(dut.o_res.ready, take_first)
        await ctx.tick().repeat(clear_at)
        stop[0] = True
        await ctx.tick().repeat(2)          # the producers withdraw (the slower clock's cycle)
        out["at_clear"] = {"beats": ctx.get(dut.o_beats), "idle": ctx.get(dut.o_idle),
                           "res_valid": ctx.get(dut.o_res.valid)}
        out["clear_cycles"] = await _clear(ctx, dut, max_cycles - 1)
        if out["clear_cycles"] is None:
            return
        phase[0] = 1
        await _collect(ctx, dut, out, len(second["rows"]), rng, stall, max_cycles, idle_cycles)

    sim.add_testbench(consumer)
    sim.run()
    return out


async def _clear(ctx, dut, limit):
    """Pulse ``i_clear`` for one cycle (cycle 0) and wait for ``o_idle``: returns the cycle it rose
    in, after a tick in that cycle (the caller may drive inputs), or None if it did not rise by
    cycle ``limit``."""
    ctx.set(dut.i_clear, 1)
    await ctx.tick()
    ctx.set(dut.i_clear, 0)
    for cycle in range(1, limit + 1):
        _, _, idle = await ctx.tick().sample(dut.o_idle)
        if idle:
            return cycle
    return None


def _engine_simulator(dut, period, decode_period):
    """A simulator of engine ``dut`` with the array's clock and, if it has one, the decoder's."""
    sim = Simulator(dut)
    sim.add_clock(period)
    if dut.decode_domain != "sync":
        sim.add_clock(decode_period or period, domain=dut.decode_domain)
    return sim


def _engine_feeds(dut):
    """``[(input stream, payloads of a job, clock domain)]`` of the engine's four input streams."""
    dom, layout = dut.decode_domain, dut.i_cmd.payload.shape()
    return [
        (dut.i_table, _table_words, dom),
        (dut.i_data, lambda job: _beats(job["blocks"]), dom),
        (dut.i_cmd, lambda job: [data.Const(layout, c) for c in job["cmds"]], "sync"),
        (dut.i_act, lambda job: job["acts"], "sync"),
    ]


def _table_words(job):
    """The table stream's payloads of ``job``."""
    return [{"data": w, "first": int(f)} for w, f in job["table"]]


def _beats(blocks):
    """The weight beats' payloads of ``blocks`` (each a sequence of beats), in order."""
    return [{"data": list(b.words), "first": int(b.first)} for blk in blocks for b in blk]


async def _collect(ctx, dut, out, n, rng, stall, max_cycles, idle_cycles):
    """Take ``n`` result rows into ``out`` (giving up after ``max_cycles``), count the rows offered
    in the next ``idle_cycles``, then read the status outputs into ``out``."""
    cycle = 0
    while len(out["rows"]) < n and cycle < max_cycles:
        ready = not (stall and rng.random() < stall)
        ctx.set(dut.o_res.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(dut.o_res.valid, dut.o_res.payload)
        cycle += 1
        if valid and ready:
            out["rows"].append(([int(v) for v in payload.data], bool(payload.overflow)))
            out["cycles"] = cycle
    out["finished"] = len(out["rows"]) == n
    ctx.set(dut.o_res.ready, 1)
    for _ in range(idle_cycles):
        _, _, valid = await ctx.tick().sample(dut.o_res.valid)
        out["extra"] += int(valid)
    out.update(errors=ctx.get(dut.o_errors), overflow=ctx.get(dut.o_overflow),
               beats=ctx.get(dut.o_beats), idle=ctx.get(dut.o_idle))

