"""HuffmanDecoder RTL in the Amaranth simulator, against the golden reference decoder."""

import random

import pytest
from amaranth.sim import Simulator

from hw.huffman import spec
from hw.huffman.decoder import HuffmanDecoder
from sim.huffman import golden as g
from sim.huffman.fuzz import fuzz_stream
from sim.huffman.harness import group_blocks, run_decoder
from sim.runner import cocotb_testcases, run_cocotb
from sim.streams import stream_put


def check_against_golden(dut, beats, tables, *, stall=0.0, seed=0, clear_at=None, max_cycles=None):
    """Run the RTL, compare every output beat, block error bit and the sticky flags with the golden
    (``max_cycles``: :func:`~sim.huffman.harness.run_decoder`'s limit, default its own)."""
    ref, errors = g.ref_decode(beats, tables, n_lanes=dut.format_lanes, max_len=dut.max_len,
                               raw_bits=dut.raw_bits, escape=dut.escape, chain=dut.chain)
    ref = split_beats(ref, dut.lanes)
    n_beats = sum(len(b["values"]) for b in ref)
    res = run_decoder(dut, beats, tables, expect_beats=n_beats, stall_in=stall, stall_out=stall, seed=seed,
                      clear_at=clear_at, max_cycles=max_cycles)
    assert res["finished"], "decoder hung"
    assert res["extra"] == 0, "decoder produced more beats than the golden model"
    got = group_blocks(res["beats"])
    assert len(got) == len(ref)
    for i, (a, b) in enumerate(zip(got, ref, strict=True)):
        assert a == b, f"block {i}"
    assert res["errors"] == errors
    assert res["symbols"] == n_beats * dut.lanes
    assert res["blocks"] == len(ref)
    assert res["err_blocks"] == sum(b["err"] for b in ref)
    return res, ref


def split_beats(ref, n):
    """Golden blocks (beats of ``format_lanes`` values) as the decoder outputs them: beats of ``n``
    values (hardware lanes), in block order (with two contexts: format lanes 0..n-1, then n..2n-1)."""
    return [dict(b, values=[tuple(t[i:i + n]) for t in b["values"] for i in range(0, len(t), n)])
            for b in ref]


def gauss_int8(rng, n, sigma):
    return [max(-128, min(127, round(rng.gauss(0, sigma)))) & 0xFF for _ in range(n)]


def fib_values(count):
    """Skewed Fibonacci-like frequencies over 20 symbols: the optimal code needs the length limit."""
    fib = [1, 1]
    while len(fib) < 20:
        fib.append(fib[-1] + fib[-2])
    pool = [s for s, f in enumerate(fib) for _ in range(f)]
    rng = random.Random(count)
    return list(range(20)) + [rng.choice(pool) for _ in range(count - 20)]


@pytest.mark.parametrize("lanes,max_len,raw_bits,data,contexts,impl", [
    (1, 12, 8, "gauss", 1, "comparator"),
    (2, 8, 8, "fibonacci", 1, "comparator"),
    (4, 8, 0, "gauss", 1, "comparator"),
    (1, 16, 8, "gauss", 2, "comparator"),
    (1, 8, 8, "fibonacci", 2, "comparator"),
    (2, 12, 0, "gauss", 2, "comparator"),
    (2, 8, 8, "fibonacci", 1, "table"),
    (1, 12, 8, "gauss", 1, "table"),
    (1, 8, 8, "fibonacci", 2, "table"),
    (2, 12, 8, "gauss", 2, "table"),
])
def test_round_trip_with_stalls(lanes, max_len, raw_bits, data, contexts, impl):
    rng = random.Random(lanes)
    f = lanes * contexts                                   # format lanes
    values = gauss_int8(rng, 96 * f, 5) if data == "gauss" else fib_values(96 * f)
    tables, beats, stats = g.encode_stream(values, n_lanes=f, block_n=24, max_len=max_len,
                                           raw_bits=raw_bits)
    if data == "fibonacci":
        assert (tables[0][0] >> 8) & 0x1F == max_len          # the code hits the length limit
    dut = HuffmanDecoder(max_len=max_len, lanes=lanes, raw_bits=raw_bits, fifo_depth=8, contexts=contexts,
                         impl=impl)
    res, ref = check_against_golden(dut, beats, g.table_stream(tables), stall=0.3, seed=lanes)
    decoded = [v for b in ref for t in b["values"] for v in t]
    assert decoded[:len(values)] == values
    assert res["errors"] == 0


