from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..lib.fifo import RegisteredFlagFIFO
from ..lib.reset import module_with_reset_tree
from ..params import check_int
from ..uart import UARTRx, UARTTx
from ..uart.baud import divisor_for
from .controller import Controller
from .heartbeat import Heartbeat
from .protocol import GROUP_SYSTEM, MAX_PAYLOAD
from .system import SystemHandler

__all__ = ["EdgeLearnCore"]


class EdgeLearnCore(wiring.Component):
    """Everything of a board design except the pins: UART, command controller, command groups.

    The same component is the board top's content (:mod:`boards.top`) and the simulated board
    (:mod:`sim.board`), so a job that passes in simulation exercises the gateware that is flashed.

    ``o_leds`` (active high; a board maps as many as it has):

    ====  =====================================================================
    bit   meaning
    ====  =====================================================================
    0     heartbeat, 1 Hz (:class:`hw.control.heartbeat.Heartbeat`: the clock runs and the
          design is configured)
    1     any sticky error flag (link or block; cleared by ``RESET``/``CLEAR_ERRORS``)
    2     receiving (a frame is being received, executed or answered)
    3     a block handler reports a run-time error
    4-7   per command group 0..3: a command of that group is executing
    ====  =====================================================================

    Parameters
    ----------
    clk_hz : int
        System clock frequency.
    baud : int
        UART line rate; ``clk_hz / baud`` must be an integer within 2 % (see
        :func:`hw.uart.baud.divisor_for`).
    timeout : int or None
        Idle cycles inside a frame before it is truncated. Default: 10 ms worth of cycles, far above
        the gaps a USB-serial bridge leaves between its packets.
    watchdog : int or None
        Cycles a command may take. Default: 200 ms worth of cycles.
    rx_fifo : int
        Bytes of the receive FIFO between the UART and the controller (0: none, stop-and-wait
        only). It holds the pipelined frames that arrive while the controller executes and answers
        one (the host's window, reported in ``STATUS.rx_fifo``); 512 is one iCE40 block RAM. 1 is
        refused (the FIFO is a memory of ``rx_fifo - 1`` bytes behind an output register).
    handlers : dict of int to callable, optional
        ``group -> factory()`` of extra command-group handlers (components with a ``bus`` port of
        :class:`hw.control.handler.HandlerSignature` and no other ports). Group 0 (system) is
        always present.

    Members
    -------
    i_rx : In(1)
        UART line from the host (idle high).
    o_tx : Out(1)
        UART line to the host (idle high).
    o_leds : Out(8)

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    i_rx: In(1, init=1)
    o_tx: Out(1, init=1)
    o_leds: Out(8)

    def __init__(self, *, clk_hz=12_000_000, baud=1_000_000, timeout=None, watchdog=None, rx_fifo=512,
                 handlers=None):
        self._clk_hz = check_int("clk_hz", clk_hz, 1_000_000, 1_000_000_000)
        # STATUS reports the divisor in 16 bits.
        self._divisor = divisor_for(clk_hz, baud, max_divisor=0xFFFF)
        self._baud = baud
        self._timeout = check_int("timeout", clk_hz // 100 if timeout is None else timeout, 16, 1 << 30)
        self._watchdog = check_int("watchdog", clk_hz // 5 if watchdog is None else watchdog, 16, 1 << 30)
        self._rx_fifo = check_int("rx_fifo", rx_fifo, 0, 0xFFFF)
        if rx_fifo == 1:
            raise ValueError("rx_fifo must be 0 (no FIFO) or from 2 to 65535, not 1")
        handlers = dict(handlers or {})
        for g in handlers:
            if g == GROUP_SYSTEM:
                raise ValueError("handlers must not contain group 0 (the system group is built in)")
            check_int("handler group", g, 1, 7)
        self._handlers = handlers
        super().__init__()

    divisor = property(lambda self: self._divisor)
    clk_hz = property(lambda self: self._clk_hz)
    frame_timeout = property(lambda self: self._timeout,
                             doc="Idle cycles inside a frame before the controller ends it (see the "
                                 "protocol).")
    rx_fifo = property(lambda self: self._rx_fifo,
                       doc="Bytes of the receive FIFO (the host's window for sequenced frames).")

    @property
    def groups(self):
        return (GROUP_SYSTEM, *sorted(self._handlers))

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = rx = UARTRx(self._divisor)
        m.submodules.uart_tx = tx = UARTTx(self._divisor)
        m.submodules.controller = ctrl = Controller(self.groups, timeout=self._timeout,
                                                    watchdog=self._watchdog)
        mask = sum(1 << g for g in self.groups)
        m.submodules.system = system = SystemHandler(groups_mask=mask, clk_hz=self._clk_hz,
                                                     divisor=self._divisor, max_payload=MAX_PAYLOAD,
                                                     rx_fifo=self._rx_fifo)

        m.d.comb += [rx.i_rx.eq(self.i_rx), self.o_tx.eq(tx.o_tx)]
        if self._rx_fifo:
            # A UART cannot wait: the bytes of pipelined frames queue here while the controller
            # executes and answers the frame before them (a full FIFO shows as a UART overrun).
            # Its flags are registers (the library FIFO's level compare and the controller's ready
            # behind it were a critical path at 48 MHz on the UP5K).
            m.submodules.rx_fifo = rx_fifo = RegisteredFlagFIFO(width=8, depth=self._rx_fifo, bram=True)
            # (w_rdy is a register that is 1 out of reset, so it is not connect()ed to a stream
            # signature whose ready starts at 0)
            m.d.comb += [rx_fifo.w_data.eq(rx.o_data.payload), rx_fifo.w_en.eq(rx.o_data.valid),
                         rx.o_data.ready.eq(rx_fifo.w_rdy)]
            wiring.connect(m, rx_fifo.r_stream, ctrl.i_rx)
        else:
            wiring.connect(m, rx.o_data, ctrl.i_rx)
        wiring.connect(m, ctrl.o_tx, tx.i_data)
        m.d.comb += [ctrl.i_rx_busy.eq(rx.o_busy),
                     ctrl.i_line_errors.eq(rx.o_frame_error | (rx.o_overrun << 1))]

        wiring.connect(m, ctrl.h0, system.bus)
        block_errors = Signal(8)
        m.d.comb += [
            system.i_flags.eq(ctrl.o_flags),
            system.i_block_flags.eq(block_errors),
            system.i_frames.eq(ctrl.o_frames),
            system.i_errors.eq(ctrl.o_errors),
            system.i_seq.eq(ctrl.o_seq),
            ctrl.i_clear.eq(system.o_clear),
            ctrl.i_block_errors.eq(block_errors),
        ]
        for g, factory in sorted(self._handlers.items()):
            handler = factory()
            # A block is reset by the RESET command or when the watchdog gives up on it.
            reset = Signal(name=f"group{g}_reset")
            m.d.comb += reset.eq(system.o_reset_blocks | ctrl.o_handler_reset[g])
            # Through a registered copy per part (two levels: the STDP core's row walker gets its
            # own): the block reset reaches about 900 flip-flops, on iCE40 through their enable
            # logic, and from one net it was a critical path of the iCEBreaker build.
            m.submodules[f"group{g}"] = module_with_reset_tree(handler, reset, name="handler", depth=2,
                                                                platform=platform)
            # Parts a handler keeps out of its reset (clock-domain crossings, which a reset of one
            # side breaks); the handler resets them by its own means.
            for name, part in getattr(handler, "outside_reset", {}).items():
                m.submodules[f"group{g}_{name}"] = part
            wiring.connect(m, getattr(ctrl, f"h{g}"), handler.bus)
            m.d.comb += block_errors[g].eq(handler.bus.error)

        # Status LEDs.
        m.submodules.heartbeat = heartbeat = Heartbeat(self._clk_hz)
        executing = Signal(4)
        for g in self.groups:
            if g < 4:
                m.d.comb += executing[g].eq(ctrl.o_busy & (ctrl.handler(g).cmd[4:8] == g))
        m.d.comb += self.o_leds.eq(heartbeat.o_led | (ctrl.o_flags.any() << 1) | (ctrl.o_busy << 2)
                                   | (block_errors.any() << 3) | (executing << 4))
        return m
