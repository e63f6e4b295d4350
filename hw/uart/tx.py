from amaranth.hdl import Module, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from .baud import BitTimed

__all__ = ["UARTTx"]


class UARTTx(BitTimed):
    """UART transmitter: 8 data bits, no parity, 1 stop bit, LSB first.

    A byte is taken from ``i_data`` whenever the transmitter is idle; it then occupies the line for
    exactly ten bit times (start, eight data bits, stop), and the next byte is taken in the cycle
    the stop bit ends, so back-to-back bytes run at the full line rate. ``o_tx`` is registered.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, :data:`~hw.uart.baud.MIN_DIVISOR` to ``MAX_DIVISOR``
        (:class:`~hw.uart.baud.BitTimed`; ``ValueError`` otherwise).

    Members
    -------
    i_data : In(stream.Signature(8))
        Bytes to send.
    o_tx : Out(1)
        The serial line (idle high).
    o_busy : Out(1)
        A byte is on the line.
    """

    o_tx: Out(1, init=1)
    o_busy: Out(1)
    i_data: In(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        div = self._divisor
        count = Signal(range(div))
        bits = Signal(range(10))       # bits still to send after the current one
        shift = Signal(9, init=0x1FF)  # data bits then the stop bit, shifted out LSB first

        idle = (bits == 0) & (count == 0)
        m.d.comb += [self.i_data.ready.eq(idle), self.o_busy.eq(~idle)]
        with m.If(self.i_data.valid & self.i_data.ready):
            m.d.sync += [self.o_tx.eq(0), shift.eq(self.i_data.payload | 0x100),
                         bits.eq(9), count.eq(div - 1)]
        with m.Elif(count != 0):
            m.d.sync += count.eq(count - 1)
        with m.Elif(bits != 0):
            m.d.sync += [self.o_tx.eq(shift[0]), shift.eq(shift >> 1), bits.eq(bits - 1), count.eq(div - 1)]
        return m
