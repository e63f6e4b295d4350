"""Mixed-precision MAC/PE array: int8/int4/int2/ternary weights chosen per tile at run time.

See :mod:`hw.mac.spec` for the interface contract (modes, packed formats, accumulator semantics,
stream payloads), :mod:`hw.mac.array` for the organisation and cycle behaviour, and
:mod:`hw.mac.products` for the arithmetic backends.
"""

from ..blocks import BlockSpec, declared_params
from . import spec
from .array import MacArray
from .products import BACKENDS

__all__ = ["spec", "MacArray", "BLOCKS"]

BLOCKS = [
    BlockSpec(name="mac_array", factory=MacArray,
        summary="mixed-precision R x C MAC array: int8/int4/int2/ternary weights per tile, "
                "1/2/4/4 MAC/PE/cycle",
        params=declared_params(MacArray, """
            rows        array rows (activation rows per tile), 1..16
            cols        array columns (output channels per tile), 1..16; even for backend ecp5
            acc_width   saturating accumulator width, 17..48
            tile_k      HDQT tile-saturation group in products (power of two 4..1024); 0 = no option
            tile_bits   HDQT group sums clamp to +-(2**(tile_bits-1) - 1)
            count_bits  beats per tile up to 2**count_bits
            backend     arithmetic: lut (fabric), ice40 (SB_MAC16 dual 8x8), ecp5 (MULT18X18D)
            primitives  DSP backends: instantiate vendor primitives (false: behavioural model, for simulation)
        """, choices={"backend": BACKENDS}),
        smoke_test="sim.mac.tb_mac_array",
        smoke_params={},
        # The UP5K row of `edgelearn demo`: the SB_MAC16 backend at the largest size that places
        # (16 MAC/cycle at int8 from 8 SB_MAC16; without the HDQT tile option, which does not fit).
        synth_params={"backend": "ice40", "rows": 4, "cols": 4, "tile_k": 0},
        demo="sim.mac.demo:run",
    ),
]
