"""Yosys cells (ECP5-85F, no place and route) of the ULX3S GEMM crossing's two registered stages
against the paths they replace, at the board's sizes (``hw/control/boards.py``'s ULX3S ``gemm``).

Run: ``python -m bench.bench_async_queue`` (three Yosys runs, one at a time, a few minutes).

1. The staging crossing (``stage_depth`` data beats): the library
   ``AsyncFIFO`` with a two-entry ``SkidBuffer`` behind it (the read side before) against
   ``hw.lib.async_queue.AsyncQueue`` (its block-RAM read address a register, three prefetch
   registers; the skid buffer is not needed behind it).
2. The result rows' ``SkidBuffer`` in front of their crossing FIFO (the cells it adds).
3. ``--crossing``: the board's whole ``EngineCrossing`` (engine and crossings, every domain
   ``sync``; one more Yosys run, several minutes).

Both domains of a crossing are ``sync`` here (Yosys counts the same cells: the synchronizers are
flip-flops either way); the block sits in the synthesis wrapper's registers
(:func:`boards.synth.yosys_cells`).
"""

import argparse
import inspect

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import AsyncFIFO
from amaranth.lib.wiring import In, Out

from boards.synth import yosys_cells
from hw.control.boards import check_board
from hw.gemm import GemmEngine
from hw.gemm.crossing import EngineCrossing
from hw.huffman.block_parser import beat_layout
from hw.lib.async_queue import AsyncQueue
from hw.lib.stream import SkidBuffer
from hw.mac.array import res_layout


class FifoThenSkid(wiring.Component):
    """``amaranth.lib.fifo.AsyncFIFO`` read into a two-entry skid buffer (the staging read side
    before ``AsyncQueue``), behind the queue's stream interface."""

    def __init__(self, shape, depth):
        self._shape, self._depth = shape, depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "w_level": Out(range(depth + 1))})

    def elaborate(self, platform):
        m = Module()
        width = len(self.i.payload.as_value())
        m.submodules.fifo = f = AsyncFIFO(width=width, depth=self._depth, w_domain="sync", r_domain="sync")
        m.submodules.skid = skid = SkidBuffer(self._shape)
        m.d.comb += [f.w_data.eq(self.i.payload), f.w_en.eq(self.i.valid), self.i.ready.eq(f.w_rdy),
                     self.w_level.eq(f.w_level),
                     skid.i.payload.eq(f.r_data), skid.i.valid.eq(f.r_rdy), f.r_en.eq(skid.i.ready)]
        wiring.connect(m, skid.o, wiring.flipped(self.o))
        return m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crossing", action="store_true",
                    help="also the board's whole EngineCrossing, every domain sync (several minutes)")
    args = ap.parse_args(argv)
    g = check_board("ulx3s").gemm
    # The payloads as EngineCrossing builds them from the board's engine (its defaults for what the
    # board does not set).
    defaults = {k: p.default for k, p in inspect.signature(GemmEngine).parameters.items()}
    g = {**defaults, **g}
    beat, depth = beat_layout(g["lanes"] * g["contexts"]), g["stage_depth"]
    res = res_layout(g["rows"], g["cols"], g["acc_width"])
    rows = [
        ("staging: AsyncFIFO + SkidBuffer", FifoThenSkid(beat, depth)),
        ("staging: AsyncQueue", AsyncQueue(beat, depth)),
        ("result: SkidBuffer", SkidBuffer(res)),
    ]
    print(f"# ULX3S GEMM crossing stages, Yosys synth_ecp5 cells (beat {beat.size} bits x {depth}, "
          f"result row {res.size} bits)\n")
    keys = ("lut4", "carry", "ff", "bram", "lutram")
    print(f"{'block':<34}" + "".join(f"{k:>8}" for k in keys))
    for name, block in rows:
        cells = yosys_cells(block, device="ecp5-85f", name=name.split(":")[0] + "_" + type(block).__name__)
        print(f"{name:<34}" + "".join(f"{cells.get(k, 0):>8}" for k in keys))
    if args.crossing:
        params = {k: v for k, v in check_board("ulx3s").gemm.items() if k not in ("handler", "result_depth")}
        crossing = EngineCrossing(**{**params, "array_domain": "sync", "decode_domain": "sync"})
        cells = yosys_cells(crossing, device="ecp5-85f", name="ulx3s_engine_crossing")
        print(f"{'EngineCrossing (board, one clock)':<34}" + "".join(f"{cells.get(k, 0):>8}" for k in keys))


if __name__ == "__main__":
    main()
