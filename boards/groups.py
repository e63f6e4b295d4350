"""Which command groups a board build carries: the board's default, or a ``--groups`` selection.

:func:`config_for_groups` turns a selection (``"stdp"``, ``"gemm,stdp"``, ...) into the
:class:`hw.control.boards.BoardConfig` that :class:`boards.top.BoardTop` builds. A group the board
carries by default keeps the board's sizes; the others take the sizes of :data:`EXTRA_GROUP_SIZES`
(the iCEBreaker's GEMM and HDQT groups, sized for the UP5K, which the default build leaves out).
The system group is always carried.

``gemm_array`` (``"8x16"`` or ``(8, 16)``; ``edgelearn build/run --gemm-array``) replaces the rows and
columns of the GEMM engine's systolic array on a board whose GEMM group is the engine
(:func:`gemm_array_shapes` lists the shapes a board takes), so that another shape is built or
simulated without editing :mod:`hw.control.boards`.
"""

import dataclasses
import inspect

from hw.control.boards import BOARD_CONFIGS, board_handlers, check_board
from hw.control.engine_handler import EngineHandler
from hw.mac import spec as mac_spec
from hw.params import ParameterTypeError

__all__ = ["board_handlers", "GROUPS", "EXTRA_GROUP_SIZES", "DEVICE_MULTIPLIERS", "config_for_groups",
           "parse_groups", "carried_groups", "parse_gemm_array", "gemm_array_shapes"]

#: Selectable command groups (the system group is always there), in protocol order.
GROUPS = ("gemm", "hdqt", "stdp")

#: Sizes of groups a board does not carry by default but a ``--groups`` build may select.
EXTRA_GROUP_SIZES = {
    "icebreaker": {
        # The SPRAM GEMM group (docs/boards.md): compressed blocks in the two SPRAMs the STDP group
        # leaves (16384 32-bit beats, 64 KiB), the compact decoder (L = 12, escape codes) with two
        # contexts (the C-slow table lane: smaller and about twice as fast as one context; its word
        # FIFOs in block RAM) and 8-word lane FIFOs: a layer is one unit of chained blocks of lane
        # drift at most max_drift(8) = 4 words (the host reads fifo_depth here), which costs 1 % more
        # beats on Gaussian layers; deeper FIFOs cost their pointers' logic (16 words: 36 LC more).
        # A 1 x 2 MAC array on four SB_MAC16s, one per activation lane (the decoder's one symbol per
        # cycle is what a GEMV can use: more columns would not add MACs per cycle).
        "gemm": {"handler": "spram", "store_depth": 16384, "max_k": 256, "cols": 2, "max_len": 12,
                 "contexts": 2, "escape": True, "fifo_depth": 8, "backend": "ice40", "lane_dsps": True},
        # The HDQT group (docs/boards.md): sized to place beside the system group at under 90 % of
        # the logic cells. Each choice is the cut that cost least: the MAC array's lanes on SB_MAC16s
        # (no fabric partial products); one 1 x 1 PE (2 int4 MAC/cycle; 1 x 2 takes ~330 LC more and
        # does not place); 4-element Hadamard blocks along O and B, so one FWHT (8: ~130 LC more, 92 %,
        # no legal placement); a batch of 16, so the SGD update needs one lane (batch 8: two); a
        # 17-bit wide accumulator, enough for every sum at K, O, B = 16 (a 32-product tile at most).
        "hdqt": {"batch": 16, "k_dim": 16, "o_dim": 16, "had_cap": 4, "rows": 1, "cols": 1,
                 "acc_width": 17, "backend": "ice40", "lane_dsps": True},
    },
    "ulx3s": {},
}


#: Hard multipliers of the devices whose boards carry the GEMM engine (one per PE of its array).
DEVICE_MULTIPLIERS = {"LFE5U-85F": 156}     # MULT18X18D (Lattice ECP5 family data sheet)


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


