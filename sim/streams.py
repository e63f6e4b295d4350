"""Shared helpers for driving ``amaranth.lib.stream`` interfaces from Amaranth testbenches.

One producer and one consumer testbench per stream; random stalls on both sides come from a
seeded ``random.Random`` (pass ``stall=0`` for none). These are the only stream helpers the
project's Amaranth tests use.
"""

import random

from amaranth.sim import Simulator

__all__ = ["stream_put", "stream_offer", "stream_get", "stream_put_all", "stream_get_n", "simulate",
           "run_streams"]


async def _stall(ctx, rng, stall, domain="sync"):
    if rng is not None and stall > 0:
        while rng.random() < stall:
            await ctx.tick(domain)


def _never():
    return False


async def stream_put(ctx, stream, payload, *, rng=None, stall=0.0, domain="sync"):
    """Offer ``payload`` on ``stream`` (after a random stall) and wait until it is accepted;
    ``domain``: the clock domain the stream belongs to. (:func:`stream_offer` never withdrawn.)"""
    await stream_offer(ctx, stream, payload, _never, rng=rng, stall=stall, domain=domain)


async def stream_offer(ctx, stream, payload, stop, *, rng=None, stall=0.0, domain="sync"):
    """As :func:`stream_put`, but the offer is withdrawn once ``stop()`` is true (asked every
    cycle, after the cycle's clock edge): returns whether ``payload`` was taken."""
    await _stall(ctx, rng, stall, domain)
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    while True:
        _, _, ready = await ctx.tick(domain).sample(stream.ready)
        if ready or stop():
            break
    ctx.set(stream.valid, 0)
    return bool(ready)


async def stream_get(ctx, stream, *, rng=None, stall=0.0):
    """Accept one payload from ``stream`` (after a random stall) and return it."""
    await _stall(ctx, rng, stall)
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


async def stream_put_all(ctx, stream, payloads, *, rng=None, stall=0.0, domain="sync"):
    for p in payloads:
        await stream_put(ctx, stream, p, rng=rng, stall=stall, domain=domain)


async def stream_get_n(ctx, stream, n, *, rng=None, stall=0.0):
    return [await stream_get(ctx, stream, rng=rng, stall=stall) for _ in range(n)]


def simulate(dut, *testbenches, period=1e-6):
    """Simulate ``dut`` with one clock of ``period`` seconds and the ``async def tb(ctx)``
    testbenches, until every testbench has returned."""
    sim = Simulator(dut)
    sim.add_clock(period)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()


def run_streams(dut, feeds=(), drains=(), *, stall=0.0, seed=0, period=1e-6):
    """Stream payloads through ``dut`` and collect what comes out.

    ``feeds``: ``[(input stream, payloads)]``, each sent by its own producer; ``drains``:
    ``[(output stream, count)]``, each taken by its own consumer. Every producer and consumer
    stalls at random with probability ``stall`` (producer ``i`` seeded ``seed + 2*i``, consumer
    ``i`` ``seed + 2*i + 1``). Returns the list of payloads each drain received.
    """
    got = [[] for _ in drains]

    def producer(stream, payloads, rng):
        async def tb(ctx):
            await stream_put_all(ctx, stream, payloads, rng=rng, stall=stall)
        return tb

    def consumer(stream, n, rng, out):
        async def tb(ctx):
            out.extend(await stream_get_n(ctx, stream, n, rng=rng, stall=stall))
        return tb

    tbs = [producer(s, p, random.Random(seed + 2 * i)) for i, (s, p) in enumerate(feeds)]
    tbs += [consumer(s, n, random.Random(seed + 2 * i + 1), out)
            for i, ((s, n), out) in enumerate(zip(drains, got))]
    simulate(dut, *tbs, period=period)
    return got