#: the decoder variants: (contexts, impl)
VARIANTS = [(1, "comparator"), (2, "comparator"), (1, "table"), (2, "table")]


@pytest.mark.parametrize("contexts,impl", VARIANTS)
def test_table_switches_modes_and_bypass(contexts, impl):
    """Three tables (double-buffered: table 2 overwrites table 0's bank), INT/EXP/RAW blocks, 2 format
    lanes (2 hardware lanes, or 1 serving both)."""
    rng = random.Random(7)
    n_lanes, max_len = 2, 12
    beats, tables, expected = [], [], []
    # table 0: int8 weights
    v0 = gauss_int8(rng, 64, 3)
    t0 = g.build_table(v0, max_len)
    # table 1: BF16-like exponents (EXP mode, 8 exponent bits, sign + 7 mantissa bits raw)
    v1 = [rng.randrange(2) << 15 | (120 + min(7, int(rng.expovariate(1.0)))) << 7 | rng.randrange(128)
          for _ in range(48)]
    t1 = g.build_table([(v >> 7) & 0xFF for v in v1], max_len)
    # table 2: a skewed int4 set
    v2 = [rng.choice([0, 0, 0, 1, 15, 2, 14]) for _ in range(40)]
    t2 = g.build_table(v2, max_len)
    tables = [spec.serialize_table(*t, max_len) for t in (t0, t1, t2)]
    plan = [(v0[:32], spec.MODE_INT, 0, 0, 0, t0), (v0[32:], spec.MODE_INT, 0, 0, 0, t0),
            (v1[:24], spec.MODE_EXP, 8, 8, 1, t1),
            ([rng.randrange(256) for _ in range(10)], spec.MODE_RAW, 8, 0, 0, None),   # bypass keeps table 1
            (v1[24:], spec.MODE_EXP, 8, 8, 1, t1),
            (v2, spec.MODE_INT, 0, 0, 0, t2)]
    for values, mode, r, ebits, parity, table in plan:
        b, _ = g.encode_block(values, n_lanes=n_lanes, mode=mode, r=r, ebits=ebits, parity=parity,
                              table=table)
        beats += b
        expected.append(values)
    dut = HuffmanDecoder(max_len=max_len, lanes=n_lanes // contexts, raw_bits=8, fifo_depth=8,
                         contexts=contexts, impl=impl)
    res, ref = check_against_golden(dut, beats, g.table_stream(tables), stall=0.2, seed=3)
    assert [[v for t in b["values"] for v in t] for b in ref] == expected
    assert res["errors"] == 0


def long_code_table(max_len, rng):
    """A table whose codes reach every length class of the table lane: a chain (one code of each
    length 1..L-1, two of length L) or, at random for L >= 10, 256 symbols at lengths 6, 8, 10 and L
    (an incomplete code: some windows are invalid)."""
    if max_len < 10 or rng.random() < 0.5:
        lengths = {s: s + 1 for s in range(max_len - 1)}
        lengths.update({max_len - 1: max_len, max_len: max_len})
    else:
        syms = rng.sample(range(256), 256)
        plan = [6] * 16 + [8] * 64 + [10] * 128 + [max_len] * 48
        lengths = dict(zip(syms, plan, strict=True))
    return spec.table_from_lengths(lengths, max_len)


@pytest.mark.parametrize("max_len,raw_bits,contexts", [(8, 8, 1), (12, 8, 1), (12, 0, 1), (16, 4, 1),
                                                      (12, 8, 2), (16, 4, 2)])
