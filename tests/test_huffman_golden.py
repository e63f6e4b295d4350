"""Huffman format spec and golden encoder/decoder: round-trip properties on many distributions."""

import heapq
import math
import random
from collections import Counter

import pytest

from hw.huffman import spec
from sim.huffman import golden as g


def huffman_cost(freqs):
    """Total bits of an unrestricted Huffman code (the optimum without a length limit)."""
    heap = [w for w in freqs.values() if w > 0]
    if len(heap) == 1:
        return heap[0]
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        cost += a + b
        heapq.heappush(heap, a + b)
    return cost


def brute_force_limited_cost(weights, max_len):
    """Optimal length-limited cost by exhaustive search (tiny alphabets only)."""
    best = None
    ws = sorted(weights, reverse=True)

    def rec(i, prev, kraft, cost):
        nonlocal best
        if i == len(ws):
            if best is None or cost < best:
                best = cost
            return
        for length in range(prev, max_len + 1):       # non-decreasing lengths for decreasing weights
            k = kraft + 2.0 ** -length
            if k <= 1 + 1e-12:
                rec(i + 1, length, k, cost + ws[i] * length)

    rec(0, 1, 0.0, 0)
    return best


def distributions(rng):
    """(name, values) pairs covering the issue's list."""
    n = 3000
    yield "uniform8", [rng.randrange(256) for _ in range(n)]
    yield "uniform2", [rng.randrange(4) for _ in range(n)]
    yield "gauss_int8", [max(-128, min(127, round(rng.gauss(0, 12)))) & 0xFF for _ in range(n)]
    yield "laplace_int4", [max(-8, min(7, round(rng.expovariate(0.9) * rng.choice((-1, 1))))) & 0xF
                           for _ in range(n)]
    yield "one_symbol", [42] * 500
    fib = [1, 1]
    while len(fib) < 24:
        fib.append(fib[-1] + fib[-2])
    yield "fibonacci", [s for s, f in enumerate(fib) for _ in range(min(f, 3000))][:20000]


@pytest.mark.parametrize("max_len", [8, 12, 16])
def test_package_merge_is_optimal_and_limited(max_len):
    rng = random.Random(max_len)
    for trial in range(25):
        k = rng.randrange(2, 9)
        freqs = {s: rng.choice([1, 1, 2, 3, 50, 1000, 10 ** 5]) for s in range(k)}
        lengths = g.package_merge_lengths(freqs, max_len)
        assert set(lengths) == set(freqs)
        assert max(lengths.values()) <= max_len
        assert sum(2.0 ** -v for v in lengths.values()) <= 1
        cost = sum(freqs[s] * lengths[s] for s in freqs)
        assert cost == brute_force_limited_cost(list(freqs.values()), max_len), (trial, freqs)


def test_package_merge_hits_the_limit_on_fibonacci():
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    freqs = dict(enumerate(fib))
    for max_len in (8, 12, 16):
        lengths = g.package_merge_lengths(freqs, max_len)
        assert max(lengths.values()) == max_len
        assert sum(2.0 ** -v for v in lengths.values()) == 1.0
    # without a binding limit it is plain Huffman
    lengths = g.package_merge_lengths(dict(enumerate(fib[:12])), 16)
    assert sum(fib[s] * v for s, v in lengths.items()) == huffman_cost(dict(enumerate(fib[:12])))


def test_package_merge_matches_huffman_when_unconstrained():
    rng = random.Random(5)
    for _ in range(30):
        freqs = {s: rng.randrange(1, 1000) for s in range(rng.randrange(2, 200))}
        lengths = g.package_merge_lengths(freqs, 16)
        assert sum(freqs[s] * v for s, v in lengths.items()) == huffman_cost(freqs)


@pytest.mark.parametrize("n_lanes", [1, 2, 4])
@pytest.mark.parametrize("max_len", [8, 16])
def test_round_trip_distributions(n_lanes, max_len):
    rng = random.Random(n_lanes * 100 + max_len)
    for name, values in distributions(rng):
        if name == "fibonacci" and max_len == 8:
            values = values[:4000]
        tables, beats, stats = g.encode_stream(values, n_lanes=n_lanes, block_n=rng.choice([7, 64, 300]),
                                               max_len=max_len)
        out, errors = g.ref_decode(beats, tables, n_lanes=n_lanes, max_len=max_len, raw_bits=8)
        assert errors == 0, name
        assert not any(b["err"] for b in out)
        decoded = [v for b in out for beat in b["values"] for v in beat]
        assert decoded[:len(values)] == values, name
        assert len(decoded) - len(values) < n_lanes * 300
        # the raw fallback means a block never costs more than its raw bits
        assert stats["code_bits"] <= 8 * len(decoded)
        if name == "uniform8":
            assert stats["raw_blocks"] > 0


