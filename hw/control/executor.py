"""The controller's execute side: the handler selected by the command's group, the payload feed
from the payload buffer, the reply bytes into the reply buffer and the watchdog (see
:class:`hw.control.controller.Controller`)."""

from amaranth.hdl import Module, Mux, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..lib.stream import HalfRateBuffer, SkidBuffer
from ..params import check_int
from .handler import HandlerSignature
from .protocol import FLAG_BITS, Status
from .receiver import ReplyRequest

__all__ = ["HandlerMux", "CommandExecutor"]


class HandlerMux(wiring.Component):
    """Routes one handler bus to the handler of the command's group (``cmd[4:8]``).

    The selection (and ``o_present``) is registered from ``bus.cmd``: it follows ``cmd`` one cycle
    later, so ``cmd`` must be stable in the cycle before ``start`` (the receiver's ``cmd`` is, from
    its byte on). Toward ``bus`` the mux is a handler (a group that does not exist never takes a
    byte nor finishes); each ``h<g>`` sees ``start`` and the streams only while its group is
    selected, and ``cmd``/``length`` always. The payload reaches each handler through a one-entry
    buffer of its own (:class:`~hw.lib.stream.HalfRateBuffer`: one cycle, a byte every two cycles
    at most, emptied at ``start``), so ``bus.i_data.ready`` is a register's inverse and a
    handler's ready (a decode of its state) drives only its own buffer's valid flip-flop; the rest
    of the routing is combinational. (Half the rate of a skid buffer costs nothing that shows: the
    payload is in the payload buffer before the command starts, and a UART byte is far longer.)

    Members
    -------
    bus : Out(HandlerSignature())
        From the executor.
    h<g> : In(HandlerSignature())
        To group ``g``'s handler, one per group.
    o_present : Out(1)
        ``bus.cmd``'s group exists.
    i_reset : In(1)
        Reset the selected group's handler (a pulse).
    o_handler_reset : Out(16)
        Bit ``g``: ``i_reset`` while group ``g`` is selected.
    """

    def __init__(self, groups):
        self._groups = tuple(groups)
        members = {"bus": Out(HandlerSignature()), "o_present": Out(1), "i_reset": In(1),
                   "o_handler_reset": Out(16)}
        for g in self._groups:
            members[f"h{g}"] = In(HandlerSignature())
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        group = bus.cmd[4:8]
        m.d.sync += self.o_present.eq(0)
        for g in self._groups:
            with m.If(group == g):
                m.d.sync += self.o_present.eq(1)
        for g in self._groups:
            h = getattr(self, f"h{g}")
            sel = Signal(name=f"sel{g}")     # one-hot over the groups, registered
            m.d.sync += sel.eq(group == g)
            # Bytes the last command's handler left are discarded when a command starts.
            m.submodules[f"payload{g}"] = payload = ResetInserter({"sync": bus.start})(HalfRateBuffer(8))
            m.d.comb += [
                h.start.eq(bus.start & sel),
                h.cmd.eq(bus.cmd),
                h.length.eq(bus.length),
                payload.i.payload.eq(bus.i_data.payload),
                payload.i.valid.eq(bus.i_data.valid & sel),
                h.i_data.payload.eq(payload.o.payload),
                h.i_data.valid.eq(payload.o.valid),
                payload.o.ready.eq(h.i_data.ready),
                h.o_data.ready.eq(bus.o_data.ready & sel),
            ]
            with m.If(sel):
                m.d.comb += [
                    bus.i_data.ready.eq(payload.i.ready),
                    bus.done.eq(h.done),
                    bus.status.eq(h.status),
                    bus.o_data.valid.eq(h.o_data.valid),
                    bus.o_data.payload.eq(h.o_data.payload),
                    self.o_handler_reset[g].eq(self.i_reset),
                ]
        return m


