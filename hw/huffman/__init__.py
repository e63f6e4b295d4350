"""Huffman weight decoder: length-limited canonical Huffman codes decoded at one symbol per cycle per
lane, with run-time double-buffered tables, sticky error flags and a repacker into the MAC array's
packed-weight stream.

See :mod:`hw.huffman.spec` for the format (the one definition shared with the golden model),
:mod:`hw.huffman.decoder` for the N-lane decoder, :mod:`hw.huffman.lane` and
:mod:`hw.huffman.lane_cslow` for the one-cycle and C-slow decode loops (their common parts in
:mod:`hw.huffman.lane_step`), :mod:`hw.huffman.table_loader`, :mod:`hw.huffman.block_parser` and
:mod:`hw.huffman.repack`.
"""

from ..blocks import BlockSpec, declared_params
from . import spec
from .decoder import IMPLS, HuffmanDecoder
from .repack import WeightRepacker

__all__ = ["spec", "HuffmanDecoder", "WeightRepacker", "BLOCKS"]

BLOCKS = [
    BlockSpec(name="huffman_decoder", factory=HuffmanDecoder,
        summary="canonical Huffman weight decoder: N lanes x 1 symbol/cycle, code length <= L, "
                "double-buffered run-time tables, error flags",
        params=declared_params(HuffmanDecoder, """
            max_len     maximum code length L, 8..16
            lanes       lanes N (symbols per cycle), 1..8
            raw_bits    raw bits per symbol R (bypass width; BF16 sign+mantissa = 8), 0..8
            fifo_depth  words per lane FIFO, power of two 4..512
            contexts    1: one-cycle lanes; 2: C-slow lanes, each serving two format lanes (blocks of 2N
                        lanes; about twice the clock)
            escape      decode escape codes (rare symbols as one code + 8 raw bits)
            impl        lanes: comparator (per-length compares) or table (block-RAM lookup table, compact,
                        for the iCE40UP5K; contexts 1 or 2)
            counter_bits width of the five status counters (they wrap), 16..32
        """, choices={"impl": IMPLS}),
        smoke_test="sim.huffman.tb_huffman",
        smoke_params={"lanes": 2},     # the smoke test covers the lane interleaving
        # The UP5K row of `edgelearn demo`: one hardware lane serving two format lanes (C-slow, the
        # fastest decoder on the UP5K); L = 8 (with two contexts L = 12 and 16 do not fit the UP5K).
        synth_params={"lanes": 1, "contexts": 2, "max_len": 8},
        demo="sim.huffman.demo:run",
    ),
]
