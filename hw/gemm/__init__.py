"""GEMM engine: a systolic MAC array fed from block-RAM weight and activation buffers, the weights
decoded from Huffman streams (see :mod:`hw.gemm.engine`, :mod:`hw.gemm.spec`, ``docs/gemm.md``)."""

from ..blocks import BlockSpec, declared_params
from ..huffman.decoder import IMPLS
from . import spec
from .engine import GemmEngine

__all__ = ["spec", "GemmEngine", "BLOCKS"]

BLOCKS = [
    BlockSpec(name="gemm_engine", factory=GemmEngine,
        summary="GEMM engine: systolic R x C MAC array fed from block-RAM buffers, weights decoded "
                "from Huffman streams (double-buffered weight tiles reused across the batch)",
        params=declared_params(GemmEngine, """
            rows           array rows (activation rows per row tile), 1..16
            cols           array columns (output channels per weight tile), even 2..16
            max_k          longest reduction K held, multiple of 4, 4..4096
            max_batch      activation rows held, multiple of rows
            lanes          Huffman decoder lanes, 1..8, dividing cols
            contexts       decoder lanes: 1 one-cycle, 2 C-slow
            max_len        maximum code length L, 8..16
            impl           decoder lanes: comparator (fast, ECP5) or table (block-RAM lookup, compact,
                           for the iCE40UP5K; contexts=1)
            decode_domain  decoder clock domain (sync: the array's; else an AsyncFIFO crosses)
            primitives     instantiate MULT18X18D (the ECP5 build); false: behavioural multipliers
                           (portable Verilog, simulation)
        """, choices={"impl": IMPLS}),
        # A 2 x 4 array behind two decoder lanes: the smallest engine with several lanes and row
        # tiles, so the Verilator build and the cocotb tests stay short.
        smoke_test="sim.gemm.tb_engine",
        smoke_params={"rows": 2, "cols": 4, "max_k": 32, "max_batch": 6, "lanes": 2, "max_len": 12,
                      "decode_domain": "sync", "primitives": False},
        # The UP5K row of `edgelearn demo`: the smallest engine, with the compact decoder lane
        # (with comparator lanes it takes 104 % of the UP5K's logic cells at 2 x 2, L = 8).
        synth_params={"rows": 2, "cols": 2, "max_k": 64, "max_batch": 2, "lanes": 1, "max_len": 8,
                      "impl": "table"},
        # router1 does not converge on this row at seed 1 (47 arcs overused after 15 min, 92 % of
        # the logic cells); router2 routes it in about 90 s.
        synth_router="router2",
    ),
]
