"""UART receiver and transmitter (8N1) for the board command link."""

from .baud import divisor_for
from .rx import UARTRx
from .tx import UARTTx

__all__ = ["UARTRx", "UARTTx", "divisor_for"]
