"""Escape codes in the RTL decoder (``escape=True``), bit-exact against ``ref_decode(escape=True)``:
random and corner streams, truncated escape bits, corrupt payloads, bad escape tables, throughput."""

import random

import pytest

from hw.huffman import spec
from hw.huffman.decoder import HuffmanDecoder
from sim.huffman import golden as g
from tests.test_huffman_rtl import check_against_golden, gauss_int8


def skewed_int8(rng, n):
    """Narrow int8 weights (sigma 3) with 15 % uniform outliers: a short code for the common
    values, one escape for the many rare ones."""
    return [rng.randrange(256) if rng.random() < 0.15 else gauss_int8(rng, 1, 3)[0] for _ in range(n)]


def _table_words(table, max_len):
    return g.table_stream([spec.serialize_table(*table, max_len, escape=True)])


def _set_bitlen(beats, n_lanes, lane, delta):
    """The block's header with lane ``lane``'s bit length changed by ``delta`` (header CRC redone)."""
    h = spec.header_beats(n_lanes)
    words = [w for b in beats[:h] for w in b.words]
    bitlen = words[lane] | words[n_lanes + lane] << 16
    bitlen += delta
    words[lane], words[n_lanes + lane] = bitlen & 0xFFFF, bitlen >> 16
    words[-1] = spec.crc16(words[:-1])
    return [g.Beat(words[i:i + n_lanes], i == 0) for i in range(0, len(words), n_lanes)] + beats[h:]


#: the decoder variants: (contexts, impl)
VARIANTS = [(1, "comparator"), (2, "comparator"), (1, "table"), (2, "table")]


@pytest.mark.parametrize("lanes,max_len,raw_bits,r,contexts,impl",
                         [(1, 8, 8, 0, 1, "comparator"), (2, 8, 8, 8, 1, "comparator"),
                          (2, 9, 0, 0, 1, "comparator"), (1, 12, 8, 8, 1, "comparator"),
                          (1, 8, 8, 0, 2, "comparator"), (1, 8, 8, 8, 2, "comparator"),
                          (2, 12, 0, 0, 2, "comparator"),
                          (1, 12, 8, 8, 1, "table"), (2, 8, 8, 0, 1, "table"), (1, 16, 8, 8, 1, "table")])
def test_escape_round_trip_with_stalls(lanes, max_len, raw_bits, r, contexts, impl):
    """Wide int8 weights at a short length limit: the table has an escape, most symbols are coded,
    the rare ones escaped; with and without a raw field."""
    rng = random.Random(lanes * 100 + max_len)
    f = lanes * contexts                                   # format lanes
    syms = skewed_int8(rng, 120 * f)
    values = [s << r | rng.randrange(1 << r) for s in syms]
    tables, beats, _ = g.encode_stream(values, n_lanes=f, block_n=40, max_len=max_len, r=r,
                                       raw_bits=raw_bits, allow_raw=False, escape=True)
    counts, symbols = spec.parse_table(tables[0], max_len, escape=True)
    assert spec.ESCAPE in symbols and len(symbols) > 2
    dut = HuffmanDecoder(max_len=max_len, lanes=lanes, raw_bits=raw_bits, fifo_depth=8, escape=True,
                         contexts=contexts, impl=impl)
    res, ref = check_against_golden(dut, beats, g.table_stream(tables), stall=0.3, seed=lanes)
    assert [v for b in ref for t in b["values"] for v in t][:len(values)] == values
    assert res["errors"] == 0


