"""Float-scale reference of the authors' HDQT algorithm (QuantizedCIL, as described in issue 5).

Same structure as :func:`sim.hdqt.golden.ref_layer_step` but the way the authors simulate it in
PyTorch: float master weights and float SGD, per-tensor float scales ``max|x| / qmax`` (not powers of
two), round-half-to-even (``torch.round``) for round-to-nearest, ``floor(|x|/s + U[0,1))`` with a numpy
generator for stochastic rounding, and the same integer tile-saturating matmul. Comparing it with the
integer golden model shows what the hardware simplifications (power-of-two scales, LFSR, integer
master weights, shift learning rate) cost.
"""

import numpy as np

from hw.hdqt import spec
from sim.hdqt.golden import ref_fwht, ref_tiled_matmul

__all__ = ["float_quantize", "float_layer_forward", "float_layer_step"]


def float_quantize(x, bits, unsigned=False, rng=None):
    """``(q, scale)`` with ``x ~ q * scale``; ``rng`` selects stochastic rounding."""
    x = np.asarray(x, dtype=np.float64)
    if unsigned:
        x = np.maximum(x, 0.0)
    qm = spec.qmax(bits, unsigned)
    m = float(np.abs(x).max()) if x.size else 0.0
    if m == 0.0:
        return np.zeros(x.shape, dtype=np.int64), 1.0
    scale = m / qm
    r = np.abs(x) / scale
    q = np.floor(r + rng.random(x.shape)) if rng is not None else np.round(r)
    q = np.minimum(q, qm).astype(np.int64)
    return np.where(x < 0, -q, q), scale


def _mm(cfg, a, b):
    return ref_tiled_matmul(a, b, tile_k=cfg.tile_k, tile_bits=cfg.tile_bits, acc_bits=cfg.acc_bits)


def float_layer_forward(cfg, w, x, *, x_unsigned=True):
    xq, sx = float_quantize(x, cfg.bits, unsigned=x_unsigned)
    wq, sw = float_quantize(w, cfg.bits)
    return _mm(cfg, xq, wq.T) * (sx * sw)


def float_layer_step(cfg, w, x, dy, rng, *, lr, need_dx=True, x_unsigned=True, backward="input"):
    """One step on float tensors: returns ``(y, dx, w_new)``; ``lr`` is the float learning rate.

    ``backward``: ``"input"`` transforms the float W and X in the backward pass, ``"quantized"`` their
    forward-quantized (dequantized 4-bit) values, as the authors' code does."""
    b = x.shape[0]
    o = w.shape[0]
    y = float_layer_forward(cfg, w, x, x_unsigned=x_unsigned)
    w_src, x_src = w, x
    if backward == "quantized":
        q, s = float_quantize(w, cfg.bits)
        w_src = q * s
        q, s = float_quantize(x, cfg.bits, unsigned=x_unsigned)
        x_src = q * s
    elif backward != "input":
        raise ValueError(f"backward must be 'input' or 'quantized', not {backward!r}")
    dx = None
    if need_dx:
        n_o = spec.hadamard_block(o, cfg.had_cap)
        whq, s1 = float_quantize(ref_fwht_f(w_src, n_o, 0), cfg.bits)
        dyq, s2 = float_quantize(ref_fwht_f(dy, n_o, 1), cfg.bits, rng=rng)
        dx = _mm(cfg, dyq, whq) * (s1 * s2 / n_o)
    n_b = spec.hadamard_block(b, cfg.had_cap)
    dyq, s3 = float_quantize(ref_fwht_f(dy, n_b, 0), cfg.bits, rng=rng)
    xq, s4 = float_quantize(ref_fwht_f(x_src, n_b, 0), cfg.bits, rng=rng)
    dw = _mm(cfg, dyq.T, xq) * (s3 * s4 / n_b)
    return y, dx, w - lr * dw


def ref_fwht_f(x, n, axis):
    """Float FWHT: :func:`sim.hdqt.golden.ref_fwht` on float64 data."""
    return ref_fwht(x, n, axis, dtype=np.float64)
