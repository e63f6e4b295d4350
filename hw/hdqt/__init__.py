"""HDQT: Hadamard-domain integer training datapath (FWHT, shift quantizers, layer controller)."""

BLOCKS = []