@pytest.mark.parametrize("contexts,impl", VARIANTS)
def test_escape_as_the_longest_code_and_escape_only_table(contexts, impl):
    """The escape as the last code of length L (all-ones window); then a table holding only the
    escape (code ``0``: every symbol is 1 + 8 bits), an EXP block, a RAW block between them."""
    max_len = 8
    lengths = {s: 2 for s in range(3)}
    lengths.update({s: 8 for s in range(3, 66)})
    lengths[spec.ESCAPE] = 8
    table = spec.table_from_lengths(lengths, max_len, escape=True)
    assert spec.canonical_codes(*table)[spec.ESCAPE] == (0xFF, 8)
    rng = random.Random(3)
    values = [rng.choice((0, 1, 2, 70, 255, 100, 5, 65)) for _ in range(60)]
    only = ([1], [spec.ESCAPE])
    exp_values = [rng.randrange(1 << 12) for _ in range(40)]
    b1, _ = g.encode_block(values, n_lanes=2, mode=spec.MODE_INT, table=table, parity=0)
    b2, _ = g.encode_block([rng.randrange(256) for _ in range(8)], n_lanes=2, mode=spec.MODE_RAW, r=8)
    b3, _ = g.encode_block(exp_values, n_lanes=2, mode=spec.MODE_EXP, r=8, ebits=4, table=only, parity=1)
    b4, _ = g.encode_block(values, n_lanes=2, mode=spec.MODE_INT, r=8, table=only, parity=1)
    tables = g.table_stream([spec.serialize_table(*table, max_len, escape=True),
                             spec.serialize_table(*only, max_len, escape=True)])
    dut = HuffmanDecoder(max_len=max_len, lanes=2 // contexts, raw_bits=8, fifo_depth=4, escape=True,
                         contexts=contexts, impl=impl)
    res, ref = check_against_golden(dut, b1 + b2 + b3 + b4, tables, stall=0.2, seed=3)
    assert [v for t in ref[0]["values"] for v in t] == values
    assert [v for t in ref[2]["values"] for v in t] == exp_values
    assert res["errors"] == 0


@pytest.mark.parametrize("contexts,impl", VARIANTS)
@pytest.mark.parametrize("delta,error", [(-1, spec.ERR_TRUNC), (-5, spec.ERR_TRUNC), (-8, spec.ERR_TRUNC),
                                         (3, spec.ERR_MISMATCH)])
def test_truncated_escape_bits(delta, error, contexts, impl):
    """A lane whose bit length ends inside its last escaped symbol's 8 bits (or after it: a count
    mismatch): the block is flagged, its values are the golden model's, the next block decodes."""
    max_len = 8
    table = ([1], [spec.ESCAPE])                   # every symbol 9 bits
    values = [17, 200, 3, 99]
    bad, _ = g.encode_block(values, n_lanes=contexts, mode=spec.MODE_INT, table=table)
    good, _ = g.encode_block(values[::-1], n_lanes=contexts, mode=spec.MODE_INT, table=table)
    beats = _set_bitlen(bad, contexts, contexts - 1, delta) + good
    dut = HuffmanDecoder(max_len=max_len, lanes=1, raw_bits=8, fifo_depth=4, escape=True, contexts=contexts,
                         impl=impl)
    res, ref = check_against_golden(dut, beats, _table_words(table, max_len), seed=4)
    assert [b["err"] for b in ref] == [True, False]
    assert res["errors"] == error
    assert [v for t in ref[1]["values"] for v in t] == values[::-1]


