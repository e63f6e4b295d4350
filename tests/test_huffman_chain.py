"""Chained blocks (``hw.huffman.spec`` *Chained blocks*): lane drift, the encoder that bounds it, and
the decoder with ``chain=True`` against the golden model.

A block whose lanes' word positions drift apart by more than the lane FIFOs hold stops the decoder
for good (shown below on the RTL); ``chain_blocks`` cuts a unit into blocks of bounded drift that a
``chain=True`` decoder outputs as one unit.
"""

import random

import pytest
from amaranth.sim import Simulator

from hw.huffman import spec
from hw.huffman.decoder import HuffmanDecoder
from sim.huffman import golden as g
from sim.streams import stream_offer
from tests.test_huffman_rtl import check_against_golden

MAX_LEN = 12
FIFO = 8


def skewed(n, lanes, seed=1):
    """``n`` beats of ``lanes`` values: lane 0 from four frequent symbols (2-bit codes), the others
    rare ones (long codes), so lane 0's words pile up in its FIFO while the others starve."""
    rng = random.Random(seed)
    return [rng.randrange(4) if k == 0 else rng.randrange(4, 200) for _ in range(n) for k in range(lanes)]


def skewed_table(values):
    return g.build_table(values + [0, 1, 2, 3] * 2 * len(values), MAX_LEN)


def table_pairs(table):
    return g.table_stream([spec.serialize_table(*table, MAX_LEN)])


def test_lane_drift_counts_words():
    assert spec.lane_drift([[16, 16], [1, 1]]) == 1          # words 1,2 against 1,1
    assert spec.lane_drift([[17], [1]]) == 1                 # 2 words against 1
    assert spec.lane_drift([[8, 8, 8, 8], [8, 8, 8, 8]]) == 0
    assert spec.lane_drift([[1] * 64, [9] * 64]) == 32      # 36 words against 4 at the end
    assert spec.max_drift(64) == 32


@pytest.mark.parametrize("lanes,max_drift", [(2, 2), (2, 4), (4, 7), (8, 32)])
def test_chain_blocks_bound_drift_and_round_trip(lanes, max_drift):
    values = skewed(300, lanes, seed=lanes)
    table = skewed_table(values)
    assert g.block_drift(values, n_lanes=lanes, table=table) > max_drift     # one block would not do
    beats, info = g.chain_blocks(values, n_lanes=lanes, table=table, max_drift=max_drift)
    assert info["blocks"] > 1 and info["drift"] <= max_drift
    headers = [spec.parse_header([w for b in beats[i:i + spec.header_beats(lanes)] for w in b.words],
                                 lanes, 0, chain=True) for i, b in enumerate(beats) if b.first]
    assert [h["cont"] for h in headers] == [True] * (len(headers) - 1) + [False]
    out, errors = g.ref_decode(beats, [spec.serialize_table(*table, MAX_LEN)], n_lanes=lanes,
                               max_len=MAX_LEN, raw_bits=0, chain=True)
    assert errors == 0 and len(out) == 1 and not out[0]["err"]
    assert [v for t in out[0]["values"] for v in t] == values
    # a decoder without chaining drops every continued block's header
    out, errors = g.ref_decode(beats, [spec.serialize_table(*table, MAX_LEN)], n_lanes=lanes,
                               max_len=MAX_LEN, raw_bits=0)
    assert errors == spec.ERR_HEADER and len(out) == 1


def test_chain_blocks_keep_a_unit_of_small_drift_whole():
    rng = random.Random(3)
    values = [rng.randrange(40) for _ in range(2 * 200)]
    table = g.build_table(values, MAX_LEN)
    beats, info = g.chain_blocks(values, n_lanes=2, table=table, max_drift=32)
    assert info["blocks"] == 1
    assert beats == g.encode_block(values, n_lanes=2, mode=spec.MODE_INT, table=table)[0]


@pytest.mark.parametrize("bad,exc", [(1, ValueError), (4.0, TypeError), (True, TypeError)])
def test_chain_blocks_bad_max_drift(bad, exc):
    with pytest.raises(exc, match="max_drift"):
        g.chain_blocks([1, 2], n_lanes=2, table=g.build_table([1, 2], MAX_LEN), max_drift=bad)


