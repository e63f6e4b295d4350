"""MAC array spec and golden model: formats, accumulator semantics, quantizers (no simulation)."""

import itertools
import random

import numpy as np
import pytest

from hw.mac import spec
from sim.mac.golden import gemm_tiles, quantize_acts, quantize_weights, random_acts, random_weights, ref_gemm

MODES = list(spec.MODES)


@pytest.mark.parametrize("mode", MODES)
def test_weight_byte_round_trip_every_value(mode):
    lo, hi = spec.WEIGHT_RANGE[spec.MODES[mode]]
    n = spec.lanes(mode)
    for ws in itertools.product(range(lo, hi + 1), repeat=min(n, 2)):
        ws = list(ws) + [lo] * (n - len(ws))
        assert spec.unpack_weight_byte(spec.pack_weight_byte(ws, mode), mode) == ws


def test_weight_byte_layout_is_documented_lane_order():
    assert spec.pack_weight_byte([-128], "int8") == 0x80
    assert spec.pack_weight_byte([-8, 7], "int4") == 0x78          # lane 0 in the low nibble
    assert spec.pack_weight_byte([1, -2, 0, -1], "int2") == 0b11_00_10_01
    assert spec.pack_weight_byte([1, -1, 0, 1], "ternary") == 0b01_00_11_01
    # Ternary 0b10 is not emitted and reads as 0; in int2 it is -2.
    assert spec.unpack_weight_byte(0b10101010, "ternary") == [0, 0, 0, 0]
    assert spec.unpack_weight_byte(0b10101010, "int2") == [-2, -2, -2, -2]


@pytest.mark.parametrize("mode,bad", [("int4", [8]), ("int2", [-3]), ("ternary", [-2]), ("int8", [128]),
                                      ("int4", [0, 0, 0])])
def test_pack_rejects_out_of_range(mode, bad):
    with pytest.raises(ValueError, match="weight|holds"):
        spec.pack_weight_byte(bad, mode)


def test_mode_codes_and_errors():
    assert [spec.MODES[m] for m in MODES] == [0, 1, 2, 3]
    assert not any(spec.is_defined_mode(c) for c in range(4, 1 << spec.MODE_BITS))
    with pytest.raises(ValueError, match="mode must be one of 'int8', 'int4', 'int2', 'ternary'"):
        spec.mode_code("int3")


def test_cmd_and_result_words_round_trip():
    rng = random.Random(5)
    for _ in range(200):
        kw = {"mode": rng.randrange(8), "beats": rng.randint(1, 1 << 10), "act_unsigned": rng.random() < .5,
              "tile_sat": rng.random() < .5}
        word = spec.pack_cmd(**kw, count_bits=10)
        assert spec.unpack_cmd(word, 10) == kw
        vals = [rng.randint(-(1 << 23), (1 << 23) - 1) for _ in range(3)]
        f = {"overflow": rng.random() < .5, "row": rng.randrange(5), "last": rng.random() < .5}
        word = spec.pack_res(vals, rows=5, acc_width=24, **f)
        assert spec.unpack_res(word, rows=5, cols=3, acc_width=24) == {"values": vals, **f}
    with pytest.raises(ValueError, match="beats must be an integer from 1 to 1024, not 0"):
        spec.pack_cmd(mode="int8", beats=0, count_bits=10)


def test_cmd_field_positions():
    # mode [2:0], act_unsigned [3], tile_sat [4], beats_m1 from bit 5.
    assert spec.pack_cmd(mode=5, beats=3, act_unsigned=True, tile_sat=False) == 5 | 8 | (2 << 5)
    assert spec.pack_cmd(mode="int4", beats=1, tile_sat=True) == 1 | 16


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tile_sat", [False, True])
def test_numpy_gemm_equals_stepwise_spec(mode, tile_sat):
    rng = np.random.default_rng(spec.MODES[mode] * 2 + tile_sat)
    for k, acc_width, unsigned in [(1, 17, False), (37, 17, True), (70, 18, False), (100, 24, True)]:
        x = random_acts(rng, (3, k), unsigned=unsigned)
        w = random_weights(rng, (4, k), mode)
        y, ovf = ref_gemm(x, w, mode, acc_width=acc_width, tile_sat=tile_sat, tile_k=8, tile_bits=6)
        for i in range(3):
            for j in range(4):
                assert (y[i, j], ovf[i, j]) == spec.ref_dot(x[i], w[j], mode, acc_width=acc_width,
                                                           tile_sat=tile_sat, tile_k=8, tile_bits=6)


def test_wide_accumulator_is_plain_matmul():
    rng = np.random.default_rng(0)
    x = random_acts(rng, (5, 64), unsigned=True)
    w = random_weights(rng, (6, 64), "int8")
    y, ovf = ref_gemm(x, w, "int8", acc_width=32)
    assert (y == x @ w.T).all() and not ovf.any()


