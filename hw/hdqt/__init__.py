"""HDQT: Hadamard-domain integer training datapath (FWHT, shift quantizers, layer controller).

See :mod:`hw.hdqt.spec` for the arithmetic shared with the golden model (:mod:`sim.hdqt.golden`).
"""

from ..blocks import BlockSpec, declared_params
from . import spec
from .fwht import FWHT
from .layer import HdqtLayer
from .quantizer import ShiftQuantizer

__all__ = ["spec", "FWHT", "ShiftQuantizer", "HdqtLayer", "BLOCKS"]

BLOCKS = [
    BlockSpec(name="fwht", factory=FWHT,
        summary="streaming fast Walsh-Hadamard transform (radix-2 SDF), 1 element/cycle, n = 2..128",
        params=declared_params(FWHT, """
            n      transform size, a power of two 2..128
            width  input element width (signed), 2..32; output grows log2(n) bits
        """),
        smoke_test="sim.hdqt.tb_fwht",
        smoke_params={"n": 16},
    ),
    BlockSpec(name="hdqt_quantizer", factory=ShiftQuantizer,
        summary="per-tensor max-reduction + power-of-two shift quantizer, round-to-nearest or LFSR "
                "stochastic rounding",
        params=declared_params(ShiftQuantizer, """
            width  input element width (signed), 2..32
            bits   quantized bits, 2..8
            depth  largest tensor in elements, 2..65536
        """),
    ),
    BlockSpec(name="hdqt_layer", factory=HdqtLayer,
        summary="HDQT training step of a linear layer (forward, dX, dW, SGD update) out of on-chip "
                "buffers on the MAC array's int4 tile-saturating mode",
        params=declared_params(HdqtLayer, """
            batch       B, a power of two 2*max(rows, cols)..256
            k_dim       K (layer inputs), a power of two
            o_dim       O (layer outputs), a power of two
            had_cap     largest Hadamard block, a power of two 2..128
            rows        MAC array rows, a power of two 1..16
            cols        MAC array columns, a power of two 1..16
            acc_width   MAC array wide accumulator, 17..48
            tile_bits   tile accumulator bits (the paper's accumulator), 2..16
            backend     MAC arithmetic: lut, ice40, ecp5
            primitives  DSP backends: vendor primitives (false: behavioural models)
        """, choices={"backend": ("lut", "ice40", "ecp5")}),
        smoke_test="sim.hdqt.tb_layer",
        smoke_params={"batch": 8, "k_dim": 16, "o_dim": 8, "had_cap": 8, "rows": 2, "cols": 2},
        # The UP5K row of `edgelearn demo`: the largest layer found to place on the UP5K.
        synth_params={"batch": 16, "k_dim": 32, "o_dim": 32, "had_cap": 16, "rows": 1, "cols": 2,
                      "backend": "ice40"},
        demo="sim.hdqt.demo:run",
    ),
]