def run_for(dut, beats, tables, cycles):
    """Feed and drain ``dut`` (always ready) for ``cycles`` cycles: ``(output beats, beats taken)``."""
    state = {"out": 0, "taken": 0, "cycle": 0}

    async def clock(ctx):
        while True:
            await ctx.tick()
            state["cycle"] += 1

    def over():
        return state["cycle"] >= cycles

    async def data(ctx):
        for b in beats:
            if not await stream_offer(ctx, dut.i_data, {"data": list(b.words), "first": int(b.first)}, over):
                return
            state["taken"] += 1

    async def table(ctx):
        for w, first in tables:
            if not await stream_offer(ctx, dut.i_table, {"data": w, "first": int(first)}, over):
                return

    async def drain(ctx):
        ctx.set(dut.o_data.ready, 1)
        while not over():
            _, _, valid = await ctx.tick().sample(dut.o_data.valid)
            state["out"] += valid

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(clock, background=True)
    sim.add_testbench(data, background=True)
    sim.add_testbench(table, background=True)
    sim.add_testbench(drain)
    sim.run()
    return state["out"], state["taken"]


def test_unchained_block_of_large_drift_stops_the_decoder():
    """The bug chaining fixes, on the RTL: one block of drift 26 words with 8-word FIFOs never
    finishes (the consumer is always ready, 20 000 cycles for 64 output beats); the same values
    as chained blocks at ``max_drift(8)`` decode."""
    values = skewed(64, 2)
    table = skewed_table(values)
    beats, _ = g.encode_block(values, n_lanes=2, mode=spec.MODE_INT, table=table)
    assert g.block_drift(values, n_lanes=2, table=table) == 26
    dut = HuffmanDecoder(max_len=MAX_LEN, lanes=2, raw_bits=0, fifo_depth=FIFO, chain=True)
    out, taken = run_for(dut, beats, table_pairs(table), 20_000)
    assert out < 64 and taken < len(beats)
    chained, info = g.chain_blocks(values, n_lanes=2, table=table, max_drift=dut.max_drift)
    dut = HuffmanDecoder(max_len=MAX_LEN, lanes=2, raw_bits=0, fifo_depth=FIFO, chain=True)
    out, taken = run_for(dut, chained, table_pairs(table), 20_000)
    assert (out, taken) == (64, len(chained))


