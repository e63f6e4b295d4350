"""The controller's transmit side: reply header, buffered reply payload, CRC (see
:class:`hw.control.controller.Controller`)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..params import check_int
from . import protocol
from .crc import crc16_next
from .protocol import SYNC_REPLY, SYNC_SEQ_REPLY
from .receiver import ReplyRequest

__all__ = ["ReplyTransmitter"]


class ReplyTransmitter(wiring.Component):
    """Sends one reply frame per request on ``o_tx``.

    Cycle behaviour: ``i_reply.go`` (accepted only while ``o_idle``) registers the status and
    length; from the next cycle on the frame's bytes are offered on ``o_tx``: the sync byte (of the
    frame's kind), ``seq`` for a sequenced frame, ``cmd``, status, length, the reply payload read
    from the reply buffer (one cycle per byte to fetch it, so at most a byte every two cycles),
    CRC. ``i_cmd``, ``i_seq`` and ``i_sequenced`` are read in the sync byte's cycles and must hold
    until then. ``o_idle`` is high from the cycle after the last CRC byte was sent.

    Members
    -------
    i_reply : In(ReplyRequest())
    i_cmd, i_seq, i_sequenced : In
        The command frame's header.
    reply_buf : In(ReadPort.Signature)
        Read port of the ``max_reply``-byte reply buffer (one cycle of latency).
    o_tx : Out(stream.Signature(8))
    o_idle : Out(1)
    """

    def __init__(self, *, max_reply):
        check_int("max_reply", max_reply, 1, 0xFFFF)
        super().__init__({
            "i_reply": In(ReplyRequest()),
            "i_cmd": In(8),
            "i_seq": In(8),
            "i_sequenced": In(1),
            "reply_buf": In(ReadPort.Signature(addr_width=ceil_log2(max_reply), shape=8)),
            "o_tx": Out(stream.Signature(8)),
            "o_idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        reply_status = Signal(8)
        reply_len = Signal(16)
        with m.If(self.i_reply.go):
            m.d.sync += [reply_status.eq(self.i_reply.status), reply_len.eq(self.i_reply.length)]

        tx_cmd = Signal(8)
        tx_seq = Signal(8)
        tx_sequenced = Signal()
        tx_status = Signal(8)
        tx_len = Signal(16)
        tx_ptr = Signal(16)
        tx_crc = Signal(16)
        tx_byte = Signal(8)
        tx_crc_next = crc16_next(m, tx_crc, tx_byte, name="crc_tx")
        sent = self.o_tx.valid & self.o_tx.ready
        sequenced = self.i_sequenced
        m.d.comb += [self.o_tx.payload.eq(tx_byte), self.reply_buf.addr.eq(tx_ptr)]

        with m.FSM(name="tx_fsm"):
            with m.State("IDLE"):
                m.d.comb += self.o_idle.eq(1)
                with m.If(self.i_reply.go):
                    m.next = "SYNC"
            with m.State("SYNC"):
                # reply_status / reply_len were registered in the cycle of the request.
                m.d.sync += [tx_cmd.eq(self.i_cmd), tx_status.eq(reply_status), tx_len.eq(reply_len),
                             tx_seq.eq(self.i_seq), tx_sequenced.eq(sequenced),
                             tx_crc.eq(protocol.CRC_INIT), tx_ptr.eq(0)]
                m.d.comb += [tx_byte.eq(Mux(sequenced, SYNC_SEQ_REPLY, SYNC_REPLY)), self.o_tx.valid.eq(1)]
                with m.If(sent):
                    m.next = "CMD"
                    with m.If(sequenced):
                        m.next = "SEQ"
            for state, value, nxt in (("SEQ", tx_seq, "CMD"), ("CMD", tx_cmd, "STATUS"),
                                      ("STATUS", tx_status, "LEN0"), ("LEN0", tx_len[:8], "LEN1")):
                with m.State(state):
                    m.d.comb += [tx_byte.eq(value), self.o_tx.valid.eq(1)]
                    with m.If(sent):
                        m.d.sync += tx_crc.eq(tx_crc_next)
                        m.next = nxt
            with m.State("LEN1"):
                m.d.comb += [tx_byte.eq(tx_len[8:]), self.o_tx.valid.eq(1)]
                with m.If(sent):
                    m.d.sync += tx_crc.eq(tx_crc_next)
                    with m.If(tx_len == 0):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("FETCH"):
                # The buffer's data shows reply_buf[tx_ptr] from the next cycle on.
                m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [tx_byte.eq(self.reply_buf.data), self.o_tx.valid.eq(1)]
                with m.If(sent):
                    m.d.sync += [tx_crc.eq(tx_crc_next), tx_ptr.eq(tx_ptr + 1)]
                    with m.If(tx_ptr + 1 == tx_len):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "FETCH"
            for state, value, nxt in (("CRC0", tx_crc[:8], "CRC1"), ("CRC1", tx_crc[8:], "IDLE")):
                with m.State(state):
                    m.d.comb += [tx_byte.eq(value), self.o_tx.valid.eq(1)]
                    with m.If(sent):
                        m.next = nxt
        return m
