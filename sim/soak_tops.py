"""Stream-level tops for the control and UART soaks (:mod:`sim.tb_soak`): the blocks' own stream
ports brought out, nothing added on the data path."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.control.controller import Controller
from hw.control.protocol import MAX_PAYLOAD
from hw.control.system import SystemHandler
from hw.uart.rx import UARTRx
from hw.uart.tx import UARTTx

__all__ = ["ControllerStreams", "UartLoop"]


class ControllerStreams(wiring.Component):
    """:class:`hw.control.controller.Controller` with the system command group
    (:class:`hw.control.system.SystemHandler`), its byte streams as ports (no UART): ``i_rx`` takes
    command-frame bytes, ``o_tx`` gives reply-frame bytes. ``clk_hz`` and ``divisor`` only feed the
    STATUS record."""

    i_rx: In(stream.Signature(8))
    o_tx: Out(stream.Signature(8))

    def __init__(self, *, timeout=1 << 16, watchdog=1 << 20, clk_hz=12_000_000, divisor=4):
        self._timeout, self._watchdog = timeout, watchdog
        self._clk_hz, self._divisor = clk_hz, divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.controller = ctrl = Controller((0,), timeout=self._timeout, watchdog=self._watchdog)
        m.submodules.system = system = SystemHandler(groups_mask=1, clk_hz=self._clk_hz,
                                                     divisor=self._divisor, max_payload=MAX_PAYLOAD)
        wiring.connect(m, wiring.flipped(self.i_rx), ctrl.i_rx)
        wiring.connect(m, ctrl.o_tx, wiring.flipped(self.o_tx))
        wiring.connect(m, ctrl.h0, system.bus)
        m.d.comb += [
            system.i_flags.eq(ctrl.o_flags),
            system.i_frames.eq(ctrl.o_frames),
            system.i_errors.eq(ctrl.o_errors),
            ctrl.i_clear.eq(system.o_clear),
        ]
        return m


class UartLoop(wiring.Component):
    """:class:`hw.uart.tx.UARTTx` looped back into :class:`hw.uart.rx.UARTRx` (``divisor`` cycles per
    bit): bytes in at ``i_data``, out at ``o_data``; ``o_line_errors`` (bit 0 framing, bit 1
    overrun) made sticky."""

    i_data: In(stream.Signature(8))
    o_data: Out(stream.Signature(8))
    o_line_errors: Out(2)

    def __init__(self, divisor=4):
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = tx = UARTTx(self._divisor)
        m.submodules.rx = rx = UARTRx(self._divisor)
        wiring.connect(m, wiring.flipped(self.i_data), tx.i_data)
        wiring.connect(m, rx.o_data, wiring.flipped(self.o_data))
        m.d.comb += rx.i_rx.eq(tx.o_tx)
        m.d.sync += self.o_line_errors.eq(self.o_line_errors | rx.o_frame_error | (rx.o_overrun << 1))
        return m
