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
Partial product ``j`` is ``d * a`` for the activation of its lane, formed as ``one ? a : two ? 2a : 0``
XOR-ed with ``neg`` (``-v = ~v + 1``, the ``+1`` being added separately as the ``neg`` bit).
"""

from amaranth.hdl import Cat, Const, Mux, Signal, signed

__all__ = ["booth_digits", "booth_pair_sum", "PAIR_SHIFT"]

# Shift between the two partial products of a pair, and of the upper pair, per mode: int8 uses
# shifts 0, 2, 4, 6; int4 0, 2 | 0, 2 (two weights); int2 and ternary 0 | 0 | 0 | 0.
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


def booth_pair_sum(m, name, a_lo, a_hi, d_lo, d_hi, shifted, width):
    """``d_lo*a_lo + (d_hi*a_hi << (shifted ? 2 : 0))`` modulo ``2**width``, as a new comb signal.

    ``a_lo``, ``a_hi`` are signed activations; ``d_lo``, ``d_hi`` Booth digits ``(one, two, neg)``.
    The result is exact whenever the true value fits ``width`` signed bits.
    """
    def pp(a, d, tag):
        one, two, neg = d
        mag = Signal(signed(width), name=f"{name}_{tag}_mag")
        m.d.comb += mag.eq(Mux(one, a, Mux(two, a << 1, 0)))
        out = Signal(signed(width), name=f"{name}_{tag}_pp")
        m.d.comb += out.eq(Mux(neg, ~mag, mag))
        return out, neg

    p_lo, n_lo = pp(a_lo, d_lo, "lo")
    p_hi, n_hi = pp(a_hi, d_hi, "hi")
    hi = Signal(signed(width), name=f"{name}_hi")
    m.d.comb += hi.eq(Mux(shifted, p_hi << PAIR_SHIFT, p_hi))
    negs = Signal(3, name=f"{name}_negs")  # the "+1" of each negated partial product, at its shift
    m.d.comb += negs.eq(Mux(shifted, Cat(n_lo, Const(0, 1), n_hi), n_lo + n_hi))
    total = Signal(signed(width), name=f"{name}_sum")
    m.d.comb += total.eq(p_lo + hi + negs)
    return total
