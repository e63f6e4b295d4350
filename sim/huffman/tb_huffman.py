"""cocotb testbench of :class:`hw.huffman.HuffmanDecoder` against :mod:`sim.huffman.golden`.

Random stalls on all three streams (``i_data``, ``i_table`` and ``o_data``); every output beat, each
block's error bit and the sticky error flags are compared with the reference decoder. With
``contexts=2`` the blocks have ``2 * lanes`` format lanes and the decoder's beats carry ``lanes``
values: format lanes ``0..lanes-1``, then ``lanes..2*lanes-1`` (block order).
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hw.huffman import spec
from sim.huffman import golden as g
from sim.huffman.fuzz import fuzz_stream
from sim.runner import tb_params


class TB:
    def __init__(self, dut):
        self.dut = dut
        p = tb_params("huffman_decoder")
        self.out_lanes = p["lanes"]                      # values per output beat
        self.lanes = self.out_lanes * p["contexts"]      # format lanes (words per input beat)
        self.max_len = p["max_len"]
        self.raw_bits = p["raw_bits"]
        self.escape = p["escape"]
        self.vw = spec.value_width(self.raw_bits)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    async def reset(self):
        d = self.dut
        d.rst.value = 1
        d.i_clear.value = 0
        d.i_data__valid.value = 0
        d.i_table__valid.value = 0
        d.o_data__ready.value = 0
        for _ in range(2):
            await RisingEdge(d.clk)
        d.rst.value = 0

    async def drive(self, prefix, payloads, rng, stall):
        """Offer each payload on stream ``prefix`` until taken, idling randomly in between."""
        valid = getattr(self.dut, f"{prefix}__valid")
        ready = getattr(self.dut, f"{prefix}__ready")
        data = getattr(self.dut, f"{prefix}__payload")
        for p in payloads:
            while rng.random() < stall:
                valid.value = 0
                await RisingEdge(self.dut.clk)
            valid.value = 1
            data.value = p
            while True:
                await RisingEdge(self.dut.clk)
                if int(ready.value):        # sampled at the edge the transfer happened on
                    break
            valid.value = 0

    async def collect(self, n, rng, stall, out, idle=64):
        """Take ``n`` output beats with random ready, then watch ``idle`` cycles for extra beats."""
        d = self.dut
        mask = (1 << self.vw) - 1
        base = self.out_lanes * self.vw
        extra = 0
        cycles = 0
        while len(out) < n or idle > 0:
            taking = len(out) < n
            d.o_data__ready.value = int(rng.random() >= stall) if taking else 1
            await ReadOnly()
            if int(d.o_data__valid.value) and int(d.o_data__ready.value):
                word = int(d.o_data__payload.value)
                beat = ([(word >> (self.vw * k)) & mask for k in range(self.out_lanes)],
                        (word >> base) & 1, (word >> (base + 1)) & 1, (word >> (base + 2)) & 1)
                if taking:
                    out.append(beat)
                else:
                    extra += 1
            if not taking:
                idle -= 1
            await RisingEdge(d.clk)
            cycles += 1
            assert cycles < 200_000, "decoder hung"
        d.o_data__ready.value = 0
        return extra

    def data_words(self, beats):
        words = []
        for b in beats:
            w = 0
            for k, x in enumerate(b[0]):
                w |= x << (spec.WORD * k)
            words.append(w | int(b[1]) << (spec.WORD * self.lanes))
        return words

    async def run_and_check(self, beats, tables, *, seed, stall=0.3):
        ref, errors = g.ref_decode(beats, tables, n_lanes=self.lanes, max_len=self.max_len,
                                   raw_bits=self.raw_bits, escape=self.escape)
        n_out = self.out_lanes
        # The decoder's view of each golden beat of `lanes` format-lane values: beats of `out_lanes`.
        expect = [{"values": [tuple(t[i:i + n_out]) for t in b["values"] for i in range(0, len(t), n_out)],
                   "err": b["err"]} for b in ref]
        n = sum(len(b["values"]) for b in expect)
        rng = random.Random(seed)
        cocotb.start_soon(self.drive("i_data", self.data_words(beats), random.Random(seed + 1), stall))
        cocotb.start_soon(self.drive("i_table", [w | int(f) << spec.WORD for w, f in tables],
                                     random.Random(seed + 2), stall))
        out = []
        extra = await self.collect(n, rng, stall, out)
        assert extra == 0, "more output than the golden model"
        got = []
        for values, first, last, err in out:
            if first or not got or got[-1]["closed"]:
                got.append({"values": [], "err": False, "closed": False})
            got[-1]["values"].append(tuple(values))
            if last:
                got[-1]["err"] = bool(err)
                got[-1]["closed"] = True
        got = [{"values": b["values"], "err": b["err"]} for b in got]
        assert len(got) == len(expect)
        for i, (a, b) in enumerate(zip(got, expect, strict=True)):
            assert a == b, f"block {i}: got {a}, expected {b}"
        assert int(self.dut.o_errors.value) == errors
        assert int(self.dut.o_blocks.value) == len(ref)
        return ref


def gauss(rng, n, sigma):
    return [max(-128, min(127, round(rng.gauss(0, sigma)))) & 0xFF for _ in range(n)]


@cocotb.test()
async def test_round_trip_random_stalls(dut):
    tb = TB(dut)
    await tb.reset()
    rng = random.Random(1)
    values = gauss(rng, 40 * tb.lanes * 6, 6)
    tables, beats, _ = g.encode_stream(values, n_lanes=tb.lanes, block_n=40, max_len=tb.max_len,
                                       raw_bits=tb.raw_bits)
    ref = await tb.run_and_check(beats, g.table_stream(tables), seed=1, stall=0.4)
    assert [v for b in ref for t in b["values"] for v in t][:len(values)] == values


@cocotb.test()
async def test_tables_modes_and_bypass(dut):
    """Four tables double-buffered through two banks; INT, EXP (BF16 exponents) and RAW blocks."""
    tb = TB(dut)
    await tb.reset()
    rng = random.Random(2)
    n = tb.lanes * 20
    tables, beats = [], []
    for t in range(4):
        if t % 2:
            vals = [rng.randrange(2) << 15 | (118 + min(9, int(rng.expovariate(0.8)))) << 7
                    | rng.randrange(128) for _ in range(2 * n)]
            table = g.build_table([(v >> 7) & 0xFF for v in vals], tb.max_len, tb.escape)
            kw = {"mode": spec.MODE_EXP, "r": 8, "ebits": 8}
        else:
            vals = gauss(rng, 2 * n, 2 + 3 * t)
            table = g.build_table(vals, tb.max_len, tb.escape)
            kw = {"mode": spec.MODE_INT}
        tables.append(spec.serialize_table(*table, tb.max_len, tb.escape))
        for half in (vals[:n], vals[n:]):
            beats += g.encode_block(half, n_lanes=tb.lanes, parity=t % 2, table=table, **kw)[0]
        raw = [rng.randrange(256) for _ in range(tb.lanes * 5)]
        beats += g.encode_block(raw, n_lanes=tb.lanes, mode=spec.MODE_RAW, r=8)[0]
    ref = await tb.run_and_check(beats, g.table_stream(tables), seed=2)
    assert not any(b["err"] for b in ref)
    assert int(dut.o_errors.value) == 0


@cocotb.test()
async def test_escape_codes(dut):
    """A stream with an escape code (narrow weights, 15 % uniform outliers escaped): decoded exactly
    by a decoder built with ``escape``, its table rejected (``ERR_TABLE``, blocks zeroed) by one
    without."""
    tb = TB(dut)
    await tb.reset()
    rng = random.Random(5)
    values = [rng.randrange(256) if rng.random() < 0.15 else v for v in gauss(rng, tb.lanes * 150, 3)]
    # Three blocks on one table: a decoder without escapes rejects it and zeroes all three.
    tables, beats, _ = g.encode_stream(values, n_lanes=tb.lanes, block_n=50,
                                       max_len=tb.max_len, raw_bits=tb.raw_bits, allow_raw=False,
                                       escape=True)
    assert spec.ESCAPE in spec.parse_table(tables[0], tb.max_len, escape=True)[1]
    ref = await tb.run_and_check(beats, g.table_stream(tables), seed=5)
    decoded = [v for b in ref for t in b["values"] for v in t][:len(values)]
    if tb.escape:
        assert decoded == values and int(dut.o_errors.value) == 0
    else:
        assert not any(decoded) and int(dut.o_errors.value) == spec.ERR_TABLE


@cocotb.test()
async def test_corrupt_streams_recover(dut):
    tb = TB(dut)
    await tb.reset()
    rng = random.Random(3)
    table = g.build_table([rng.randrange(20) for _ in range(300)] + list(range(20)), tb.max_len)
    beats, kinds, goods = fuzz_stream(3, 300, n_lanes=tb.lanes, max_len=tb.max_len, table=table)
    ref = await tb.run_and_check(beats, g.table_stream([spec.serialize_table(*table, tb.max_len)]), seed=3,
                                 stall=0.25)
    assert [[v for t in b["values"] for v in t] for b in ref if not b["err"]] == goods
    assert int(dut.o_errors.value) & spec.ERR_CRC


@cocotb.test()
async def test_clear_then_decode(dut):
    tb = TB(dut)
    await tb.reset()
    rng = random.Random(4)
    junk = [rng.randrange(1 << (spec.WORD * tb.lanes + 1)) for _ in range(30)]
    await tb.drive("i_data", junk, rng, 0.2)
    for _ in range(10):
        await RisingEdge(dut.clk)
    assert int(dut.o_errors.value) & spec.ERR_HEADER
    dut.i_clear.value = 1
    await RisingEdge(dut.clk)
    dut.i_clear.value = 0
    # The clear reaches the decoder's parts through their registers: one cycle later.
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    assert int(dut.o_errors.value) == 0 and int(dut.o_beats_in.value) == 0
    values = gauss(rng, tb.lanes * 30, 4)
    tables, beats, _ = g.encode_stream(values, n_lanes=tb.lanes, block_n=30, max_len=tb.max_len)
    await tb.run_and_check(beats, g.table_stream(tables), seed=4)
    assert int(dut.o_errors.value) == 0
