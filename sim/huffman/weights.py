"""Real weight streams for the demo and the bench: the digits MLP (scikit-learn ``load_digits``).

The MLP (64-32-10, numpy, trained as in :mod:`sim.mac.demo`) is quantized per output channel to int8
and int4 (:func:`sim.mac.golden.quantize_weights`); symbols are the two's complement bit patterns
(int4 ``-3`` -> ``0xD``). :func:`int4_pair_symbols` codes int4 weights two at a time: one 8-bit symbol is
the MAC array's packed int4 byte (first weight in the low nibble), so a near-uniform 16-symbol source
becomes a 256-symbol one whose whole-bit code lengths waste far less, and each decoded symbol carries
two weights. The BF16 stream is the float weights rounded to bfloat16 (round to nearest
even), split into the exponent (coded) and sign + 7 mantissa bits (raw).
"""

import numpy as np

from hw.mac import spec as mac_spec
from sim.mac.demo import load_data, train_mlp
from sim.mac.golden import quantize_weights

__all__ = ["digits_mlp", "int_symbols", "int4_pair_symbols", "bf16_values"]

_CACHE = {}


def digits_mlp(epochs=150):
    """``(w1, w2, data)``: float weights of a trained digits MLP and ``(xtr, ytr, xte, yte)``."""
    if epochs not in _CACHE:
        data = load_data()
        w1, _, w2, _ = train_mlp(data[0], data[1], epochs=epochs)
        _CACHE[epochs] = (w1, w2, data)
    return _CACHE[epochs]


def int_symbols(weights, mode):
    """Per-channel quantized weights of every matrix (``mode`` "int8"/"int4") as unsigned symbols,
    plus the quantized matrices."""
    bits = mac_spec.WEIGHT_BITS[mac_spec.MODES[mode]]
    qs = [quantize_weights(w, mode, per_channel=True)[0] for w in weights]
    syms = np.concatenate([(q.astype(np.int64) & ((1 << bits) - 1)).ravel() for q in qs])
    return [int(s) for s in syms], qs


def int4_pair_symbols(nibbles):
    """Consecutive int4 symbols (``0..15``) packed in pairs as the MAC array packs an int4 byte: weight
    ``2i`` in the low nibble, ``2i+1`` in the high one (an odd count is padded with a zero weight)."""
    nib = [int(v) & 0xF for v in nibbles]
    if len(nib) % 2:
        nib.append(0)
    return [nib[i] | nib[i + 1] << 4 for i in range(0, len(nib), 2)]


def bf16_values(weights):
    """The weights as BF16 bit patterns (ints), round to nearest even from float32."""
    f = np.concatenate([np.asarray(w, dtype=np.float32).ravel() for w in weights])
    u = f.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return [int(v) & 0xFFFF for v in rounded]
