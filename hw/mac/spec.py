"""The MAC/PE array spec, shared by the RTL (:mod:`hw.mac`) and the golden model (:mod:`sim.mac.golden`).

This module is the interface contract of the mixed-precision MAC array: the weight modes and their
codes, the packed weight byte, the activation formats, the accumulator arithmetic (exact, step by
step) and the bit layouts of the four stream payloads. It is pure Python (no numpy) so the golden
model, the RTL, the Huffman decoder (which repacks its symbols into packed-weight beats), the HDQT
datapath and the host driver all use the same definitions.

Computation
-----------
One *tile* computes an ``rows × cols`` block of ``Y[m, n] = sum_k X[m, k] * W[n, k]``: array row ``r``
holds activation row ``m0 + r``, array column ``c`` holds output channel (weight row) ``n0 + c``,
and the reduction runs over ``K`` products. A tile is one command followed by ``beats`` beats on
both the activation and the weight stream (taken together, one beat per cycle at most), then
``rows`` result rows come out.

Modes (3-bit code, per tile, chosen at run time)
------------------------------------------------
==========  ====  =====  ==============  =========================================================
mode        code  lanes  weight values   lane field in the packed weight byte (lane ``l``)
==========  ====  =====  ==============  =========================================================
int8        0     1      -128..127       bits [7:0], two's complement
int4        1     2      -8..7           bits [4l+3:4l], two's complement
int2        2     4      -2..1           bits [2l+1:2l], two's complement
ternary     3     4      -1, 0, +1       bits [2l+1:2l]: 0b00 = 0, 0b01 = +1, 0b11 = -1, 0b10 = 0
(undefined) 4..7  --     --              the tile is dropped: its beats are consumed, no results,
                                         the sticky ``mode_error`` flag is set
==========  ====  =====  ==============  =========================================================

``lanes`` is the number of products one PE retires per beat (per cycle): each beat carries, for
every column, one packed weight *byte* with ``lanes`` weights for consecutive reduction indices, and
for every row ``lanes`` activations for the same indices. Beat ``j`` of a tile covers reduction
indices ``k = j*lanes + l`` for lane ``l`` (lane 0 is the lowest ``k``, in the low bits). ``K`` that is
not a multiple of ``lanes`` is padded with zero weights (and zero activations) by the packer; zero
products do not change any sum, also under tile saturation. Ternary code 0b10 ("minus zero" in the
sign/magnitude reading bit1 = sign, bit0 = magnitude) decodes to 0; the packer never emits it.

Activations
-----------
8 bits per value; per tile the command selects signed int8 (-128..127) or unsigned uint8 (0..255,
e.g. post-ReLU). Activation lanes ``l >= lanes(mode)`` are ignored by the array (send zeros).

Accumulator semantics (exact)
-----------------------------
Each PE has one accumulator of ``acc_width`` bits, two's complement, reset to 0 at the first beat of
a tile. Per beat the exact sum of the beat's ``lanes`` products is formed (no rounding, no
intermediate saturation). Then:

* plain tiles (``tile_sat = 0``): ``acc = sat(acc + beat_sum, acc_width)`` once per beat;
* tile-saturating tiles (``tile_sat = 1``, the HDQT mode; needs ``tile_k > 0`` at elaboration): the
  reduction is split into consecutive groups of ``tile_k`` products starting at ``k = 0`` (the last
  group is shorter when ``K`` is not a multiple of ``tile_k``; ``tile_k`` is a power of two >= 4, so a
  group is always a whole number of beats in every mode). Each group's exact partial sum is clamped
  to ``[-(2**(tile_bits-1) - 1), 2**(tile_bits-1) - 1]`` (symmetric: [-127, 127] for the default 8 bits),
  then ``acc = sat(acc + clamped_group_sum, acc_width)`` once per group.

``sat(v, w)`` clamps to ``[-2**(w-1), 2**(w-1) - 1]``; whenever it changes a value, the result row
of that tile carries ``overflow = 1`` for that row and the array's sticky ``overflow`` status flag is
set (cleared only by ``i_clear``). Clamping a group sum in tile-saturating mode is the intended
arithmetic, not an overflow, and sets no flag. Saturation is per update, so once saturated, an
accumulator moves back from the rail on later updates of the opposite sign (it does not stick).

Stream payloads (all little-endian bit fields; helpers below build and parse them)
-------------------------------------------------------------------------------
* ``i_cmd`` (one per tile), :func:`cmd_layout_fields`: ``mode`` [2:0], ``act_unsigned`` [3],
  ``tile_sat`` [4], ``beats_m1`` [5 + count_bits - 1 : 5] = number of beats minus one.
* ``i_act`` (one per beat): ``rows * 4`` bytes; row ``r`` lane ``l`` at bits [8*(4r+l) + 7 : 8*(4r+l)].
* ``i_wgt`` (one per beat): ``cols`` packed weight bytes; column ``c`` at bits [8c+7 : 8c].
* ``o_res`` (``rows`` per tile, row 0 first), :func:`res_layout_fields`: ``data`` = ``cols``
  accumulators, column ``c`` at bits [acc_width*(c+1) - 1 : acc_width*c] two's complement; then
  ``overflow`` (1 bit: some accumulator of this row saturated in this tile), ``row`` (row index,
  ``row_bits = max(1, ceil(log2(rows)))`` bits), ``last`` (1 on the tile's last row).
"""

