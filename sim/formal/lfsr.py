"""Formal harness for the LFSR (hw/lfsr, width 8): its output stream's rules.

The seed load (``i_load``) replaces the state, and with it a pending word, whatever ``ready`` is:
the rules hold while ``i_load`` is low, which the harness assumes."""

from hw.lfsr.lfsr import GaloisLFSR

from .harness import StreamRulesHarness, mutated
from .runner import Property

__all__ = ["PROPERTIES"]


def _lfsr(cls=GaloisLFSR):
    return cls(width=8)


PROPERTIES = [
    Property("lfsr.streams", "o_random holds its word until taken (i_load low)",
             lambda: StreamRulesHarness(_lfsr, quiet=["i_load"]), "prove", 2, "width=8",
             mutant=lambda: StreamRulesHarness(lambda: _lfsr(mutated(
                 "hw.lfsr.lfsr", "GaloisLFSR", "with m.Elif(self.o_random.ready):", "with m.Else():")),
                 quiet=["i_load"]),
             mutation="state advances without a transfer", mutant_depth=4),
]
