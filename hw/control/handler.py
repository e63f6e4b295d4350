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

from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["HandlerSignature"]


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
