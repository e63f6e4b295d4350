"""Which command-group handlers each board carries, and their sizes."""

__all__ = ["board_handlers"]


def board_handlers(board):
    """``{group: factory}`` of the block handlers for ``board`` (see :mod:`hw.control.core`)."""
    return {}
