"""STDP synapse memory: forward-table presynaptic-event-triggered STDP with LIF neurons."""

from . import spec
from .core import STDPCore

__all__ = ["STDPCore", "spec"]
