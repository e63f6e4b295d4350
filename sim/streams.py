"""Shared helpers for driving ``amaranth.lib.stream`` interfaces from Amaranth testbenches.

One producer and one consumer testbench per stream; random stalls on both sides come from a
seeded ``random.Random`` (pass ``stall=0`` for none). These are the only stream helpers the
project's Amaranth tests use.
"""

__all__ = ["stream_put", "stream_get", "stream_put_all", "stream_get_n"]


async def _stall(ctx, rng, stall):
    if rng is not None and stall > 0:
        while rng.random() < stall:
            await ctx.tick()


async def stream_put(ctx, stream, payload, *, rng=None, stall=0.0):
    """Offer ``payload`` on ``stream`` (after a random stall) and wait until it is accepted."""
    await _stall(ctx, rng, stall)
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, *, rng=None, stall=0.0):
    """Accept one payload from ``stream`` (after a random stall) and return it."""
    await _stall(ctx, rng, stall)
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


async def stream_put_all(ctx, stream, payloads, *, rng=None, stall=0.0):
    for p in payloads:
        await stream_put(ctx, stream, p, rng=rng, stall=stall)


async def stream_get_n(ctx, stream, n, *, rng=None, stall=0.0):
    return [await stream_get(ctx, stream, rng=rng, stall=stall) for _ in range(n)]
