"""HDQT: Hadamard-domain integer training datapath (FWHT, shift quantizers, layer controller).

See :mod:`hw.hdqt.spec` for the arithmetic shared with the golden model (:mod:`sim.hdqt.golden`).
"""

from ..blocks import BlockSpec, Param
from . import spec
from .fwht import FWHT
from .quantizer import ShiftQuantizer

__all__ = ["spec", "FWHT", "ShiftQuantizer", "BLOCKS"]

BLOCKS = [
    BlockSpec(
        name="fwht",
        summary="streaming fast Walsh-Hadamard transform (radix-2 SDF), 1 element/cycle, n = 2..128",
        factory=FWHT,
        params={
            "n": Param(64, "transform size, a power of two 2..128"),
            "width": Param(16, "input element width (signed), 2..32; output grows log2(n) bits"),
        },
        smoke_test="sim.hdqt.tb_fwht",
        smoke_params={"n": 16},
        demo="sim.hdqt.demo:run",
    ),
    BlockSpec(
        name="hdqt_quantizer",
        summary="per-tensor max-reduction + power-of-two shift quantizer, round-to-nearest or LFSR "
                "stochastic rounding",
        factory=ShiftQuantizer,
        params={
            "width": Param(24, "input element width (signed), 2..32"),
            "bits": Param(4, "quantized bits, 2..8"),
            "depth": Param(2048, "largest tensor in elements, 2..65536"),
        },
    ),
]
