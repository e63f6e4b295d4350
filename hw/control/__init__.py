"""The board command controller: framed, CRC-checked protocol over a UART, one handler per command group.

:mod:`hw.control.protocol` is the single definition of the protocol, shared with :mod:`firmware`.
"""

from ..blocks import BlockSpec, declared_params
from .core import EdgeLearnCore

__all__ = ["EdgeLearnCore", "BLOCKS"]


def _core(clk_hz=12_000_000, baud=1_000_000):
    return EdgeLearnCore(clk_hz=clk_hz, baud=baud)


BLOCKS = [
    BlockSpec(name="control", factory=_core,
        summary="UART command controller: framed CRC-16 protocol, system commands, status LEDs",
        params=declared_params(_core, """
            clk_hz  system clock in Hz
            baud    UART line rate; clk_hz/baud must be an integer within 2%
        """),
    ),
]