def test_coded_size_close_to_entropy():
    rng = random.Random(3)
    values = [max(-128, min(127, round(rng.gauss(0, 20)))) & 0xFF for _ in range(50000)]
    tables, beats, stats = g.encode_stream(values, n_lanes=1, block_n=50000, max_len=16)
    h = g.entropy_bits(values) * len(values)
    assert stats["code_bits"] <= 1.01 * h
    assert stats["code_bits"] >= h


@pytest.mark.parametrize("mode,r,ebits,width", [(spec.MODE_EXP, 8, 8, 16), (spec.MODE_EXP, 4, 4, 8),
                                                (spec.MODE_EXP, 3, 5, 8), (spec.MODE_INT, 4, 0, 12)])
def test_exponent_plus_raw_round_trip(mode, r, ebits, width):
    rng = random.Random(r)
    if mode == spec.MODE_EXP:
        # floats with a narrow exponent range, like trained weights
        values = []
        for _ in range(4000):
            e = max(1, min((1 << ebits) - 2, (1 << (ebits - 1)) - 1 - int(rng.expovariate(0.7))))
            values.append(rng.randrange(2) << (ebits + r - 1) | e << (r - 1) | rng.randrange(1 << (r - 1)))
    else:
        values = [rng.randrange(1 << width) & ~0xF00 | rng.choice([0, 1, 1, 2]) << 8 for _ in range(4000)]
    tables, beats, stats = g.encode_stream(values, n_lanes=2, block_n=500, max_len=12, mode=mode, r=r,
                                           ebits=ebits, raw_bits=r)
    out, errors = g.ref_decode(beats, tables, n_lanes=2, max_len=12, raw_bits=r)
    assert errors == 0
    decoded = [v for b in out for beat in b["values"] for v in beat][:len(values)]
    assert decoded == values
    assert stats["code_bits"] < len(values) * width


def test_table_serialization_round_trip():
    rng = random.Random(9)
    for _ in range(50):
        values = [rng.randrange(rng.randrange(1, 257)) for _ in range(rng.randrange(1, 3000))]
        max_len = rng.randrange(8, 17)
        counts, symbols = g.build_table(values, max_len)
        words = spec.serialize_table(counts, symbols, max_len)
        assert spec.parse_table(words, max_len) == (counts, symbols)
        assert spec.check_table_words(words, max_len) == (counts, symbols)
        assert spec.crc16(words) == 0
        codes = spec.canonical_codes(counts, symbols)
        # prefix-free
        strs = sorted(format(c, f"0{ln}b") for c, ln in codes.values())
        assert all(not b.startswith(a) for a, b in zip(strs, strs[1:], strict=False))


@pytest.mark.parametrize("counts,symbols,message", [
    ([2, 1], [1, 2, 3], "not a prefix code"),
    ([1, 1], [1, 2, 3], "counts sum to 2"),
    ([0] * 17 + [1], [1], "maxlen must be from 1 to 16"),
    ([1, 1], [1, 1], "distinct"),
    ([1, 1], [1, 300], "0 to 255"),
])
def test_bad_tables_raise(counts, symbols, message):
    with pytest.raises(ValueError, match=message):
        spec.serialize_table(counts, symbols, 16)


def test_more_symbols_than_alphabet_and_bad_max_len():
    with pytest.raises(ValueError, match="1 to 256 symbols"):
        spec.validate_table([0] * 8 + [257], list(range(257)), 16)
    for bad in (7, 17, "8", True):
        with pytest.raises(ValueError, match="max_len must be an integer from 8 to 16"):
            spec.check_max_len(bad)
    with pytest.raises(ValueError, match="max_len must be an integer from 8 to 16"):
        g.encode_stream([1, 2], max_len=20)
    with pytest.raises(ValueError, match="do not fit"):
        g.package_merge_lengths(dict.fromkeys(range(300), 1), 8)