def test_table_impl_long_codes(max_len, raw_bits, contexts):
    """The table lane on codes of every length (short ones from the lookup table, long ones from
    the comparators), INT blocks with and without the raw field and EXP blocks, four tables through
    the two banks, random stalls (two format lanes: two hardware lanes, or one with two contexts)."""
    rng = random.Random(max_len + raw_bits)
    beats, tables = [], []
    for t in range(4):
        table = long_code_table(max_len, rng)
        tables.append(spec.serialize_table(*table, max_len))
        syms = table[1]
        for _ in range(2):
            r = rng.choice((0, raw_bits)) if raw_bits else 0
            mode = spec.MODE_EXP if r and rng.random() < 0.3 else spec.MODE_INT
            values = [rng.choice(syms) << r | rng.randrange(1 << r) for _ in range(2 * rng.randrange(5, 40))]
            if mode == spec.MODE_EXP:       # value = sign | symbol | mantissa (ebits 8)
                values = [(v & 1) << (8 + r - 1) | (v >> r) << (r - 1) | (v >> 1) & ((1 << (r - 1)) - 1)
                          for v in values]
            ebits = 8 if mode == spec.MODE_EXP else 0
            beats += g.encode_block(values, n_lanes=2, mode=mode, r=r, ebits=ebits, parity=t % 2,
                                    table=table)[0]
    dut = HuffmanDecoder(max_len=max_len, lanes=2 // contexts, raw_bits=raw_bits, fifo_depth=8,
                         contexts=contexts, impl="table")
    res, ref = check_against_golden(dut, beats, g.table_stream(tables), stall=0.3, seed=max_len)
    assert res["errors"] == 0 and not any(b["err"] for b in ref)


# tables that are not prefix codes (the CRC is right): three 1-bit codes (Kraft sum 3/2, over at
# the first length), and one 1-bit code plus 129 codes of length 8 (over only at the last length)
BAD_TABLES = {
    "first_length": [spec.TABLE_MARK << 13 | 1 << 8 | 2, 3, 0, 1, 2],
    "last_length": [spec.TABLE_MARK << 13 | 8 << 8 | 129, 1, 0, 0, 0, 0, 0, 0, 129, *range(130)],
}


@pytest.mark.parametrize("contexts,impl", VARIANTS)
@pytest.mark.parametrize("which", sorted(BAD_TABLES))
def test_bad_table_is_flagged_and_next_table_decodes(which, contexts, impl):
    rng = random.Random(2)
    max_len = 8
    values = [rng.randrange(6) for _ in range(24)]
    good = g.build_table(values, max_len)
    words = spec.serialize_table(*good, max_len)
    bad = list(BAD_TABLES[which])
    bad.append(spec.crc16(bad))
    assert spec.check_table_words(bad, max_len) is None
    with pytest.raises(ValueError, match="not a prefix code"):
        spec.parse_table(bad, max_len)
    blocks = g.encode_block(values, n_lanes=contexts, mode=spec.MODE_INT, parity=0, table=good)[0]
    blocks += g.encode_block(values, n_lanes=contexts, mode=spec.MODE_INT, parity=1, table=good)[0]
    dut = HuffmanDecoder(max_len=max_len, lanes=1, raw_bits=4, fifo_depth=4, contexts=contexts, impl=impl)
    res, ref = check_against_golden(dut, blocks, g.table_stream([bad, words]))
    assert [b["err"] for b in ref] == [True, False]
    assert ref[0]["values"] == [(0,)] * len(values)
    assert [v for t in ref[1]["values"] for v in t] == values
    assert res["errors"] == spec.ERR_TABLE


def fuzz_check(count, n_lanes, seed, contexts=1, stall=0.0, impl="comparator", header_regs="shift",
               header_crc="beat", **kw):
    rng = random.Random(seed)
    max_len = 8
    table = g.build_table([rng.randrange(12) for _ in range(200)] + list(range(12)), max_len)
    tables = g.table_stream([spec.serialize_table(*table, max_len)])
    beats, kinds, goods = fuzz_stream(seed, count, n_lanes=n_lanes, max_len=max_len, table=table)
    dut = HuffmanDecoder(max_len=max_len, lanes=n_lanes // contexts, raw_bits=8, fifo_depth=4,
                         contexts=contexts, impl=impl, header_regs=header_regs, header_crc=header_crc, **kw)
    res, ref = check_against_golden(dut, beats, tables, seed=seed, stall=stall)
    # every corrupt block is flagged (err on its last beat) or dropped (bad header); every good block
    # after it decodes exactly
    assert [[v for t in b["values"] for v in t] for b in ref if not b["err"]] == goods
    assert res["errors"] & spec.ERR_HEADER and res["errors"] & spec.ERR_CRC and res["errors"] & spec.ERR_TRUNC
    # bounded: no gap between output beats longer than a corrupt block plus a good block's input
    # (at full rate; stalls on the streams stretch the gaps by their own random amounts)
    out_gap = max(b - a for a, b in zip(res["out_cycles"], res["out_cycles"][1:], strict=False))
    print(f"longest gap between output beats: {out_gap} cycles")
    assert stall or out_gap <= 80
    return kinds


