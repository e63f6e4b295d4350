"""The quantizer engines' shift: the power-of-two scale of a tensor from the OR of its magnitudes."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..params import check_int
from . import spec
from .quantizer import leading_one

__all__ = ["TensorShift", "SHIFT_LATENCY"]

SHIFT_LATENCY = 3   # registers from i_max to o_shift


class TensorShift(wiring.Component):
    """``o_shift = max(bit_length(i_max) - qbits, 0)`` (:func:`hw.hdqt.spec.shift_for` of a tensor whose
    OR of magnitudes is ``i_max``: the same leading one as its maximum), ``qbits`` of ``bits``-bit
    signed or, with ``i_unsigned``, unsigned levels.

    Three registers, from free-running inputs: the leading one of each half of ``i_max``, then the
    index of the whole, then the shift. ``o_shift`` is the shift of ``i_max`` three cycles earlier,
    with ``i_unsigned`` of one cycle earlier: it is final :data:`SHIFT_LATENCY` cycles after both
    settle.
    """

    def __init__(self, *, width, bits=4):
        check_int("width", width, 3, 48)
        check_int("bits", bits, 2, 8)
        self._w, self._bits = width, bits
        super().__init__({
            "i_max": In(width),
            "i_unsigned": In(1),
            "o_shift": Out(range(width)),
        })

    def elaborate(self, platform):
        m = Module()
        tw, qmax = self._w, self.i_max
        half = 1 << (tw - 1).bit_length() - 1
        lo_i, lo_a = leading_one(m, qmax[:half], "lol")
        hi_i, hi_a = leading_one(m, qmax[half:], "loh")
        lo_ir, hi_ir = Signal.like(lo_i, name="lo_ir"), Signal(len(lo_i), name="hi_ir")
        lo_ar, hi_ar = Signal(name="lo_ar"), Signal(name="hi_ar")
        m.d.sync += [lo_ir.eq(lo_i), lo_ar.eq(lo_a), hi_ir.eq(hi_i), hi_ar.eq(hi_a)]
        lead = Signal(len(lo_i) + 1, name="lead")   # index of the leading one of i_max
        lead_any = Signal(name="lead_any")
        m.d.sync += [lead.eq(Cat(Mux(hi_ar, hi_ir, lo_ir), hi_ar)), lead_any.eq(lo_ar | hi_ar)]
        # shift = max(bit_length(i_max) - qbits, 0) = max(lead + 1 - qbits, 0)
        qbits = Mux(self.i_unsigned, spec.qbits(self._bits, True), spec.qbits(self._bits, False))
        shift = Signal(range(tw), name="shift")
        m.d.sync += shift.eq(Mux(lead_any & (lead >= qbits), lead + 1 - qbits, 0))
        m.d.comb += self.o_shift.eq(shift)
        return m
