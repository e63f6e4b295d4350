"""Which command-group handlers each board carries; defined in :mod:`hw.control.boards`."""

from hw.control.boards import board_handlers

__all__ = ["board_handlers"]
