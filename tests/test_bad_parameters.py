"""Every block's constructor refuses a bad parameter: ``ValueError`` naming the parameter and the
values it allows (``TypeError`` for a wrong type where a block checks types)."""

import pytest

from hw.hdqt import FWHT, HdqtLayer, ShiftQuantizer
from hw.mac.array import MacArray
from hw.mac.systolic import SystolicArray

MAC_ARRAYS = (MacArray, SystolicArray)   # both take the array parameters and check them alike

#: ``(factory or factories, keyword arguments, message pattern)``
BAD_PARAMETERS = [
    (FWHT, {"n": 48}, "n must be a power of two from 2 to 128, not 48"),
    (FWHT, {"n": 256}, "n must be a power of two from 2 to 128, not 256"),
    (FWHT, {"n": 1}, "n must be a power of two from 2 to 128, not 1"),
    (FWHT, {"width": 1}, "width must be an integer from 2 to 32, not 1"),
    (ShiftQuantizer, {"bits": 1}, "bits must be an integer from 2 to 8, not 1"),
    (ShiftQuantizer, {"bits": 9}, "bits must be an integer from 2 to 8, not 9"),
    (ShiftQuantizer, {"width": 40}, "width must be an integer from 2 to 32, not 40"),
    (ShiftQuantizer, {"depth": 1}, "depth must be an integer from 2 to 65536, not 1"),
    (HdqtLayer, {"batch": 48}, "batch must be a power of two from 8 to 256, not 48"),
    (HdqtLayer, {"rows": 3}, "rows must be a power of two from 1 to 16, not 3"),
    (HdqtLayer, {"k_dim": 4}, "k_dim must be a power of two from 8 to 256, not 4"),
    (HdqtLayer, {"had_cap": 256}, "had_cap must be a power of two from 2 to 128, not 256"),
    (HdqtLayer, {"tile_bits": 24}, "tile_bits must be an integer from 2 to 16, not 24"),
    (HdqtLayer, {"acc_width": 8}, "acc_width must be an integer from 17 to 48, not 8"),
    (MAC_ARRAYS, {"rows": 0}, "rows must be an integer from 1 to 16, not 0"),
    (MAC_ARRAYS, {"acc_width": 16}, "acc_width must be an integer from 17 to 48, not 16"),
    (MAC_ARRAYS, {"tile_k": 24}, "tile_k must be 0 .* or a power of two from 4 to 1024, not 24"),
    (MAC_ARRAYS, {"tile_k": 2}, "tile_k must be 0 .* or a power of two from 4 to 1024, not 2"),
    (MAC_ARRAYS, {"tile_bits": 1}, "tile_bits must be an integer from 2 to 16, not 1"),
    (MAC_ARRAYS, {"acc_width": 17, "tile_bits": 17}, "tile_bits must be an integer from 2 to 16, not 17"),
    (MAC_ARRAYS, {"count_bits": 0}, "count_bits must be an integer from 1 to 20, not 0"),
    (MAC_ARRAYS, {"primitives": 1}, "primitives must be True or False, not 1"),
    (MacArray, {"cols": 17}, "cols must be an integer from 1 to 16, not 17"),
    (MacArray, {"backend": "dsp"}, "backend must be one of 'lut', 'ice40', 'ecp5', not 'dsp'"),
    (MacArray, {"backend": "ecp5", "cols": 3},
     "cols must be an even integer from 2 to 16 with backend 'ecp5'"),
]


def _cases():
    for factories, kwargs, message in BAD_PARAMETERS:
        for factory in factories if isinstance(factories, tuple) else (factories,):
            yield pytest.param(factory, kwargs, message, id=f"{factory.__name__}-{kwargs}")


@pytest.mark.parametrize("factory,kwargs,message", _cases())
def test_bad_parameter_is_refused(factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        factory(**kwargs)
