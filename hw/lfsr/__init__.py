"""Galois LFSR: the pseudo-random source for stochastic rounding."""

from ..blocks import BlockSpec, Param
from .lfsr import GaloisLFSR

__all__ = ["GaloisLFSR", "BLOCKS"]

BLOCKS = [
    BlockSpec(
        name="lfsr",
        summary="leap-forward Galois LFSR, one pseudo-random word per cycle (stochastic rounding source)",
        factory=GaloisLFSR,
        params={
            "width": Param(16, "state/output width, 3..32"),
            "steps": Param(None, "Galois steps per output word, 1..64 (default: width)"),
            "seed": Param(1, "reset state (0 becomes 1)"),
        },
        smoke_test="sim.lfsr.tb_lfsr",
    ),
]
