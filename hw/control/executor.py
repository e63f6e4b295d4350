"""The controller's execute side: the handler selected by the command's group, the payload feed
from the payload buffer, the reply bytes into the reply buffer and the watchdog (see
:class:`hw.control.controller.Controller`)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..params import check_int
from .handler import HandlerSignature
from .protocol import FLAG_BITS, Status
from .receiver import ReplyRequest

__all__ = ["HandlerMux", "CommandExecutor"]


class HandlerMux(wiring.Component):
    """Routes one handler bus to the handler of the command's group (``cmd[4:8]``).

    Combinational. Toward ``bus`` the mux is a handler (a group that does not exist never takes a
    byte nor finishes); each ``h<g>`` sees ``start`` and the streams only while its group is
    selected, and ``cmd``/``length`` always.

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
        for g in self._groups:
            with m.If(group == g):
                m.d.comb += self.o_present.eq(1)
        for g in self._groups:
            h = getattr(self, f"h{g}")
            sel = group == g
            m.d.comb += [
                h.start.eq(bus.start & sel),
                h.cmd.eq(bus.cmd),
                h.length.eq(bus.length),
                h.i_data.payload.eq(bus.i_data.payload),
                h.i_data.valid.eq(bus.i_data.valid & sel),
                h.o_data.ready.eq(bus.o_data.ready & sel),
            ]
            with m.If(sel):
                m.d.comb += [
                    bus.i_data.ready.eq(h.i_data.ready),
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

    Cycle behaviour: ``i_start`` (one cycle) starts the handler and resets the feed, the reply count
    and the watchdog; while ``i_executing`` the payload's ``i_length`` bytes are offered to the
    handler from a one-deep pipeline behind the buffer's read port (up to one byte per cycle), and
    its reply bytes are written to the reply buffer at one byte per cycle (more than
    ``max_reply`` spoil the reply). ``o_reply`` requests the reply in the cycle ``bus.done`` is seen
    (the handler's status, ``ERR_REPLY_OVERSIZE`` after too many bytes), or ``ERR_TIMEOUT`` with an
    ``o_handler_timeout`` pulse after ``watchdog`` cycles.

    Members
    -------
    i_start : In(1)
    i_executing : In(1)
        From the cycle after ``i_start`` until the reply request.
    i_cmd : In(8)
    i_length : In(16)
    payload_buf : In(ReadPort.Signature)
        Read port of the payload buffer (not transparent).
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
    """

    def __init__(self, *, watchdog, max_payload, max_reply):
        self._watchdog = check_int("watchdog", watchdog, 16, 1 << 30)
        self._max_reply = check_int("max_reply", max_reply, 1, 0xFFFF)
        check_int("max_payload", max_payload, 1, 0xFFFF)
        super().__init__({
            "i_start": In(1),
            "i_executing": In(1),
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
        executing = self.i_executing
        rd_addr = Signal(16)
        feed_valid = Signal()
        reply_count = Signal(16)
        reply_over = Signal()
        watch = Signal(range(self._watchdog + 1))

        m.d.comb += [
            bus.start.eq(self.i_start),
            bus.cmd.eq(self.i_cmd),
            bus.length.eq(self.i_length),
            bus.i_data.payload.eq(self.payload_buf.data),
            bus.i_data.valid.eq(feed_valid & executing),
            bus.o_data.ready.eq(executing),
            self.payload_buf.addr.eq(rd_addr),
        ]
        done = bus.done & executing
        o_valid = bus.o_data.valid & executing

        def post(status, n=0):
            m.d.comb += [self.o_reply.go.eq(1), self.o_reply.status.eq(status), self.o_reply.length.eq(n)]

        with m.If(self.i_start):
            m.d.sync += [rd_addr.eq(0), feed_valid.eq(0), reply_count.eq(0), reply_over.eq(0),
                         watch.eq(0)]
        with m.If(executing):
            # Payload feed: a one-deep pipeline behind the buffer's read port.
            advance = (~feed_valid | bus.i_data.ready) & (rd_addr != self.i_length)
            m.d.comb += self.payload_buf.en.eq(advance)
            with m.If(advance):
                m.d.sync += [rd_addr.eq(rd_addr + 1), feed_valid.eq(1)]
            with m.Elif(bus.i_data.ready):
                m.d.sync += feed_valid.eq(0)
            # Reply bytes into the reply buffer; too many of them spoil the reply.
            m.d.comb += [self.reply_buf.addr.eq(reply_count), self.reply_buf.data.eq(bus.o_data.payload),
                         self.reply_buf.en.eq(o_valid & (reply_count < self._max_reply))]
            with m.If(o_valid):
                with m.If(reply_count == self._max_reply):
                    m.d.sync += reply_over.eq(1)
                with m.Else():
                    m.d.sync += reply_count.eq(reply_count + 1)
            m.d.sync += watch.eq(watch + 1)
            with m.If(done):
                with m.If(reply_over):
                    post(Status.ERR_REPLY_OVERSIZE)
                with m.Elif(bus.status == Status.OK):
                    post(Status.OK, reply_count)
                    m.d.comb += self.o_ok.eq(1)
                with m.Else():
                    post(bus.status)
                    with m.If(bus.status == Status.ERR_UNKNOWN_CMD):
                        m.d.comb += self.o_events[FLAG_BITS["unknown"]].eq(1)
                    with m.Elif(bus.status == Status.ERR_BLOCK):
                        m.d.comb += self.o_events[FLAG_BITS["block"]].eq(1)
            with m.Elif(watch == self._watchdog):
                post(Status.ERR_TIMEOUT)
                m.d.comb += [self.o_events[FLAG_BITS["timeout"]].eq(1), self.o_handler_timeout.eq(1)]
        return m
