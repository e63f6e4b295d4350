"""End to end: Huffman-compressed weights -> decoder -> repacker -> MAC array GEMM, in Amaranth's simulator.

:class:`CompressedGemm` wires :class:`hw.huffman.HuffmanDecoder`, :class:`hw.huffman.WeightRepacker`
and :class:`hw.mac.MacArray`: the array's weight stream comes only from the compressed blocks.
:func:`compress_tiles` encodes the weights of :func:`sim.mac.golden.gemm_tiles` tiles (one block per
tile, one table for the whole matrix, raw blocks where coding does not pay), :func:`run_compressed_gemm`
runs everything with random stalls and returns ``Y``, to be compared with numpy.
"""

import random

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.huffman import spec
from hw.huffman.decoder import HuffmanDecoder
from hw.huffman.repack import WeightRepacker, weight_symbol_order
from hw.mac import MacArray
from hw.mac import spec as mac_spec
from sim.huffman import golden as g
from sim.mac.golden import gemm_tiles
from sim.streams import stream_get, stream_put

__all__ = ["CompressedGemm", "compress_tiles", "run_compressed_gemm"]


class CompressedGemm(wiring.Component):
    """Decoder + repacker + MAC array: ``i_cmd``/``i_act`` as the array's, weights from ``i_data``."""

    def __init__(self, *, lanes=2, max_len=12, rows=4, cols=4, acc_width=24):
        self.dec = HuffmanDecoder(max_len=max_len, lanes=lanes, raw_bits=8, fifo_depth=16)
        self.rep = WeightRepacker(lanes=lanes, cols=cols, raw_bits=8)
        self.mac = MacArray(rows=rows, cols=cols, acc_width=acc_width, tile_k=0)
        mac = self.mac.signature.members
        super().__init__({
            "i_cmd": mac["i_cmd"], "i_act": mac["i_act"], "o_res": mac["o_res"],
            "i_data": self.dec.signature.members["i_data"], "i_table": self.dec.signature.members["i_table"],
            "i_mode": In(mac_spec.MODE_BITS), "o_errors": Out(7),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dec, m.submodules.rep, m.submodules.mac = self.dec, self.rep, self.mac
        wiring.connect(m, wiring.flipped(self.i_data), self.dec.i_data)
        wiring.connect(m, wiring.flipped(self.i_table), self.dec.i_table)
        wiring.connect(m, self.dec.o_data, self.rep.i_sym)
        wiring.connect(m, self.rep.o_wgt, self.mac.i_wgt)
        wiring.connect(m, wiring.flipped(self.i_cmd), self.mac.i_cmd)
        wiring.connect(m, wiring.flipped(self.i_act), self.mac.i_act)
        wiring.connect(m, self.mac.o_res, wiring.flipped(self.o_res))
        m.d.comb += [self.rep.i_mode.eq(self.i_mode), self.o_errors.eq(self.dec.o_errors)]
        return m


def compress_tiles(tiles, *, cols, mode, n_lanes, max_len, packed=False):
    """Table words, data beats and stats for the weight beats of ``tiles`` (one block per tile).
    ``packed``: one symbol per packed weight byte (int4: a pair of weights)."""
    seqs = [weight_symbol_order(t["wgt"], cols, mode, packed=packed) for t in tiles]
    table = g.build_table([s for q in seqs for s in q], max_len)
    codes = spec.canonical_codes(*table)
    bits = 8 if packed else mac_spec.WEIGHT_BITS[mac_spec.mode_code(mode)]
    beats, coded, raw_blocks = [], 0, 0
    for q in seqs:
        cost = sum(codes[s][1] for s in q)
        if cost >= 8 * len(q):                        # raw blocks hold R = 8 bits per symbol
            b, info = g.encode_block(q, n_lanes=n_lanes, mode=spec.MODE_RAW, r=8)
            raw_blocks += 1
        else:
            b, info = g.encode_block(q, n_lanes=n_lanes, mode=spec.MODE_INT, table=table)
        beats += b
        coded += sum(info["bitlens"])
    stats = {"symbols": sum(map(len, seqs)), "coded_bits": coded, "raw_bits": bits * sum(map(len, seqs)),
             "beats": len(beats), "raw_blocks": raw_blocks}
    return spec.serialize_table(*table, max_len), beats, stats


def run_compressed_gemm(x, w, mode, *, n_lanes=2, max_len=12, rows=4, cols=4, stall=0.2, seed=0,
                        packed=False):
    """``Y = X · Wᵀ`` with W streamed compressed; returns ``(Y, stats)`` (``Y`` M x N int64).
    ``packed``: code whole packed weight bytes (int4 pairs); the repacker passes bytes (int8 mode)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    tiles = gemm_tiles(x, w, mode, rows=rows, cols=cols, act_unsigned=bool((x >= 0).all()))
    table, beats, stats = compress_tiles(tiles, cols=cols, mode=mode, n_lanes=n_lanes, max_len=max_len,
                                         packed=packed)
    dut = CompressedGemm(lanes=n_lanes, max_len=max_len, rows=rows, cols=cols)
    results = []
    state = {"cycles": 0}
    cmd_layout = dut.i_cmd.payload.shape()

    done = set()

    def producer(name, payloads, offset):
        async def run(ctx):
            rng = random.Random(seed * 11 + offset)
            for p in payloads:
                await stream_put(ctx, getattr(dut, name), p, rng=rng, stall=stall)
            done.add(name)
        return run

    async def consumer(ctx):
        rng = random.Random(seed * 11 + 9)
        ctx.set(dut.i_mode, mac_spec.MODE_INT8 if packed else mac_spec.mode_code(mode))
        for _ in range(rows * len(tiles)):
            payload = await stream_get(ctx, dut.o_res, rng=rng, stall=stall)
            results.append(payload.as_value().value if hasattr(payload, "as_value") else int(payload))
        state["errors"] = ctx.get(dut.o_errors)
        while len(done) < 4:              # every input taken (and no producer left mid-handshake)
            await ctx.tick()

    async def clock(ctx):
        while True:
            await ctx.tick()
            state["cycles"] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(clock, background=True)
    feeds = {
        "i_cmd": [data.Const(cmd_layout, t["cmd"]) for t in tiles],
        "i_act": [a for t in tiles for a in t["act"]],
        "i_data": [{"data": list(b.words), "first": int(b.first)} for b in beats],
        "i_table": [{"data": t, "first": int(i == 0)} for i, t in enumerate(table)],
    }
    for offset, (name, payloads) in enumerate(feeds.items()):
        sim.add_testbench(producer(name, payloads, offset), background=True)
    sim.add_testbench(consumer)
    limit = 2000 + 20 * (len(beats) + sum(len(t["act"]) for t in tiles))
    while sim.advance():
        if state["cycles"] > limit:
            raise AssertionError("compressed GEMM did not finish (hang)")
    y = np.zeros((len(tiles[-1:]) and (max(t["m0"] for t in tiles) + rows),
                  max(t["n0"] for t in tiles) + cols), dtype=np.int64)
    for i, t in enumerate(tiles):
        for r in range(rows):
            res = mac_spec.unpack_res(results[i * rows + r], rows=rows, cols=cols, acc_width=24)
            y[t["m0"] + r, t["n0"]:t["n0"] + cols] = res["values"]
    stats.update(cycles=state["cycles"], errors=state["errors"])
    return y[:len(x), :len(w)], stats
