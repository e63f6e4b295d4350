"""HDQT golden model (:mod:`sim.hdqt.golden`): the FWHT, the quantizer's rounding rules, the tiled
matmul and a layer step against float."""

import numpy as np
import pytest

from hw.hdqt import spec
from hw.mac import spec as mac_spec
from sim.hdqt.golden import (
    HdqtConfig,
    LfsrStream,
    hadamard_matrix,
    ref_fwht,
    ref_layer_step,
    ref_quantize,
    ref_rshift_rtn,
    ref_tiled_matmul,
)
from sim.lfsr.golden import ref_lfsr_words


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32, 64, 128])
def test_fwht_is_the_sylvester_matrix(n):
    rng = np.random.default_rng(n)
    x = rng.integers(-1000, 1000, (3, 2 * n))
    h = hadamard_matrix(n)
    assert (h @ h == n * np.eye(n, dtype=np.int64)).all()
    want = np.concatenate([x[:, :n] @ h.T, x[:, n:] @ h.T], axis=1)
    assert (ref_fwht(x, n) == want).all()
    assert (ref_fwht(x.T, n, axis=0) == want.T).all()


def test_hadamard_block_size():
    assert [spec.hadamard_block(d, 64) for d in (64, 10, 96, 256, 7, 32)] == [64, 2, 32, 64, 1, 32]


def test_lfsr_stream_is_the_lfsr_block():
    s = LfsrStream()
    first = list(s.take(50)) + list(s.take(50))
    assert first == ref_lfsr_words(100, width=spec.RND_BITS, seed=spec.LFSR_SEED)


def test_quantizer_matches_scalar_spec():
    rng = np.random.default_rng(0)
    for bits in (2, 4, 8):
        for unsigned in (False, True):
            x = rng.integers(-5000, 5000, 300)
            q, s = ref_quantize(x, bits, unsigned)
            assert s == spec.shift_for(int(np.abs(np.maximum(x, 0) if unsigned else x).max()), bits, unsigned)
            assert list(q) == [spec.quantize(int(v), s, bits, unsigned) for v in x]
            words = LfsrStream(7).take(x.size)
            q, s = ref_quantize(x, bits, unsigned, lfsr=LfsrStream(7))
            assert list(q) == [spec.quantize(int(v), s, bits, unsigned, int(r)) for v, r in zip(x, words)]


def test_quantizer_rounding_rules():
    # max 60 -> bitlen 6 -> shift 3: 4 = 0.5 rounds away from zero, 12 = 1.5 -> 2, 60 = 7.5 -> 8 clips to 7
    q, s = ref_quantize([4, -4, 12, -12, 60, -60, 3], 4)
    assert s == 3 and list(q) == [1, -1, 2, -2, 7, -7, 0]
    q, s = ref_quantize([31, 16, 0], 4, unsigned=True)  # bitlen 5, 4 magnitude bits: shift 1
    assert s == 1 and list(q) == [15, 8, 0]
    q, s = ref_quantize([-9, 5], 4, unsigned=True)  # negatives clip to 0
    assert s == 0 and list(q) == [0, 5]
    q, s = ref_quantize([3, -2, 7], 4)  # already representable: exact, no shift
    assert s == 0 and list(q) == [3, -2, 7]


def test_all_zero_tensor_quantizes_to_zero():
    for lfsr in (None, LfsrStream()):
        q, s = ref_quantize(np.zeros((4, 5), dtype=np.int64), 4, lfsr=lfsr)
        assert s == 0 and not q.any()


def test_stochastic_rounding_is_unbiased():
    # 100 = 6.25 * 16 with max 112 (shift 4): rounds to 6 or 7, mean 6.25
    x = np.full(20000, 100)
    x[0] = 112
    q, s = ref_quantize(x, 4, lfsr=LfsrStream())
    assert s == 4 and set(q[1:]) == {6, 7}
    assert abs(q[1:].mean() - 6.25) < 0.02


def test_bad_bits():
    with pytest.raises(ValueError, match="bits must be an integer from 2 to 8, not 9"):
        ref_quantize([1], 9)


