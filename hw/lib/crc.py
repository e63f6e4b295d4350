"""CRC-16/CCITT: one spec function, and gateware derived from it.

The CRC register is shifted MSB first with polynomial :data:`CRC16_POLY` from :data:`CRC16_INIT`,
no final XOR, so ``crc16(values + [crc16(values)]) == 0`` for 16-bit words. The UART protocol
(:mod:`hw.control.protocol`, bytes: CRC-16/CCITT-FALSE) and the Huffman stream format
(:mod:`hw.huffman.spec`, 16-bit words) both use it.

The CRC is linear over GF(2): the register after some words is ``A*crc ^ B*words``.
:func:`crc16_next` finds the matrices at elaboration time by feeding unit vectors through
:func:`crc16_update`, so the gateware cannot drift from the spec, whatever the word width and the
number of words per cycle.
"""

from amaranth.hdl import Cat, Const

__all__ = ["CRC16_POLY", "CRC16_INIT", "crc16_update", "crc16", "crc16_next"]

CRC16_POLY = 0x1021
CRC16_INIT = 0xFFFF


def crc16_update(crc, value, width):
    """The CRC register after shifting in the ``width``-bit ``value``, MSB first."""
    for i in range(width - 1, -1, -1):
        feedback = ((crc >> 15) ^ (value >> i)) & 1
        crc = (crc << 1) & 0xFFFF
        if feedback:
            crc ^= CRC16_POLY
    return crc


def crc16(values, width, crc=CRC16_INIT):
    """CRC-16 of a sequence of ``width``-bit values."""
    for v in values:
        crc = crc16_update(crc, v, width)
    return crc


def _columns(n_words, width):
    """For each input bit (16 CRC bits, then the words' bits, word 0 first), its output bit mask."""
    def run(crc, words):
        for w in words:
            crc = crc16_update(crc, w, width)
        return crc
    cols = [run(1 << i, [0] * n_words) for i in range(16)]
    for k in range(n_words):
        for i in range(width):
            words = [0] * n_words
            words[k] = 1 << i
            cols.append(run(0, words))
    return cols


def crc16_next(crc, words, width=16):
    """Expression of the CRC register after shifting in ``words`` (``width``-bit values) in order.

    One cycle of XOR logic: each output bit is a balanced XOR tree of the register and word bits
    it depends on.
    """
    if not isinstance(width, int) or isinstance(width, bool):
        raise TypeError(f"width must be an integer, not {type(width).__name__}")
    if width < 1:
        raise ValueError(f"width must be at least 1, not {width}")
    cols = _columns(len(words), width)
    bits = [crc[i] for i in range(16)] + [w[i] for w in words for i in range(width)]
    out = []
    for j in range(16):
        terms = [b for b, c in zip(bits, cols, strict=True) if (c >> j) & 1]
        while len(terms) > 1:         # a balanced XOR tree, not a chain
            terms = [terms[i] ^ terms[i + 1] if i + 1 < len(terms) else terms[i]
                     for i in range(0, len(terms), 2)]
        out.append(terms[0] if terms else Const(0, 1))
    return Cat(*out)
