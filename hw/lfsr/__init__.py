"""Galois LFSR: the pseudo-random source for stochastic rounding."""

from ..blocks import BlockSpec, declared_params
from .lfsr import GaloisLFSR

__all__ = ["GaloisLFSR", "BLOCKS"]

BLOCKS = [
    BlockSpec(name="lfsr", factory=GaloisLFSR,
        summary="leap-forward Galois LFSR, one pseudo-random word per cycle (stochastic rounding source)",
        params=declared_params(GaloisLFSR, """
            width  state/output width, 3..32
            steps  Galois steps per output word, 1..64 (default: width)
            seed   reset state (0 becomes 1)
        """),
        smoke_test="sim.lfsr.tb_lfsr",
    ),
]
