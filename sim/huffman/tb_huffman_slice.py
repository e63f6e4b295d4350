"""cocotb testbench: a slice of a real-sized compressed tensor through :class:`hw.huffman.HuffmanDecoder`.

The test that runs it (``tests/test_compress_rtl.py``) compresses a weight matrix with the host codec
(``edgelearn compress``'s container) and saves whole blocks of its stream, the table and the quantized
symbols those blocks hold (computed from the weights, not by the codec) in an ``.npz`` named by the
``slice`` parameter. The RTL's output must equal the golden decoder's beat for beat (random stalls),
and the decoded values the quantized symbols.
"""

import cocotb
import numpy as np

from sim.huffman import golden as g
from sim.huffman.tb_huffman import TB
from sim.runner import tb_params


@cocotb.test()
async def test_container_slice(dut):
    tb = TB(dut)
    await tb.reset()
    d = np.load(tb_params()["slice"])
    beats = [g.Beat(row, f) for row, f in zip(d["words"].tolist(), d["first"].tolist(), strict=True)]
    ref = await tb.run_and_check(beats, g.table_stream([d["table"].tolist()]), seed=7, stall=0.1)
    got = [v for b in ref for t in b["values"] for v in t]
    expect = d["symbols"].tolist()
    assert got[:len(expect)] == expect
    assert not any(b["err"] for b in ref) and int(dut.o_errors.value) == 0
