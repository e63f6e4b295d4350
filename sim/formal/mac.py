"""Formal harnesses for the MAC array's accumulators and status flags.

``mac.acc_saturates``: one PE of :class:`hw.mac.accumulate.AccumulatorGrid` (``acc_width=17``, the
narrowest, no tile groups) against a reference accumulator in the harness that adds each
contribution exactly and clamps to the 17-bit range (:func:`hw.mac.spec.sat`): the accumulator
equals it every cycle (so it saturates and never wraps), and the PE's overflow flag says whether a
clamp happened since the tile's first contribution. Contributions are free within the product
range ``|beat| <= 255 * 128``.

``mac.sticky_flags``: :class:`hw.mac.array.MacArray` (1x1, ``acc_width=17``): ``o_overflow`` and
``o_mode_error`` never fall unless ``i_clear`` was high.
"""

from amaranth.hdl import Assert, Assume, Mux, Signal, signed

from hw.mac import array as array_module
from hw.mac import spec
from hw.mac.accumulate import AccumulatorGrid
from hw.mac.array import MacArray

from .harness import DutHarness, Patched, StreamRulesHarness, mutated
from .runner import Property
from .sticky import StickyHarness

__all__ = ["PROPERTIES"]

ACC_WIDTH = 17
MAX_BEAT = 255 * 128
ARRAY_PARAMS = dict(rows=1, cols=1, acc_width=ACC_WIDTH, tile_k=0, tile_bits=8, count_bits=2)


class SaturationHarness(DutHarness):
    def __init__(self, grid_class=AccumulatorGrid):
        super().__init__(grid_class(rows=1, cols=1, acc_width=ACC_WIDTH, tile_k=0))

    def check(self, m, dut):
        beat = dut.beat[0][0]
        m.d.comb += Assume((beat >= -MAX_BEAT) & (beat <= MAX_BEAT))
        lo, hi = spec.sat_range(ACC_WIDTH)
        ref = Signal(signed(ACC_WIDTH), name="ref_acc")
        ref_ovf = Signal(name="ref_ovf")          # a clamp since the tile's first contribution
        seen = Signal(name="seen")                # a first contribution has been applied
        exact = Signal(signed(ACC_WIDTH + 2), name="exact")
        m.d.comb += exact.eq(Mux(dut.in_first, 0, ref) + beat)
        clamped = Signal(signed(ACC_WIDTH), name="clamped")
        clamp = (exact < lo) | (exact > hi)
        m.d.comb += clamped.eq(Mux(exact < lo, lo, Mux(exact > hi, hi, exact)))
        with m.If(dut.en & dut.in_valid):
            m.d.sync += [ref.eq(clamped), ref_ovf.eq(clamp | (~dut.in_first & ref_ovf)),
                         seen.eq(seen | dut.in_first)]
        with m.If(seen):
            m.d.comb += [Assert(dut.acc[0][0] == ref), Assert(dut.ovf[0] == ref_ovf)]
        return m


def _wrapping_view():
    return mutated("hw.mac.accumulate", "AccumulatorGrid",
                   "view.eq(saturated_view(raw))",
                   "view.eq(raw[:W])")


def _array(array_class=MacArray):
    return array_class(**ARRAY_PARAMS)


_CLEAR_MODE_ERROR = "\n            m.d.sync += self.o_mode_error.eq(0)"


def _clear_on_command():
    # The mode-error flag lives in the tile sequencer, which MacArray instantiates by name: the mutant
    # is patched into the array's module while the harness is built and elaborated.
    return Patched(lambda: StickyHarness(_array, ["o_overflow", "o_mode_error"], "i_clear"), [(
        vars(array_module), "TileSequencer", mutated(
            "hw.mac.sequencer", "TileSequencer",
            "with m.If(self.i_clear):" + _CLEAR_MODE_ERROR,
            "with m.If(self.i_clear | ~self.i_cmd.valid):" + _CLEAR_MODE_ERROR))])


PROPERTIES = [
    Property("mac.acc_saturates", "the accumulator equals the exact sum clamped to acc_width at every "
             "step (saturates, never wraps); its overflow flag records every clamp of the tile",
             SaturationHarness, "prove", 2, "rows=cols=1 acc_width=17 tile_k=0",
             mutant=lambda: SaturationHarness(_wrapping_view()),
             mutation="accumulator view without the clamp", mutant_depth=8),
    Property("mac.sticky_flags", "o_overflow and o_mode_error stay set until i_clear",
             lambda: StickyHarness(_array, ["o_overflow", "o_mode_error"], "i_clear"), "prove", 2,
             " ".join(f"{k}={v}" for k, v in ARRAY_PARAMS.items()),
             mutant=_clear_on_command,
             mutation="flags also cleared while no command is offered", mutant_depth=6),
]
PROPERTIES += [
    Property("mac.streams", "o_res holds valid and its payload while stalled (the input streams "
             "assumed to)", lambda: StreamRulesHarness(_array), "bmc", 16,
             " ".join(f"{k}={v}" for k, v in ARRAY_PARAMS.items()),
             mutant=lambda: StreamRulesHarness(lambda: _array(mutated(
                 "hw.mac.array", "MacArray", "b_take.eq(full & ~spill_v & ready)",
                 "b_take.eq(full & ~spill_v)"))),
             mutation="result row leaves without a transfer"),
]