@pytest.mark.parametrize("contexts,impl", VARIANTS)
def test_corrupt_escape_payloads_match_the_golden_model(contexts, impl):
    """Random bit flips in escape-coded payloads (codes, escaped symbols, raw bits): invalid codes,
    truncation, count mismatches and CRC errors exactly as the golden model has them, every good
    block after a corrupt one intact."""
    max_len = 8
    rng = random.Random(8)
    pool = skewed_int8(rng, 400)
    # an incomplete code (Kraft sum 3/4), so flipped bits also make invalid codes
    table = spec.table_from_lengths({0: 2, 1: 2, 255: 3, 2: 4, spec.ESCAPE: 4}, max_len, escape=True)
    beats = []
    for _ in range(40):
        vals = [rng.choice(pool) for _ in range(2 * rng.randrange(1, 6))]
        r = rng.choice((0, 8))
        vals = [v << r | rng.randrange(1 << r) for v in vals]
        block, _ = g.encode_block(vals, n_lanes=2, mode=spec.MODE_INT, r=r, table=table)
        h = spec.header_beats(2)
        for _ in range(rng.randrange(1, 3)):
            j = rng.randrange(h, len(block))
            words = list(block[j].words)
            words[rng.randrange(2)] ^= 1 << rng.randrange(16)
            block[j] = g.Beat(words, False)
        beats += block + g.encode_block(vals, n_lanes=2, mode=spec.MODE_INT, r=r, table=table)[0]
    dut = HuffmanDecoder(max_len=max_len, lanes=2 // contexts, raw_bits=8, fifo_depth=4, escape=True,
                         contexts=contexts, impl=impl)
    res, ref = check_against_golden(dut, beats, _table_words(table, max_len), stall=0.2, seed=8)
    assert all(not b["err"] for b in ref[1::2])
    assert res["errors"] & spec.ERR_CRC and res["errors"] & spec.ERR_INVALID
    assert res["errors"] & (spec.ERR_TRUNC | spec.ERR_MISMATCH)


def _bad_escape_tables(max_len):
    good = spec.table_from_lengths({0: 1, 1: 2, spec.ESCAPE: 2}, max_len, escape=True)   # [1, 2]: 0 1 ESC
    counts, symbols = good
    return {
        "escape_not_last_of_its_length": (counts, [0, spec.ESCAPE, 1]),
        "two_escapes": ([1, 2], [0, spec.ESCAPE, spec.ESCAPE]),
        "symbol_257": (counts, [0, 1, 257]),
    }, good


def _raw_table(counts, symbols):
    words = [spec.TABLE_MARK << 13 | len(counts) << 8 | (len(symbols) - 1)] + list(counts) + list(symbols)
    return words + [spec.crc16(words)]


@pytest.mark.parametrize("impl", ["comparator", "table"])
@pytest.mark.parametrize("which", ["escape_not_last_of_its_length", "two_escapes", "symbol_257",
                                   "escape_without_the_option"])
def test_bad_escape_table_is_flagged_and_next_table_decodes(which, impl):
    max_len = 8
    bad, good = _bad_escape_tables(max_len)
    escape = which != "escape_without_the_option"
    first = _raw_table(*bad[which]) if escape else _raw_table(*good)
    assert spec.check_table_words(first, max_len, escape) is None
    values = [0, 1, 7, 200, 0, 0]
    b1, _ = g.encode_block(values, n_lanes=1, mode=spec.MODE_INT, table=good, parity=0)
    b2, _ = g.encode_block(values, n_lanes=1, mode=spec.MODE_INT, table=good, parity=1)
    dut = HuffmanDecoder(max_len=max_len, lanes=1, raw_bits=8, fifo_depth=4, escape=escape, impl=impl)
    second = _raw_table(*(good if escape else ([1, 1], [0, 1])))
    if not escape:
        b2, _ = g.encode_block([0, 1, 1, 0, 0, 0], n_lanes=1, mode=spec.MODE_INT, table=([1, 1], [0, 1]),
                               parity=1)
    res, ref = check_against_golden(dut, b1 + b2, g.table_stream([first, second]), seed=9)
    assert [b["err"] for b in ref] == [True, False]
    assert res["errors"] == spec.ERR_TABLE


def test_escape_placement_rule_in_the_format():
    """The format's table check (shared by the golden model and the loader's contract) takes the
    escape only once and only as the last symbol of its length."""
    bad, good = _bad_escape_tables(8)
    assert spec.check_table_words(_raw_table(*good), 8, escape=True) == (list(good[0]), list(good[1]))
    for counts, symbols in bad.values():
        assert spec.check_table_words(_raw_table(counts, symbols), 8, escape=True) is None
    with pytest.raises(ValueError, match="escape must be the last symbol of its length"):
        spec.validate_table(*bad["escape_not_last_of_its_length"], 8, escape=True)


