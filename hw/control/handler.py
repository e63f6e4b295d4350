"""The interface between the command controller and a command group's handler.

Every command group (system, GEMM, HDQT, STDP) is one :class:`HandlerSignature` component; the
controller (:mod:`hw.control.controller`) connects the group selected by the command's high nibble.
A transaction, as the handler sees it:

1. ``start`` pulses for one cycle; ``cmd`` and ``length`` (payload bytes) are valid from then until
   ``done``. Only commands whose high nibble is the handler's group are started on it.
2. ``i_data`` offers exactly ``length`` payload bytes (with random gaps); the handler may take
   them at any pace, and need not take all (the rest are discarded).
3. The handler sends its reply payload on ``o_data`` (any number of bytes, possibly none; the
   controller accepts one byte per cycle, except that it stops accepting while ``i_data`` still has
   payload bytes waiting — a handler must not block on ``o_data`` without ever taking input).
4. ``done`` pulses for one cycle with ``status`` (a :class:`hw.control.protocol.Status` code) after
   the last reply byte was transferred. An unknown command in the group answers
   ``Status.ERR_UNKNOWN_CMD``.

A handler that does not pulse ``done`` within the controller's watchdog time is reset (its
domain's reset) and the command answers ``ERR_TIMEOUT``. ``error`` is the handler's sticky
block-level error flag (bad run-time data), reported in ``STATUS`` and cleared by the ``RESET``
command, which also resets the handler.
"""

from contextlib import contextmanager

from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .protocol import Status

__all__ = ["HandlerSignature", "Handler", "start_command", "finish_command", "send_low_byte",
           "capture_bytes"]


class HandlerSignature(wiring.Signature):
    """Handler side of the controller/handler interface (see the module docstring)."""

    def __init__(self):
        super().__init__({
            "start": In(1),
            "cmd": In(8),
            "length": In(16),
            "i_data": In(stream.Signature(8)),
            "o_data": Out(stream.Signature(8)),
            "done": Out(1),
            "status": Out(8),
            "error": Out(1),
        })


class Handler(wiring.Component):
    """Base of the command-group handlers: a component with one ``bus : Out(HandlerSignature())``.

    The helpers below write the parts every handler's command FSM shares; each takes the
    :class:`amaranth.hdl.Module` under construction and must be called inside the FSM state it
    describes.
    """

    bus: Out(HandlerSignature())


def start_command(m, bus, status, routes, on_start=()):
    """The ``IDLE`` state: on ``bus.start``, ``on_start`` (sync statements) and ``status`` = OK, then
    to the state of the command's route; a command of no route answers ``ERR_UNKNOWN_CMD``.

    ``routes``: ``[(commands, next state, action)]``; ``action`` (or None) is called inside the
    route's case to add statements of its own.
    """
    with m.If(bus.start):
        m.d.sync += list(on_start)
        with m.Switch(bus.cmd):
            for cmds, state, action in routes:
                with m.Case(*cmds):
                    if action is not None:
                        action()
                    m.next = state
            with m.Default():
                m.d.sync += status.eq(Status.ERR_UNKNOWN_CMD)
                m.next = "DONE"


def finish_command(m, bus, status):
    """The ``DONE`` state: pulse ``done`` with ``status`` for one cycle, back to ``IDLE``."""
    m.d.comb += [bus.done.eq(1), bus.status.eq(status)]
    m.next = "IDLE"


@contextmanager
def send_low_byte(m, bus, value, nbyte):
    """Offer ``value``'s low byte on ``o_data``; when it is taken, shift ``value`` right by a byte
    and count ``nbyte`` up. The body of the ``with`` runs (in the same cycle) when the byte is taken."""
    m.d.comb += [bus.o_data.valid.eq(1), bus.o_data.payload.eq(value[:8])]
    with m.If(bus.o_data.ready):
        m.d.sync += [value.eq(value >> 8), nbyte.eq(nbyte + 1)]
        yield


def capture_bytes(m, index, byte, targets):
    """Store header byte number ``index`` (a signal): ``targets[i]`` lists the values byte ``i``
    is written into (sync), e.g. ``[[sel], [addr[:8]], [addr[8:]]]``."""
    with m.Switch(index):
        for i, dests in enumerate(targets):
            with m.Case(i):
                m.d.sync += [d.eq(byte) for d in dests]

