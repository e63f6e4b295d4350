from contextlib import contextmanager

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from .baud import BitTimed

__all__ = ["UARTRx"]


class UARTRx(BitTimed):
    """UART receiver: 8 data bits, no parity, 1 stop bit, LSB first.

    ``i_rx`` is synchronized with two flip-flops, so it may come straight from a pin. A falling
    edge starts a byte; the start bit is re-checked half a bit later (a shorter glitch is
    ignored), then each data bit is sampled in its middle. The receiver returns to idle in the
    middle of the stop bit, which tolerates a transmitter that is slightly faster than us.

    A UART cannot be stalled, so ``o_data`` holds one received byte until it is taken; a byte that
    completes while the previous one is still untaken replaces it and pulses ``o_overrun``. A stop
    bit that reads 0 drops the byte and pulses ``o_frame_error``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4 (see :func:`hw.uart.baud.divisor_for`).

    Members
    -------
    i_rx : In(1)
        The serial line (idle high).
    o_data : Out(stream.Signature(8))
        Received bytes.
    o_frame_error : Out(1)
        One-cycle pulse: a byte had a bad stop bit and was dropped.
    o_overrun : Out(1)
        One-cycle pulse: a byte was replaced before it was taken.
    o_busy : Out(1)
        A byte is being received (for activity LEDs and the idle timeout).
    """

    i_rx: In(1, init=1)
    o_frame_error: Out(1)
    o_overrun: Out(1)
    o_busy: Out(1)
    o_data: Out(stream.Signature(8))

    @contextmanager
    def _bit_elapsed(self, m, count):
        """A bit-timed state: busy; ``count`` counts down, and the body runs when it has reached 0."""
        m.d.comb += self.o_busy.eq(1)
        with m.If(count != 0):
            m.d.sync += count.eq(count - 1)
        with m.Else():
            yield

    def elaborate(self, platform):
        m = Module()
        div = self._divisor

        sync0 = Signal(init=1)
        rx = Signal(init=1)
        m.d.sync += [sync0.eq(self.i_rx), rx.eq(sync0)]

        count = Signal(range(div))
        bits = Signal(range(8))
        shift = Signal(8)
        data = Signal(8)
        valid = Signal()

        m.d.comb += [self.o_data.payload.eq(data), self.o_data.valid.eq(valid)]
        with m.If(self.o_data.ready):
            m.d.sync += valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += count.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.comb += self.o_busy.eq(1)
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Elif(rx):
                    m.next = "IDLE"  # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [count.eq(div - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"), self._bit_elapsed(m, count):
                m.d.sync += [shift.eq(Cat(shift[1:], rx)), count.eq(div - 1), bits.eq(bits + 1)]
                with m.If(bits == 7):
                    m.next = "STOP"
            with m.State("STOP"), self._bit_elapsed(m, count):
                with m.If(rx):
                    m.d.sync += [data.eq(shift), valid.eq(1)]
                    m.d.comb += self.o_overrun.eq(valid & ~self.o_data.ready)
                with m.Else():
                    m.d.comb += self.o_frame_error.eq(1)
                m.next = "IDLE"
        return m
