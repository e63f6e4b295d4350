"""Board top level: the pins of a board around :class:`hw.control.core.EdgeLearnCore`."""

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from hw.control.boards import check_board, make_core

__all__ = ["BoardTop", "make_core"]


class BoardTop(Elaboratable):
    """The whole design for ``board``: UART pins and LEDs through I/O buffers, the core inside.

    The clock is the board's default clock (Amaranth's platform creates the ``sync`` domain and, on
    iCE40, the power-on reset that block RAMs need). The UART's receive pin is an input buffer
    whose output the core synchronizes; LEDs map core LED bits in the order of
    :attr:`boards.config.BoardConfig.leds`.
    """

    def __init__(self, board):
        check_board(board)
        self.board = board

    def elaborate(self, platform):
        cfg = check_board(self.board)
        m = Module()
        m.submodules.core = core = make_core(self.board)
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
