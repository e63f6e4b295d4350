"""Run tiles through :class:`hw.mac.MacArray` in Amaranth's simulator, with random stalls on every stream.

Used by the unit tests and by the digits demo. One producer testbench per input stream (command,
activations, weights) and one consumer of results, each with its own seeded stalls, as
:mod:`sim.streams` prescribes.
"""

import random

from amaranth.lib import data
from amaranth.sim import Simulator

from hw.mac import spec
from sim.mac.golden import gemm_tiles, random_acts, random_weights
from sim.streams import stream_get, stream_put

__all__ = ["run_tiles", "payload_int", "expected_rows", "mixed_tiles", "short_tiles", "cycled_tiles"]


def payload_int(value):
    """A sampled payload (``data.Const`` or int) as a plain int of its bits."""
    if isinstance(value, data.Const):
        return value.as_value().value
    return int(value)


def run_tiles(dut, tiles, *, stall=0.0, seed=0, extra_rows=0, max_cycles=None, probe=None, top=None):
    """Feed ``tiles`` (dicts with ``cmd``, ``act``, ``wgt`` words, as from
    :func:`sim.mac.golden.gemm_tiles`) and collect result rows.

    ``extra_rows``: result rows expected beyond ``rows`` per defined-mode tile (normally 0);
    the number of result rows expected is ``rows`` for each tile whose mode is defined.
    ``top``: the design to simulate when ``dut`` is a part of it (default: ``dut`` alone).
    Returns ``{"rows": [unpacked result dicts], "cycles": n, "status": {...}}`` where ``cycles``
    counts clock cycles from the first command to the last result.
    """
    R, C, W = dut.rows, dut.cols, dut.acc_width
    n_rows = sum(R for t in tiles if spec.is_defined_mode(spec.unpack_cmd(t["cmd"], dut.count_bits)["mode"]))
    n_rows += extra_rows
    out = []
    cycles = [0, 0]
    status = {}

    async def cmd_producer(ctx):
        rng = random.Random(seed * 7 + 1)
        layout = dut.i_cmd.payload.shape()
        for t in tiles:
            await stream_put(ctx, dut.i_cmd, data.Const(layout, t["cmd"]), rng=rng, stall=stall)

    def beat_producer(stream_name, key, offset):
        async def producer(ctx):
            rng = random.Random(seed * 7 + offset)
            stream = getattr(dut, stream_name)
            for t in tiles:
                for word in t[key]:
                    await stream_put(ctx, stream, word, rng=rng, stall=stall)
        return producer

    async def consumer(ctx):
        rng = random.Random(seed * 7 + 4)
        for _ in range(n_rows):
            word = payload_int(await stream_get(ctx, dut.o_res, rng=rng, stall=stall))
            out.append(spec.unpack_res(word, rows=R, cols=C, acc_width=W))
        # Let the pipeline settle, then read the status.
        for _ in range(8):
            await ctx.tick()
        status["overflow"] = ctx.get(dut.o_overflow)
        status["mode_error"] = ctx.get(dut.o_mode_error)
        status["idle"] = ctx.get(dut.o_idle)

    async def counter(ctx):
        n = 0
        async for _ in ctx.tick():
            n += 1
            if len(out) == n_rows and cycles[1] == 0:
                cycles[1] = n
            if max_cycles is not None and n > max_cycles:
                raise TimeoutError(f"MAC array: {len(out)} of {n_rows} result rows after {n} cycles")

    sim = Simulator(dut if top is None else top)
    sim.add_clock(1e-8)
    sim.add_testbench(cmd_producer)
    sim.add_testbench(beat_producer("i_act", "act", 2))
    sim.add_testbench(beat_producer("i_wgt", "wgt", 3))
    sim.add_testbench(consumer)
    sim.add_testbench(counter, background=True)
    if probe is not None:
        sim.add_testbench(probe(dut), background=True)
    sim.run()
    return {"rows": out, "cycles": cycles[1], "status": status}


def expected_rows(tiles, rows):
    """The result rows :func:`run_tiles` should return for ``tiles`` (as from
    :func:`sim.mac.golden.gemm_tiles`): ``rows`` per tile of a defined mode, none for the others."""
    out = []
    for t in tiles:
        if not spec.is_defined_mode(spec.unpack_cmd(t["cmd"])["mode"]):
            continue
        for r in range(rows):
            out.append({"values": [int(v) for v in t["y"][r]], "overflow": bool(t["ovf"][r]), "row": r,
                        "last": r == rows - 1})
    return out


def mixed_tiles(rng, dut, n_tiles, *, modes=tuple(spec.MODES), tile_sat=None, k_range=(1, 40)):
    """``n_tiles`` random tiles for ``dut`` (a MAC array) in random modes, activation formats and
    lengths; ``tile_sat=None``: tile-saturating at random when ``dut.tile_k`` allows it."""
    tiles = []
    for _ in range(n_tiles):
        mode = rng.choice(modes)
        unsigned = bool(rng.integers(2))
        ts = (bool(rng.integers(2)) if tile_sat is None else tile_sat) and dut.tile_k > 0
        k = int(rng.integers(*k_range))
        x = random_acts(rng, (dut.rows, k), unsigned=unsigned)
        w = random_weights(rng, (dut.cols, k), mode)
        tiles += gemm_tiles(x, w, mode, rows=dut.rows, cols=dut.cols, act_unsigned=unsigned, tile_sat=ts,
                            acc_width=dut.acc_width, tile_k=dut.tile_k or spec.DEFAULT_TILE_K,
                            tile_bits=dut.tile_bits, count_bits=dut.count_bits)
    return tiles


def short_tiles(rng, dut, n_tiles=30):
    """``n_tiles`` tiles of 1 to ``dut.rows + 1`` beats, the modes in turn, int8 activations: tiles
    that end before the previous tile's results have left the array."""
    tiles = []
    modes = list(spec.MODES)
    for i in range(n_tiles):
        mode = modes[i % len(modes)]
        k = int(rng.integers(1, dut.rows + 2)) * spec.lanes(mode)
        tiles += gemm_tiles(random_acts(rng, (dut.rows, k)), random_weights(rng, (dut.cols, k), mode), mode,
                            rows=dut.rows, cols=dut.cols, acc_width=dut.acc_width,
                            tile_k=dut.tile_k or spec.DEFAULT_TILE_K, count_bits=dut.count_bits)
    return tiles


def cycled_tiles(rng, dut, n_tiles, beats):
    """``n_tiles`` tiles of exactly ``beats`` beats each, the modes in turn, int8 activations."""
    tiles = []
    modes = list(spec.MODES)
    for i in range(n_tiles):
        mode = modes[i % len(modes)]
        k = beats * spec.lanes(mode)
        tiles += gemm_tiles(random_acts(rng, (dut.rows, k)), random_weights(rng, (dut.cols, k), mode), mode,
                            rows=dut.rows, cols=dut.cols, acc_width=dut.acc_width,
                            tile_k=dut.tile_k or spec.DEFAULT_TILE_K, tile_bits=dut.tile_bits,
                            count_bits=dut.count_bits)
    return tiles
