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


@pytest.mark.parametrize("lanes,contexts,impl", [
    (2, 1, "comparator"), (1, 2, "comparator"), (2, 2, "comparator"), (2, 1, "table"), (1, 2, "table"),
])
def test_chained_units_against_golden(lanes, contexts, impl):
    """Units of skewed values at the decoder's ``max_drift`` (many blocks each), a small unit of one
    block and a unit with a CRC error in a middle block (``err`` on the unit's last beat only), with
    random stalls: every beat, unit mark, error flag and counter as the golden model says."""
    f = lanes * contexts
    values = skewed(160, f, seed=f)
    table = skewed_table(values)
    dut = HuffmanDecoder(max_len=MAX_LEN, lanes=lanes, raw_bits=0, fifo_depth=FIFO, contexts=contexts,
                         impl=impl, chain=True)
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
