"""The vectorized host codec (sim.huffman.fast) against the golden reference: the same table words and
data beats from the encoder, the same output values, block error bits and sticky errors from the
decoder, on random tensors, corner cases and corrupt streams."""

import random

import numpy as np
import pytest

from hw.huffman import spec
from sim.huffman import fast as f
from sim.huffman import golden as g
from sim.huffman.fuzz import fuzz_stream


def assert_same_encoding(values, **kw):
    tables, beats, stats = g.encode_stream([int(v) for v in values], **kw)
    ftables, stream, fstats = f.encode_fast(np.asarray(values), **kw)
    assert ftables == tables
    assert f.to_beats(stream) == beats
    assert fstats == stats
    return tables, beats, stream


def assert_same_decoding(stream, tables, **kw):
    ref, errors = g.ref_decode(f.to_beats(stream), tables, **kw)
    values, blocks, ferrors = f.decode_fast(stream, tables, **kw)
    assert ferrors == errors
    assert f.blocks_as_ref(values, blocks, kw["n_lanes"]) == ref
    return ref, errors


def tensor(rng, kind, n):
    if kind == "laplace":
        return np.clip(np.round(rng.laplace(0, rng.uniform(0.5, 30), n)), -128, 127).astype(np.int64) & 0xFF
    if kind == "gauss4":
        return np.clip(np.round(rng.normal(0, 2, n)), -8, 7).astype(np.int64) & 0xF
    if kind == "uniform":
        return rng.integers(0, 256, n)
    fib = np.array([1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181, 6765])
    return np.concatenate([np.arange(20), rng.choice(20, n, p=fib / fib.sum())])   # needs the limit