__all__ = [
    "MODE_INT8", "MODE_INT4", "MODE_INT2", "MODE_TERNARY", "MODES", "MODE_NAMES", "MODE_BITS",
    "LANES", "WEIGHT_BITS", "WEIGHT_RANGE", "MAX_LANES", "ACT_BITS", "WORD_BITS",
    "MIN_ACC_WIDTH", "MAX_ACC_WIDTH", "MAX_DIM", "DEFAULT_TILE_K", "DEFAULT_TILE_BITS",
    "is_defined_mode", "lanes", "mode_code",
    "sat", "sat_range", "tile_clamp", "tile_range", "overflows",
    "decode_lane", "pack_weight_byte", "unpack_weight_byte",
    "act_value", "beats_for_k",
    "cmd_layout_fields", "pack_cmd", "unpack_cmd",
    "pack_act_beat", "unpack_act_beat", "pack_wgt_beat", "unpack_wgt_beat",
    "res_layout_fields", "pack_res", "unpack_res", "row_bits",
    "tile_streams", "ref_dot",
]

# --- modes -----------------------------------------------------------------------------------------

MODE_INT8 = 0
MODE_INT4 = 1
MODE_INT2 = 2
MODE_TERNARY = 3
MODE_BITS = 3                      # codes 4..7 are undefined (the error-flag path)
MODES = {"int8": MODE_INT8, "int4": MODE_INT4, "int2": MODE_INT2, "ternary": MODE_TERNARY}
MODE_NAMES = {v: k for k, v in MODES.items()}
LANES = {MODE_INT8: 1, MODE_INT4: 2, MODE_INT2: 4, MODE_TERNARY: 4}
WEIGHT_BITS = {MODE_INT8: 8, MODE_INT4: 4, MODE_INT2: 2, MODE_TERNARY: 2}
WEIGHT_RANGE = {MODE_INT8: (-128, 127), MODE_INT4: (-8, 7), MODE_INT2: (-2, 1), MODE_TERNARY: (-1, 1)}
MAX_LANES = 4
ACT_BITS = 8
WORD_BITS = 8                      # packed weight bits per PE column per beat

# --- parameters' ranges ----------------------------------------------------------------------------

# The largest product magnitude is 255 * -128 = -32640 (uint8 x int8), and -128 * -128 = 16384:
# 17 bits hold any single product, so a narrower accumulator could not even hold one beat.
MIN_ACC_WIDTH = 17
MAX_ACC_WIDTH = 48
MAX_DIM = 16                       # rows, cols: 1..16
DEFAULT_TILE_K = 32                # HDQT's K tile
DEFAULT_TILE_BITS = 8              # HDQT's 8-bit tile accumulator: [-127, 127]
CMD_FIXED_BITS = 5                 # mode(3) + act_unsigned(1) + tile_sat(1)


def is_defined_mode(code):
    return code in LANES


def mode_code(mode):
    """The code of ``mode`` given as a name ("int4") or a code (1)."""
    if isinstance(mode, str):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {mode!r}")
        return MODES[mode]
    if mode not in LANES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))} or codes 0..3, not {mode!r}")
    return mode


def lanes(mode):
    """Products per PE per beat in ``mode`` (name or code)."""
    return LANES[mode_code(mode)]


# --- arithmetic ------------------------------------------------------------------------------------

def sat_range(width):
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def sat(value, width):
    """Clamp ``value`` to the ``width``-bit two's complement range."""
    lo, hi = sat_range(width)
    return lo if value < lo else hi if value > hi else value


def overflows(value, width):
    lo, hi = sat_range(width)
    return value < lo or value > hi