def config_for_groups(board, groups=None, gemm_array=None):
    """The :class:`BoardConfig` of ``board`` carrying ``groups`` (a string or a sequence of names;
    None: the board's default), with the GEMM engine's array at ``gemm_array`` (``"RxC"`` or
    ``(rows, cols)``; None: the board's shape; see :func:`gemm_array_shapes`).

    Raises TypeError for a ``gemm_array`` of the wrong type and ValueError naming ``groups`` or
    ``gemm_array`` and the allowed values (a shape the board's engine cannot take, a board whose GEMM
    group is not the engine, or a selection without the GEMM group)."""
    shape = None if gemm_array is None else parse_gemm_array(gemm_array)
    cfg = _config_for_groups(board, groups)
    if shape is None:
        return cfg
    if cfg.gemm.get("handler") != "engine":
        engines = [b for b, c in BOARD_CONFIGS.items() if c.gemm.get("handler") == "engine"]
        what = ("carries no GEMM group" if not cfg.gemm
                else f"has the {cfg.gemm.get('handler', 'MAC array')} GEMM group")
        sel = "" if groups is None else f" with groups {groups!r}"
        raise ValueError(f"gemm_array is for a board carrying the GEMM engine ({', '.join(engines)}); "
                         f"{board}{sel} {what}, not {gemm_array!r}")
    rows, cols, allowed = _shapes(cfg)
    if shape not in allowed:
        raise ValueError(f"gemm_array must be RxC on {board} with rows one of {', '.join(map(str, rows))} "
                         f"(dividing max_batch {_engine(cfg)['max_batch']}), cols one of "
                         f"{', '.join(map(str, cols))} (even, divided by the decoder's "
                         f"{_engine(cfg)['lanes']} lanes) and rows x cols at most "
                         f"{DEVICE_MULTIPLIERS[cfg.device]} (the {cfg.device}'s multipliers), "
                         f"not {gemm_array!r}")
    return dataclasses.replace(cfg, gemm={**cfg.gemm, "rows": shape[0], "cols": shape[1]})


def parse_gemm_array(value):
    """``"8x16"`` or ``(8, 16)`` -> ``(8, 16)``; TypeError for another type, ValueError naming
    ``gemm_array`` for another format (the board's constraints: :func:`config_for_groups`)."""
    if isinstance(value, str):
        parts = value.lower().replace("×", "x").split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"gemm_array must be RxC (rows x columns of the systolic array, e.g. 8x16), "
                             f"not {value!r}")
        return int(parts[0]), int(parts[1])
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        return int(value[0]), int(value[1])
    raise ParameterTypeError(f"gemm_array must be a string RxC (e.g. '8x16') or a pair of integers "
                             f"(rows, cols), not {value!r}")


def gemm_array_shapes(board, groups=None):
    """The ``(rows, cols)`` shapes ``gemm_array`` may take on ``board`` (with ``groups``): the systolic
    array's (rows 1..16, cols even 2..16), rows dividing the engine's ``max_batch`` (row tiles), cols
    divided by its decoder lanes, at most one PE per multiplier of the device. Empty for a board
    whose GEMM group is not the engine."""
    cfg = _config_for_groups(board, groups)
    return _shapes(cfg)[2] if cfg.gemm.get("handler") == "engine" else ()


#: :class:`hw.control.engine_handler.EngineHandler`'s defaults (a board's ``gemm`` dict overrides).
_ENGINE_DEFAULTS = {n: p.default for n, p in inspect.signature(EngineHandler).parameters.items()}


def _engine(cfg):
    return {**_ENGINE_DEFAULTS, **cfg.gemm}


def _shapes(cfg):
    """``(rows allowed, cols allowed, shapes allowed)`` of the engine of ``cfg``."""
    e = _engine(cfg)
    rows = [r for r in range(1, mac_spec.MAX_DIM + 1) if e["max_batch"] % r == 0 and e["max_batch"] <= 64 * r]
    cols = [c for c in range(2, mac_spec.MAX_DIM + 1, 2) if c % e["lanes"] == 0]
    mults = DEVICE_MULTIPLIERS[cfg.device]
    return rows, cols, tuple((r, c) for r in rows for c in cols if r * c <= mults)


def _config_for_groups(board, groups):
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
