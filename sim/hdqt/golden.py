"""Golden model of the HDQT integer training datapath: the arithmetic of :mod:`hw.hdqt.spec`, vectorised.

``ref_*`` functions are integer-exact (numpy ``int64``) and define what the RTL must produce bit for
bit: the FWHT, the max-reduction + shift quantizer (round-to-nearest and LFSR stochastic rounding),
the tiled saturating matmul, and one whole training step of a linear layer ``Y = X W^T``
(:func:`ref_layer_step`: forward, input gradient, weight gradient, SGD update).

Order of a layer step (the layer controller runs the same order; it fixes which LFSR words each
stochastically rounded element gets):

1. forward: ``Xq = Q_rtn(X)`` (unsigned when the layer input is post-ReLU), ``Wq = Q_rtn(W)``,
   ``Y = tiled(Xq, Wq^T)``;
2. input gradient: ``W' = H_O W`` (Hadamard along O, per column), ``dY' = dY H_O`` (per row),
   ``W'q = Q_rtn(W')``, ``dY'q = Q_sr(dY')``, ``dX = tiled(dY'q, W'q) / n_O``;
3. weight gradient: ``dY'' = H_B dY``, ``X'' = H_B X`` (Hadamard along the batch), ``dY''q = Q_sr(dY'')``
   then ``X''q = Q_sr(X'')``, ``dW = tiled(dY''q^T, X''q) / n_B``;
4. update: ``W <- sat(W - round(dW * 2**(e_dW - lr_shift + w_frac)))``.

Stochastic-rounding words are taken from one LFSR stream in that order, each tensor in row-major
order of its natural shape (dY': B x O, dY'': B x O, X'': B x K).
"""

from dataclasses import dataclass

import numpy as np

from hw.hdqt import spec
from hw.lfsr import spec as lfsr_spec
from sim.mac.golden import ref_gemm

__all__ = ["HdqtConfig", "LfsrStream", "ref_fwht", "ref_quantize", "ref_tiled_matmul", "ref_rshift_rtn",
           "ref_layer_forward", "ref_layer_step", "ref_exp_base", "hadamard_matrix"]


@dataclass(frozen=True)
class HdqtConfig:
    """Parameters of one HDQT layer step (see :mod:`hw.hdqt.spec`).

    ``bits``: quantized input bits of every matmul operand; ``tile_k``/``tile_bits``: tile length and
    tile-accumulator bits; ``acc_bits``: wide accumulator; ``had_cap``: largest Hadamard block;
    ``w_frac``: master-weight fraction bits; ``lr_shift``: learning rate ``2**-lr_shift``.
    """
    bits: int = 4
    tile_k: int = spec.TILE_K
    tile_bits: int = 8
    acc_bits: int = 24
    had_cap: int = 64
    w_frac: int = spec.W_FRAC
    lr_shift: int = 4


_WORDS = {}


def _word_table():
    """All words of the stochastic-rounding LFSR from its seed (period ``2**16-1``)."""
    if "t" not in _WORDS:
        w = spec.RND_BITS
        state = lfsr_spec.normalize_seed(spec.LFSR_SEED, w)
        period = (1 << w) - 1
        out = np.empty(period, dtype=np.int64)
        taps = lfsr_spec.TAPS[w]
        for i in range(period):
            out[i] = state
            for _ in range(w):  # inlined lfsr_spec.leap(state, w, w), for speed
                state = (state >> 1) ^ (taps if state & 1 else 0)
        assert state == out[0]
        _WORDS["t"] = out
    return _WORDS["t"]


class LfsrStream:
    """The stochastic-rounding word stream: :class:`hw.lfsr.GaloisLFSR` (width 16, 16 steps, seed
    :data:`hw.hdqt.spec.LFSR_SEED`) as seen by its consumer; ``take(n)`` returns the next ``n`` words."""

    def __init__(self, index=0):
        self.index = index

    @property
    def state(self):
        """The LFSR state that emits the next word (load it into the RTL's LFSR to continue from here)."""
        return int(_word_table()[self.index])

    def take(self, n):
        t = _word_table()
        idx = (self.index + np.arange(n)) % len(t)
        self.index = (self.index + n) % len(t)
        return t[idx]