@pytest.mark.parametrize("contexts,impl", VARIANTS)
def test_one_symbol_per_cycle_with_escapes_at_the_input_rate(contexts, impl):
    """L = 8 with half the symbols escaped at the longest length (8 + 8 = 16 bits, the input rate):
    the lane still fires every cycle of a long block (one hardware lane, one or two contexts)."""
    max_len = 8
    lengths = {s: 8 for s in range(255)}
    lengths[spec.ESCAPE] = 8
    table = spec.table_from_lengths(lengths, max_len, escape=True)
    rng = random.Random(6)
    values = [255 if rng.random() < 0.5 else rng.randrange(255) for _ in range(1200)]
    beats, _ = g.encode_block(values, n_lanes=contexts, mode=spec.MODE_INT, table=table)
    dut = HuffmanDecoder(max_len=max_len, lanes=1, raw_bits=0, fifo_depth=16, escape=True, contexts=contexts,
                         impl=impl)
    res, _ = check_against_golden(dut, beats, _table_words(table, max_len))
    assert res["fires"] == 1200
    # (two contexts: the C-slow lane's own start-up, 1207 cycles on plain 16-bit codes too; the
    # two-context table lane's stage 2 is a cycle earlier, ``_early_stage2``: its first value
    # leaves a cycle earlier, its last one in the same cycle, the block's end being set by its
    # release: 1208 from the first output to the last, the run as long)
    assert res["cycles"] <= 1200 + (2 if contexts == 1 else 8 if impl == "table" else 7)


def test_escape_parameter_is_checked():
    with pytest.raises(ValueError, match="escape must be True or False"):
        HuffmanDecoder(escape=1)


def test_compact_build_round_trip_with_stalls():
    """The compact UP5K build (``impl="table"``, two contexts, L = 12, escape codes, R = 8, 16-bit
    status counters): escaped and coded symbols with a raw field, stalls; outputs, flags and
    counters equal the golden model's, the counters are 16 bits wide."""
    rng = random.Random(1612)
    syms = skewed_int8(rng, 240)
    values = [s << 8 | rng.randrange(256) for s in syms]
    tables, beats, _ = g.encode_stream(values, n_lanes=2, block_n=40, max_len=12, r=8, raw_bits=8,
                                       allow_raw=False, escape=True)
    assert spec.ESCAPE in spec.parse_table(tables[0], 12, escape=True)[1]
    dut = HuffmanDecoder(max_len=12, lanes=1, raw_bits=8, fifo_depth=8, escape=True, contexts=2,
                         impl="table", counter_bits=16)
    assert dut.counter_bits == 16 and len(dut.o_symbols) == len(dut.o_fires) == 16
    res, ref = check_against_golden(dut, beats, g.table_stream(tables), stall=0.3, seed=3)
    assert res["errors"] == 0
    assert [v for b in ref for t in b["values"] for v in t][:len(values)] == values
    assert res["beats_in"] == len(beats)


def test_counter_bits_is_checked():
    with pytest.raises(ValueError, match="counter_bits"):
        HuffmanDecoder(counter_bits=8)
    with pytest.raises(TypeError, match="counter_bits"):
        HuffmanDecoder(counter_bits="16")


@pytest.mark.parametrize("seed,fill_step,stage1_compare", [(1, "escape_last", "a1"), (2, "escape_last", "a1"),
    (1, "candidates", "late"), (2, "candidates", "late"), (1, "subtract", "late"), (2, "subtract", "late"),
    (1, "candidates", "a1"), (2, "candidates", "a1")])
