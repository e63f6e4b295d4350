"""The HDQT arithmetic spec, shared by the RTL (:mod:`hw.hdqt`) and the golden model (:mod:`sim.hdqt.golden`).

Everything here is plain-int Python (no numpy), so ``hw/`` can import it. The golden model vectorises
the same formulas; the tests check the two agree.

Tensors
    Every tensor in the datapath is an integer array plus a per-tensor power-of-two exponent:
    ``value = int * 2**exp``. Exponents are small integers held by the controller, never stored
    per element.

Quantizer (max-reduction + shift)
    ``bits``-bit levels: signed ``-(2**(bits-1)-1) .. 2**(bits-1)-1`` (symmetric, ±7 at 4 bits) or
    unsigned ``0 .. 2**bits-1`` (post-ReLU tensors; negative inputs clip to 0). The shift comes from the
    leading one of ``m = max|x|``: ``shift = max(0, bitlen(m) - qbits)`` with ``qbits = bits-1``
    (signed) or ``bits`` (unsigned). It is never negative: integer inputs below the range are already
    exact, so only right shifts exist. ``m = 0`` gives shift 0 and all-zero output (no division).
    Rounding works on the magnitude, the sign is restored afterwards::

        q = min((|x| + add) >> shift, qmax)

    * round-to-nearest: ``add = (1 << shift) >> 1`` -- ties round **away from zero**;
    * stochastic: ``add = (r << shift) >> RND_BITS`` where ``r`` is one ``RND_BITS``-bit word of the
      LFSR (:mod:`hw.lfsr.spec`, width ``RND_BITS``, ``RND_BITS`` steps per word, seed ``LFSR_SEED``).
      The carry into bit ``shift`` happens with probability ``floor(r*2**shift/2**16)`` vs the
      fraction: exactly ``P(round up) = frac/2**shift`` when ``shift <= 16`` (up to the LFSR never
      emitting 0, a 2**-16 bias), the fraction truncated to its top 16 bits above that. One word is
      consumed per stochastically rounded element, in the tensor's row-major (C) order; the LFSR state
      carries over from tensor to tensor and step to step (it is reset only by reset).

    Rounding can reach ``2**qbits`` (e.g. 15 >> 1 rounds to 8); the ``min`` clips it to ``qmax``.

Tiled saturating matmul (a mode of the MAC array, issue 3)
    ``C = A @ B`` with the reduction dimension split into tiles of ``tile_k`` products. Each tile's
    partial sum is computed exactly and then saturated to ``±(2**(tile_bits-1)-1)`` (``[-127, 127]`` at 8
    bits: the paper's "8-bit accumulator"); the saturated tile sums are added into a wide accumulator
    of ``acc_bits`` bits that saturates (two's complement range) on every addition. A last partial
    tile (K not a multiple of ``tile_k``) is saturated the same way. This is exactly the MAC array's
    ``tile_sat`` mode (:mod:`hw.mac.spec`); the golden model calls the MAC array's golden model.

Hadamard transform
    Sylvester order, unnormalised: ``H_1 = [1]``, ``H_2n = [[H_n, H_n], [H_n, -H_n]]``; the FWHT is
    ``y = H_n x`` and grows ``log2 n`` bits. Along a dimension of size ``D`` the transform is
    block-diagonal with block size :func:`hadamard_block` ``(D, cap)``: the largest power of two dividing
    ``D``, capped at ``cap``. Because ``H H = n I``, the product of two transformed operands is rescaled by
    ``2**-log2(n)``: a shift of the exponent, no arithmetic.

Master weights and update
    ``W`` is ``W_BITS``-bit signed fixed point with ``w_frac`` fraction bits (default Q2.13: range
    ±4, LSB 2**-13), saturated to ``±(2**(W_BITS-1)-1)``. SGD with learning rate ``2**-lr_shift``::

        W <- sat(W - rshift_rtn(dW_acc, -u))     u = e_dW - lr_shift + w_frac

    where ``dW_acc`` is the tiled-matmul result and ``e_dW`` its exponent; ``rshift_rtn`` rounds to
    nearest, ties away from zero (a left shift when ``u >= 0``). A saturating write raises the sticky
    ``w_saturated`` flag. :func:`update_shift` clamps ``u`` to ``[-acc_bits, W_BITS]``, which changes no
    result: a right shift by ``acc_bits`` or more rounds every accumulator value to 0, and a left shift
    by ``W_BITS`` or more saturates every non-zero one.
"""

from dataclasses import dataclass

from ..mac import spec as mac_spec
from ..params import check_bool, check_choice, check_int, check_pow2

__all__ = [
    "LayerConfig", "TILE_K",
    "RND_BITS", "LFSR_SEED", "W_BITS", "W_FRAC", "MIN_BITS", "MAX_BITS", "MIN_FWHT", "MAX_FWHT",
    "qmax", "qbits", "shift_for", "quantize", "sat", "tile_limit", "acc_limit", "hadamard_block",
    "log2", "rshift_rtn", "update_shift",
]

#: Products per tile of the tiled saturating matmul: the paper's K tile, the MAC array's group.
TILE_K = mac_spec.DEFAULT_TILE_K
#: Random bits per stochastic-rounding word (the LFSR width) and the LFSR reset seed.
RND_BITS = 16
LFSR_SEED = 0xACE1
#: Master-weight format: ``W_BITS``-bit signed, ``W_FRAC`` fraction bits by default.
W_BITS = 16
W_FRAC = 13
#: Quantizer bit widths accepted (``bits``).
MIN_BITS, MAX_BITS = 2, 8
#: FWHT sizes the RTL supports.
MIN_FWHT, MAX_FWHT = 2, 128


