"""Baud-rate arithmetic shared by the UART gateware, the board tops and the host driver.

The UART runs from the system clock with an integer ``divisor`` (clock cycles per bit). A
divisor is only accepted if the resulting baud rate is within :data:`MAX_BAUD_ERROR` of the
requested one: the receiver samples mid-bit, so over ten bits the accumulated error must stay far
below half a bit on both ends of the link.
"""

from amaranth.lib import wiring

from ..params import check_int

__all__ = ["MIN_DIVISOR", "MAX_DIVISOR", "MAX_BAUD_ERROR", "divisor_for", "BitTimed", "USB_UARTS",
           "LINK_MAX_BAUD", "LINK_MIN_DIVISOR", "link_baud"]

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


#: USB UART bridges of the boards: ``(reference clock, highest rate)``. The chip divides its
#: reference by ``n + k/8`` (``n >= 2``; ``n = 0`` and ``1`` are the special rates ``ref`` and
#: ``2/3 ref``) -- FTDI AN_120. FT2232H (Hi-Speed): 120 MHz / 10 = 12 MHz reference, up to
#: 12 Mbaud. FT231X (Full-Speed, the ULX3S): 48 MHz / 16 = 3 MHz reference, up to 3 Mbaud.
USB_UARTS = {"FT2232H": (12_000_000, 12_000_000), "FT231X": (3_000_000, 3_000_000)}
#: The link's ceiling: the issue's 3 Mbaud, which both bridges make exactly. (The FT2232H goes to
#: 12 Mbaud; faster is untried on the boards' traces, and the host's per-frame work grows with it.)
LINK_MAX_BAUD = 3_000_000
#: Fewest FPGA clock cycles per bit the link uses on hardware: the receiver finds a start bit to
#: within one cycle behind a two-flop synchroniser, so 8 cycles keep its mid-bit samples within
#: 1/8 bit of the middle before clock error (:data:`MIN_DIVISOR`, 4, is for simulation).
LINK_MIN_DIVISOR = 8


def _bridge_rates(ref, top):
    """The rates the bridge makes exactly, highest first, down to ``ref / 64``."""
    rates = {ref, ref * 2 // 3} if ref * 2 % 3 == 0 else {ref}
    for eighths in range(16, 64 * 8 + 1):
        if ref * 8 % eighths == 0:
            rates.add(ref * 8 // eighths)
    return sorted((r for r in rates if r <= top), reverse=True)


def link_baud(clk_hz, usb_uart, max_baud=LINK_MAX_BAUD):
    """The board link's rate: the highest rate up to ``max_baud`` that the ``usb_uart`` bridge makes
    exactly and the FPGA's ``clk_hz`` divides into at least :data:`LINK_MIN_DIVISOR` cycles per
    bit -- exactly if any rate allows it (no rate error to budget), else within half of
    :data:`MAX_BAUD_ERROR` (a PLL clock that is no multiple of a bridge rate).

    Raises
    ------
    ValueError
        If ``usb_uart`` is not a key of :data:`USB_UARTS`, or no rate fits.
    """
    if usb_uart not in USB_UARTS:
        raise ValueError(f"usb_uart must be one of {', '.join(USB_UARTS)}, not {usb_uart!r}")
    ref, top = USB_UARTS[usb_uart]
    rates = _bridge_rates(ref, min(top, max_baud))
    for rate in rates:
        if clk_hz % rate == 0 and clk_hz // rate >= LINK_MIN_DIVISOR:
            return rate
    for rate in rates:
        divisor = round(clk_hz / rate)
        if divisor >= LINK_MIN_DIVISOR and abs(clk_hz / divisor - rate) <= rate * MAX_BAUD_ERROR / 2:
            return rate
    raise ValueError(f"clk_hz {clk_hz} divides no rate of the {usb_uart} into >= {LINK_MIN_DIVISOR} "
                     f"cycles per bit")
