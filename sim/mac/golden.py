"""Golden model of the mixed-precision MAC array (:mod:`hw.mac`): quantizers, exact GEMM, tiling.

The arithmetic is defined in :mod:`hw.mac.spec`; this module computes it with numpy for whole
matrices (:func:`ref_gemm`) and cuts a GEMM into the array's tiles with the exact stream words and
the expected result rows (:func:`gemm_tiles`).

Quantizers (symmetric, round half to even as numpy's ``rint``)
---------------------------------------------------------------
* weights int8 / int4: ``s = max|w| / qmax`` with ``qmax`` 127 / 7, ``q = clip(rint(w / s), -qmax, qmax)``;
* weights int2 (levels -2..1): ``s = mean|w|``, ``q = clip(rint(w / s), -2, 1)`` (the asymmetric
  grid of 2-bit two's complement; a max-based scale would round most weights to 0);
* weights ternary: threshold ``t = 0.7 * mean|w|`` (Li & Liu's TWN rule), ``q = sign(w) * (|w| > t)``,
  ``s = mean(|w| where |w| > t)`` (1 if none);
* activations: signed ``s = max|x| / 127``, ``q`` in -127..127; unsigned (post-ReLU)
  ``s = max(x) / 255``, ``q`` in 0..255.

Scales are per tensor, or per output channel (per row of ``W``, shape ``N x K``) with
``per_channel=True``. An all-zero tensor (or channel) gets scale 1 and quantizes to zeros.
"""

import numpy as np

from hw.mac import spec

__all__ = ["quantize_weights", "quantize_acts", "ref_gemm", "ref_dequant_gemm", "gemm_tiles",
           "random_weights", "random_acts"]


def _scale(maxabs, qmax):
    maxabs = np.asarray(maxabs, dtype=np.float64)
    return np.where(maxabs > 0, maxabs / qmax, 1.0)


def quantize_weights(w, mode, *, per_channel=False):
    """Quantize float weights ``w`` (``N x K``, rows are output channels) to ``mode``.

    Returns ``(q, scale)``: ``q`` int64 of ``w``'s shape, ``scale`` a float (per tensor) or an ``N``
    vector (per channel), with ``w ≈ q * scale`` (``scale[:, None]`` per channel).
    """
    code = spec.mode_code(mode)
    w = np.asarray(w, dtype=np.float64)
    axis = 1 if per_channel else None
    keep = {"axis": axis, "keepdims": per_channel}
    if code == spec.MODE_TERNARY:
        a = np.abs(w)
        t = 0.7 * a.mean(**keep)
        mask = a > t
        cnt = mask.sum(**keep)
        s = np.where(cnt > 0, (a * mask).sum(**keep) / np.maximum(cnt, 1), 1.0)
        q = (np.sign(w) * mask).astype(np.int64)
    elif code == spec.MODE_INT2:
        s = _scale(np.abs(w).mean(**keep), 1)
        q = np.clip(np.rint(w / s), -2, 1).astype(np.int64)
    else:
        qmax = {spec.MODE_INT8: 127, spec.MODE_INT4: 7}[code]
        s = _scale(np.abs(w).max(**keep), qmax)
        q = np.clip(np.rint(w / s), -qmax, qmax).astype(np.int64)
    scale = s.reshape(-1) if per_channel else float(s)
    return q, scale


def quantize_acts(x, *, unsigned=False):
    """Quantize float activations to int8 (-127..127) or uint8 (0..255); returns ``(q, scale)``."""
    x = np.asarray(x, dtype=np.float64)
    if unsigned:
        if (x < 0).any():
            raise ValueError("unsigned activations must be non-negative (apply ReLU first)")
        s = float(_scale(x.max() if x.size else 0.0, 255))
        return np.clip(np.rint(x / s), 0, 255).astype(np.int64), s
    s = float(_scale(np.abs(x).max() if x.size else 0.0, 127))
    return np.clip(np.rint(x / s), -127, 127).astype(np.int64), s


