"""The simulated boards: board cores run in a simulator and driven at the UART pins.

:func:`shared_board` is the simulated board of :mod:`firmware` (``edgelearn run JOB --sim``,
``edgelearn demo``, the UART-level tests). Without a board name it is the core of
:data:`hw.control.boards.SIM_CONFIG` (every command group at small sizes, UART at 4 cycles per
bit); with a board name (``edgelearn run JOB --sim --board icebreaker``) it is that board's own core:
its groups and block sizes, its configured clock (``clk_hz``, the PLL's target where the board has a
PLL: the simulated core has no PLL, it runs at that clock by definition), the UART divisor, frame
timeout and watchdog that follow from it, with the behavioural models of the vendor primitives
(SPRAM, SB_MAC16, MULT18X18D) instead of the primitives. One exception, simulation only: a board in
:data:`SIM_LINE_DIVISORS` runs its simulated line at fewer cycles per bit than its hardware (the
ULX3S: 4 instead of 25), so that a job that moves hundreds of kilobytes finishes in minutes; the
jobs print the link's time at the board's real rate (:func:`firmware.jobs.board_time`), and the
blocks' own cycle counts do not depend on the line (``docs/boards.md``).

Each board runs in Verilator (:mod:`sim.board.verilator_board`), started once per process and kept
running, since converting a core to Verilog takes 10-30 s and building it with Verilator one to a few
minutes (the build is cached on disk by the Verilog's hash). ``EDGELEARN_SIM_BOARD=amaranth``
selects Amaranth's simulator instead (:mod:`sim.board.amaranth_board`; no C++ toolchain needed,
about 1000x slower).
"""

import atexit
import os

from hw.control.boards import SIM_CONFIG, check_board, make_core

from .amaranth_board import SIM_TIMEOUT, SIM_WATCHDOG, SimBoard
from .verilator_board import VerilatorBoard

__all__ = ["shared_board", "make_board", "board_config", "sim_clock_periods", "SIM_LINE_DIVISORS",
           "SIM_FASTEST_PS"]

#: UART cycles per bit of a board's simulated core where it differs from the board's own (simulation
#: only). The ULX3S's 25 (1 Mbaud at 25 MHz) makes the 439 KB of its ``gemm`` job (a 512 x 512
#: layer at int8 and int4) 110 M cycles of line, 17.6 M at 4, the UART's least
#: (:data:`hw.uart.baud.MIN_DIVISOR`).
SIM_LINE_DIVISORS = {"ulx3s": 4}

#: Simulated period (ps) of a board's fastest extra clock domain (``BoardConfig.clocks``); the
#: others keep their ratios to it, and ``sync`` runs at 10 ns. Simulation only: on the ULX3S the
#: GEMM array (95 MHz) is 3.8x the controller's 25 MHz, in simulation 1.5625x (6.4 ns against
#: 10 ns), since every array edge costs the simulator while the line runs; the decoder keeps its
#: ratio to the array (65 : 95), as on the board. The engine's cycles do not depend on the
#: controller's clock (``tests/test_gemm_crossing.py``).
SIM_FASTEST_PS = 6400

_SHARED = {}


def sim_clock_periods(cfg):
    """``{domain: simulated period in ps}`` of ``cfg``'s extra clock domains (see :data:`SIM_FASTEST_PS`):
    even numbers of ps (a cocotb clock's two halves are whole steps), the nearest to the ratio."""
    if not cfg.clocks:
        return {}
    fastest = max(cfg.clocks.values())
    return {d: 2 * round(SIM_FASTEST_PS * fastest / hz / 2) for d, hz in cfg.clocks.items()}


def _backend(backend):
    backend = backend or os.environ.get("EDGELEARN_SIM_BOARD", "verilator")
    if backend not in ("verilator", "amaranth"):
        raise ValueError(f"backend must be 'verilator' or 'amaranth', not {backend!r}")
    return backend


def board_config(board=None):
    """The :class:`BoardConfig` a simulated ``board`` runs: :data:`SIM_CONFIG` for ``None``, else the
    board's own (``ValueError`` naming the boards for an unknown name)."""
    return SIM_CONFIG if board is None else check_board(board)


def make_board(backend=None, config=None, *, divisor=None):
    """A new simulated board of ``config`` (default :data:`hw.control.boards.SIM_CONFIG`).

    :data:`SIM_CONFIG` gets the simulation's short frame timeout and watchdog; a board's own config
    keeps the board's (they follow its clock), so that its core is the one the board carries.
    ``divisor``: UART cycles per bit instead of the config's (``clk_hz`` must be a multiple of it).
    """
    cfg = config if config is not None else SIM_CONFIG
    backend = _backend(backend)
    overrides = {"timeout": SIM_TIMEOUT, "watchdog": SIM_WATCHDOG} if cfg is SIM_CONFIG else {}
    if divisor is not None:
        if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 1 or cfg.clk_hz % divisor:
            raise ValueError(f"divisor must be an integer that divides clk_hz {cfg.clk_hz}, not {divisor!r}")
        overrides["baud"] = cfg.clk_hz // divisor
    core = make_core(cfg.name, config=cfg, primitives=False, **overrides)
    if backend == "amaranth":
        return SimBoard(core, clocks={d: 1 / hz for d, hz in cfg.clocks.items()})
    return VerilatorBoard(core, toplevel=f"edgelearn_{cfg.name}", clocks=sim_clock_periods(cfg))


def shared_board(backend=None, board=None, config=None):
    """The process's simulated ``board`` (default: :data:`SIM_CONFIG`'s), started on first use, its
    line at :data:`SIM_LINE_DIVISORS`' divisor where the board has one; ``config`` replaces the
    board's :class:`BoardConfig` (another group selection: another board)."""
    backend = _backend(backend)
    cfg = config if config is not None else board_config(board)
    key = (backend, cfg.name, repr(cfg))
    sim = _SHARED.get(key)
    if sim is None:
        sim = _SHARED[key] = make_board(backend, cfg, divisor=SIM_LINE_DIVISORS.get(cfg.name))
        atexit.register(sim.close)
    else:
        # Bytes a previous user left unread (e.g. after an exception) must not pass for a reply.
        while sim.read(1 << 16, timeout_cycles=20 * 10 * sim.divisor):
            pass
    return sim
