from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.ram import registered_read_port
from ..params import check_int
from .executor import CommandExecutor, HandlerMux
from .flags import StatusFlags
from .handler import HandlerSignature
from .protocol import MAX_PAYLOAD, MAX_REPLY
from .receiver import FrameReceiver
from .transmitter import ReplyTransmitter

__all__ = ["Controller"]


class Controller(wiring.Component):
    """The framed, CRC-checked command controller between a UART and the command-group handlers.

    Frames and error rules are those of :mod:`hw.control.protocol`. Cycle behaviour:

    * Receive: payload bytes are written into a ``MAX_PAYLOAD``-byte buffer while the CRC is
      computed on the fly (one byte per cycle). Nothing is executed before the CRC checked out.
    * Execute: the selected handler (high nibble of ``cmd``) is started; the buffered payload is
      streamed to it at up to one byte every two cycles, and its reply bytes are written into a
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

    Structure: :class:`~hw.control.receiver.FrameReceiver` (parser, payload buffer writes, checks,
    skip, idle timeout) starts :class:`~hw.control.executor.CommandExecutor` (payload feed, reply
    buffer writes, watchdog) on the handler that :class:`~hw.control.executor.HandlerMux` selects;
    either requests the reply from :class:`~hw.control.transmitter.ReplyTransmitter`;
    :class:`~hw.control.flags.StatusFlags` keeps the flags and counters. The payload and reply
    buffers are memories here, one port to each part.

    Timing: the parts decide on registered compares (counters against lengths, the CRC, the
    sequence number, the idle timer and watchdog), keep their states one-hot
    (:class:`~hw.control.onehot.OneHotFSM`), take ``i_rx`` with a registered ``ready``, offer
    ``o_tx`` from a register, request replies and start handlers one cycle after the decision, and
    meet each handler through buffers on both of its streams. So no path runs from a byte
    taken to the reply's transmit logic in one cycle; a frame costs a few cycles more than one per
    byte (one after the sync byte and one after the length), which the receive FIFO absorbs.

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
        # Neither buffer is ever read at the address written in the same cycle (the receiver
        # writes the payload buffer only while no command executes, the executor writes the reply
        # buffer only while no reply is sent, and a read whose data is not used does not count), so
        # they carry no_rw_check and are read through registered_read_port: Yosys adds no
        # read-during-write compare and bypass register (about 55 flip-flops and as many LUTs).
        no_rw = {"no_rw_check": 1}
        m.submodules.rx_buf = rx_buf = Memory(shape=8, depth=MAX_PAYLOAD, init=[], attrs=no_rw)
        m.submodules.tx_buf = tx_buf = Memory(shape=8, depth=MAX_REPLY, init=[], attrs=no_rw)
        rx_rd = registered_read_port(m, rx_buf, name="rx_buf_rd")
        tx_rd = registered_read_port(m, tx_buf, name="tx_buf_rd")
        # The receiver's idle timer is the executor's watchdog too (they never run at once).
        m.submodules.receiver = rx = FrameReceiver(timeout=self._timeout, max_payload=MAX_PAYLOAD,
                                                   watchdog=self._watchdog)
        m.submodules.executor = ex = CommandExecutor(watchdog=None, max_payload=MAX_PAYLOAD,
                                                     max_reply=MAX_REPLY)
        m.submodules.handlers = mux = HandlerMux(self._groups)
        m.submodules.transmitter = tx = ReplyTransmitter(max_reply=MAX_REPLY)
        m.submodules.flags = flags = StatusFlags(self._groups)

        # Receive: bytes into the payload buffer, the frame checked, refused or started.
        wiring.connect(m, wiring.flipped(self.i_rx), rx.i_rx)
        wiring.connect(m, rx.payload_buf, rx_buf.write_port())
        m.d.comb += [rx.i_rx_busy.eq(self.i_rx_busy), rx.i_present.eq(mux.o_present),
                     self.o_seq.eq(rx.o_expected_seq)]

        # Execute: payload to the selected handler, its reply into the reply buffer.
        m.d.comb += [rx_rd.addr.eq(ex.payload_buf.addr), rx_rd.en.eq(ex.payload_buf.en),
                     ex.payload_buf.data.eq(rx_rd.data)]
        wiring.connect(m, ex.reply_buf, tx_buf.write_port())
        wiring.connect(m, ex.bus, mux.bus)
        for g in self._groups:
            wiring.connect(m, getattr(mux, f"h{g}"),
                           wiring.flipped(self.handler(g)))
        m.d.comb += [ex.i_start.eq(rx.o_start), ex.i_cmd.eq(rx.o_cmd), ex.i_length.eq(rx.o_length),
                     ex.i_expired.eq(rx.o_watchdog),
                     rx.i_exec_done.eq(ex.o_reply.go),
                     mux.i_reset.eq(ex.o_handler_timeout), self.o_handler_reset.eq(mux.o_handler_reset)]

        # Reply: requested by the receiver (refused frames) or the executor (never both at once:
        # the receiver requests nothing while a command executes), so the requests merge by OR.
        # Both requests are registered in their parts, the decision's cycle is not the send's.
        reply_go = Signal()
        m.d.comb += [
            reply_go.eq(rx.o_reply.go | ex.o_reply.go),
            tx.i_reply.go.eq(reply_go),
            tx.i_reply.status.eq(rx.o_reply.status | ex.o_reply.status),
            tx.i_reply.length.eq(rx.o_reply.length | ex.o_reply.length),
            tx.i_cmd.eq(rx.o_cmd), tx.i_seq.eq(rx.o_seq), tx.i_sequenced.eq(rx.o_sequenced),
            rx.i_tx_idle.eq(tx.o_idle), rx.i_reply_go.eq(reply_go),
        ]
        m.d.comb += [tx_rd.addr.eq(tx.reply_buf.addr), tx_rd.en.eq(tx.reply_buf.en),
                     tx.reply_buf.data.eq(tx_rd.data)]
        wiring.connect(m, tx.o_tx, wiring.flipped(self.o_tx))

        # Sticky flags and counters.
        m.d.comb += [
            flags.i_events.eq(rx.o_events | ex.o_events),
            flags.i_line_errors.eq(self.i_line_errors),
            flags.i_block_errors.eq(self.i_block_errors),
            flags.i_reply.eq(reply_go),
            flags.i_ok.eq(ex.o_ok),
            flags.i_clear.eq(self.i_clear),
            self.o_flags.eq(flags.o_flags),
            self.o_frames.eq(flags.o_frames),
            self.o_errors.eq(flags.o_errors),
            self.o_busy.eq(~tx.o_idle | rx.o_executing),
        ]
        return m
