"""GEMM engine interface: the command word, the activation and weight-tile orders, the beat count.

The engine (:class:`hw.gemm.engine.GemmEngine`) computes ``Y = X · Wᵀ`` (``X``: ``M x K``
activations, ``W``: ``N x K`` weights, one row per output channel, as :mod:`sim.mac.golden`) through
a ``rows x cols`` :class:`hw.mac.systolic.SystolicArray`. ``K`` is a multiple of 4 (the host pads
with zeros); ``M`` is cut into *row tiles* of ``rows`` rows, ``N`` into *weight tiles* of ``cols``
output channels (the host pads both with zeros).

Streams
-------
* ``i_cmd`` (one per weight tile), :func:`cmd_layout_fields`: ``mode`` [2:0] (the weight tile's
  precision, :mod:`hw.mac.spec` codes), ``act_unsigned`` [3], ``load_acts`` [4] (take a new batch
  of ``row_tiles * groups`` activation words before this tile), ``row_tiles_m1``, ``groups_m1``
  (``K / 4 - 1``).
* ``i_act`` (after a command with ``load_acts``): ``rows * 4`` bytes per word, row tile ``t``
  major, then group ``g``: word ``(t, g)`` holds ``X[t*rows + r, 4g + l]`` at byte ``4r + l`` (the
  MAC array's activation beat of an int2 tile, :func:`hw.mac.spec.pack_act_beat`).
* Weight tile ``n`` is one Huffman block (:mod:`hw.huffman.spec`) whose symbols are the packed
  weight bytes of the array's beats in order: symbol ``j * cols + c`` is column ``c`` of beat
  ``j`` (:func:`hw.mac.spec.pack_weight_byte`), ``beats(mode, groups)`` beats.
* ``o_res``: per weight tile, per row tile, ``rows`` result rows (the array's payload).
"""

from ..mac import spec as mac_spec

__all__ = ["cmd_layout_fields", "pack_cmd", "beats", "GROUP"]

GROUP = 4        # activations per row in one word: K is counted in groups of 4


def cmd_layout_fields(row_tile_bits, group_bits):
    """``[(name, width), ...]`` of the command payload, lsb first."""
    return [("mode", mac_spec.MODE_BITS), ("act_unsigned", 1), ("load_acts", 1),
            ("row_tiles_m1", row_tile_bits), ("groups_m1", group_bits)]


def beats(mode, groups):
    """Array beats of a tile of ``groups`` groups in ``mode`` (undefined codes: ``groups``)."""
    return groups * GROUP // mac_spec.LANES.get(mode, GROUP)


def pack_cmd(*, mode, row_tiles, groups, act_unsigned=False, load_acts=False, row_tile_bits,
             group_bits):
    """Command word. ``mode``: a name, a code, or an undefined code 4..7 (the error path)."""
    code = mac_spec.MODES[mode] if isinstance(mode, str) else mode
    fields = cmd_layout_fields(row_tile_bits, group_bits)
    values = {"mode": code, "act_unsigned": int(bool(act_unsigned)), "load_acts": int(bool(load_acts)),
              "row_tiles_m1": row_tiles - 1, "groups_m1": groups - 1}
    word, shift = 0, 0
    for name, width in fields:
        v = values[name]
        if not 0 <= v < (1 << width):
            raise ValueError(f"{name} must be an integer from 0 to {(1 << width) - 1}, not {v!r}")
        word |= v << shift
        shift += width
    return word

