"""CRC-16/CCITT-FALSE of the UART protocol in gateware, one byte per cycle.

The arithmetic is :func:`hw.lib.crc.crc16_next` over one 8-bit word, the same spec function
:func:`hw.control.protocol.crc16_update` computes on the host, so the two cannot disagree.
"""

from ..lib.crc import crc16_next as _crc16_words

__all__ = ["crc16_next"]


def crc16_next(m, crc, byte, *, name="crc"):
    """Expression of ``crc`` (16 bits) updated with ``byte`` (one cycle of XOR logic; ``m`` and
    ``name`` are not needed by it and kept for the controller's call)."""
    return _crc16_words(crc, [byte], width=8)