def test_saturation_is_per_beat_and_sticky_flag():
    # 5 beats of -128*-128 in a 17-bit accumulator (rail 65535).
    y, ovf = ref_gemm([[-128] * 5], [[-128] * 5], "int8", acc_width=17)
    assert y[0, 0] == 65535 and ovf[0, 0]          # 5 * 16384 = 81920 clamps to 2**16 - 1
    # Leaves the rail on an opposite-signed beat; the flag stays.
    y, ovf = ref_gemm([[-128] * 5 + [127]], [[-128] * 5 + [-128]], "int8", acc_width=17)
    assert y[0, 0] == 65535 - 127 * 128 and ovf[0, 0]
    y, ovf = ref_gemm([[255] * 5], [[-128] * 5], "int8", acc_width=17)
    assert y[0, 0] == -65536 and ovf[0, 0]
    # A beat sum is exact before the clamp: int4 lanes 255*7 + 255*(-8) never saturate mid-beat.
    y, ovf = ref_gemm([[255, 255]], [[7, -8]], "int4", acc_width=17)
    assert y[0, 0] == -255 and not ovf.any()


def test_tile_saturation_corner_cases():
    # Groups of 32 int4 products, clamped to [-127, 127] each, then accumulated.
    k = 32 * 3 + 5                                   # K not a multiple of tile_k: a short last group
    x = np.full((1, k), 100)
    w = np.zeros((1, k), dtype=np.int64)
    w[0, :32] = 7                                    # +22400 -> +127
    w[0, 32:64] = -8                                 # -25600 -> -127
    w[0, 64:96] = 1                                  # +3200 -> +127
    w[0, 96:] = -1                                   # -500 (short group) -> -127
    y, ovf = ref_gemm(x, w, "int4", acc_width=24, tile_sat=True)
    assert y[0, 0] == 127 - 127 + 127 - 127 and not ovf.any()
    # Groups just inside the range are not clamped; one above is.
    x = np.ones((1, 64), dtype=np.int64) * 127
    w = np.zeros((1, 64), dtype=np.int64)
    w[0, 0] = 1                                      # group 0: 127 (exactly the rail)
    w[0, 32] = -1
    w[0, 33] = -1                                    # group 1: -254 -> -127
    y, _ = ref_gemm(x, w, "int4", tile_sat=True)
    assert y[0, 0] == 0
    # Unsigned activations 0..15 and signed 4-bit weights, as HDQT uses them.
    rng = np.random.default_rng(3)
    x = rng.integers(0, 16, (4, 96))
    w = rng.integers(-7, 8, (5, 96))
    y, _ = ref_gemm(x, w, "int4", tile_sat=True)
    expect = sum(np.clip(x[:, g:g + 32] @ w[:, g:g + 32].T, -127, 127) for g in range(0, 96, 32))
    assert (y == expect).all()
    # The group is in products, so int8 (1 lane) and int2 (4 lanes) cut groups at the same k.
    x = rng.integers(-128, 128, (2, 40))
    w = rng.integers(-2, 2, (3, 40))
    for mode in ("int8", "int2"):
        y, _ = ref_gemm(x, w, mode, tile_sat=True, tile_k=16)
        expect = sum(np.clip(x[:, g:g + 16] @ w[:, g:g + 16].T, -127, 127) for g in range(0, 40, 16))
        assert (y == expect).all()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_weights(mode, per_channel):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 50)) * np.linspace(0.1, 2, 6)[:, None]
    q, s = quantize_weights(w, mode, per_channel=per_channel)
    lo, hi = spec.WEIGHT_RANGE[spec.MODES[mode]]
    assert q.dtype == np.int64 and q.min() >= lo and q.max() <= hi
    s = np.asarray(s)[:, None] if per_channel else s
    err = np.abs(q * s - w).mean() / np.abs(w).mean()
    assert err < {"int8": 0.03, "int4": 0.3, "int2": 0.6, "ternary": 0.6}[mode]
    if mode in ("int8", "int4"):
        assert (np.abs(q).max(axis=1) == hi).all() if per_channel else np.abs(q).max() == hi
    zero_q, zero_s = quantize_weights(np.zeros((2, 4)), mode, per_channel=per_channel)
    assert (zero_q == 0).all() and np.all(np.asarray(zero_s) == 1.0)


def test_quantize_acts():
    x = np.array([[0.0, 0.5, 1.0, 2.0]])
    q, s = quantize_acts(x, unsigned=True)
    assert q.tolist() == [[0, 64, 128, 255]] and s == 2.0 / 255
    q, s = quantize_acts(-x)
    assert q.tolist() == [[0, -32, -64, -127]]
    with pytest.raises(ValueError, match="non-negative"):
        quantize_acts(-x, unsigned=True)
    assert quantize_acts(np.zeros((2, 2)))[0].tolist() == [[0, 0], [0, 0]]


def test_gemm_tiles_cover_the_product():
    rng = np.random.default_rng(2)
    x = random_acts(rng, (7, 9))
    w = random_weights(rng, (5, 9), "int2")
    tiles = gemm_tiles(x, w, "int2", rows=4, cols=4, acc_width=24)
    assert len(tiles) == 2 * 2
    y = np.zeros((8, 8), dtype=np.int64)
    for t in tiles:
        y[t["m0"]:t["m0"] + 4, t["n0"]:t["n0"] + 4] = t["y"]
        assert len(t["act"]) == len(t["wgt"]) == spec.beats_for_k(9, "int2") == 3
        assert spec.unpack_cmd(t["cmd"])["beats"] == 3
    assert (y[:7, :5] == x @ w.T).all()
