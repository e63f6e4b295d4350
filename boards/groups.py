"""Which command-group handlers each board carries, and their sizes (from :mod:`boards.config`)."""

from functools import partial

from hw.control.protocol import GROUP_GEMM, GROUP_STDP

from .config import BOARD_CONFIGS

__all__ = ["board_handlers"]


def board_handlers(board, config=None):
    """``{group: factory}`` of the block handlers for ``board`` (see :mod:`hw.control.core`).

    ``config`` (a :class:`boards.config.BoardConfig`) replaces the board's own, e.g. a smaller
    network for fast simulations.
    """
    cfg = config if config is not None else BOARD_CONFIGS[board]
    handlers = {}
    if cfg.gemm:
        from hw.control.gemm_handler import GEMMHandler
        handlers[GROUP_GEMM] = partial(GEMMHandler, **cfg.gemm)
    if cfg.stdp:
        from hw.control.stdp_handler import STDPHandler
        handlers[GROUP_STDP] = partial(STDPHandler, **cfg.stdp)
    return handlers