class CommandExecutor(wiring.Component):
    """Runs one command on the handler bus: payload from the payload buffer, reply into the reply
    buffer, watchdog.

    Cycle behaviour: ``i_start`` (one cycle) starts the handler and resets the feed, the reply
    count and the watchdog. From the next cycle until the reply request, the payload's
    ``i_length`` bytes are offered to the handler bus from a one-deep pipeline behind the buffer's
    read port (up to one byte per cycle, the first in the second cycle; :class:`HandlerMux` passes
    them through a one-entry buffer, so a handler sees the first in the third cycle and one every
    two cycles at most), and its reply bytes are written to the reply buffer at one byte per cycle
    (more than ``max_reply`` spoil the reply; they pass a skid buffer first). ``o_reply``
    requests the reply once the reply bytes before ``bus.done`` are written (the handler's
    status, ``ERR_REPLY_OVERSIZE`` after too many bytes; two or three cycles after done), or
    ``ERR_TIMEOUT`` with an ``o_handler_timeout`` pulse in the cycle after the ``watchdog`` cycles
    ran out (registered, like ``o_ok``).

    Members
    -------
    i_start : In(1)
    i_cmd : In(8)
    i_length : In(16)
        At most ``max_payload``, and stable from the cycle before ``i_start`` (the receiver's
        length is, from its second byte on): whether it is 0 is registered in every cycle.
    payload_buf : In(ReadPort.Signature)
        Read port of the payload buffer (not transparent). Payload byte ``i`` is read from address
        ``i + 1`` (as :class:`~hw.control.receiver.FrameReceiver` writes it; the address wraps to
        0 at the buffer's size).
    reply_buf : In(WritePort.Signature)
        Write port of the ``max_reply``-byte reply buffer.
    bus : In(HandlerSignature())
        To the selected handler.
    o_reply : Out(ReplyRequest())
    o_ok : Out(1)
        The command finished with status OK (with the reply request).
    o_handler_timeout : Out(1)
        The watchdog expired.
    o_events : Out(8)
        One-hot flag bits raised in this cycle.
    i_expired : In(1)
        Only with ``watchdog=None``: the watchdog is outside, and this is its expiry, which must
        be high once the watchdog's cycles, counted from the one after ``i_start``'s, have passed
        (as the executor's own count is; the controller's is the receiver's idle timer, see
        :class:`~hw.control.receiver.IdleTimer`).
    """

    def __init__(self, *, watchdog, max_payload, max_reply):
        self._watchdog = None if watchdog is None else check_int("watchdog", watchdog, 16, 1 << 30)
        self._max_reply = check_int("max_reply", max_reply, 1, 0xFFFF)
        self._max_payload = check_int("max_payload", max_payload, 1, 0xFFFF)
        extra = {"i_expired": In(1)} if watchdog is None else {}
        super().__init__({
            **extra,
            "i_start": In(1),
            "i_cmd": In(8),
            "i_length": In(16),
            "payload_buf": In(ReadPort.Signature(addr_width=ceil_log2(max_payload), shape=8)),
            "reply_buf": In(WritePort.Signature(addr_width=ceil_log2(max_reply), shape=8)),
            "bus": In(HandlerSignature()),
            "o_reply": Out(ReplyRequest()),
            "o_ok": Out(1),
            "o_handler_timeout": Out(1),
            "o_events": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        running = Signal()            # from the cycle after i_start until the handler's done
        finishing = Signal()          # after done, until the reply bytes still queued are written
        done_status = Signal(8)
        # The payload's byte i is at buffer address i + 1 (see FrameReceiver), so rd_addr runs
        # from 1 to the length, and whether a byte follows the one read is rd_addr != i_length:
        # a compare of two registers, with no adder before it.
        nbits = self._max_payload.bit_length()     # rd_addr reaches the length
        rd_addr = Signal(nbits)
        feed_valid = Signal()
        feed_more = Signal()          # a byte is left to read (registered)
        # i_length != 0, registered in every cycle (i_length is stable before i_start), so the
        # start loads feed_more from a flip-flop, not from a compare of the receiver's length
        length_nz = Signal()
        m.d.sync += length_nz.eq(self.i_length != 0)
        reply_count = Signal(range(self._max_reply + 1))   # stops at max_reply (reply_full)
        reply_full = Signal()         # reply_count == max_reply (registered; the count stops there)
        reply_over = Signal()
        # The watchdog counts up from 2**k - watchdog, so it has run out when its top bit is set:
        # a flip-flop, with no compare of the count behind it (the count's carry chain is fast).
        # Without a watchdog of its own the count is outside (i_expired).
        if self._watchdog is not None:
            k = ceil_log2(self._watchdog)
            watch = Signal(k + 1)
            expired = watch[k]
        else:
            expired = self.i_expired

        # The payload goes to the handler bus straight from the read port; its ready comes from
        # the buffer that HandlerMux puts in front of each handler (a register), so a
        # handler's state decode does not run into the feed's address counter and read enable.
        m.d.comb += [
            bus.start.eq(self.i_start),
            bus.cmd.eq(self.i_cmd),
            bus.length.eq(self.i_length),
            bus.i_data.payload.eq(self.payload_buf.data),
            bus.i_data.valid.eq(feed_valid & running),
            self.payload_buf.addr.eq(rd_addr),
        ]
        # The reply bytes come through a skid buffer too (the handler's valid and its byte
        # multiplexer do not run into the reply buffer's write port); after done, the request
        # waits until it is empty.
        m.submodules.reply = reply = ResetInserter({"sync": self.i_start})(SkidBuffer(8))
        m.d.comb += [
            reply.i.payload.eq(bus.o_data.payload),
            reply.i.valid.eq(bus.o_data.valid & running),
            bus.o_data.ready.eq(reply.i.ready & running),
            reply.o.ready.eq(1),
        ]
        o_valid = reply.o.valid & (running | finishing)

        # The request and the handler's reset pulse are registered: they leave the cycle after
        # the handler's done or the watchdog's expiry.
        m.d.sync += [self.o_reply.go.eq(0), self.o_reply.status.eq(0),
                     self.o_ok.eq(0), self.o_handler_timeout.eq(0)]
        # Only an OK reply has a payload, and the reply count holds until the next start: the
        # length is the count gated by the registered o_ok (not a registered copy of the count).
        m.d.comb += self.o_reply.length.eq(Mux(self.o_ok, reply_count, 0))

        def post(status):
            m.d.sync += [self.o_reply.go.eq(1), self.o_reply.status.eq(status),
                         running.eq(0), finishing.eq(0)]

        with m.If(running):
            # Payload feed: a one-deep pipeline behind the buffer's read port.
            advance = (~feed_valid | bus.i_data.ready) & feed_more
            m.d.comb += self.payload_buf.en.eq(advance)
            with m.If(advance):
                m.d.sync += [rd_addr.eq(rd_addr + 1), feed_valid.eq(1),
                             feed_more.eq(rd_addr != self.i_length)]
            with m.Elif(bus.i_data.ready):
                m.d.sync += feed_valid.eq(0)
            if self._watchdog is not None:
                with m.If(~expired):
                    m.d.sync += watch.eq(watch + 1)
            with m.If(bus.done):
                m.d.sync += [running.eq(0), finishing.eq(1), done_status.eq(bus.status)]
            with m.Elif(expired):
                post(Status.ERR_TIMEOUT)
                m.d.comb += self.o_events[FLAG_BITS["timeout"]].eq(1)
                m.d.sync += self.o_handler_timeout.eq(1)
        # Reply bytes into the reply buffer; too many of them spoil the reply.
        m.d.comb += [self.reply_buf.addr.eq(reply_count), self.reply_buf.data.eq(reply.o.payload),
                     self.reply_buf.en.eq(o_valid & ~reply_full)]
        with m.If(o_valid):
            with m.If(reply_full):
                m.d.sync += reply_over.eq(1)
            with m.Else():
                m.d.sync += [reply_count.eq(reply_count + 1),
                             reply_full.eq(reply_count == self._max_reply - 1)]
        with m.If(finishing & ~reply.o.valid):
            with m.If(reply_over):
                post(Status.ERR_REPLY_OVERSIZE)
            with m.Elif(done_status == Status.OK):
                post(Status.OK)
                m.d.sync += self.o_ok.eq(1)
            with m.Else():
                post(done_status)
                with m.If(done_status == Status.ERR_UNKNOWN_CMD):
                    m.d.comb += self.o_events[FLAG_BITS["unknown"]].eq(1)
                with m.Elif(done_status == Status.ERR_BLOCK):
                    m.d.comb += self.o_events[FLAG_BITS["block"]].eq(1)
        # The start, after every other statement: nothing else happens in its cycle (the executor
        # is idle then), and written last it is a synchronous reset or load of the counters'
        # flip-flops rather than a multiplexer in front of their increments.
        with m.If(self.i_start):
            m.d.sync += [running.eq(1), rd_addr.eq(1), feed_valid.eq(0), feed_more.eq(length_nz),
                         reply_count.eq(0), reply_full.eq(0), reply_over.eq(0)]
            if self._watchdog is not None:
                m.d.sync += watch.eq((1 << k) - self._watchdog)
        return m
