"""Board top level: the pins of a board around :class:`hw.control.core.EdgeLearnCore`."""

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from hw.control.core import EdgeLearnCore

from .config import BOARD_CONFIGS

__all__ = ["BoardTop", "make_core"]


def make_core(board, *, config=None, primitives=True, **overrides):
    """The core a board carries (also what the simulated board runs, with ``overrides``).

    ``config`` replaces the board's :class:`boards.config.BoardConfig` (block sizes);
    ``primitives=False`` replaces DSP primitives by their behavioural models (for simulators).
    """
    cfg = config if config is not None else BOARD_CONFIGS[board]
    from .groups import board_handlers
    kwargs = {"clk_hz": cfg.clk_hz, "baud": cfg.baud,
              "handlers": board_handlers(board, cfg, primitives=primitives)}
    kwargs.update(overrides)
    return EdgeLearnCore(**kwargs)


class BoardTop(Elaboratable):
    """The whole design for ``board``: UART pins and LEDs through I/O buffers, the core inside.

    The clock is the board's default clock (Amaranth's platform creates the ``sync`` domain and, on
    iCE40, the power-on reset that block RAMs need). The UART's receive pin is an input buffer
    whose output the core synchronizes; LEDs map core LED bits in the order of
    :attr:`boards.config.BoardConfig.leds`.
    """

    def __init__(self, board):
        if board not in BOARD_CONFIGS:
            raise ValueError(f"board must be one of {', '.join(BOARD_CONFIGS)}, not {board!r}")
        self.board = board

    def elaborate(self, platform):
        cfg = BOARD_CONFIGS[self.board]
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
