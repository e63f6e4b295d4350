"""Board top level: the pins of a board around :class:`hw.control.core.EdgeLearnCore`."""

from amaranth.hdl import ClockDomain, Elaboratable, Module
from amaranth.lib import io

from hw.control.boards import check_board, make_core

from .clock import OscillatorDomain, PLLDomain, pll_for

__all__ = ["BoardTop", "make_core"]


class BoardTop(Elaboratable):
    """The whole design for ``board``: clock, UART pins and LEDs through I/O buffers, the core inside.

    ``config`` (a :class:`hw.control.boards.BoardConfig`) replaces the board's own, e.g. to carry
    other command groups; ``clk_hz`` replaces its system clock (a PLL build trying a lower clock).

    A board with an oscillator for its PLL (``osc_hz``) gets its ``sync`` domain from
    :class:`boards.clock.PLLDomain` at ``clk_hz``; otherwise the clock is the board's default clock
    (Amaranth's platform creates the ``sync`` domain and, on iCE40, the power-on reset that block
    RAMs need). The core is built for the same ``clk_hz``, so its UART divisor, frame timeout and
    heartbeat follow the clock. The UART's receive pin is an input buffer whose output the core
    synchronizes; LEDs map core LED bits in the order of :attr:`boards.config.BoardConfig.leds`.
    """

    def __init__(self, board, *, config=None, clk_hz=None):
        base = check_board(board)
        self.board = board
        self.config = config if config is not None else base
        self.clk_hz = self.config.clk_hz if clk_hz is None else clk_hz
        osc = self.config.osc_hz
        self.pll = pll_for(self.config.family, osc, self.clk_hz) if osc else None
        if self.config.clocks and (osc or self.config.family != "ecp5"):
            raise ValueError(f"clocks (other clock domains) need an ECP5 board whose sync clock is its "
                             f"oscillator, not {board}")
        self.domain_plls = {d: pll_for("ecp5", self.clk_hz, hz) for d, hz in self.config.clocks.items()}
        if self.pll is not None and self.pll.clk_hz != self.clk_hz:
            raise ValueError(f"clk_hz must be a frequency the PLL makes from {osc} Hz, "
                             f"not {self.clk_hz} (nearest: {self.pll.clk_hz})")
        if self.pll is None and self.clk_hz != self.config.clk_hz:
            raise ValueError(f"clk_hz must be the oscillator's {self.config.clk_hz} Hz on {board} "
                             f"(no PLL), not {self.clk_hz}")

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        if self.pll is not None:
            m.domains.sync = ClockDomain("sync")
            m.submodules.clock = PLLDomain(self.pll, platform.default_clk)
        elif self.domain_plls:
            # The oscillator drives sync and feeds one PLL per other domain (the GEMM engine's).
            m.domains.sync = ClockDomain("sync")
            m.submodules.clock = osc = OscillatorDomain(platform.default_clk, self.clk_hz)
            for d, pll in self.domain_plls.items():
                m.domains += ClockDomain(d)
                m.submodules[f"pll_{d}"] = PLLDomain(pll, osc.clk_in, domain=d)
        m.submodules.core = core = make_core(self.board, config=cfg, clk_hz=self.clk_hz)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.i_rx.eq(rx.i), tx.o.eq(core.o_tx)]
        for bit, (name, number) in enumerate(cfg.leds):
            led = platform.request(name, number, dir="-")
            buf = io.Buffer("o", led)
            m.submodules[f"led_{name}_{number}"] = buf
            m.d.comb += buf.o.eq(core.o_leds[bit])
        return m