def hadamard_matrix(n):
    """Sylvester Hadamard matrix ``H_n`` (``int64``)."""
    h = np.ones((1, 1), dtype=np.int64)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def ref_fwht(x, n, axis=-1, dtype=np.int64):
    """Block-diagonal unnormalised Walsh-Hadamard transform of ``x`` along ``axis``, block size ``n``,
    computed in ``dtype`` (``int64``: exact integers; a float type for float references)."""
    x = np.moveaxis(np.asarray(x, dtype=dtype), axis, -1)
    d = x.shape[-1]
    if n < 1 or n & (n - 1) or d % n:
        raise ValueError(f"n must be a power of two dividing {d}, not {n!r}")
    y = x.reshape(*x.shape[:-1], d // n, n).copy()
    h = 1
    while h < n:  # radix-2 butterflies, span h: (a, b) -> (a + b, a - b)
        y = y.reshape(*y.shape[:-1], n // (2 * h), 2, h)
        a, b = y[..., 0, :].copy(), y[..., 1, :].copy()
        y[..., 0, :], y[..., 1, :] = a + b, a - b
        y = y.reshape(*y.shape[:-3], n)
        h *= 2
    return np.moveaxis(y.reshape(*x.shape), -1, axis)


def ref_quantize(x, bits, unsigned=False, lfsr=None):
    """Max-reduction + shift quantizer. Returns ``(q, shift)``; ``value ~ q * 2**shift``.

    ``lfsr`` (an :class:`LfsrStream`) selects stochastic rounding, one word per element in C order.
    """
    if not spec.MIN_BITS <= bits <= spec.MAX_BITS:
        raise ValueError(f"bits must be an integer from {spec.MIN_BITS} to {spec.MAX_BITS}, not {bits!r}")
    x = np.asarray(x, dtype=np.int64)
    if unsigned:
        x = np.maximum(x, 0)
    mag = np.abs(x)
    shift = spec.shift_for(int(mag.max()) if mag.size else 0, bits, unsigned)
    if lfsr is None:
        add = (1 << shift) >> 1
    else:
        add = (lfsr.take(mag.size).reshape(mag.shape) << shift) >> spec.RND_BITS
    q = np.minimum((mag + add) >> shift, spec.qmax(bits, unsigned))
    return np.where(x < 0, -q, q), shift


def ref_tiled_matmul(a, b, tile_k=spec.TILE_K, tile_bits=8, acc_bits=24):
    """``a @ b`` on the MAC array's tile-saturating mode (see :mod:`hw.hdqt.spec`).

    ``a``: M x K activations (int8/uint8 values), ``b``: K x N weights. This *is* the MAC array's golden
    model (:func:`sim.mac.golden.ref_gemm` with ``tile_sat=True``), in int4 weight mode when the weights
    fit in 4 bits and int8 mode otherwise (the two modes give the same sums).
    """
    b = np.asarray(b, dtype=np.int64)
    mode = "int4" if b.size == 0 or (b.min() >= -8 and b.max() <= 7) else "int8"
    y, _ = ref_gemm(a, b.T, mode, acc_width=acc_bits, tile_sat=True, tile_k=tile_k, tile_bits=tile_bits)
    return y


def ref_rshift_rtn(x, s):
    """Vectorised :func:`hw.hdqt.spec.rshift_rtn`."""
    x = np.asarray(x, dtype=np.int64)
    if s <= 0:
        return x << -s
    q = (np.abs(x) + (1 << (s - 1))) >> s
    return np.where(x < 0, -q, q)


def ref_exp_base(cfg, x_exp, dy_exp, batch):
    """The layer controller's ``i_exp_base``: ``dy_exp + x_exp - lr_shift + w_frac - log2 n_B``."""
    return dy_exp + x_exp - cfg.lr_shift + cfg.w_frac - spec.log2(spec.hadamard_block(batch, cfg.had_cap))


def ref_layer_forward(cfg, w, x, x_exp, *, x_unsigned=True):
    """Forward matmul of a layer: ``(y, y_exp, (shift_x, shift_w))``, ``Y ~ y * 2**y_exp``."""
    xq, sx = ref_quantize(x, cfg.bits, unsigned=x_unsigned)
    wq, sw = ref_quantize(w, cfg.bits)
    y = ref_tiled_matmul(xq, np.asarray(wq).T, tile_k=cfg.tile_k, tile_bits=cfg.tile_bits,
                         acc_bits=cfg.acc_bits)
    return y, x_exp + sx + sw - cfg.w_frac, (sx, sw)


BACKWARD_OPERANDS = ("input", "quantized")


def ref_layer_step(cfg, w, x, x_exp, dy, dy_exp, lfsr, *, x_unsigned=True, need_dx=True, backward="input"):
    """One HDQT training step of ``Y = X W^T``.

    Parameters
    ----------
    cfg : HdqtConfig
    w : int array, O x K
        Master weights, ``W_BITS``-bit with ``cfg.w_frac`` fraction bits.
    x, x_exp : int array B x K, int
        Layer input and its exponent.
    dy, dy_exp : int array B x O, int
        Output gradient and its exponent.
    lfsr : LfsrStream
        Advanced by the stochastic roundings.
    x_unsigned : bool
        The input is non-negative (post-ReLU or pixels): forward quantizes it unsigned.
    need_dx : bool
        Compute the input gradient (the golden model may skip it for a first layer; the RTL always
        computes it, and its LFSR words are consumed either way).
    backward : str
        Which operands the backward pass transforms: ``"input"`` (the hardware: the 16-bit X and the
        master weights W) or ``"quantized"`` (the forward-quantized Xq and Wq, as the authors'
        code does; a software option, the RTL does not implement it).

    Returns
    -------
    dict
        ``y, y_exp`` (forward accumulator and exponent), ``dx, dx_exp``, ``dw, dw_exp`` (weight-gradient
        accumulator), ``w`` (updated master weights), ``w_saturated`` (bool), ``shifts`` (quantizer
        shifts in step order: x, w, w', dy', dy'', x'').
    """
    w = np.asarray(w, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    dy = np.asarray(dy, dtype=np.int64)
    b, k = x.shape
    o = w.shape[0]
    mm = dict(tile_k=cfg.tile_k, tile_bits=cfg.tile_bits, acc_bits=cfg.acc_bits)

    if backward not in BACKWARD_OPERANDS:
        raise ValueError(f"backward must be 'input' or 'quantized', not {backward!r}")
    y, y_exp, (sx, sw) = ref_layer_forward(cfg, w, x, x_exp, x_unsigned=x_unsigned)
    # The backward pass's sources and the exponents they add (relative to W's and X's own).
    w_src, w_src_exp, x_src, x_src_exp = w, 0, x, 0
    if backward == "quantized":
        w_src, w_src_exp = ref_quantize(w, cfg.bits)
        x_src, x_src_exp = ref_quantize(x, cfg.bits, unsigned=x_unsigned)

    n_o = spec.hadamard_block(o, cfg.had_cap)
    wh, s_wh = ref_quantize(ref_fwht(w_src, n_o, axis=0), cfg.bits)
    s_wh += w_src_exp
    dyh_words = lfsr.index
    if need_dx:
        dyh, s_dyh = ref_quantize(ref_fwht(dy, n_o, axis=1), cfg.bits, lfsr=lfsr)
        dx = ref_tiled_matmul(dyh, wh, **mm)
        dx_exp = dy_exp + s_dyh + s_wh - cfg.w_frac - spec.log2(n_o)
    else:
        lfsr.index = (dyh_words + dy.size) % len(_word_table())
        dx, dx_exp, s_dyh = None, None, None

    n_b = spec.hadamard_block(b, cfg.had_cap)
    dyb, s_dyb = ref_quantize(ref_fwht(dy, n_b, axis=0), cfg.bits, lfsr=lfsr)
    xb, s_xb = ref_quantize(ref_fwht(x_src, n_b, axis=0), cfg.bits, lfsr=lfsr)
    s_xb += x_src_exp
    dw = ref_tiled_matmul(dyb.T, xb, **mm)
    dw_exp = dy_exp + s_dyb + x_exp + s_xb - spec.log2(n_b)

    # Clamping the shift changes no result (see spec.update_shift) but keeps left shifts small.
    u = spec.update_shift(dw_exp, cfg.lr_shift, cfg.w_frac, cfg.acc_bits)
    lim = spec.acc_limit(spec.W_BITS)
    raw = w - ref_rshift_rtn(dw, -u)
    w_new = np.clip(raw, -lim, lim)
    return {
        "y": y, "y_exp": y_exp, "dx": dx, "dx_exp": dx_exp, "dw": dw, "dw_exp": dw_exp,
        "w": w_new, "w_saturated": bool((raw != w_new).any()), "update_shift": u,
        "shifts": (sx, sw, s_wh, s_dyh, s_dyb, s_xb),
    }
