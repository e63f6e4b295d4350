"""Compressed weights -> HuffmanDecoder -> WeightRepacker -> MacArray: the GEMM equals numpy."""

import numpy as np
import pytest

from hw.huffman.repack import WeightRepacker, weight_symbol_order
from hw.mac import spec as mac_spec
from sim.huffman.e2e import run_compressed_gemm
from sim.mac.golden import quantize_weights


def digits_layer1(mode):
    """First-layer weights of the digits MLP (16 of its 32 channels x 64 pixels), quantized per output
    channel, and 4 test images (one row block of the 4 x 4 array: 4 tiles)."""
    from sim.mac.demo import load_data, train_mlp
    xtr, ytr, xte, _ = load_data()
    w1, _, _, _ = train_mlp(xtr, ytr, epochs=40)
    q, _ = quantize_weights(w1, mode, per_channel=True)
    return xte[:4], q[:16]


@pytest.mark.parametrize("mode,lanes", [("int4", 2), pytest.param("ternary", 4, marks=pytest.mark.slow)])
def test_compressed_digits_weights_drive_gemm(mode, lanes):
    x, w = digits_layer1(mode)
    y, stats = run_compressed_gemm(x, w, mode, n_lanes=lanes, max_len=12, stall=0.2, seed=lanes)
    assert stats["errors"] == 0
    np.testing.assert_array_equal(y, x @ w.T)
    assert stats["coded_bits"] < stats["raw_bits"]          # the weights really went compressed


def test_pair_coded_int4_weights_drive_gemm():
    """int4 weights coded two at a time (one 8-bit symbol = the packed byte) reach the array intact."""
    x, w = digits_layer1("int4")
    y, stats = run_compressed_gemm(x, w, "int4", n_lanes=2, max_len=12, stall=0.2, seed=5, packed=True)
    assert stats["errors"] == 0
    np.testing.assert_array_equal(y, x @ w.T)
    assert stats["symbols"] * 2 == 16 * 64                   # one symbol per pair of weights
    assert stats["coded_bits"] < stats["raw_bits"]


def test_int8_weights_with_raw_blocks():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (4, 64))
    w = rng.permutation(np.arange(-128, 128)).reshape(4, 64)  # every int8 value once: nothing to gain
    y, stats = run_compressed_gemm(x, w, "int8", n_lanes=1, max_len=8, stall=0.3)
    np.testing.assert_array_equal(y, x @ w.T)
    assert stats["raw_blocks"] == 1


def test_symbol_order_matches_packing():
    rng = np.random.default_rng(1)
    for mode in mac_spec.MODES:
        lo, hi = mac_spec.WEIGHT_RANGE[mac_spec.MODES[mode]]
        cols = [list(rng.integers(lo, hi + 1, 9)) for _ in range(4)]
        _, _, wgts = mac_spec.tile_streams([[1] * 9], cols, mode)
        syms = weight_symbol_order(wgts, 4, mode)
        packed = weight_symbol_order(wgts, 4, mode, packed=True)
        n = mac_spec.lanes(mode)
        bits = mac_spec.WEIGHT_BITS[mac_spec.MODES[mode]]
        # beat j, column c, lane l holds weight cols[c][j*n + l] (0 past K)
        for j in range(len(wgts)):
            for c in range(4):
                for lane in range(n):
                    k = j * n + lane
                    want = cols[c][k] if k < 9 else 0
                    assert mac_spec.decode_lane(syms[(j * 4 + c) * n + lane], mode) == want
                    assert syms[(j * 4 + c) * n + lane] < 1 << bits
                    # packed: the byte of beat j, column c holds lane l's field at bits * l
                    field = (packed[j * 4 + c] >> (bits * lane)) & ((1 << bits) - 1)
                    assert field == syms[(j * 4 + c) * n + lane]


def test_repacker_bad_parameters():
    with pytest.raises(ValueError, match="cols must be a multiple of lanes"):
        WeightRepacker(lanes=4, cols=6)
    with pytest.raises(ValueError, match="cols must be an integer from 1 to 16, not 17"):
        WeightRepacker(lanes=1, cols=17)