def test_fuzzed_corrupt_streams():
    kinds = fuzz_check(300, 1, seed=1)
    assert set(kinds) == {"flip", "cut", "field"}


def test_fuzzed_corrupt_streams_table_lane():
    """The table lane (two lanes) on the fuzzed stream, with stalls."""
    kinds = fuzz_check(200, 2, seed=3, stall=0.2, impl="table")
    assert set(kinds) == {"flip", "cut", "field"}


def test_fuzzed_corrupt_streams_table_lane_two_contexts():
    """The two-context table lane (one hardware lane, two format lanes) on the fuzzed stream, with
    stalls: every corrupt block flagged, every good block after it exact, no hang."""
    kinds = fuzz_check(150, 2, seed=4, contexts=2, stall=0.2, impl="table")
    assert set(kinds) == {"flip", "cut", "field"}


@pytest.mark.parametrize("stall", [0.0, 0.2])
def test_fuzzed_corrupt_streams_table_lane_stage1_compare_a1(stall):
    """The two-context table lane with its stage-1 bit-count compares in stage A1
    (``stage1_compare="a1"``) on the fuzzed stream (truncated symbols, count mismatches, bad CRCs):
    every corrupt block flagged, every good block exact, as with the compares in stage 1."""
    kinds = fuzz_check(150, 2, seed=8, contexts=2, stall=stall, impl="table", stage1_compare="a1")
    assert set(kinds) == {"flip", "cut", "field"}


def test_stage1_compare_is_checked():
    with pytest.raises(ValueError, match="stage1_compare"):
        HuffmanDecoder(impl="table", contexts=2, stage1_compare="early")
    with pytest.raises(ValueError, match="stage1_compare"):
        HuffmanDecoder(impl="comparator", contexts=2, stage1_compare="a1")


def test_window_compare_is_checked():
    with pytest.raises(ValueError, match="window_compare"):
        HuffmanDecoder(impl="table", contexts=2, window_compare="c")
    with pytest.raises(ValueError, match="window_compare"):
        HuffmanDecoder(impl="table", contexts=1, window_compare="a")


@pytest.mark.parametrize("n_lanes,contexts,impl",
                         [(1, 1, "comparator"), (2, 2, "table"), (4, 1, "comparator")])
def test_fuzzed_corrupt_streams_header_fields(n_lanes, contexts, impl):
    """The block parser's header kept as its fields (``header_regs="fields"``, the UP5K GEMM
    group's decoder) on the fuzzed stream with stalls (bit flips, cut headers, bad fields): every
    corrupt block flagged, every good block exact, as with the shift register."""
    kinds = fuzz_check(150, n_lanes, seed=5, contexts=contexts, stall=0.2, impl=impl, header_regs="fields")
    assert set(kinds) == {"flip", "cut", "field"}


@pytest.mark.parametrize("n_lanes,contexts,impl,header_regs,stall",
                         [(2, 2, "table", "fields", 0.2), (2, 2, "table", "fields", 0.0),
                          (4, 1, "comparator", "shift", 0.2), (3, 1, "comparator", "fields", 0.0)])
def test_fuzzed_corrupt_streams_header_crc_word(n_lanes, contexts, impl, header_regs, stall):
    """The header CRC one word per cycle (``header_crc="word"``, the UP5K GEMM group's decoder: a
    header beat taken in its ``n_lanes``-th cycle) on the fuzzed stream (bit flips, cut headers,
    bad fields), with and without stalls: every corrupt block flagged, every good block exact."""
    kinds = fuzz_check(150, n_lanes, seed=6, contexts=contexts, stall=stall, impl=impl,
                       header_regs=header_regs, header_crc="word")
    assert set(kinds) == {"flip", "cut", "field"}


def test_fuzzed_corrupt_streams_two_contexts():
    """Corruptions hit either context's format lane (or both): the block is flagged, the next good
    block decodes, no hang."""
    kinds = fuzz_check(200, 2, seed=2, contexts=2)
    assert set(kinds) == {"flip", "cut", "field"}