@pytest.mark.parametrize("lanes,contexts,impl,chain_pop", [
    (2, 1, "comparator", "direct"), (1, 2, "comparator", "direct"), (2, 2, "comparator", "direct"),
    (2, 1, "table", "direct"), (1, 2, "table", "direct"),
    (1, 2, "comparator", "registered"), (2, 2, "comparator", "registered"), (1, 2, "table", "registered"),
])
def test_chained_units_against_golden(lanes, contexts, impl, chain_pop):
    """Units of skewed values at the decoder's ``max_drift`` (many blocks each), a small unit of one
    block and a unit with a CRC error in a middle block (``err`` on the unit's last beat only), with
    random stalls: every beat, unit mark, error flag and counter as the golden model says."""
    f = lanes * contexts
    values = skewed(160, f, seed=f)
    table = skewed_table(values)
    dut = HuffmanDecoder(max_len=MAX_LEN, lanes=lanes, raw_bits=0, fifo_depth=FIFO, contexts=contexts,
                         impl=impl, chain=True, chain_pop=chain_pop)
    unit, info = g.chain_blocks(values, n_lanes=f, table=table, max_drift=dut.max_drift)
    assert info["blocks"] >= 4
    small, _ = g.chain_blocks([1, 2, 3, 0] * f, n_lanes=f, table=table, max_drift=dut.max_drift)
    bad = list(unit)
    starts = [i for i, b in enumerate(bad) if b.first]
    mid = starts[len(starts) // 2] + spec.header_beats(f)      # first payload beat of a middle block
    bad[mid] = g.Beat((bad[mid].words[0] ^ 1, *bad[mid].words[1:]), False)
    beats = unit + small + bad + small
    _, ref = check_against_golden(dut, beats, table_pairs(table), stall=0.3, seed=lanes + contexts)
    assert [u["err"] for u in ref] == [False, False, True, False]
    assert len(ref[0]["values"]) == len(values) // lanes


@pytest.mark.parametrize("impl,chain_pop", [("comparator", "direct"), ("comparator", "registered"),
                                             ("table", "registered")])
def test_units_of_one_beat_blocks_against_golden(impl, chain_pop):
    """Units of blocks of one symbol per format lane (two contexts): behind a stalling consumer the
    join takes their last beats two cycles apart, the closest a registered ``chain_pop`` allows
    (its flag FIFO's next head must be there by then)."""
    f = 2
    values = skewed(96, f, seed=7)
    table = skewed_table(values)
    dut = HuffmanDecoder(max_len=MAX_LEN, lanes=1, raw_bits=0, fifo_depth=FIFO, contexts=2, impl=impl,
                         chain=True, chain_pop=chain_pop)
    beats = []
    for start in range(0, len(values), 8 * f):          # units of 8 blocks
        unit = values[start:start + 8 * f]
        for i in range(0, len(unit), f):
            bb, _ = g.encode_block(unit[i:i + f], n_lanes=f, mode=spec.MODE_INT, table=table,
                                   cont=i + f < len(unit))
            beats += bb
    _, ref = check_against_golden(dut, beats, table_pairs(table), stall=0.6, seed=3)
    assert len(ref) == len(values) // (8 * f) and not any(u["err"] for u in ref)


@pytest.mark.parametrize("kw", [{"chain_pop": "late"}, {"chain_pop": "registered", "contexts": 1},
                                {"chain_pop": "registered", "contexts": 2, "chain": False}])
def test_chain_pop_bad_parameters(kw):
    p = {"max_len": MAX_LEN, "lanes": 1, "raw_bits": 0, "chain": True, **kw}
    with pytest.raises(ValueError, match="chain_pop"):
        HuffmanDecoder(**p)


def test_unchained_decoder_drops_continued_blocks():
    """A decoder built without chaining flags a continued block's header and drops the block, as
    the golden model does (a stream with chaining never decodes silently wrong there)."""
    values = skewed(80, 2)
    table = skewed_table(values)
    unit, info = g.chain_blocks(values, n_lanes=2, table=table, max_drift=4)
    assert info["blocks"] > 1
    dut = HuffmanDecoder(max_len=MAX_LEN, lanes=2, raw_bits=0, fifo_depth=FIFO)
    res, ref = check_against_golden(dut, unit, table_pairs(table))
    assert res["errors"] == spec.ERR_HEADER and len(ref) == 1


# Independent blocks of bounded drift: the general encoders (encode_stream, encode_fast). ----------

def pruned_lanes(n, lanes, seed=1):
    """``n`` beats of int8 weights of ``lanes`` columns where the even columns are pruned (all 0)
    and the odd ones full range: a weight matrix with pruned input channels, row by row."""
    rng = random.Random(seed)
    return [0 if k % 2 == 0 else max(-128, min(127, round(rng.gauss(0, 20)))) & 0xFF
            for _ in range(n) for k in range(lanes)]


def stream_headers(beats, lanes, raw_bits=8):
    """Every block header of a stream (``parse_header``; ``None`` for a bad one)."""
    hb = spec.header_beats(lanes)
    return [spec.parse_header([w for b in beats[i:i + hb] for w in b.words], lanes, raw_bits)
            for i, b in enumerate(beats) if b.first]


@pytest.mark.parametrize("lanes,block_n,max_drift,escape", [(2, 1024, 4, False), (4, 300, 7, True),
                                                            (8, 5000, 32, False)])
def test_encode_stream_max_drift_cuts_independent_blocks(lanes, block_n, max_drift, escape):
    values = pruned_lanes(2000, lanes, seed=lanes)
    tables, plain, st0 = g.encode_stream(values, n_lanes=lanes, block_n=block_n, max_len=MAX_LEN,
                                         escape=escape, allow_raw=False)
    table = spec.check_table_words(tables[0], MAX_LEN, escape)
    per_lane = max(1, -(-len(values) // (lanes * st0["blocks"])))
    padded = values + [0] * (per_lane * lanes * st0["blocks"] - len(values))
    worst = max(g.block_drift(padded[i:i + per_lane * lanes], n_lanes=lanes, table=table)
                for i in range(0, len(padded), per_lane * lanes))
    assert worst > max_drift                      # the plain stream's blocks would stop such a decoder
    tables2, beats, st = g.encode_stream(values, n_lanes=lanes, block_n=block_n, max_len=MAX_LEN,
                                         escape=escape, allow_raw=False, max_drift=max_drift)
    assert tables2 == tables and st["blocks"] > st0["blocks"]
    headers = stream_headers(beats, lanes)
    assert all(h is not None and not h["cont"] for h in headers)        # independent blocks
    out, errors = g.ref_decode(beats, tables, n_lanes=lanes, max_len=MAX_LEN, raw_bits=8, escape=escape)
    assert errors == 0 and len(out) == st["blocks"] and not any(b["err"] for b in out)
    flat = [v for b in out for t in b["values"] for v in t]
    assert flat[:len(values)] == values
    for b in out:                                 # every block's drift within the bound
        vals = [v for t in b["values"] for v in t]
        assert g.block_drift(vals, n_lanes=lanes, table=table) <= max_drift


def test_encode_stream_max_drift_keeps_small_drift_streams():
    rng = random.Random(5)
    values = [rng.randrange(40) for _ in range(4 * 500)]
    a = g.encode_stream(values, n_lanes=4, block_n=200, max_len=MAX_LEN)
    b = g.encode_stream(values, n_lanes=4, block_n=200, max_len=MAX_LEN, max_drift=32)
    assert a == b
    one = g.encode_stream(pruned_lanes(500, 1), n_lanes=1, block_n=200, max_len=MAX_LEN)
    assert g.encode_stream(pruned_lanes(500, 1), n_lanes=1, block_n=200, max_len=MAX_LEN, max_drift=2) == one


@pytest.mark.parametrize("bad,exc", [(1, ValueError), (4.0, TypeError), (True, TypeError)])
def test_encoders_bad_max_drift(bad, exc):
    from sim.huffman import fast
    with pytest.raises(exc, match="max_drift"):
        g.encode_stream([1, 2], n_lanes=2, max_len=MAX_LEN, max_drift=bad)
    with pytest.raises(exc, match="max_drift"):
        fast.encode_fast([1, 2], n_lanes=2, max_len=MAX_LEN, max_drift=bad)


@pytest.mark.parametrize("lanes,block_n,max_drift,escape,mode,r", [
    (2, 1024, 4, False, spec.MODE_INT, 0), (4, 300, 7, True, spec.MODE_INT, 0),
    (8, 5000, 32, False, spec.MODE_INT, 0), (3, 250, 5, True, spec.MODE_INT, 2),
    (4, 400, 6, False, spec.MODE_EXP, 8)])
def test_encode_fast_max_drift_equals_encode_stream(lanes, block_n, max_drift, escape, mode, r):
    import numpy as np

    from sim.huffman import fast
    values = pruned_lanes(1500, lanes, seed=lanes + r)
    if mode == spec.MODE_EXP:       # BF16-like: exponent 8 bits coded, sign/mantissa raw (ebits 8, r 8)
        values = [(v << 8) | (v * 37 & 0xFF) if v else 0 for v in values]
    kw = dict(n_lanes=lanes, block_n=block_n, max_len=MAX_LEN, escape=escape, mode=mode, r=r,
              ebits=8 if mode == spec.MODE_EXP else 0, raw_bits=16 if mode == spec.MODE_EXP else 8,
              max_drift=max_drift, allow_raw=False)
    tables, beats, st = g.encode_stream(values, **kw)
    ftables, fstream, fst = fast.encode_fast(np.array(values), **kw)
    assert ftables == tables and fast.to_beats(fstream) == beats
    assert st == fst
    assert st["blocks"] > -(-len(values) // (lanes * block_n))      # cut somewhere


def test_encoders_go_raw_when_the_cuts_cost_more():
    """The cuts' headers count in the tensor's raw decision, the same in both encoders: values
    that code to about 7 bits in the long lanes pay for one block, not for a block every few beats."""
    import numpy as np

    from sim.huffman import fast
    rng = random.Random(9)
    values = [0 if k % 2 == 0 else rng.randrange(100) for _ in range(600) for k in range(8)]
    kw = dict(n_lanes=8, block_n=600, max_len=MAX_LEN)
    assert g.encode_stream(values, **kw)[2]["raw_blocks"] == 0
    tables, beats, st = g.encode_stream(values, **kw, max_drift=2)
    assert tables == [] and st["raw_blocks"] == st["blocks"] == 1
    ftables, fstream, fst = fast.encode_fast(np.array(values), **kw, max_drift=2)
    assert ftables == [] and fast.to_beats(fstream) == beats and fst == st


@pytest.mark.parametrize("lanes,contexts,impl", [(2, 1, "comparator"), (2, 1, "table"), (1, 2, "table")])
def test_encode_stream_max_drift_decodes_on_small_fifos(lanes, contexts, impl):
    """The plain stream of pruned-beside-full-range columns stops a decoder with 8-word FIFOs; the
    same values with ``max_drift`` = the decoder's decode exactly (golden, random stalls)."""
    f = lanes * contexts
    values = pruned_lanes(120, f, seed=7)
    kw = dict(n_lanes=f, block_n=120, max_len=MAX_LEN, allow_raw=False)
    tables, plain, _ = g.encode_stream(values, **kw)
    dut = HuffmanDecoder(max_len=MAX_LEN, lanes=lanes, raw_bits=8, fifo_depth=FIFO, contexts=contexts,
                         impl=impl)
    pairs = g.table_stream(tables)
    out, taken = run_for(dut, plain, pairs, 20_000)
    assert out < 120 * contexts and taken < len(plain)
    _, beats, st = g.encode_stream(values, **kw, max_drift=dut.max_drift)
    dut = HuffmanDecoder(max_len=MAX_LEN, lanes=lanes, raw_bits=8, fifo_depth=FIFO, contexts=contexts,
                         impl=impl)
    _, ref = check_against_golden(dut, beats, pairs, stall=0.3, seed=3)
    assert len(ref) == st["blocks"] > 1