def test_corruption_is_always_flagged_by_the_reference():
    """Every single-bit flip of a block and every truncation is flagged (or the block vanishes)."""
    rng = random.Random(11)
    values = [max(0, min(15, round(rng.gauss(8, 2)))) for _ in range(64)]
    tables, beats, _ = g.encode_stream(values, n_lanes=2, block_n=32, max_len=8, allow_raw=False)
    good, _ = g.ref_decode(beats, tables, n_lanes=2, max_len=8, raw_bits=8)
    tail, _ = g.encode_block(values[:16], n_lanes=2, mode=spec.MODE_INT, table=spec.parse_table(tables[0], 8))
    for pos in range(len(beats)):
        for lane in range(2):
            for bit in range(16):
                bad = list(beats)
                words = list(bad[pos].words)
                words[lane] ^= 1 << bit
                bad[pos] = g.Beat(words, bad[pos].first)
                out, errors = g.ref_decode(bad + tail, tables, n_lanes=2, max_len=8, raw_bits=8)
                assert errors != 0
                assert len(out) == 1 or out[0]["err"]
                assert out[-1]["values"][:8] == [tuple(values[i:i + 2]) for i in range(0, 16, 2)]
    for cut in range(1, len(beats)):
        out, errors = g.ref_decode(beats[:cut] + tail, tables, n_lanes=2, max_len=8, raw_bits=8)
        assert errors & (spec.ERR_TRUNC | spec.ERR_HEADER)
    assert Counter(v for b in good for t in b["values"] for v in t) == Counter(values)
    assert math.isclose(g.entropy_bits([0, 1]), 1.0)


def _escape_table_bits(lengths, freqs):
    """Exact bits of a code with escapes: codes, escaped symbols' raw bits, table words."""
    esc = sum(w for s, w in freqs.items() if s not in lengths)
    bits = sum(freqs.get(s, esc) * v for s, v in lengths.items())
    return bits + spec.ESCAPE_BITS * esc + spec.WORD * (2 + max(lengths.values()) + len(lengths))


def test_escape_choice_is_optimal_against_every_escaped_set():
    escapes = 0
    for seed in range(5):
        rng = random.Random(seed)
        freqs = {s: (rng.randrange(100, 200) if seed == 0 else max(1, int(rng.paretovariate(0.6))))
                 for s in rng.sample(range(256), 10)}
        best = None
        for mask in range(1 << len(freqs)):
            escaped = [s for i, s in enumerate(freqs) if mask >> i & 1]
            kept = {s: w for s, w in freqs.items() if s not in escaped}
            if escaped:
                kept[spec.ESCAPE] = sum(freqs[s] for s in escaped)
            cost = _escape_table_bits(g.package_merge_lengths(kept, 8), freqs)
            best = cost if best is None else min(best, cost)
        chosen = g.escape_lengths(freqs, 8)
        assert _escape_table_bits(chosen, freqs) == best, seed
        escapes += spec.ESCAPE in chosen
    assert 0 < escapes < 5                          # both outcomes are exercised


def test_escape_codes_round_trip_and_need_an_escape_decoder():
    rng = random.Random(5)
    values = [max(-128, min(127, round(rng.gauss(0, 30)))) & 0xFF for _ in range(6000)]
    tables, beats, stats = g.encode_stream(values, n_lanes=2, block_n=1500, max_len=8, escape=True)
    counts, symbols = spec.parse_table(tables[0], 8, escape=True)
    assert spec.ESCAPE in symbols and len(symbols) < len(set(values))
    out, errors = g.ref_decode(beats, tables, n_lanes=2, max_len=8, raw_bits=8, escape=True)
    assert errors == 0 and [v for b in out for t in b["values"] for v in t][:len(values)] == values
    plain = g.encode_stream(values, n_lanes=2, block_n=1500, max_len=8)[2]
    assert stats["code_bits"] + stats["table_bits"] < plain["code_bits"] + plain["table_bits"]
    out, errors = g.ref_decode(beats, tables, n_lanes=2, max_len=8, raw_bits=8)
    assert errors == spec.ERR_TABLE and all(b["err"] for b in out)
    with pytest.raises(ValueError, match="0 to 255"):
        spec.parse_table(tables[0], 8)