@pytest.mark.parametrize("bad_lane", [0, 1])
def test_corrupt_context_flags_its_block(bad_lane):
    """One format lane's payload corrupted (runs past its bit length, and a CRC mismatch): with two contexts
    on one hardware lane the block is flagged whichever context held it, and the next block decodes."""
    max_len = 8
    rng = random.Random(11 + bad_lane)
    values = [rng.randrange(5) for _ in range(60)]
    table = g.build_table(values, max_len)
    tables = g.table_stream([spec.serialize_table(*table, max_len)])
    first, _ = g.encode_block(values, n_lanes=2, mode=spec.MODE_INT, table=table)
    second, _ = g.encode_block(values[::-1], n_lanes=2, mode=spec.MODE_INT, table=table)
    h = spec.header_beats(2)
    words = list(first[h].words)
    words[bad_lane] = 0xFFFF                 # all-ones: the longest code, 16 bits of it
    first = first[:h] + [g.Beat(words, first[h].first)] + first[h + 1:]
    dut = HuffmanDecoder(max_len=max_len, lanes=1, raw_bits=8, fifo_depth=4, contexts=2)
    res, ref = check_against_golden(dut, first + second, tables, stall=0.3, seed=bad_lane)
    assert [b["err"] for b in ref] == [True, False]
    assert [v for t in ref[1]["values"] for v in t] == values[::-1]
    assert res["errors"] & spec.ERR_CRC and res["errors"] & (spec.ERR_TRUNC | spec.ERR_INVALID)
    assert res["err_blocks"] == 1


@pytest.mark.parametrize("n_lanes,contexts", [(1, 1), (2, 2)])
def test_fuzzed_corrupt_streams_with_stalls(n_lanes, contexts):
    """The fuzz with random stalls: valid gaps on the inputs, ready withdrawn on the output."""
    kinds = fuzz_check(150, n_lanes, seed=30 + n_lanes, contexts=contexts, stall=0.3)
    assert set(kinds) == {"flip", "cut", "field"}


@pytest.mark.slow
@pytest.mark.parametrize("n_lanes,count,contexts,stall", [(1, 10_000, 1, 0.0), (2, 2_000, 1, 0.0),
                                                          (2, 10_000, 2, 0.0), (1, 10_000, 1, 0.3),
                                                          (2, 10_000, 2, 0.3)])
def test_fuzzed_corrupt_streams_10k(n_lanes, count, contexts, stall):
    fuzz_check(count, n_lanes, seed=100 + n_lanes, contexts=contexts, stall=stall)


def test_fuzz_reference_flags_every_case():
    """The golden model flags each corrupt block on its own, and the good block after it survives."""
    rng = random.Random(5)
    table = g.build_table([rng.randrange(12) for _ in range(200)] + list(range(12)), 8)
    tables = g.table_stream([spec.serialize_table(*table, 8)])
    beats, kinds, goods, cases = fuzz_stream(9, 3000, n_lanes=2, max_len=8, table=table, cases=True)
    for case, good in zip(cases, goods, strict=True):
        ref, errors = g.ref_decode(case, tables, n_lanes=2, max_len=8, raw_bits=8)
        assert errors
        assert [[v for t in b["values"] for v in t] for b in ref if not b["err"]] == [good]


def test_clear_command_recovers():
    rng = random.Random(4)
    values = [rng.randrange(8) for _ in range(40)]
    tables, beats, _ = g.encode_stream(values, n_lanes=1, block_n=40, max_len=8)
    dut = HuffmanDecoder(max_len=8, lanes=1, raw_bits=0, fifo_depth=4)
    garbage = [g.Beat([rng.randrange(1 << 16)], rng.random() < 0.3) for _ in range(10)]
    # garbage raises flags; a clear pulse in the middle of the quiet gap resets flags and counters
    res = run_decoder(dut, garbage, [], expect_beats=0, idle_cycles=40, clear_at=30)
    assert res["errors"] == 0 and res["beats_in"] == 0
    res = run_decoder(dut, garbage, [], expect_beats=0, idle_cycles=40)
    assert res["errors"] & spec.ERR_HEADER



