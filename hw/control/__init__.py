"""The board command controller: framed, CRC-checked protocol over a UART, one handler per command group.

:mod:`hw.control.protocol` is the single definition of the protocol, shared with :mod:`firmware`.
"""

from ..blocks import BlockSpec, Param, declared_defaults
from .core import EdgeLearnCore

__all__ = ["EdgeLearnCore", "BLOCKS"]


def _core(clk_hz=12_000_000, baud=1_000_000):
    return EdgeLearnCore(clk_hz=clk_hz, baud=baud)


_CORE_DEFAULTS = declared_defaults(_core)

BLOCKS = [
    BlockSpec(
        name="control",
        summary="UART command controller: framed CRC-16 protocol, system commands, status LEDs",
        factory=_core,
        params={
            "clk_hz": Param(_CORE_DEFAULTS["clk_hz"], "system clock in Hz"),
            "baud": Param(_CORE_DEFAULTS["baud"], "UART line rate; clk_hz/baud must be an integer within 2%"),
        },
    ),
]
