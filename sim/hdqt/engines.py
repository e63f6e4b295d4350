"""Amaranth testbench helpers for the HDQT layer's engines (hw/hdqt/*_engine.py): a job driver that plays
the :class:`hw.hdqt.jobs.JobSequencer`, and buffer models on the engines' RAM ports."""

from hw.hdqt.jobs import SETUP_CYCLES

__all__ = ["run_job", "ram_reader", "ram_writer"]


async def run_job(ctx, ctl, job, *, at_finish=None, max_cycles=100_000):
    """Run job ``job`` on an engine's job port (``ctl``) as the sequencer does: ``start`` for a cycle,
    :data:`~hw.hdqt.jobs.SETUP_CYCLES` cycles of ``act`` (``setup_end`` in the last), then ``run``
    until the engine raises ``finish``; ``at_finish(ctx)`` is called in that cycle (where the job's
    results must be complete). Returns the cycles of the run."""
    ctx.set(ctl.job, job)
    ctx.set(ctl.start, 1)
    await ctx.tick()
    ctx.set(ctl.start, 0)
    ctx.set(ctl.act, 1)
    for left in range(SETUP_CYCLES, 0, -1):
        ctx.set(ctl.setup_end, left == 1)
        await ctx.tick()
    ctx.set(ctl.setup_end, 0)
    ctx.set(ctl.run, 1)
    cycles = 1
    while not ctx.get(ctl.finish):
        await ctx.tick()
        cycles += 1
        assert cycles < max_cycles, f"job {job} did not finish in {max_cycles} cycles"
    if at_finish is not None:
        at_finish(ctx)
    await ctx.tick()
    ctx.set(ctl.run, 0)
    ctx.set(ctl.act, 0)
    return cycles


def ram_reader(port, words):
    """A synchronous RAM read port on ``port`` (``addr``, ``en``, ``data``): ``data`` becomes
    ``words[addr]`` the cycle after ``en``, and holds otherwise (a process for ``add_process``)."""
    async def proc(ctx):
        async for _, _, en, addr in ctx.tick().sample(port.en, port.addr):
            if en:
                ctx.set(port.data, words[addr])
    return proc


def ram_writer(port, mem, lane_bits=None):
    """Record the writes on ``port`` (``addr``, ``data``, ``en``) into the dict ``mem``: ``mem[addr] =
    data`` (``lane_bits`` None) or ``mem[addr, lane] = lane's bits`` per enabled lane."""
    async def proc(ctx):
        async for _, _, en, addr, data in ctx.tick().sample(port.en, port.addr, port.data):
            if lane_bits is None:
                if en:
                    mem[addr] = data
                continue
            for ln in range(len(port.en)):
                if (en >> ln) & 1:
                    mem[addr, ln] = (data >> (ln * lane_bits)) & ((1 << lane_bits) - 1)
    return proc