def tile_range(tile_bits):
    """The symmetric range a tile partial sum is clamped to: ``±(2**(tile_bits-1) - 1)``."""
    m = (1 << (tile_bits - 1)) - 1
    return -m, m


def tile_clamp(value, tile_bits):
    lo, hi = tile_range(tile_bits)
    return lo if value < lo else hi if value > hi else value


# --- packed weights --------------------------------------------------------------------------------

def decode_lane(field, mode):
    """Weight value of one lane field (the raw bits of width ``WEIGHT_BITS[mode]``)."""
    mode = mode_code(mode)
    bits = WEIGHT_BITS[mode]
    field &= (1 << bits) - 1
    if mode == MODE_TERNARY:
        return 0 if field & 1 == 0 else (-1 if field & 2 else 1)
    return field - (1 << bits) if field >> (bits - 1) else field


def pack_weight_byte(weights, mode):
    """Pack up to ``lanes(mode)`` weights (lane 0 first; missing lanes are 0) into one byte."""
    mode = mode_code(mode)
    n, bits = LANES[mode], WEIGHT_BITS[mode]
    if len(weights) > n:
        raise ValueError(f"a {MODE_NAMES[mode]} byte holds {n} weights, not {len(weights)}")
    lo, hi = WEIGHT_RANGE[mode]
    byte = 0
    for l, w in enumerate(weights):
        w = int(w)
        if not lo <= w <= hi:
            raise ValueError(f"{MODE_NAMES[mode]} weight must be an integer from {lo} to {hi}, not {w!r}")
        byte |= (w & ((1 << bits) - 1)) << (bits * l)
    return byte


def unpack_weight_byte(byte, mode):
    """The ``lanes(mode)`` weights of a packed byte, lane 0 first."""
    mode = mode_code(mode)
    bits = WEIGHT_BITS[mode]
    return [decode_lane(byte >> (bits * l), mode) for l in range(LANES[mode])]


def act_value(byte, act_unsigned):
    """Value of an activation byte: uint8 when ``act_unsigned``, else int8."""
    byte &= 0xFF
    return byte if act_unsigned or byte < 128 else byte - 256