@pytest.mark.parametrize("window_compare", ["b", "a"])
def test_gemm_decoder_round_trip_with_stalls(seed, fill_step, stage1_compare, window_compare):
    """The iCEBreaker GEMM group's decoder as its handler builds it (table lanes, two contexts,
    L = 12, escape codes, no raw bits, chained blocks, header fields, the header CRC one word per
    cycle, the escape checked by the filler with its mask from its length): escaped and coded
    symbols under two tables (both banks, a table switch), with stalls; outputs, flags and counters
    equal the golden model's. With either ``fill_step``, ``stage1_compare`` and ``window_compare``."""
    rng = random.Random(700 + seed)
    units = [skewed_int8(rng, 240), gauss_int8(rng, 160, 20)]
    tables, beats, values = [], [], []
    for parity, unit in enumerate(units):
        table = g.build_table(unit, 12, escape=True)
        assert spec.ESCAPE in table[1]
        tables.append(spec.serialize_table(*table, 12, escape=True))
        for i in range(0, len(unit), 80):
            beats += g.encode_block(unit[i:i + 80], n_lanes=2, mode=spec.MODE_INT, table=table,
                                    parity=parity)[0]
        values += unit
    dut = HuffmanDecoder(max_len=12, lanes=1, raw_bits=0, fifo_depth=8, escape=True, contexts=2,
                         impl="table", counter_bits=16, chain=True, header_regs="fields", header_crc="word",
                         escape_check="filler", fill_step=fill_step, stage1_compare=stage1_compare,
                         chain_pop="registered" if stage1_compare == "a1" else "direct",
                         window_compare=window_compare)
    res, ref = check_against_golden(dut, beats, g.table_stream(tables), stall=0.3, seed=seed)
    assert res["errors"] == 0
    assert [v for b in ref for t in b["values"] for v in t][:len(values)] == values


def test_gemm_decoder_rate_with_either_fill_step():
    """The GEMM group's decoder (L = 12, no raw bits) on a block with half the symbols escaped at
    8 + 8 bits, then one with every code at the length limit: the same output cycles with either
    ``fill_step`` (the fill after each step is the same), and at least 0.98 symbols per cycle on
    the 12-bit codes."""
    lengths = {s: 8 for s in range(255)}
    lengths[spec.ESCAPE] = 8
    table = spec.table_from_lengths(lengths, 12, escape=True)
    rng = random.Random(16)
    values = [255 if rng.random() < 0.5 else rng.randrange(255) for _ in range(1200)]
    beats, _ = g.encode_block(values, n_lanes=2, mode=spec.MODE_INT, table=table)
    long_table = spec.table_from_lengths({**{s: 8 for s in range(255)}, 255: 12}, 12)
    beats += g.encode_block([255] * 1200, n_lanes=2, mode=spec.MODE_INT, table=long_table, parity=1)[0]
    tables = g.table_stream([spec.serialize_table(*table, 12, escape=True),
                             spec.serialize_table(*long_table, 12)])
    outs = []
    for fill_step in ("candidates", "subtract", "escape_last"):
        dut = HuffmanDecoder(max_len=12, lanes=1, raw_bits=0, fifo_depth=8, escape=True, contexts=2,
                             impl="table", counter_bits=16, chain=True, header_regs="fields",
                             header_crc="word", escape_check="filler", fill_step=fill_step)
        res, _ = check_against_golden(dut, beats, tables)
        outs.append(res["out_cycles"])
    assert outs[0] == outs[1] == outs[2]
    # the second block (every code 12 bits): its 1200 values within 1200 / 0.98 cycles
    assert outs[0][-1] - outs[0][-1200] + 1 <= 1200 / 0.98


def test_fill_step_is_checked():
    with pytest.raises(ValueError, match="fill_step"):
        HuffmanDecoder(impl="table", contexts=2, fill_step="one")
    with pytest.raises(ValueError, match="fill_step"):
        HuffmanDecoder(impl="table", contexts=1, fill_step="subtract")
    with pytest.raises(ValueError, match="fill_step"):
        HuffmanDecoder(impl="table", contexts=2, fill_step="escape_last")
