"""GEMM engine: a systolic MAC array fed from block-RAM weight and activation buffers, the weights
decoded from Huffman streams (see :mod:`hw.gemm.engine`, :mod:`hw.gemm.spec`, ``docs/gemm.md``)."""

from ..blocks import BlockSpec, Param, declared_defaults
from . import spec
from .engine import GemmEngine

__all__ = ["spec", "GemmEngine", "BLOCKS"]

_DEFAULTS = declared_defaults(GemmEngine)

BLOCKS = [
    BlockSpec(
        name="gemm_engine",
        summary="GEMM engine: systolic R x C MAC array fed from block-RAM buffers, weights decoded "
                "from Huffman streams (double-buffered weight tiles reused across the batch)",
        factory=GemmEngine,
        params={
            "rows": Param(_DEFAULTS["rows"], "array rows (activation rows per row tile), 1..16"),
            "cols": Param(_DEFAULTS["cols"], "array columns (output channels per weight tile), even 2..16"),
            "max_k": Param(_DEFAULTS["max_k"], "longest reduction K held, multiple of 4, 4..4096"),
            "max_batch": Param(_DEFAULTS["max_batch"], "activation rows held, multiple of rows"),
            "lanes": Param(_DEFAULTS["lanes"], "Huffman decoder lanes, 1..8, dividing cols"),
            "contexts": Param(_DEFAULTS["contexts"], "decoder lanes: 1 one-cycle, 2 C-slow"),
            "max_len": Param(_DEFAULTS["max_len"], "maximum code length L, 8..16"),
            "decode_domain": Param(_DEFAULTS["decode_domain"],
                                   "decoder clock domain (sync: the array's; else an AsyncFIFO "
                                   "crosses)", kind=str),
            "primitives": Param(_DEFAULTS["primitives"],
                                "instantiate MULT18X18D (the ECP5 build); false: behavioural "
                                "multipliers (portable Verilog, simulation)", kind=bool),
        },
        synth_params={"rows": 2, "cols": 4, "max_k": 64, "max_batch": 4, "lanes": 2},
    ),
]
