"""Mixed-precision MAC/PE array: int8/int4/int2/ternary weights chosen per tile at run time.

See :mod:`hw.mac.spec` for the interface contract (modes, packed formats, accumulator semantics,
stream payloads).
"""

from . import spec

__all__ = ["spec", "BLOCKS"]

BLOCKS = []
