"""Shared gateware: pieces more than one block uses.

- :mod:`hw.lib.crc`: CRC-16/CCITT (polynomial 0x1021, MSB first, init 0xFFFF) — the one spec
  function :func:`~hw.lib.crc.crc16_update` for any word width, and its gateware
  :func:`~hw.lib.crc.crc16_next` (one cycle of XOR logic over any number of words) derived from it.
- :mod:`hw.lib.stream`: :class:`~hw.lib.stream.SkidBuffer` and :class:`~hw.lib.stream.Queue`,
  components with ``amaranth.lib.stream`` signatures, and :func:`~hw.lib.stream.skid_buffer`, the
  skid buffer's logic for a block that builds it in its own module.

``hw/huffman/fifo.py``'s ``RegisteredFlagFIFO`` belongs here too; it stays with the Huffman decoder
until the decoder's files are free to change.
"""
