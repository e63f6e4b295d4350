"""Which command groups a board build carries: the board's default, or a ``--groups`` selection.

:func:`config_for_groups` turns a selection (``"stdp"``, ``"gemm,stdp"``, ...) into the
:class:`hw.control.boards.BoardConfig` that :class:`boards.top.BoardTop` builds. A group the board
carries by default keeps the board's sizes; the others take the sizes of :data:`EXTRA_GROUP_SIZES`
(the iCEBreaker's GEMM and HDQT groups, sized for the UP5K, which the default build leaves out).
The system group is always carried.
"""

import dataclasses

from hw.control.boards import board_handlers, check_board

__all__ = ["board_handlers", "GROUPS", "EXTRA_GROUP_SIZES", "config_for_groups", "parse_groups",
           "carried_groups"]

#: Selectable command groups (the system group is always there), in protocol order.
GROUPS = ("gemm", "hdqt", "stdp")

#: Sizes of groups a board does not carry by default but a ``--groups`` build may select.
EXTRA_GROUP_SIZES = {
    "icebreaker": {
        # The SPRAM GEMM group (docs/boards.md): compressed blocks in the two SPRAMs the STDP group
        # leaves (32768 16-bit beats, 64 KiB), the compact decoder (L = 12, escape codes, one
        # context), a 1 x 2 MAC array on one SB_MAC16 (the decoder's one symbol per cycle is what
        # a GEMV can use: more columns would not add MACs per cycle).
        "gemm": {"handler": "spram", "store_depth": 32768, "max_k": 256, "cols": 2, "max_len": 12,
                 "contexts": 1, "escape": True, "fifo_depth": 4, "backend": "ice40"},
        "hdqt": {"batch": 8, "k_dim": 16, "o_dim": 16, "had_cap": 16, "rows": 2, "cols": 2,
                 "backend": "ice40"},
    },
    "ulx3s": {},
}


def carried_groups(cfg):
    """The selectable groups ``cfg`` carries, in :data:`GROUPS` order."""
    return tuple(g for g in GROUPS if getattr(cfg, g))


def parse_groups(text):
    """``"gemm,stdp"`` -> ``("gemm", "stdp")`` (order of :data:`GROUPS`; ``system`` may be named, it
    is always carried); ValueError naming ``groups``."""
    if not isinstance(text, str):
        raise TypeError(f"groups must be a string, not {type(text).__name__}")
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in GROUPS and n != "system"]
    if not names or bad or len(set(names)) != len(names):
        raise ValueError(f"groups must be a comma-separated selection of system, {', '.join(GROUPS)} "
                         f"(each once; the system group is always carried), not {text!r}")
    return tuple(g for g in GROUPS if g in names)


def config_for_groups(board, groups=None):
    """The :class:`BoardConfig` of ``board`` carrying ``groups`` (a string or a sequence of names;
    None: the board's default)."""
    cfg = check_board(board)
    if groups is None:
        return cfg
    selected = parse_groups(groups if isinstance(groups, str) else ",".join(groups))
    sizes = {}
    for g in GROUPS:
        if g not in selected:
            sizes[g] = {}
        elif getattr(cfg, g):
            sizes[g] = getattr(cfg, g)
        elif g in EXTRA_GROUP_SIZES.get(board, {}):
            sizes[g] = EXTRA_GROUP_SIZES[board][g]
        else:
            raise ValueError(f"groups must be from {', '.join(_available(board))} on {board}, not {g!r}")
    if not sizes["gemm"]:
        sizes["clocks"] = {}        # the extra clock domains are the GEMM engine's
    return dataclasses.replace(cfg, **sizes)


def _available(board):
    cfg = check_board(board)
    return [g for g in GROUPS if getattr(cfg, g) or g in EXTRA_GROUP_SIZES.get(board, {})]