def qbits(bits, unsigned):
    """Magnitude bits of a ``bits``-bit quantized value."""
    return bits if unsigned else bits - 1


def qmax(bits, unsigned):
    """Largest quantized magnitude: ``2**bits-1`` unsigned, ``2**(bits-1)-1`` signed."""
    return (1 << qbits(bits, unsigned)) - 1


def shift_for(maxabs, bits, unsigned):
    """The power-of-two scale exponent from the leading one of ``maxabs`` (0 for ``maxabs == 0``)."""
    return max(0, int(maxabs).bit_length() - qbits(bits, unsigned))


def quantize(x, shift, bits, unsigned, rnd=None):
    """One element: round-to-nearest (``rnd is None``) or stochastic with LFSR word ``rnd``."""
    if unsigned and x < 0:
        x = 0
    mag = -x if x < 0 else x
    add = ((1 << shift) >> 1) if rnd is None else ((rnd << shift) >> RND_BITS)
    q = min((mag + add) >> shift, qmax(bits, unsigned))
    return -q if x < 0 else q


def sat(x, bits):
    """Symmetric saturation to ``±(2**(bits-1)-1)``."""
    lim = (1 << (bits - 1)) - 1
    return max(-lim, min(lim, x))


def tile_limit(tile_bits):
    return (1 << (tile_bits - 1)) - 1


def acc_limit(bits):
    """Symmetric limit ``2**(bits-1)-1`` (master weights)."""
    return (1 << (bits - 1)) - 1


def log2(n):
    return n.bit_length() - 1


def hadamard_block(dim, cap):
    """Largest power of two dividing ``dim``, capped at ``cap`` (a power of two)."""
    n = dim & -dim
    return min(n, cap)


def rshift_rtn(x, s):
    """``x * 2**-s`` rounded to nearest, ties away from zero (``s <= 0`` is an exact left shift)."""
    if s <= 0:
        return x << -s
    mag = -x if x < 0 else x
    q = (mag + (1 << (s - 1))) >> s
    return -q if x < 0 else q


def update_shift(dw_exp, lr_shift, w_frac, acc_bits):
    """The update's left-shift amount ``u`` (negative: right shift), clamped to ``[-acc_bits, W_BITS]``."""
    return max(-acc_bits, min(W_BITS, dw_exp - lr_shift + w_frac))


@dataclass(frozen=True)
class LayerConfig:
    """The parameters of one HDQT layer (:class:`hw.hdqt.layer.HdqtLayer`), checked on construction.

    ``batch``, ``k_dim``, ``o_dim``: B, K, O, powers of two from ``2*max(rows, cols)`` to 256;
    ``had_cap``: largest Hadamard block (power of two ``MIN_FWHT..MAX_FWHT``); ``rows``, ``cols``: MAC
    array size (powers of two 1..16); ``acc_width``, ``tile_bits``: the array's wide and tile
    accumulators (the tile is :data:`TILE_K` products); ``backend``, ``primitives``: the array's
    arithmetic; ``lane_dsps`` (``"ice40"`` only): every activation lane of the array on SB_MAC16s of
    its own (:class:`hw.mac.products.ProductGrid`), ``4 * rows * ceil(cols / 2)`` of the UP5K's 8
    blocks, no fabric partial products. The registry (:mod:`hw.hdqt`), the controller's HDQT handler
    and the host read their defaults and sizes from here.
    """
    batch: int = 32
    k_dim: int = 64
    o_dim: int = 64
    had_cap: int = 64
    rows: int = 4
    cols: int = 4
    acc_width: int = 24
    tile_bits: int = 8
    backend: str = "lut"
    primitives: bool = True
    lane_dsps: bool = False

    def __post_init__(self):
        check_pow2("rows", self.rows, 1, 16)
        check_pow2("cols", self.cols, 1, 16)
        lo = 2 * max(self.rows, self.cols)
        check_pow2("batch", self.batch, lo, 256)
        check_pow2("k_dim", self.k_dim, lo, 256)
        check_pow2("o_dim", self.o_dim, lo, 256)
        check_pow2("had_cap", self.had_cap, MIN_FWHT, MAX_FWHT)
        check_int("acc_width", self.acc_width, mac_spec.MIN_ACC_WIDTH, mac_spec.MAX_ACC_WIDTH)
        check_int("tile_bits", self.tile_bits, 2, min(16, self.acc_width - 1))
        check_choice("backend", self.backend, ("lut", "ice40", "ecp5"))
        check_bool("primitives", self.primitives)
        check_bool("lane_dsps", self.lane_dsps)
        if self.lane_dsps and self.backend != "ice40":
            raise ValueError(f"lane_dsps is for backend 'ice40', not {self.backend!r}")

    @property
    def update_lanes(self):
        """U, weights updated per cycle (W stored U per word): the smallest power of two <= cols for
        which a dW tile's rows*cols results take at most half of its B/2 beats."""
        need = -(-4 * self.rows * self.cols // self.batch)
        return min(self.cols, 1 << max(0, (need - 1).bit_length()))

    @property
    def n_o(self):
        """Hadamard block along O."""
        return hadamard_block(self.o_dim, self.had_cap)

    @property
    def n_b(self):
        """Hadamard block along B."""
        return hadamard_block(self.batch, self.had_cap)

    def macs(self):
        """MACs of one step (three B x K x O matmuls) and the array's peak MACs per cycle (int4)."""
        return 3 * self.batch * self.k_dim * self.o_dim, self.rows * self.cols * 2
