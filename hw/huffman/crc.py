"""CRC-16 of :mod:`hw.huffman.spec` over 16-bit words: :func:`hw.lib.crc.crc16_next`."""

from ..lib.crc import crc16_next

__all__ = ["crc16_next"]