@pytest.mark.parametrize("tile_bits", [4, 8, 12])
def test_tiled_matmul_corners(tile_bits):
    lim = spec.tile_limit(tile_bits)
    k = 70  # two full tiles of 32 and a partial tile of 6
    a = np.full((2, k), 15)
    b = np.full((k, 3), 7)
    b[:, 1] = -7
    b[:, 2] = 0
    y = ref_tiled_matmul(a, b, tile_bits=tile_bits)
    # each tile's sum (32*105, 32*105, 6*105) clamps separately before the wide sum
    per_tile = [min(lim, t * 105) for t in (32, 32, 6)]
    assert list(y[0]) == [sum(per_tile), -sum(per_tile), 0]
    # an exact tile sum at the limit is not clamped; one more is
    for total, want in ((lim, lim), (lim + 1, lim), (-lim, -lim), (-lim - 1, -lim)):
        a2 = np.zeros((1, 32), dtype=np.int64)
        q, r = divmod(abs(total), 100)
        a2[0, :q], a2[0, q] = 100, r
        a2 *= 1 if total > 0 else -1
        assert ref_tiled_matmul(a2, np.ones((32, 1)), tile_bits=tile_bits)[0, 0] == want
    # saturation of a tile does not leak into the next one
    a3 = np.concatenate([np.full(32, 15), np.full(32, -1)])[None, :]
    assert ref_tiled_matmul(a3, np.ones((64, 1)), tile_bits=tile_bits)[0, 0] == min(lim, 480) + max(-lim, -32)


def test_tiled_matmul_is_the_mac_arrays_tile_mode():
    rng = np.random.default_rng(3)
    a = rng.integers(-7, 8, (5, 100))
    b = rng.integers(-7, 8, (100, 6))
    # against the array's step-by-step reference of one accumulator
    want = np.array([[mac_spec.ref_dot(a[i], b[:, j], "int4", acc_width=24, tile_sat=True)[0]
                      for j in range(6)] for i in range(5)])
    assert (ref_tiled_matmul(a, b) == want).all()
    # the wide accumulator saturates (two's complement range of the array)
    a = np.full((1, 32 * 40), 15)
    y = ref_tiled_matmul(a, np.full((32 * 40, 1), 7), tile_bits=16, acc_bits=17)
    assert y[0, 0] == 2 ** 16 - 1


def test_rshift_rtn():
    x = np.array([5, -5, 6, -6, 7, 0])
    assert list(ref_rshift_rtn(x, 1)) == [3, -3, 3, -3, 4, 0]
    assert list(ref_rshift_rtn(x, -2)) == [20, -20, 24, -24, 28, 0]
    assert list(ref_rshift_rtn(x, 1)) == [spec.rshift_rtn(int(v), 1) for v in x]


def test_layer_step_gradients_track_float():
    """At 6 bits and non-saturating 16-bit tiles the integer results approximate the exact float ones."""
    rng = np.random.default_rng(5)
    cfg = HdqtConfig(bits=6, tile_bits=16, lr_shift=20)  # 31 * 31 * 32 < 2**15: no tile saturates
    w = rng.integers(-3000, 3000, (64, 64))
    x = rng.integers(-128, 128, (32, 64))
    dy = rng.integers(-3000, 3000, (32, 64))
    r = ref_layer_step(cfg, w, x, -8, dy, -20, LfsrStream(), x_unsigned=False)
    wf, xf, dyf = w * 2.0 ** -cfg.w_frac, x * 2.0 ** -8, dy * 2.0 ** -20
    for got, exp, want in ((r["y"], r["y_exp"], xf @ wf.T), (r["dx"], r["dx_exp"], dyf @ wf),
                           (r["dw"], r["dw_exp"], dyf.T @ xf)):
        err = np.linalg.norm(got * 2.0 ** exp - want) / np.linalg.norm(want)
        assert err < 0.15, err  # 6-bit quantization noise; a wrong exponent would give >= 0.5


def test_update_saturates_with_sticky_flag():
    cfg = HdqtConfig(lr_shift=0)
    w = np.full((32, 32), 32000)
    x = np.full((32, 32), 100)
    dy = np.full((32, 32), -1000)   # dW < 0 drives W up: it saturates at the Q2.13 rail
    r = ref_layer_step(cfg, w, x, 0, dy, 0, LfsrStream())
    assert r["w_saturated"] and r["w"].max() == spec.acc_limit(spec.W_BITS)
    r = ref_layer_step(cfg, np.zeros((32, 32)), x, -30, dy, -30, LfsrStream())
    assert not r["w_saturated"]
