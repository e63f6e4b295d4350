"""The controller's transmit side: reply header, buffered reply payload, CRC (see
:class:`hw.control.controller.Controller`)."""

from contextlib import contextmanager

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..params import check_int
from . import protocol
from .crc import crc16_next
from .onehot import OneHotFSM
from .protocol import SYNC_REPLY, SYNC_SEQ_REPLY
from .receiver import ReplyRequest

__all__ = ["ReplyTransmitter"]


class ReplyTransmitter(wiring.Component):
    """Sends one reply frame per request on ``o_tx``.

    Cycle behaviour: ``i_reply.go`` (accepted only while ``o_idle``) registers the status and
    length; the header ``i_cmd``, ``i_seq``, ``i_sequenced`` is read while the frame is sent and
    must hold from the request until ``o_idle`` (the receiver's registers do). From the second
    cycle on the frame's bytes are offered on ``o_tx``: the sync byte (of the frame's kind),
    ``seq`` for a sequenced frame, ``cmd``, status, length, the reply payload read from the reply
    buffer (one cycle per byte to fetch it), CRC. ``o_tx`` comes from an output register, loaded
    in the cycle after the byte before it was taken (two cycles for a payload byte, which is read
    from the buffer first; the first CRC byte waits two cycles more after the last header or
    payload byte, for the end of the payload and the CRC). ``o_idle`` is high from the cycle
    after the last CRC byte was taken.

    Members
    -------
    i_reply : In(ReplyRequest())
    i_cmd, i_seq, i_sequenced : In
        The command frame's header (stable from the request until ``o_idle``).
    reply_buf : In(ReadPort.Signature)
        Read port of the ``max_reply``-byte reply buffer (one cycle of latency).
    o_tx : Out(stream.Signature(8))
    o_idle : Out(1)
    """

    def __init__(self, *, max_reply):
        self._max_reply = check_int("max_reply", max_reply, 1, 0xFFFF)
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
        # The header's cmd, seq and kind are the receiver's registers, which hold while the reply
        # is sent (it takes no byte before the transmitter is idle again): not copied here.
        # The reply's registers are loaded with each request before they are read, so they have
        # no reset: the flip-flops' synchronous set/reset pin is then free for the loads of
        # constants (the CRC's initial value, a length of 0), which otherwise take a LUT per bit.
        tx_status = Signal(8, reset_less=True)
        nbits = self._max_reply.bit_length()     # the reply length is at most max_reply
        tx_len = Signal(nbits, reset_less=True)
        tx_ptr = Signal(nbits)
        tx_crc = Signal(16, reset_less=True)
        # tx_ptr == tx_len (every byte sent), registered in every cycle: DATA is entered from
        # FETCH, a cycle after tx_ptr last moved, so it decides on a flip-flop, not on the compare
        # (and with no adder before the compare). DATA finds it set after the last byte (or at
        # once for an empty reply) and goes to CRC0 without a load.
        ptr_at_len = Signal()
        m.d.sync += ptr_at_len.eq(tx_ptr == tx_len)
        # o_tx is an output register: a byte is loaded only while it is empty, so the sink's
        # ready reaches nothing but the register's valid bit.
        out_valid = Signal()
        out_byte = Signal(8)
        # The CRC takes each loaded byte in the next cycle, from the output register (not through
        # the byte multiplexer). CRC0 is entered from DATA, at least two cycles after the last
        # byte's load, so the CRC is final there; its byte waits until the state's staged byte is
        # (in_crc0: CRC0 was the state in the cycle before).
        crc_pending, in_crc0 = Signal(), Signal()
        m.d.comb += [self.o_tx.valid.eq(out_valid), self.o_tx.payload.eq(out_byte),
                     self.reply_buf.addr.eq(tx_ptr)]
        with m.If(self.o_tx.ready):
            m.d.sync += out_valid.eq(0)
        m.d.sync += crc_pending.eq(0)
        with m.If(crc_pending):
            m.d.sync += tx_crc.eq(crc16_next(m, tx_crc, out_byte, name="crc_tx"))

        fsm = OneHotFSM(m, ("IDLE", "SYNC", "SEQ", "CMD", "STATUS", "LEN0", "LEN1", "FETCH", "DATA", "CRC0",
                            "CRC1"), prefix="tx")
        # The header and CRC bytes are selected into a register in every cycle, by the state
        # bits, so the output register's input is the reply buffer's byte or this one (not a
        # multiplexer of every state's byte). A state is entered at least a cycle before its byte
        # is loaded (the byte before must be taken first), so the staged byte is its own; CRC0,
        # entered from DATA without a load, waits a cycle (in_crc0). IDLE stages the sync byte of
        # the request at hand, for SYNC's first cycle.
        staged = Signal(8)
        sync_byte = Mux(self.i_sequenced, SYNC_SEQ_REPLY, SYNC_REPLY)
        staged_by_state = {
            "IDLE": sync_byte, "SYNC": sync_byte,
            "SEQ": self.i_seq, "CMD": self.i_cmd, "STATUS": tx_status, "LEN0": tx_len[:8],
            "LEN1": tx_len[8:], "CRC0": tx_crc[:8], "CRC1": tx_crc[8:],
        }
        staged_next = 0
        for state, value in staged_by_state.items():
            staged_next = staged_next | (fsm.bit(state).replicate(8) & value)
        m.d.sync += staged.eq(staged_next)

        # The output register is loaded in one place, with the staged byte or (in DATA) the reply
        # buffer's: the states only say when (`loading`), so each bit has one 2:1 multiplexer in
        # front of it, not a chain of one per state (Yosys cannot tell the states are one-hot).
        loading = Signal()
        crc_states = ("SEQ", "CMD", "STATUS", "LEN0", "LEN1", "DATA")   # their bytes count in the CRC
        with m.If(loading):
            m.d.sync += [out_byte.eq(Mux(fsm.bit("DATA"), self.reply_buf.data, staged)),
                         out_valid.eq(1),
                         crc_pending.eq(Cat(fsm.bit(state) for state in crc_states).any())]

        @contextmanager
        def load(nxt):
            # Load the state's byte into the empty output register and go to ``nxt``; the body adds
            # to that cycle (and may choose another next state).
            with m.If(~out_valid):
                m.d.comb += loading.eq(1)
                fsm.goto(nxt)
                yield

        with fsm.state("IDLE"):
            with m.If(self.i_reply.go):
                m.d.sync += [tx_status.eq(self.i_reply.status), tx_len.eq(self.i_reply.length)]
                fsm.goto("SYNC")
        with fsm.state("SYNC"):
            with load("CMD"):
                with m.If(self.i_sequenced):
                    fsm.goto("SEQ")
        for state, nxt in (("SEQ", "CMD"), ("CMD", "STATUS"), ("STATUS", "LEN0"), ("LEN0", "LEN1"),
                           ("LEN1", "FETCH")):
            with fsm.state(state):
                with load(nxt):
                    pass
        with fsm.state("FETCH"):
            # The buffer's data shows reply_buf[tx_ptr] from the next cycle on.
            fsm.goto("DATA")
        with fsm.state("DATA"):
            with m.If(ptr_at_len):
                fsm.goto("CRC0")
            with m.Else():
                with load("FETCH"):
                    m.d.sync += tx_ptr.eq(tx_ptr + 1)
        m.d.sync += in_crc0.eq(fsm.bit("CRC0"))
        with fsm.state("CRC0"):
            with m.If(in_crc0):
                with load("CRC1"):
                    pass
        with fsm.state("CRC1"):
            with load("IDLE"):
                pass
        # The pointer starts at 0 for each reply; a reset after the states' statements, so that
        # it is a synchronous reset of its flip-flops (no multiplexer in front of the count).
        # The CRC likewise starts at its initial value, in every cycle of IDLE (it is not read there,
        # and a state bit is the flip-flops' set without a LUT).
        with m.If(fsm.bit("IDLE")):
            m.d.sync += [tx_ptr.eq(0), tx_crc.eq(protocol.CRC_INIT)]
        m.d.comb += self.o_idle.eq(fsm.bit("IDLE") & ~out_valid)
        return m
