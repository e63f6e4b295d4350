"""Radix-4 Booth digits of a packed weight byte, shared by every mode.

Why Booth: a radix-4 Booth multiplier of an 8-bit weight has four partial products, one per 2-bit
slice of the byte. The four slices are exactly the four int2 lanes, pairs of them are the two int4
lanes, and all four make the int8 weight; only the Booth "previous bit" (zero at a lane boundary)
and the shift of each partial product change with the mode. So one set of four partial products and
one adder tree retire 1 int8, 2 int4 or 4 int2/ternary products per cycle: the fused datapath the
LUT backend uses (and the DSP backends use for the modes their multipliers do not cover).

Digit ``j`` (``j = 0..3``) of the byte ``b`` is ``d = -2*x2 + x1 + x0`` with ``x2 = b[2j+1]``,
``x1 = b[2j]`` and ``x0 = b[2j-1]`` inside a weight (``j > 0`` in int8; ``j = 1, 3`` in int4) and
``x0 = 0`` at a lane boundary. In ternary mode the code 0b10 reads as 0 (``x2 = b[2j+1] & b[2j]``).
Partial product ``j`` is ``d * a`` for the activation of its lane: one of ``a, -a, 2a, -2a, 0``,
where ``a`` and ``-a`` are formed once per array row (with the 2-bit shift of the odd digits of int8
and int4 already applied), so each PE only selects and adds.
"""

from amaranth.hdl import Const, Mux, Signal, signed

__all__ = ["booth_digits", "booth_pp", "PAIR_SHIFT"]

# Shift of the odd digit of a pair relative to the even one in int8 and int4 (digit shifts: int8
# 0, 2, 4, 6; int4 0, 2 | 0, 2 for its two weights; int2 and ternary 0 | 0 | 0 | 0). The upper pair of
# int8 is shifted by 4 more when the two pair sums are added.
PAIR_SHIFT = 2


def booth_digits(byte, is8, is4, is_tern):
    """``[(one, two, neg)] * 4``: the Booth digits of ``byte`` in the given mode (Amaranth expressions)."""
    digits = []
    for j in range(4):
        x1 = byte[2 * j]
        x2 = byte[2 * j + 1] & ~(is_tern & ~byte[2 * j])
        if j == 0:
            x0 = Const(0, 1)
        elif j == 2:
            x0 = byte[3] & is8
        else:  # j = 1, 3: inside an int4 lane as well as an int8 weight
            x0 = byte[2 * j - 1] & (is8 | is4)
        one = x1 ^ x0
        two = (x2 & ~x1 & ~x0) | (~x2 & x1 & x0)
        digits.append((one, two, x2))
    return digits


def booth_pp(m, name, pos, neg, digit, width):
    """Partial product ``d * a`` of Booth digit ``digit = (one, two, neg)`` as a new comb signal.

    ``pos`` and ``neg`` are ``a`` and ``-a`` (registered per array row, so no PE negates): the
    partial product is a 5-way selection among ``a, -a, 2a, -2a, 0`` and the pair of partial products
    of a PE is a plain two-operand sum.
    """
    one, two, is_neg = digit
    pp = Signal(signed(width), name=f"{name}_pp")
    m.d.comb += pp.eq(Mux(one, Mux(is_neg, neg, pos), Mux(two, Mux(is_neg, neg, pos) << 1, 0)))
    return pp
