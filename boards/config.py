"""Per-board configuration, defined in :mod:`hw.control.boards` (shared by gateware, simulator and host)."""

from hw.control.boards import BOARD_CONFIGS, SIM_CONFIG, BoardConfig, check_board

__all__ = ["BoardConfig", "BOARD_CONFIGS", "SIM_CONFIG", "check_board"]
