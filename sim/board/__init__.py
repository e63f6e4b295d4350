"""The simulated board: board cores run in a simulator and driven at the UART pins.

:func:`shared_board` is *the* simulated board of :mod:`firmware` (``edgelearn run JOB --sim``,
``edgelearn demo``, the UART-level tests): the core of :data:`hw.control.boards.SIM_CONFIG` (every
command group) in Verilator (:mod:`sim.board.verilator_board`), started once per process and kept
running, since converting the core to Verilog takes about 10 s and building it with Verilator about
a minute (the build is cached on disk). ``EDGELEARN_SIM_BOARD=amaranth`` selects Amaranth's
simulator instead (:mod:`sim.board.amaranth_board`; no C++ toolchain needed, about 1000x slower).
"""

import atexit
import os

from hw.control.boards import SIM_CONFIG, make_core

from .amaranth_board import SIM_TIMEOUT, SIM_WATCHDOG, SimBoard
from .verilator_board import VerilatorBoard

__all__ = ["shared_board", "make_board"]

_SHARED = {}


def make_board(backend=None, config=None):
    """A new simulated board of ``config`` (default :data:`hw.control.boards.SIM_CONFIG`)."""
    cfg = config if config is not None else SIM_CONFIG
    backend = backend or os.environ.get("EDGELEARN_SIM_BOARD", "verilator")
    if backend not in ("verilator", "amaranth"):
        raise ValueError(f"backend must be 'verilator' or 'amaranth', not {backend!r}")
    core = make_core(cfg.name, config=cfg, primitives=False, timeout=SIM_TIMEOUT, watchdog=SIM_WATCHDOG)
    if backend == "amaranth":
        return SimBoard(core)
    return VerilatorBoard(core, toplevel=f"edgelearn_{cfg.name}")


def shared_board(backend=None):
    """The process's simulated board of :data:`hw.control.boards.SIM_CONFIG` (started on first use)."""
    backend = backend or os.environ.get("EDGELEARN_SIM_BOARD", "verilator")
    board = _SHARED.get(backend)
    if board is None:
        board = _SHARED[backend] = make_board(backend)
        atexit.register(board.close)
    else:
        # Bytes a previous user left unread (e.g. after an exception) must not pass for a reply.
        while board.read(1 << 16, timeout_cycles=20 * 10 * board.divisor):
            pass
    return board
