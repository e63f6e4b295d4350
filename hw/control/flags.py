"""The controller's sticky error flags and frame counters (see
:class:`hw.control.controller.Controller`)."""

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .protocol import FLAG_BITS

__all__ = ["StatusFlags"]


class StatusFlags(wiring.Component):
    """Sticky error flags and the counts of OK and error replies.

    Cycle behaviour: registered; a cycle with ``i_clear`` clears everything at its end (its events
    are lost), otherwise the flags gather ``i_events``, the line's error pulses and the block error
    levels of the groups in ``groups``, and one reply request (``i_reply``) counts as a frame
    (with ``i_ok``) or as an error.

    Members
    -------
    i_events : In(8)
        One-hot flag bits (:data:`hw.control.protocol.FLAG_BITS`) raised in this cycle.
    i_line_errors : In(2)
        Bit 0 framing error, bit 1 overrun (pulses).
    i_block_errors : In(16)
        Bit ``g``: group ``g``'s handler error (level).
    i_reply : In(1)
        A reply is requested in this cycle.
    i_ok : In(1)
        With ``i_reply``: the command ran with status OK.
    i_clear : In(1)
    o_flags : Out(8)
    o_frames, o_errors : Out(16)
        OK replies / error replies since the last clear (wrapping).
    """

    i_events: In(8)
    i_line_errors: In(2)
    i_block_errors: In(16)
    i_reply: In(1)
    i_ok: In(1)
    i_clear: In(1)
    o_flags: Out(8)
    o_frames: Out(16)
    o_errors: Out(16)

    def __init__(self, groups):
        self._groups = tuple(groups)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        line = Const(0, 8) | (self.i_line_errors[0] << FLAG_BITS["framing"]) \
            | (self.i_line_errors[1] << FLAG_BITS["overrun"])
        block_level = Signal()
        for g in self._groups:
            with m.If(self.i_block_errors[g]):
                m.d.comb += block_level.eq(1)
        with m.If(self.i_clear):
            m.d.sync += [self.o_flags.eq(0), self.o_frames.eq(0), self.o_errors.eq(0)]
        with m.Else():
            m.d.sync += self.o_flags.eq(self.o_flags | self.i_events | line
                                        | (block_level << FLAG_BITS["block"]))
            with m.If(self.i_ok):
                m.d.sync += self.o_frames.eq(self.o_frames + 1)
            with m.Elif(self.i_reply):
                m.d.sync += self.o_errors.eq(self.o_errors + 1)
        return m
