from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..params import check_int
from . import protocol
from .crc import crc16_next
from .handler import HandlerSignature
from .protocol import (
    FLAG_BITS,
    MAX_PAYLOAD,
    MAX_REPLY,
    SYNC_CMD,
    SYNC_REPLY,
    SYNC_SEQ_CMD,
    SYNC_SEQ_REPLY,
    Status,
)

__all__ = ["Controller"]


class Controller(wiring.Component):
    """The framed, CRC-checked command controller between a UART and the command-group handlers.

    Frames and error rules are those of :mod:`hw.control.protocol`. Cycle behaviour:

    * Receive: payload bytes are written into a ``MAX_PAYLOAD``-byte buffer while the CRC is
      computed on the fly (one byte per cycle). Nothing is executed before the CRC checked out.
    * Execute: the selected handler (high nibble of ``cmd``) is started; the buffered payload is
      streamed to it at up to one byte per cycle, and its reply bytes are written into a
      ``MAX_REPLY``-byte transmit buffer at one byte per cycle.
    * Reply: the header, buffered reply payload and CRC go to ``o_tx``; only then does the
      receiver look for the next sync byte (the host waits for the reply; see the protocol).
      The one exception is ``ERR_OVERSIZE``, answered right after the header while the receiver
      discards the ``len + 2`` bytes that follow. (Pipelined frames wait in a receive FIFO in
      front of ``i_rx``, see :class:`hw.control.core.EdgeLearnCore`.)
    * Sequence: a sequenced frame (``SYNC_SEQ_CMD``) whose CRC checked out runs only if its ``seq``
      equals ``o_seq``, which then counts up by one (mod 256) whatever the command's status;
      another ``seq`` is answered ``ERR_SEQUENCE``. Plain frames leave ``o_seq`` alone. The reply
      has the frame's kind and echoes its ``seq``.
    * Resynchronisation: a refused frame is skipped whole. An oversize frame's declared ``len + 2``
      bytes (up to 0x10001, counted in 17 bits so no length field wraps the count) are discarded
      unparsed, and the receiver only stops taking bytes when the count is out, so the byte after
      the frame is the first one hunted for a sync byte. The one earlier end of any frame is the
      line going idle for ``timeout`` cycles (a sender that stops mid-frame; ``ERR_TRUNCATED``, or
      silently while discarding). So no byte inside a frame is ever executed as a command, and a
      stray header with a huge length costs the bytes up to the next idle gap, not a lost board.

    A frame whose bytes stop for ``timeout`` cycles is answered ``ERR_TRUNCATED``; a handler that
    does not finish within ``watchdog`` cycles is reset (``o_handler_reset``) and the command
    answered ``ERR_TIMEOUT``. Either way the controller is back to idle and the board keeps working.

    Parameters
    ----------
    groups : tuple of int
        Command groups present (0..15); a handler port ``h<g>`` is created for each.
    timeout : int
        Idle cycles inside a frame before it counts as truncated (>= 16).
    watchdog : int
        Cycles a handler may take for one command (>= 16).

    Members
    -------
    i_rx : In(stream.Signature(8))
        Bytes from the UART receiver (``ready`` is low only while a command executes or its reply
        is sent, when a well-behaved host sends nothing).
    i_rx_busy : In(1)
        The UART receiver is inside a byte (keeps the idle timeout from firing mid-byte).
    o_tx : Out(stream.Signature(8))
        Bytes to the UART transmitter.
    h<g> : In(HandlerSignature())
        One per group: the controller side of :class:`hw.control.handler.HandlerSignature`.
    o_handler_reset : Out(16)
        Bit ``g``: reset pulse for group ``g``'s handler (watchdog expiry).
    i_line_errors : In(2)
        One-cycle pulses from the UART: bit 0 framing error, bit 1 overrun; made sticky in
        ``o_flags``.
    i_block_errors : In(16)
        Level: bit ``g`` is group ``g``'s handler ``error`` (sets the ``block`` flag).
    i_clear : In(1)
        Clear ``o_flags`` and the counters.
    o_flags : Out(8)
        Sticky error flags, bit positions in :data:`hw.control.protocol.FLAG_BITS`.
    o_frames, o_errors : Out(16)
        Frames executed with status OK / error replies sent, since the last clear (wrapping).
    o_busy : Out(1)
        A frame is being received, executed or answered.
    o_seq : Out(8)
        The ``seq`` the next sequenced frame must carry (0 after power-up; not cleared by
        ``i_clear``, so a ``RESET`` inside a window does not refuse the frames after it).

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, groups=(0,), timeout=1 << 16, watchdog=1 << 20):
        groups = tuple(groups)
        if not groups or len(set(groups)) != len(groups):
            raise ValueError(f"groups must be distinct integers from 0 to 15, not {groups!r}")
        for g in groups:
            check_int("groups", g, 0, 15)
        self._groups = groups
        self._timeout = check_int("timeout", timeout, 16, 1 << 30)
        self._watchdog = check_int("watchdog", watchdog, 16, 1 << 30)
        members = {
            "i_rx": In(stream.Signature(8)),
            "i_rx_busy": In(1),
            "o_tx": Out(stream.Signature(8)),
            "o_handler_reset": Out(16),
            "i_line_errors": In(2),
            "i_block_errors": In(16),
            "i_clear": In(1),
            "o_flags": Out(8),
            "o_frames": Out(16),
            "o_errors": Out(16),
            "o_busy": Out(1),
            "o_seq": Out(8),
        }
        for g in groups:
            members[f"h{g}"] = In(HandlerSignature())
        super().__init__(members)

    @property
    def groups(self):
        return self._groups

    def handler(self, group):
        return getattr(self, f"h{group}")

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx_buf = rx_buf = Memory(shape=8, depth=MAX_PAYLOAD, init=[])
        m.submodules.tx_buf = tx_buf = Memory(shape=8, depth=MAX_REPLY, init=[])
        rx_wr = rx_buf.write_port()
        rx_rd = rx_buf.read_port(transparent_for=())
        tx_wr = tx_buf.write_port()
        tx_rd = tx_buf.read_port()

        cmd = Signal(8)
        sequenced = Signal()          # the frame began with SYNC_SEQ_CMD
        seq = Signal(8)               # its seq byte
        length = Signal(16)
        # Payload bytes received / bytes left to drain. 17 bits: an oversize frame declares up to
        # 0xFFFF payload bytes plus 2 CRC bytes, which must not wrap to a short drain.
        count = Signal(17)
        crc = Signal(16)              # running CRC of the incoming frame
        crc_rx = Signal(16)
        idle = Signal(range(self._timeout + 1))
        watch = Signal(range(self._watchdog + 1))

        # Reply request from the receive side to the transmit side.
        reply_go = Signal()
        reply_status = Signal(8)
        reply_len = Signal(16)
        tx_idle = Signal()

        group = cmd[4:8]
        present = Signal()
        m.d.comb += present.eq(0)
        for g in self._groups:
            with m.If(group == g):
                m.d.comb += present.eq(1)

        byte = self.i_rx.payload
        take = self.i_rx.valid & self.i_rx.ready
        crc_next = crc16_next(m, crc, byte, name="crc_rx")

        # Idle timer: counts cycles without a received byte inside a frame.
        timed_out = Signal()
        with m.If(take | self.i_rx_busy):
            m.d.sync += idle.eq(0)
        with m.Elif(idle != self._timeout):
            m.d.sync += idle.eq(idle + 1)
        m.d.comb += timed_out.eq(idle == self._timeout)

        def post(status, n=0):
            m.d.comb += reply_go.eq(1)
            m.d.sync += [reply_status.eq(status), reply_len.eq(n)]

        error_event = Signal(8)       # one-hot flag bits raised this cycle

        def truncation_check():
            # A frame that stops in the middle is answered once the line has been idle long enough.
            with m.If(timed_out & ~take):
                post(Status.ERR_TRUNCATED)
                m.d.comb += error_event[FLAG_BITS["truncated"]].eq(1)
                m.next = "WAIT_TX"
        ok_event = Signal()

        # Execute-phase plumbing: payload from rx_buf to the handler, reply into tx_buf.
        rd_addr = Signal(16)
        feed_valid = Signal()
        start = Signal()
        sel_ready = Signal()
        sel_done = Signal()
        sel_status = Signal(8)
        sel_o_valid = Signal()
        sel_o_payload = Signal(8)
        reply_count = Signal(16)
        reply_over = Signal()
        executing = Signal()

        for g in self._groups:
            h = self.handler(g)
            sel = group == g
            m.d.comb += [
                h.start.eq(start & sel),
                h.cmd.eq(cmd),
                h.length.eq(length),
                h.i_data.payload.eq(rx_rd.data),
                h.i_data.valid.eq(feed_valid & sel & executing),
                h.o_data.ready.eq(sel & executing),
            ]
            with m.If(sel):
                m.d.comb += [
                    sel_ready.eq(h.i_data.ready),
                    sel_done.eq(h.done & executing),
                    sel_status.eq(h.status),
                    sel_o_valid.eq(h.o_data.valid & executing),
                    sel_o_payload.eq(h.o_data.payload),
                ]

        m.d.comb += rx_rd.addr.eq(rd_addr)
        with m.FSM(name="rx_fsm"):
            with m.State("IDLE"):
                m.d.comb += self.i_rx.ready.eq(1)
                with m.If(take & ((byte == SYNC_CMD) | (byte == SYNC_SEQ_CMD))):
                    # cmd reads SYNC_CMD (no command's code) until the cmd byte arrives, so a frame
                    # truncated before it is never answered in the name of the previous command.
                    m.d.sync += [crc.eq(protocol.CRC_INIT), cmd.eq(SYNC_CMD),
                                 sequenced.eq(byte == SYNC_SEQ_CMD)]
                    m.next = "CMD"
                    with m.If(byte == SYNC_SEQ_CMD):
                        m.next = "SEQ"
            for state, field, nxt in (("SEQ", seq, "CMD"), ("CMD", cmd, "LEN0"),
                                      ("LEN0", length[:8], "LEN1")):
                with m.State(state):
                    truncation_check()
                    m.d.comb += self.i_rx.ready.eq(1)
                    with m.If(take):
                        m.d.sync += [field.eq(byte), crc.eq(crc_next)]
                        m.next = nxt
            with m.State("LEN1"):
                truncation_check()
                m.d.comb += self.i_rx.ready.eq(1)
                full = Cat(length[:8], byte)
                with m.If(take):
                    m.d.sync += [length[8:].eq(byte), crc.eq(crc_next), count.eq(0)]
                    with m.If(full > MAX_PAYLOAD):
                        post(Status.ERR_OVERSIZE)
                        m.d.comb += error_event[FLAG_BITS["oversize"]].eq(1)
                        m.d.sync += count.eq(full + 2)   # 17-bit sum: 0xFFFF + 2 does not wrap
                        m.next = "DRAIN"
                    with m.Elif(full == 0):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                truncation_check()
                m.d.comb += [
                    self.i_rx.ready.eq(1),
                    rx_wr.addr.eq(count),
                    rx_wr.data.eq(byte),
                    rx_wr.en.eq(take),
                ]
                with m.If(take):
                    m.d.sync += [crc.eq(crc_next), count.eq(count + 1)]
                    with m.If(count + 1 == length):
                        m.next = "CRC0"
            with m.State("CRC0"):
                truncation_check()
                m.d.comb += self.i_rx.ready.eq(1)
                with m.If(take):
                    m.d.sync += crc_rx[:8].eq(byte)
                    m.next = "CRC1"
            with m.State("CRC1"):
                truncation_check()
                m.d.comb += self.i_rx.ready.eq(1)
                with m.If(take):
                    m.d.sync += crc_rx[8:].eq(byte)
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(crc_rx != crc):
                    post(Status.ERR_CRC)
                    m.d.comb += error_event[FLAG_BITS["crc"]].eq(1)
                    m.next = "WAIT_TX"
                with m.Elif(sequenced & (seq != self.o_seq)):
                    # out of order (a frame before it was lost or refused) or a resent frame that
                    # already ran: refused, and the expected seq stays
                    post(Status.ERR_SEQUENCE)
                    m.next = "WAIT_TX"
                with m.Elif(~present):
                    # a group this bitstream does not carry: answered, and its seq is used up
                    m.d.sync += self.o_seq.eq(self.o_seq + sequenced)
                    post(Status.ERR_UNKNOWN_CMD)
                    m.d.comb += error_event[FLAG_BITS["unknown"]].eq(1)
                    m.next = "WAIT_TX"
                with m.Else():
                    m.d.comb += start.eq(1)
                    m.d.sync += self.o_seq.eq(self.o_seq + sequenced)
                    m.d.sync += [rd_addr.eq(0), feed_valid.eq(0), reply_count.eq(0), reply_over.eq(0),
                                 watch.eq(0)]
                    m.next = "EXEC"
            with m.State("EXEC"):
                m.d.comb += executing.eq(1)
                # Payload feed: a one-deep pipeline behind the buffer's read port.
                advance = (~feed_valid | sel_ready) & (rd_addr != length)
                m.d.comb += rx_rd.en.eq(advance)
                with m.If(advance):
                    m.d.sync += [rd_addr.eq(rd_addr + 1), feed_valid.eq(1)]
                with m.Elif(sel_ready):
                    m.d.sync += feed_valid.eq(0)
                # Reply bytes into the transmit buffer; too many of them spoil the reply.
                m.d.comb += [tx_wr.addr.eq(reply_count), tx_wr.data.eq(sel_o_payload),
                             tx_wr.en.eq(sel_o_valid & (reply_count < MAX_REPLY))]
                with m.If(sel_o_valid):
                    with m.If(reply_count == MAX_REPLY):
                        m.d.sync += reply_over.eq(1)
                    with m.Else():
                        m.d.sync += reply_count.eq(reply_count + 1)
                m.d.sync += watch.eq(watch + 1)
                with m.If(sel_done):
                    with m.If(reply_over):
                        post(Status.ERR_REPLY_OVERSIZE)
                    with m.Elif(sel_status == Status.OK):
                        post(Status.OK, reply_count)
                        m.d.comb += ok_event.eq(1)
                    with m.Else():
                        post(sel_status)
                        with m.If(sel_status == Status.ERR_UNKNOWN_CMD):
                            m.d.comb += error_event[FLAG_BITS["unknown"]].eq(1)
                        with m.Elif(sel_status == Status.ERR_BLOCK):
                            m.d.comb += error_event[FLAG_BITS["block"]].eq(1)
                    m.next = "WAIT_TX"
                with m.Elif(watch == self._watchdog):
                    post(Status.ERR_TIMEOUT)
                    m.d.comb += error_event[FLAG_BITS["timeout"]].eq(1)
                    for g in self._groups:
                        with m.If(group == g):
                            m.d.comb += self.o_handler_reset[g].eq(1)
                    m.next = "WAIT_TX"
            with m.State("DRAIN"):
                # Not ready once the count is out: the next byte belongs to no refused frame.
                m.d.comb += self.i_rx.ready.eq(count != 0)
                with m.If(count == 0):
                    m.next = "WAIT_TX"
                with m.Elif(take):
                    m.d.sync += count.eq(count - 1)
                with m.Elif(timed_out):
                    m.next = "WAIT_TX"
            with m.State("WAIT_TX"):
                with m.If(tx_idle & ~reply_go):
                    m.next = "IDLE"


        # Transmit side: header, buffered payload, CRC.
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
        m.d.comb += [self.o_tx.payload.eq(tx_byte), tx_rd.addr.eq(tx_ptr)]

        with m.FSM(name="tx_fsm"):
            with m.State("IDLE"):
                m.d.comb += tx_idle.eq(1)
                with m.If(reply_go):
                    m.next = "SYNC"
            with m.State("SYNC"):
                # reply_status / reply_len were registered in the cycle of reply_go.
                m.d.sync += [tx_cmd.eq(cmd), tx_status.eq(reply_status), tx_len.eq(reply_len),
                             tx_seq.eq(seq), tx_sequenced.eq(sequenced),
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
                # tx_rd.data shows tx_buf[tx_ptr] from the next cycle on.
                m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [tx_byte.eq(tx_rd.data), self.o_tx.valid.eq(1)]
                with m.If(sent):
                    m.d.sync += [tx_crc.eq(tx_crc_next), tx_ptr.eq(tx_ptr + 1)]
                    with m.If(tx_ptr + 1 == tx_len):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("CRC0"):
                m.d.comb += [tx_byte.eq(tx_crc[:8]), self.o_tx.valid.eq(1)]
                with m.If(sent):
                    m.next = "CRC1"
            with m.State("CRC1"):
                m.d.comb += [tx_byte.eq(tx_crc[8:]), self.o_tx.valid.eq(1)]
                with m.If(sent):
                    m.next = "IDLE"

        # Sticky flags and counters.
        line = Const(0, 8) | (self.i_line_errors[0] << FLAG_BITS["framing"]) \
            | (self.i_line_errors[1] << FLAG_BITS["overrun"])
        block_level = Signal()
        for g in self._groups:
            with m.If(self.i_block_errors[g]):
                m.d.comb += block_level.eq(1)
        with m.If(self.i_clear):
            m.d.sync += [self.o_flags.eq(0), self.o_frames.eq(0), self.o_errors.eq(0)]
        with m.Else():
            m.d.sync += self.o_flags.eq(self.o_flags | error_event | line
                                        | (block_level << FLAG_BITS["block"]))
            with m.If(ok_event):
                m.d.sync += self.o_frames.eq(self.o_frames + 1)
            with m.Elif(reply_go):
                m.d.sync += self.o_errors.eq(self.o_errors + 1)

        m.d.comb += self.o_busy.eq(~tx_idle | (executing))
        return m
