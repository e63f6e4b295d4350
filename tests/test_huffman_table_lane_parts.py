"""The two-context table lane (``hw/huffman/lane_table_cslow.py``): the window shifter against
Python's shift, for every amount; its two-bit table numbers across many table switches."""

import random

import pytest
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.sim import Simulator

from hw.huffman import spec
from hw.huffman.decoder import HuffmanDecoder
from hw.huffman.lane_table_cslow import after_less_entry, window_shift
from sim.huffman import golden as g
from tests.test_huffman_rtl import check_against_golden, gauss_int8


@pytest.mark.parametrize("in_bits, amount_bits, width", [(91, 6, 28), (40, 6, 28), (20, 3, 7), (9, 4, 16)])
def test_window_shift_is_a_right_shift(in_bits, amount_bits, width):
    m = Module()
    x, amount = Signal(in_bits), Signal(amount_bits)
    y = Signal(width)
    m.d.comb += y.eq(window_shift(x, amount, width))
    rng = random.Random(in_bits * 100 + width)
    values = [0, (1 << in_bits) - 1] + [rng.getrandbits(in_bits) for _ in range(6)]

    async def tb(ctx):
        for v in values:
            ctx.set(x, v)
            for a in range(1 << amount_bits):
                ctx.set(amount, a)
                assert ctx.get(y) == (v >> a) & ((1 << width) - 1), (hex(v), a)

    sim = Simulator(m)                   # combinational: no clock
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("entry_bits", [4, 5])
def test_after_less_entry_is_a_clamped_subtraction(entry_bits):
    """``after_less_entry`` (``fill_step="escape_last"``'s fill after the entry's length, without a
    carry chain from the entry) is ``max(base - v, 0)`` in the fill's 6 bits for every signed
    8-bit ``base`` and every entry ``v`` (the borrow picking ``base`` for ``base - 16`` fails it)."""
    m = Module()
    base, v, y = Signal(signed(8)), Signal(entry_bits), Signal(6)
    m.d.comb += y.eq(after_less_entry(base, v, lambda x: Mux(x < 0, 0, x)[:6]))

    async def tb(ctx):
        for b in range(-128, 128):
            ctx.set(base, b)
            for e in range(1 << entry_bits):
                ctx.set(v, e)
                assert ctx.get(y) == max(b - e, 0) % 64, (b, e)

    sim = Simulator(m)                   # combinational: no clock
    sim.add_testbench(tb)
    sim.run()


def test_compact_build_decodes_many_table_switches():
    """Nine tables in a row (the two-context table lane keeps two-bit table numbers: they wrap
    twice), each a different code, one or two blocks each, with stalls: the loader runs ahead
    of the lanes (their permit compares and the "next table loaded" check modulo 4) and every
    block decodes with its own table, equal to the golden model."""
    rng = random.Random(1709)
    beats, tables, expected = [], [], []
    for t in range(9):
        spread = 2 + 3 * (t % 4)
        values = [rng.randrange(256) if rng.random() < 0.1 else gauss_int8(rng, 1, spread)[0]
                  for _ in range(rng.choice((24, 40, 56)))]
        table = g.build_table(values, 12)
        tables.append(spec.serialize_table(*table, 12))
        for part in ([values] if t % 3 else [values[:len(values) // 2], values[len(values) // 2:]]):
            b, _ = g.encode_block(part, n_lanes=2, mode=spec.MODE_INT, parity=t % 2, table=table)
            beats += b
            expected.append(part)
    dut = HuffmanDecoder(max_len=12, lanes=1, raw_bits=8, fifo_depth=8, escape=True, contexts=2,
                         impl="table", counter_bits=16)
    # (each table's first-level table takes some 2**9 + 2 nsyms cycles to build: more than the
    # harness's default limit allows for so few beats)
    res, ref = check_against_golden(dut, beats, g.table_stream(tables), stall=0.3, seed=5, max_cycles=40_000)
    assert [[v for t in b["values"] for v in t] for b in ref] == expected
    assert res["errors"] == 0
