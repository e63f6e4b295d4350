"""Which command-group handlers each board carries, and their sizes (from :mod:`boards.config`)."""

from functools import partial

from hw.control.protocol import GROUP_GEMM, GROUP_HDQT, GROUP_STDP

from .config import BOARD_CONFIGS

__all__ = ["board_handlers"]


def board_handlers(board, config=None, *, primitives=True):
    """``{group: factory}`` of the block handlers for ``board`` (see :mod:`hw.control.core`).

    ``config`` (a :class:`boards.config.BoardConfig`) replaces the board's own, e.g. a smaller
    network for fast simulations. ``primitives=False`` gives the MAC arrays of DSP backends
    behavioural models of the vendor multipliers (simulators cannot run the primitives).
    """
    cfg = config if config is not None else BOARD_CONFIGS[board]
    handlers = {}

    def params(p):
        p = dict(p)
        if p.get("backend", "lut") != "lut":
            p.setdefault("primitives", primitives)
            if not primitives:
                p["primitives"] = False
        return p

    if cfg.gemm:
        from hw.control.gemm_handler import GEMMHandler
        handlers[GROUP_GEMM] = partial(GEMMHandler, **params(cfg.gemm))
    if cfg.hdqt:
        from hw.control.hdqt_handler import HDQTHandler
        handlers[GROUP_HDQT] = partial(HDQTHandler, **params(cfg.hdqt))
    if cfg.stdp:
        from hw.control.stdp_handler import STDPHandler
        handlers[GROUP_STDP] = partial(STDPHandler, **cfg.stdp)
    return handlers