@pytest.mark.parametrize("seed", range(8))
def test_random_tensors_encode_and_decode_like_the_reference(seed):
    rng = np.random.default_rng(seed)
    kind = ["laplace", "gauss4", "uniform", "fibonacci"][seed % 4]
    n_lanes = [1, 2, 3, 4][seed // 2 % 4]
    max_len = [8, 12, 16, 9][seed % 4]
    raw_bits = 0 if seed == 5 else 8
    values = tensor(rng, kind, int(rng.integers(1, 2500)))
    tables, beats, stream = assert_same_encoding(values, n_lanes=n_lanes, block_n=int(rng.integers(1, 400)),
                                                 max_len=max_len, raw_bits=raw_bits, allow_raw=seed != 6)
    ref, errors = assert_same_decoding(stream, tables, n_lanes=n_lanes, max_len=max_len, raw_bits=raw_bits)
    assert errors == 0
    assert [v for b in ref for t in b["values"] for v in t][:len(values)] == values.tolist()


@pytest.mark.parametrize("values", [[7], [3] * 50, list(range(256)), [0, 255] * 40, [255] * 3 + [1]],
                         ids=["one", "one-symbol", "all-symbols", "two", "odd"])
@pytest.mark.parametrize("n_lanes", [1, 3])
def test_corner_cases(values, n_lanes):
    for max_len in (8, 16):
        for allow_raw in (True, False):
            tables, _, stream = assert_same_encoding(values, n_lanes=n_lanes, block_n=5, max_len=max_len,
                                                     allow_raw=allow_raw)
            assert_same_decoding(stream, tables, n_lanes=n_lanes, max_len=max_len, raw_bits=8)


@pytest.mark.parametrize("mode,r,ebits,raw_bits", [(spec.MODE_EXP, 8, 8, 8), (spec.MODE_EXP, 4, 4, 4),
                                                   (spec.MODE_INT, 4, 0, 4), (spec.MODE_INT, 8, 0, 8)])
def test_modes_with_raw_bits(mode, r, ebits, raw_bits):
    rng = np.random.default_rng(r + ebits)
    if mode == spec.MODE_EXP:
        w = rng.normal(0, 0.05, 3000).astype(np.float32)
        exp4 = np.clip(7 - rng.geometric(0.5, 3000), 1, 14)
        values = (w.view(np.uint32) >> np.uint32(16)).astype(np.int64) if ebits == 8 else \
            rng.integers(0, 2, 3000) << 7 | exp4 << 3 | rng.integers(0, 8, 3000)
    else:
        values = rng.integers(0, 1 << r, 3000) | np.clip(rng.geometric(0.6, 3000) - 1, 0, 3) << r
    tables, _, stream = assert_same_encoding(values, n_lanes=2, block_n=700, max_len=12, mode=mode, r=r,
                                             ebits=ebits, raw_bits=raw_bits)
    assert tables
    assert_same_decoding(stream, tables, n_lanes=2, max_len=12, raw_bits=raw_bits)


@pytest.mark.parametrize("n_lanes", [1, 2])
def test_corrupt_streams_decode_like_the_reference(n_lanes):
    rng = random.Random(n_lanes)
    table = g.build_table([rng.randrange(12) for _ in range(200)] + list(range(12)), 8)
    words = spec.serialize_table(*table, 8)
    beats, kinds, _ = fuzz_stream(n_lanes, 400, n_lanes=n_lanes, max_len=8, table=table)
    stream = f.from_beats(beats, n_lanes)
    ref, errors = assert_same_decoding(stream, [words], n_lanes=n_lanes, max_len=8, raw_bits=8)
    assert errors & spec.ERR_HEADER and errors & spec.ERR_CRC and errors & spec.ERR_TRUNC
    assert set(kinds) == {"flip", "cut", "field"}
    # cut anywhere (the decoder waits for a block whose payload never ends), a bad table, a junk beat
    for cut in (1, 5, len(beats) // 2, len(beats) - 1):
        assert_same_decoding(f.Stream(stream.words[:cut], stream.first[:cut]), [words], n_lanes=n_lanes,
                             max_len=8, raw_bits=8)
    cut_header = f.Stream(np.concatenate([stream.words[:2], stream.words[:1]]), np.array([True, False, True]))
    _, errors = assert_same_decoding(cut_header, [words], n_lanes=n_lanes, max_len=8, raw_bits=8)
    assert errors == spec.ERR_HEADER
    bad = list(words)
    bad[2] ^= 1
    junk = f.Stream(np.concatenate([stream.words[:1], stream.words]), np.concatenate([[False], stream.first]))
    _, errors = assert_same_decoding(junk, [bad, words], n_lanes=n_lanes, max_len=8, raw_bits=8)
    assert errors & spec.ERR_TABLE


def test_flipped_payload_bit_is_a_crc_error():
    rng = np.random.default_rng(3)
    values = tensor(rng, "laplace", 2000)
    tables, _, stream = assert_same_encoding(values, block_n=500, max_len=12)
    bad = f.Stream(stream.words.copy(), stream.first)
    bad.words[-1, 0] ^= 0x8000
    ref, errors = assert_same_decoding(bad, tables, n_lanes=1, max_len=12, raw_bits=8)
    assert errors & spec.ERR_CRC and ref[-1]["err"] and not ref[0]["err"]


@pytest.mark.parametrize("max_len,n_lanes", [(8, 1), (9, 2), (12, 3)])
def test_escape_streams_encode_and_decode_like_the_reference(max_len, n_lanes):
    rng = np.random.default_rng(max_len)
    values = tensor(rng, "laplace", 4000)
    kw = {"n_lanes": n_lanes, "max_len": max_len}
    tables, _, stream = assert_same_encoding(values, block_n=900, escape=True, **kw)
    assert spec.ESCAPE in spec.parse_table(tables[0], max_len, escape=True)[1]
    ref, errors = assert_same_decoding(stream, tables, raw_bits=8, escape=True, **kw)
    assert errors == 0
    _, errors = assert_same_decoding(stream, tables, raw_bits=8, **kw)
    assert errors == spec.ERR_TABLE


def test_corrupt_escape_streams_decode_like_the_reference():
    """Every bit flip of a small escape-coded block, and its bit length cut by 1..12 bits (header CRC
    recomputed: the last escape's symbol bits run past the lane)."""
    values = [0, 0, 1, 0, 200, 0, 1, 0, 2, 0, 0, 77, 1, 0, 0, 0, 3, 0, 0, 250] * 3
    tables, beats, stream = assert_same_encoding(values, block_n=60, max_len=8, escape=True)
    assert spec.ESCAPE in spec.parse_table(tables[0], 8, escape=True)[1]
    kw = {"n_lanes": 1, "max_len": 8, "raw_bits": 8, "escape": True}
    for row in range(len(beats)):
        for bit in range(16):
            bad = f.Stream(stream.words.copy(), stream.first)
            bad.words[row, 0] ^= 1 << bit
            assert_same_decoding(bad, tables, **kw)
    hb = spec.header_beats(1)
    seen = 0
    for cut in range(1, 13):
        bad = f.Stream(stream.words.copy(), stream.first)
        bad.words[0, 0] -= cut
        bad.words[hb - 1, 0] = spec.crc16(bad.words[:hb - 1, 0].tolist())
        _, errors = assert_same_decoding(bad, tables, **kw)
        seen |= errors
    assert seen & spec.ERR_TRUNC