def ref_gemm(x, w, mode, *, acc_width=24, tile_sat=False, tile_k=spec.DEFAULT_TILE_K,
             tile_bits=spec.DEFAULT_TILE_BITS):
    """``Y = X · Wᵀ`` with the array's exact accumulator semantics.

    ``x``: ``M x K`` integer activations (int8 or uint8 values), ``w``: ``N x K`` integer weights in
    ``mode``'s range. Returns ``(y, overflow)``: ``M x N`` int64 results and a bool matrix of which
    accumulators saturated.
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x must be M x K and w N x K with the same K, not {x.shape} and {w.shape}")
    lo_w, hi_w = spec.WEIGHT_RANGE[spec.mode_code(mode)]
    if w.size and (w.min() < lo_w or w.max() > hi_w):
        raise ValueError(f"weights must be in {lo_w}..{hi_w} for mode {mode!r}")
    if x.size and (x.min() < -128 or x.max() > 255):
        raise ValueError("activations must be in -128..255")
    n = spec.lanes(mode)
    M, K = x.shape
    N = w.shape[0]
    lo, hi = spec.sat_range(acc_width)
    t_lo, t_hi = spec.tile_range(tile_bits)
    acc = np.zeros((M, N), dtype=np.int64)
    ovf = np.zeros((M, N), dtype=bool)
    group = np.zeros((M, N), dtype=np.int64)
    for j in range(0, max(K, 1), n):
        beat = x[:, j:j + n] @ w[:, j:j + n].T
        if tile_sat:
            group += beat
            if (j + n) % tile_k != 0 and j + n < K:
                continue
            v = acc + np.clip(group, t_lo, t_hi)
            group[:] = 0
        else:
            v = acc + beat
        ovf |= (v < lo) | (v > hi)
        acc = np.clip(v, lo, hi)
    return acc, ovf


def ref_dequant_gemm(xq, xs, wq, ws, mode, **kw):
    """Float result of the integer GEMM, rescaled: ``ref_gemm(xq, wq) * xs * ws`` (per-channel ``ws``
    scales the columns)."""
    y, _ = ref_gemm(xq, wq, mode, **kw)
    return y * xs * np.asarray(ws, dtype=np.float64)


def gemm_tiles(x, w, mode, *, rows, cols, act_unsigned=False, tile_sat=False, count_bits=12, **kw):
    """Cut ``Y = X · Wᵀ`` into the array's tiles (row-block major, then column blocks).

    Returns a list of dicts, one per tile: ``cmd`` (command word), ``act`` / ``wgt`` (beat words),
    ``m0``, ``n0`` (the tile's origin in ``Y``), ``y`` (``rows x cols`` expected values; rows and
    columns beyond ``M``/``N`` are computed on zero padding and are 0) and ``ovf`` (``rows`` flags,
    the ``overflow`` bit of each result row). ``kw`` goes to :func:`ref_gemm`.
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    M, K = x.shape
    N = w.shape[0]
    y, ovf = ref_gemm(x, w, mode, tile_sat=tile_sat, **kw)
    tiles = []
    for m0 in range(0, M, rows):
        for n0 in range(0, N, cols):
            xr = x[m0:m0 + rows]
            wc = w[n0:n0 + cols]
            cmd, acts, wgts = spec.tile_streams(xr.tolist(), wc.tolist(), mode, act_unsigned=act_unsigned,
                                                tile_sat=tile_sat, count_bits=count_bits)
            ty = np.zeros((rows, cols), dtype=np.int64)
            to = np.zeros((rows, cols), dtype=bool)
            ty[:len(xr), :len(wc)] = y[m0:m0 + rows, n0:n0 + cols]
            to[:len(xr), :len(wc)] = ovf[m0:m0 + rows, n0:n0 + cols]
            tiles.append({"cmd": cmd, "act": acts, "wgt": wgts, "m0": m0, "n0": n0, "y": ty,
                          "ovf": to.any(axis=1), "mode": spec.mode_code(mode)})
    return tiles


def random_weights(rng, shape, mode):
    """Uniform random integer weights over ``mode``'s whole range (including the extremes)."""
    lo, hi = spec.WEIGHT_RANGE[spec.mode_code(mode)]
    return rng.integers(lo, hi + 1, size=shape)


def random_acts(rng, shape, *, unsigned=False):
    return rng.integers(0, 256, size=shape) if unsigned else rng.integers(-128, 128, size=shape)