@pytest.mark.parametrize("contexts,impl", VARIANTS)
def test_one_symbol_per_cycle_at_the_length_limit(contexts, impl):
    """Every code 12 bits long (uniform over 4096 > 256 symbols is impossible, so: 256 symbols with
    lengths 8 and a Kraft-filling tail at 12): the lane still fires every cycle of a long block."""
    max_len = 12
    lengths = {s: 8 for s in range(255)}
    lengths[255] = 12
    counts, symbols = spec.table_from_lengths(lengths, max_len)
    rng = random.Random(6)
    values = [255 if rng.random() < 0.5 else rng.randrange(255) for _ in range(1200)]
    beats, _ = g.encode_block(values, n_lanes=contexts, mode=spec.MODE_INT, table=(counts, symbols))
    dut = HuffmanDecoder(max_len=max_len, lanes=1, raw_bits=0, fifo_depth=16, contexts=contexts, impl=impl)
    tables = g.table_stream([spec.serialize_table(counts, symbols, max_len)])
    res, _ = check_against_golden(dut, beats, tables)
    assert res["fires"] == 1200
    # first to last output beat: no bubble (two contexts: the C-slow lane's own start-up)
    assert res["cycles"] <= 1200 + (2 if contexts == 1 else 7)


COCOTB_PARAMS = {"max_len": 12, "lanes": 2, "raw_bits": 8, "fifo_depth": 64}   # the block defaults


@pytest.mark.parametrize("testcase", cocotb_testcases("sim.huffman.tb_huffman"))
def test_huffman_cocotb(testcase):
    run_cocotb(HuffmanDecoder(**COCOTB_PARAMS), toplevel="huffman_decoder",
               test_module="sim.huffman.tb_huffman", testcase=testcase, params=COCOTB_PARAMS)


# The two-context (C-slow) decoder as the UP5K row synthesizes it: one hardware lane, two format lanes.
COCOTB_PARAMS_C2 = {"max_len": 8, "lanes": 1, "raw_bits": 8, "fifo_depth": 64, "contexts": 2}


@pytest.mark.parametrize("testcase", cocotb_testcases("sim.huffman.tb_huffman"))
def test_huffman_cocotb_two_contexts(testcase):
    run_cocotb(HuffmanDecoder(**COCOTB_PARAMS_C2), toplevel="huffman_decoder_c2",
               test_module="sim.huffman.tb_huffman", testcase=testcase, params=COCOTB_PARAMS_C2)


# Escape codes on the one-cycle decoder at the UP5K's length limit; and the compact table lane as
# the UP5K would carry it (one lane, L = 12, escape codes).
COCOTB_PARAMS_ESC = {"max_len": 8, "lanes": 2, "raw_bits": 8, "fifo_depth": 64, "escape": True}
COCOTB_PARAMS_TABLE = {"max_len": 12, "lanes": 1, "raw_bits": 8, "fifo_depth": 64, "escape": True,
                       "impl": "table"}


# (the escape case by default; the others, which the escape decoder runs on plain tables, with -m slow;
# the table lane's Verilator build only with -m slow: the Amaranth tests cover it by default)
@pytest.mark.parametrize("toplevel,params", [
    ("huffman_decoder_esc", COCOTB_PARAMS_ESC),
    pytest.param("huffman_decoder_table", COCOTB_PARAMS_TABLE, marks=pytest.mark.slow)])
@pytest.mark.parametrize("testcase", [
    t if t == "test_escape_codes" else pytest.param(t, marks=pytest.mark.slow)
    for t in cocotb_testcases("sim.huffman.tb_huffman")])
def test_huffman_cocotb_escape(testcase, toplevel, params):
    run_cocotb(HuffmanDecoder(**params), toplevel=toplevel, test_module="sim.huffman.tb_huffman",
               testcase=testcase, params=params)


def _chained_stream(values, n_lanes):
    """Table pairs and beats of ``values`` as one unit of chained blocks: format lane 0's values
    cut to 0..3 (short codes) against the others' so that the lanes drift, and drift at most 2
    words (many blocks)."""
    values = [v % 4 if i % n_lanes == 0 else v for i, v in enumerate(values)]
    table = g.build_table(values, 12)
    beats, _ = g.chain_blocks(values, n_lanes=n_lanes, table=table, max_drift=2)
    assert sum(b.first for b in beats) > 4
    return [spec.serialize_table(*table, 12)], beats