def beats_for_k(k, mode):
    """Beats of a tile with reduction length ``k`` (zero-padded to a multiple of the lanes)."""
    n = lanes(mode)
    return max(1, -(-k // n))


# --- stream payloads -------------------------------------------------------------------------------

def cmd_layout_fields(count_bits):
    """``[(name, width), ...]`` of the command payload, lsb first (the RTL builds its layout from it)."""
    return [("mode", MODE_BITS), ("act_unsigned", 1), ("tile_sat", 1), ("beats_m1", count_bits)]


def _pack_fields(fields, values):
    word, shift = 0, 0
    for name, width in fields:
        v = int(values[name])
        if not 0 <= v < (1 << width):
            raise ValueError(f"{name} must be an integer from 0 to {(1 << width) - 1}, not {v!r}")
        word |= v << shift
        shift += width
    return word


def _unpack_fields(fields, word):
    out, shift = {}, 0
    for name, width in fields:
        out[name] = (word >> shift) & ((1 << width) - 1)
        shift += width
    return out


def pack_cmd(*, mode, beats, act_unsigned=False, tile_sat=False, count_bits=12):
    """Command word of a tile of ``beats`` beats. ``mode`` may be a name, a code, or an undefined code
    (4..7) to exercise the error path."""
    code = MODES[mode] if isinstance(mode, str) else mode
    if not 1 <= beats <= (1 << count_bits):
        raise ValueError(f"beats must be an integer from 1 to {1 << count_bits}, not {beats!r}")
    return _pack_fields(cmd_layout_fields(count_bits), {
        "mode": code, "act_unsigned": int(bool(act_unsigned)), "tile_sat": int(bool(tile_sat)),
        "beats_m1": beats - 1})


def unpack_cmd(word, count_bits=12):
    f = _unpack_fields(cmd_layout_fields(count_bits), word)
    return {"mode": f["mode"], "act_unsigned": bool(f["act_unsigned"]), "tile_sat": bool(f["tile_sat"]),
            "beats": f["beats_m1"] + 1}


def pack_act_beat(acts):
    """``acts[r][l]`` (rows x up to 4 lanes; int8 or uint8 values) -> activation beat word."""
    word = 0
    for r, row in enumerate(acts):
        if len(row) > MAX_LANES:
            raise ValueError(f"an activation beat holds {MAX_LANES} lanes per row, not {len(row)}")
        for l, a in enumerate(row):
            a = int(a)
            if not -128 <= a <= 255:
                raise ValueError(f"activation must be an integer from -128 to 255, not {a!r}")
            word |= (a & 0xFF) << (ACT_BITS * (MAX_LANES * r + l))
    return word


def unpack_act_beat(word, rows, act_unsigned=False):
    return [[act_value(word >> (ACT_BITS * (MAX_LANES * r + l)), act_unsigned) for l in range(MAX_LANES)]
            for r in range(rows)]


def pack_wgt_beat(packed_bytes):
    """``packed_bytes[c]`` (one packed weight byte per column) -> weight beat word."""
    word = 0
    for c, b in enumerate(packed_bytes):
        if not 0 <= b <= 0xFF:
            raise ValueError(f"a packed weight byte must be an integer from 0 to 255, not {b!r}")
        word |= b << (WORD_BITS * c)
    return word


def unpack_wgt_beat(word, cols):
    return [(word >> (WORD_BITS * c)) & 0xFF for c in range(cols)]


def row_bits(rows):
    return max(1, (rows - 1).bit_length())


def res_layout_fields(rows, cols, acc_width):
    """``[(name, width), ...]`` of the result payload, lsb first."""
    return [("data", cols * acc_width), ("overflow", 1), ("row", row_bits(rows)), ("last", 1)]


def pack_res(values, *, overflow, row, last, rows, acc_width):
    data = 0
    for c, v in enumerate(values):
        data |= (int(v) & ((1 << acc_width) - 1)) << (acc_width * c)
    return _pack_fields(res_layout_fields(rows, len(values), acc_width),
                        {"data": data, "overflow": int(overflow), "row": row, "last": int(last)})


def unpack_res(word, *, rows, cols, acc_width):
    """Result word -> ``{"values": [cols signed ints], "overflow": bool, "row": int, "last": bool}``."""
    f = _unpack_fields(res_layout_fields(rows, cols, acc_width), word)
    mask, top = (1 << acc_width) - 1, 1 << (acc_width - 1)
    vals = []
    for c in range(cols):
        v = (f["data"] >> (acc_width * c)) & mask
        vals.append(v - (1 << acc_width) if v & top else v)
    return {"values": vals, "overflow": bool(f["overflow"]), "row": f["row"], "last": bool(f["last"])}


# --- tiles as streams ------------------------------------------------------------------------------

def tile_streams(x_rows, w_cols, mode, *, act_unsigned=False, tile_sat=False, count_bits=12):
    """Payload words of one tile: ``(cmd, [act beats], [wgt beats])``.

    ``x_rows``: up to ``rows`` activation rows (each a length-K list of ints); ``w_cols``: up to
    ``cols`` weight rows (output channels; each a length-K list of ints in the mode's range). Missing
    rows/columns are zeros (their results are computed and should be ignored). K is zero-padded to a
    multiple of the mode's lanes.
    """
    code = mode_code(mode)
    n = LANES[code]
    k = max([len(r) for r in x_rows] + [len(c) for c in w_cols] + [1])
    beats = beats_for_k(k, code)
    acts, wgts = [], []
    for j in range(beats):
        ks = range(j * n, (j + 1) * n)
        acts.append(pack_act_beat([[row[i] if i < len(row) else 0 for i in ks] for row in x_rows]))
        wgts.append(pack_wgt_beat([pack_weight_byte([col[i] if i < len(col) else 0 for i in ks], code)
                                   for col in w_cols]))
    cmd = pack_cmd(mode=code, beats=beats, act_unsigned=act_unsigned, tile_sat=tile_sat,
                   count_bits=count_bits)
    return cmd, acts, wgts


def ref_dot(x, w, mode, *, acc_width, tile_sat=False, tile_k=DEFAULT_TILE_K, tile_bits=DEFAULT_TILE_BITS):
    """One accumulator's result, step by step as specified above: ``(value, overflowed)``.

    ``x``, ``w``: equal-length sequences of activation and weight *values* (already decoded)."""
    n = lanes(mode)
    k = len(x)
    acc, ovf = 0, False
    group = 0
    for j in range(0, max(k, 1), n):
        beat = sum(int(x[i]) * int(w[i]) for i in range(j, min(j + n, k)))
        if tile_sat:
            group += beat
            if (j + n) % tile_k == 0 or j + n >= k:
                v = acc + tile_clamp(group, tile_bits)
                group = 0
            else:
                continue
        else:
            v = acc + beat
        ovf |= overflows(v, acc_width)
        acc = sat(v, acc_width)
    return acc, ovf
