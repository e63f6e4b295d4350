"""Galois LFSR: the pseudo-random source for stochastic rounding."""

from ..blocks import BlockSpec, Param, declared_defaults
from .lfsr import GaloisLFSR

__all__ = ["GaloisLFSR", "BLOCKS"]

_GALOISLFSR_DEFAULTS = declared_defaults(GaloisLFSR)

BLOCKS = [
    BlockSpec(
        name="lfsr",
        summary="leap-forward Galois LFSR, one pseudo-random word per cycle (stochastic rounding source)",
        factory=GaloisLFSR,
        params={
            "width": Param(_GALOISLFSR_DEFAULTS["width"], "state/output width, 3..32"),
            "steps": Param(_GALOISLFSR_DEFAULTS["steps"],
                           "Galois steps per output word, 1..64 (default: width)"),
            "seed": Param(_GALOISLFSR_DEFAULTS["seed"], "reset state (0 becomes 1)"),
        },
        smoke_test="sim.lfsr.tb_lfsr",
    ),
]
