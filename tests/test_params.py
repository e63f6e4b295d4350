"""hw/params.py: a wrong type is a TypeError, a wrong value a ValueError, both naming the parameter."""

import pytest

from hw.hdqt.spec import LayerConfig
from hw.lfsr import GaloisLFSR
from hw.mac import MacArray
from hw.params import ParameterTypeError, check_bool, check_int, check_pow2


@pytest.mark.parametrize("call,message", [
    (lambda: check_int("width", "16", 3, 32), "width must be an integer from 3 to 32, not '16'"),
    (lambda: check_int("width", True, 3, 32), "width must be an integer from 3 to 32, not True"),
    (lambda: check_pow2("rows", 2.0, 1, 16), "rows must be a power of two from 1 to 16, not 2.0"),
    (lambda: check_bool("primitives", 1), "primitives must be True or False, not 1"),
    (lambda: GaloisLFSR(width="16"), "width must be an integer"),
    (lambda: MacArray(rows=4.0), "rows must be an integer"),
    (lambda: LayerConfig(batch="32"), "batch must be a power of two"),
])
def test_wrong_type_is_a_type_error(call, message):
    with pytest.raises(TypeError, match=message) as info:
        call()
    assert isinstance(info.value, ParameterTypeError)


@pytest.mark.parametrize("call,message", [
    (lambda: check_int("width", 33, 3, 32), "width must be an integer from 3 to 32, not 33"),
    (lambda: check_pow2("rows", 3, 1, 16), "rows must be a power of two from 1 to 16, not 3"),
    (lambda: check_pow2("rows", 0, 1, 16), "rows must be a power of two from 1 to 16, not 0"),
    (lambda: GaloisLFSR(width=2), "width must be an integer from 3 to 32, not 2"),
])
def test_wrong_value_is_a_value_error_only(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert not isinstance(info.value, TypeError)