@pytest.mark.parametrize("contexts,impl,chain,header_regs,header_crc",
                         [(*v, False, "shift", "beat") for v in VARIANTS]
                         + [(2, "comparator", True, "shift", "beat"), (2, "table", True, "fields", "beat"),
                            (2, "table", True, "fields", "word")])
def test_clear_in_the_middle_of_a_block_then_the_next_stream_is_exact(contexts, impl, chain, header_regs,
                                                                      header_crc):
    """``i_clear`` while a block is being decoded (its table loaded, half its beats in): whatever
    the decoder held is dropped, and a new table and stream sent after the clear decode exactly,
    with no value of the first stream among them and no flag left over. With ``chain``: the
    streams are units of chained blocks, cleared in the middle of one (the unit marks restart)."""
    rng = random.Random(12)
    dut = HuffmanDecoder(max_len=12, lanes=1, raw_bits=0, fifo_depth=16, contexts=contexts, impl=impl,
                         chain=chain, header_regs=header_regs, header_crc=header_crc)
    fl = dut.format_lanes
    values_a = [rng.randrange(40) for _ in range(800)]
    values_b = [min(255, int(rng.expovariate(0.08))) for _ in range(600)]
    if chain:
        tables_a, beats_a = _chained_stream(values_a, fl)
        tables_b, beats_b = _chained_stream(values_b, fl)
    else:
        tables_a, beats_a, _ = g.encode_stream(values_a, n_lanes=fl, block_n=200, max_len=12, allow_raw=False)
        tables_b, beats_b, _ = g.encode_stream(values_b, n_lanes=fl, block_n=150, max_len=12, allow_raw=False)
    tables_a, tables_b = g.table_stream(tables_a), g.table_stream(tables_b)
    ref, errors = g.ref_decode(beats_b, tables_b, n_lanes=fl, max_len=12, raw_bits=0, chain=chain)
    ref = split_beats(ref, dut.lanes)
    n_b = sum(len(b["values"]) for b in ref)
    out, marks = [], {}

    async def consumer(ctx):            # always ready, until the inputs' testbench is done
        ctx.set(dut.o_data.ready, 1)
        while "errors" not in marks:
            *_, valid, payload = await ctx.tick().sample(dut.o_data.valid, dut.o_data.payload)
            if valid:
                out.append(([int(x) for x in payload.data], int(payload.first), int(payload.last),
                             int(payload.err)))

    async def inputs(ctx):
        for w, first in tables_a:
            await stream_put(ctx, dut.i_table, {"data": w, "first": int(first)})
        for b in beats_a[:len(beats_a) // 2]:
            await stream_put(ctx, dut.i_data, {"data": list(b[0]), "first": int(b[1])})
        await ctx.tick().repeat(6)
        marks["before"] = len(out)
        ctx.set(dut.i_clear, 1)
        await ctx.tick()
        ctx.set(dut.i_clear, 0)
        await ctx.tick()            # the parts are held in this cycle: what leaves is the old stream's
        await ctx.tick()
        marks["split"] = len(out)
        for w, first in tables_b:
            await stream_put(ctx, dut.i_table, {"data": w, "first": int(first)})
        for b in beats_b:
            await stream_put(ctx, dut.i_data, {"data": list(b[0]), "first": int(b[1])})
        for _ in range(20 * n_b):
            if len(out) >= marks["split"] + n_b:
                break
            await ctx.tick()
        await ctx.tick().repeat(64)
        marks["errors"] = ctx.get(dut.o_errors)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(consumer)
    sim.add_testbench(inputs)
    sim.run()
    got = group_blocks(out[marks["split"]:])
    assert marks["before"] > 0, marks                   # the first stream was being decoded
    # the marks restart: the new stream's first beat opens a block (unit), one last mark per one
    assert out[marks["split"]][1] == 1 and out[-1][2] == 1
    assert sum(b[1] for b in out[marks["split"]:]) == sum(b[2] for b in out[marks["split"]:]) == len(ref)
    assert len(got) == len(ref) and all(a == b for a, b in zip(got, ref)), (len(got), len(ref), marks)
    assert marks["errors"] == errors == 0
