"""CRC-16 of :mod:`hw.huffman.spec` as one cycle of XOR logic over any number of 16-bit words.

The CRC is linear over GF(2): the next register is ``A*crc ^ B*words``. The matrices are found at
elaboration time by feeding unit vectors through :func:`hw.huffman.spec.crc16_update`, so the
gateware cannot drift from the spec.
"""

from amaranth.hdl import Cat, Const

from . import spec

__all__ = ["crc16_next"]


def _columns(n_words):
    """For each input bit (16 CRC bits, then the words' bits, word 0 first), its output bit mask."""
    def run(crc, words):
        for w in words:
            crc = spec.crc16_update(crc, w)
        return crc
    cols = [run(1 << i, [0] * n_words) for i in range(16)]
    for k in range(n_words):
        for i in range(16):
            words = [0] * n_words
            words[k] = 1 << i
            cols.append(run(0, words))
    return cols


def crc16_next(crc, words):
    """Expression of the CRC register after shifting in ``words`` (a list of 16-bit values) in order."""
    cols = _columns(len(words))
    bits = [crc[i] for i in range(16)] + [w[i] for w in words for i in range(16)]
    out = []
    for j in range(16):
        terms = [b for b, c in zip(bits, cols, strict=True) if (c >> j) & 1]
        while len(terms) > 1:         # a balanced XOR tree, not a chain
            terms = [terms[i] ^ terms[i + 1] if i + 1 < len(terms) else terms[i]
                     for i in range(0, len(terms), 2)]
        out.append(terms[0] if terms else Const(0, 1))
    return Cat(*out)
