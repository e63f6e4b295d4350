"""Formal harnesses for the HDQT blocks (hw/hdqt): stream rules of the FWHT, the quantizer and the
layer, and the quantizer's sticky overflow flag, at small sizes."""

from hw.hdqt.fwht import FWHT
from hw.hdqt.layer import HdqtLayer
from hw.hdqt.quantizer import ShiftQuantizer as Quantizer

from .harness import StreamRulesHarness, mutated
from .runner import Property
from .sticky import StickyHarness

__all__ = ["PROPERTIES"]

FWHT_PARAMS = dict(n=4, width=4)
QUANT_PARAMS = dict(width=8, bits=2, depth=4)
LAYER_PARAMS = dict(batch=2, k_dim=4, o_dim=2, had_cap=4, rows=1, cols=1, acc_width=17, tile_bits=4)


def _text(params):
    return " ".join(f"{k}={v}" for k, v in params.items())


def _no_start_over_read(layer):
    # i_start while a read-back word waits on o_rd withdraws it (a finding: see docs/formal.md)
    return [~(layer.i_start & layer.o_rd.valid)]


def _layer():
    return HdqtLayer(**LAYER_PARAMS)


PROPERTIES = [
    Property("hdqt.fwht_streams", "FWHT o_data holds valid and payload while stalled (input assumed to)",
             lambda: StreamRulesHarness(lambda: FWHT(**FWHT_PARAMS)), "prove", 4, _text(FWHT_PARAMS),
             mutant=lambda: StreamRulesHarness(lambda: mutated(
                 "hw.hdqt.fwht", "FWHT", "can_adv.eq(~out_valid | self.o_data.ready)", "can_adv.eq(1)",
             )(**FWHT_PARAMS)), mutation="pipeline advances over a stalled output", mutant_depth=10),
    Property("hdqt.quantizer_streams", "quantizer o_data holds valid and payload while stalled",
             lambda: StreamRulesHarness(lambda: Quantizer(**QUANT_PARAMS)), "bmc", 20, _text(QUANT_PARAMS),
             mutant=lambda: StreamRulesHarness(lambda: mutated(
                 "hw.hdqt.quantizer", "ShiftQuantizer", "en.eq(~valid[L] | self.o_data.ready)", "en.eq(1)",
             )(**QUANT_PARAMS)), mutation="pipeline advances over a stalled output"),
    Property("hdqt.quantizer_sticky", "quantizer o_overflow stays set until i_clear",
             lambda: StickyHarness(lambda: Quantizer(**QUANT_PARAMS), ["o_overflow"], "i_clear"),
             "prove", 1, _text(QUANT_PARAMS),
             mutant=lambda: StickyHarness(lambda: mutated(
                 "hw.hdqt.quantizer", "ShiftQuantizer",
                 "with m.If(self.i_clear):", "with m.If(self.i_clear | ~self.i_data.valid):",
             )(**QUANT_PARAMS), ["o_overflow"], "i_clear"),
             mutation="flag also cleared while no input is offered", mutant_depth=12),
    Property("hdqt.layer_streams", "layer o_rd and o_res hold valid and payload while stalled",
             lambda: StreamRulesHarness(_layer, constraints=_no_start_over_read), "bmc", 10,
             _text(LAYER_PARAMS), fast=False,
             mutant=lambda: StreamRulesHarness(_layer), mutation="i_start while a read-back word waits"),
]
