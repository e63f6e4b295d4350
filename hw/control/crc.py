"""CRC-16/CCITT-FALSE in gateware: one byte per cycle.

The arithmetic is :func:`hw.control.protocol.crc16_update`, unrolled into eight XOR/shift stages
(bits MSB first) with the protocol's polynomial, so the host and the board cannot disagree.
"""

from amaranth.hdl import Const, Mux, Signal

from .protocol import CRC_POLY

__all__ = ["crc16_next"]


def crc16_next(m, crc, byte, *, name="crc"):
    """A combinational 16-bit signal: ``crc`` updated with ``byte`` (added to ``m.d.comb``)."""
    value = crc ^ (byte << 8)
    for i in range(8):
        # Each stage is a named signal, so the expression stays a chain, not a tree doubling per bit.
        stage = Signal(16, name=f"{name}_s{i}")
        shifted = (value << 1)[:16]
        m.d.comb += stage.eq(Mux(value[15], shifted ^ Const(CRC_POLY, 16), shifted))
        value = stage
    return value
