"""Baud-rate arithmetic shared by the UART gateware, the board tops and the host driver.

The UART runs from the system clock with an integer ``divisor`` (clock cycles per bit). A
divisor is only accepted if the resulting baud rate is within :data:`MAX_BAUD_ERROR` of the
requested one: the receiver samples mid-bit, so over ten bits the accumulated error must stay far
below half a bit on both ends of the link.
"""

from amaranth.lib import wiring

from ..params import check_int

__all__ = ["MIN_DIVISOR", "MAX_DIVISOR", "MAX_BAUD_ERROR", "divisor_for", "BitTimed"]

#: The receiver needs a few cycles per bit: a two-flop synchronizer plus a mid-bit sample.
MIN_DIVISOR = 4
#: Largest divisor the UART's bit counter takes.
MAX_DIVISOR = 1 << 20
#: Largest relative baud-rate error accepted (2 %: 20 % of a bit over ten bits).
MAX_BAUD_ERROR = 0.02


def divisor_for(clk_hz, baud, max_divisor=MAX_DIVISOR):
    """Clock cycles per bit for ``baud`` at ``clk_hz`` (at most ``max_divisor``).

    Raises
    ------
    ValueError
        Naming ``baud`` and its allowed range, if the rounded divisor is outside
        ``MIN_DIVISOR .. max_divisor`` or misses ``baud`` by more than :data:`MAX_BAUD_ERROR`.
    """
    lo, hi = -(-clk_hz // max_divisor), int(clk_hz // MIN_DIVISOR)
    if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
        raise ValueError(f"baud must be an integer from {lo} to {hi} at {clk_hz / 1e6:g} MHz, not {baud!r}")
    divisor = round(clk_hz / baud)
    if not MIN_DIVISOR <= divisor <= max_divisor:
        raise ValueError(f"baud must be an integer from {lo} to {hi} at {clk_hz / 1e6:g} MHz, not {baud!r}")
    error = abs(clk_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"baud must be within {MAX_BAUD_ERROR:.0%} of {clk_hz / 1e6:g} MHz / n "
                         f"(e.g. {int(clk_hz / divisor)}), not {baud!r} ({error:.1%} off)")
    return divisor


class BitTimed(wiring.Component):
    """Base of the UART receiver and transmitter: a component that times bits of ``divisor`` clock
    cycles (``MIN_DIVISOR`` to ``MAX_DIVISOR``; any other value raises ``ValueError`` naming
    ``divisor``). Subclasses declare their ports as member annotations."""

    def __init__(self, divisor):
        self._divisor = check_int("divisor", divisor, MIN_DIVISOR, MAX_DIVISOR)
        super().__init__()

    @property
    def divisor(self):
        """Clock cycles per bit."""
        return self._divisor
