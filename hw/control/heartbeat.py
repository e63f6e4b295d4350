"""The heartbeat LED: a 1 Hz blink that shows the clock runs and the design is configured."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..params import check_int

__all__ = ["Heartbeat", "MIN_CLK_HZ", "MAX_CLK_HZ"]

MIN_CLK_HZ = 2
MAX_CLK_HZ = 1_000_000_000


class Heartbeat(wiring.Component):
    """``o_led`` toggles every ``clk_hz // 2`` cycles: a full blink takes ``clk_hz`` cycles (1 Hz
    for an even clock), the first toggle after ``clk_hz // 2`` cycles out of reset.

    The counter runs out at its top bit and is reloaded then, so no compare stands in front of the
    reload and the toggle (the core's timing rule: counters decide on a flip-flop).

    Parameters
    ----------
    clk_hz : int
        The ``sync`` clock in Hz, from :data:`MIN_CLK_HZ` to :data:`MAX_CLK_HZ`.

    Members
    -------
    o_led : Out(1)
        The heartbeat, low out of reset.
    """

    o_led: Out(1)

    def __init__(self, clk_hz):
        self._clk_hz = check_int("clk_hz", clk_hz, MIN_CLK_HZ, MAX_CLK_HZ)
        super().__init__()

    clk_hz = property(lambda self: self._clk_hz)

    def elaborate(self, platform):
        m = Module()
        half = self._clk_hz // 2
        k = half.bit_length()                 # 2**k > half
        # From the reload value the counter reaches 2**k (its top bit) in half - 1 cycles; the
        # reload cycle makes half.
        reload = (1 << k) - half + 1
        count = Signal(k + 1, init=reload)
        led = Signal()
        with m.If(count[k]):
            m.d.sync += [count.eq(reload), led.eq(~led)]
        with m.Else():
            m.d.sync += count.eq(count + 1)
        m.d.comb += self.o_led.eq(led)
        return m
