"""Every block's constructor refuses a bad parameter: ``ValueError`` naming the parameter and the
values it allows (``TypeError`` for a wrong type where a block checks types)."""

import pytest

from hw.hdqt import FWHT, HdqtLayer, ShiftQuantizer
from hw.hdqt.ram import Ram
from hw.huffman import HuffmanDecoder
from hw.lfsr import GaloisLFSR
from hw.lib.spram import SPRAM
from hw.mac.accumulate import AccumulatorGrid
from hw.mac.array import MacArray
from hw.mac.systolic import SystolicArray
from hw.stdp import STDPCore

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
    (AccumulatorGrid, {"clear": "after"}, "clear must be 'sum' or 'view', not 'after'"),
    (MacArray, {"backend": "dsp"}, "backend must be one of 'lut', 'ice40', 'ecp5', not 'dsp'"),
    (MacArray, {"backend": "ecp5", "cols": 3},
     "cols must be an even integer from 2 to 16 with backend 'ecp5'"),
    (HuffmanDecoder, {"max_len": 7}, "max_len must be an integer from 8 to 16, not 7"),
    (HuffmanDecoder, {"max_len": 17}, "max_len must be an integer from 8 to 16, not 17"),
    (HuffmanDecoder, {"lanes": 0}, "lanes must be an integer from 1 to 8, not 0"),
    (HuffmanDecoder, {"raw_bits": 9}, "raw_bits must be an integer from 0 to 8, not 9"),
    (HuffmanDecoder, {"fifo_depth": 6}, "fifo_depth must be a power of two from 4 to 512, not 6"),
    (HuffmanDecoder, {"lanes": "2"}, "lanes must be an integer from 1 to 8, not '2'"),
    (HuffmanDecoder, {"contexts": 3}, "contexts must be an integer from 1 to 2, not 3"),
    (HuffmanDecoder, {"contexts": 2, "lanes": 5}, "lanes must be an integer from 1 to 4, not 5"),
    (HuffmanDecoder, {"impl": "lut"}, "impl must be one of 'comparator', 'table', not 'lut'"),
    (STDPCore, {"window": 1}, "window must be an integer from 2 to 128, not 1"),
    (STDPCore, {"window": 129}, "window must be an integer from 2 to 128, not 129"),
    (STDPCore, {"w_bits": 0}, "w_bits must be an integer from 1 to 16, not 0"),
    (STDPCore, {"w_bits": 17}, "w_bits must be an integer from 1 to 16, not 17"),
    (STDPCore, {"v_bits": 3}, "v_bits must be an integer from 4 to 24, not 3"),
    (STDPCore, {"n_neurons": 1}, "n_neurons must be an integer from 2 to 4096, not 1"),
    (STDPCore, {"n_neurons": 2048, "encoding": "crossbar"}, "n_neurons must be an integer from 2 to 1024"),
    (STDPCore, {"encoding": "coo"}, "encoding must be one of 'csr', 'bitmap', 'crossbar', not 'coo'"),
    (STDPCore, {"max_synapses": 0}, "max_synapses must be an integer from 1 to 65536, not 0"),
    (STDPCore, {"threshold": 1 << 16}, "threshold must be an integer from 1 to 65535"),
    (STDPCore, {"v_reset": 256}, "v_reset must be an integer from 0 to 255, not 256"),
    (STDPCore, {"refractory": -1}, "refractory must be an integer from 0 to 255, not -1"),
    (STDPCore, {"bitmap_word": 12}, "bitmap_word must be a power of two from 8 to 32, not 12"),
    (STDPCore, {"window": 4, "kp": (0, 1, 2)}, "kp must be a table of window=4 integers"),
    (STDPCore, {"window": 4, "km": (1, 1, 2, 3)}, r"km\[0\] must be 0"),
    (STDPCore, {"window": 4, "w_bits": 2, "kp": (0, 4, 2, 1)},
     "kp entries must be an integer from 0 to 3, not 4"),
    (STDPCore, {"syn_store": "sram"}, "syn_store must be one of 'bram', 'spram', not 'sram'"),
    (STDPCore, {"syn_store": "spram", "encoding": "bitmap"},
     "encoding must be 'csr' or 'crossbar' with syn_store='spram', not 'bitmap'"),
    (STDPCore, {"syn_store": "spram", "n_neurons": 256, "w_bits": 9},
     r"w_bits \(syn_store='spram', n_neurons=256: a 16-bit synapse word holds 8 post bits\) must be an "
     r"integer from 1 to 8, not 9"),
    (STDPCore, {"syn_store": "spram", "max_synapses": 1},
     r"max_synapses \(syn_store='spram'\) must be an integer from 2 to 65536, not 1"),
    (STDPCore, {"syn_store": "spram", "encoding": "crossbar", "n_neurons": 257},
     r"n_neurons \(syn_store='spram', crossbar\) must be an integer from 2 to 256, not 257"),
    (STDPCore, {"primitives": "yes"}, "primitives must be True or False"),
    (GaloisLFSR, {"width": 2}, "width must be an integer from 3 to 32, not 2"),
    (GaloisLFSR, {"width": 33}, "width must be an integer from 3 to 32, not 33"),
    (GaloisLFSR, {"width": 8, "steps": 0}, "steps must be an integer from 1 to 64, not 0"),
    (GaloisLFSR, {"width": 8, "seed": 256}, "seed must be an integer from 0 to 255, not 256"),
    (GaloisLFSR, {"width": "16"}, "width must be an integer from 3 to 32, not '16'"),
    (SPRAM, {"depth": 16384, "width": 0}, "width must be an integer from 1 to 64, not 0"),
    (SPRAM, {"depth": 16384, "width": 65}, "width must be an integer from 1 to 64, not 65"),
    (SPRAM, {"depth": 0}, r"depth \(width=16: 1 SPRAM\(s\) per word\) must be an integer from 1 to 65536"),
    (SPRAM, {"depth": 65537},
     r"depth \(width=16: 1 SPRAM\(s\) per word\) must be an integer from 1 to 65536"),
    (SPRAM, {"depth": 32769, "width": 17},
     r"depth \(width=17: 2 SPRAM\(s\) per word\) must be an integer from 1 to 32768, not 32769"),
    (SPRAM, {"depth": 16385, "width": 64}, r"from 1 to 16384, not 16385"),
    (SPRAM, {"depth": 1000, "addr_bits": 9}, r"addr_bits \(depth=1000\) must be an integer from 10 to 32"),
    (SPRAM, {"depth": 1000, "primitives": 1}, "primitives must be True or False"),
    (Ram, {"shape": 16, "depth": 64, "granularity": 5}, "granularity must divide"),
    (Ram, {"shape": 16, "depth": 0}, "depth must be"),
    (Ram, {"shape": 16, "depth": 64, "read_ports": 0}, "read_ports must be"),
]


def _cases():
    for factories, kwargs, message in BAD_PARAMETERS:
        for factory in factories if isinstance(factories, tuple) else (factories,):
            yield pytest.param(factory, kwargs, message, id=f"{factory.__name__}-{kwargs}")


@pytest.mark.parametrize("factory,kwargs,message", _cases())
def test_bad_parameter_is_refused(factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        factory(**kwargs)
