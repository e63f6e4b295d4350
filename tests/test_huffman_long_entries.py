"""The two-context table lane's long-code entries: :class:`~hw.huffman.lane_table.TableFiller` with
``long_lengths`` (a prefix of long codes names its length, or is a boundary prefix) against a model
that decodes every window, and the decoder end to end on tables whose long codes share prefixes
(several lengths in one prefix, the code space ending inside a prefix, escape codes)."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from hw.huffman import spec
from hw.huffman.decoder import HuffmanDecoder
from hw.huffman.lane_table import CompactTableLoader, TableFiller, long_entry_bits
from hw.huffman.lane_table_cslow import wide_table_bits
from sim.huffman import golden as g
from sim.streams import stream_put
from tests.test_huffman_rtl import check_against_golden


def expected_entries(counts, max_len, bits):
    """Per prefix of ``bits`` bits, from the code length of every window under it (the first code
    end above the window): the length if all windows agree, 0 if none is a code, else (a boundary
    prefix) ``L - k + l0``, ``l0`` the length of its first window."""
    L, K = max_len, bits
    limit, _ = spec.decode_tables(list(counts), L)        # code ends, left-aligned in L bits

    def length(w):
        return next((ln for ln in range(1, L + 1) if w < limit[ln]), 0)

    span = 1 << (L - K)
    entries = []
    for p in range(1 << K):
        lens = [length(w) for w in range(p * span, (p + 1) * span)]
        if len(set(lens)) == 1:
            entries.append(lens[0])
        else:
            assert lens[0] > K and lens[0] != 0        # only long codes (and no code) share a prefix
            entries.append(L - K + lens[0])
    return entries


def long_counts(max_len, bits, rng, *, complete):
    """Counts of a code whose long lengths (``k+1 .. L``, each used) fill ``P`` prefixes at random
    places of the lengths' boundaries, the short codes the rest; ``complete=False`` ends the code
    space inside a prefix. At most 255 symbols (one may be the escape)."""
    L, K = max_len, bits
    span = 1 << (L - K)
    while True:
        prefixes = rng.randrange(1, 4)
        room = prefixes * span
        counts = [0] * L
        for ln in range(K + 1, L + 1):
            unit = 1 << (L - ln)
            most = (room - sum(1 << (L - x) for x in range(ln + 1, L + 1))) // unit   # room for longer
            c = rng.randrange(1, max(1, min(most, 3 * span // unit)) + 1)
            counts[ln - 1] = c
            room -= c * unit
        if room < 0:
            continue
        if complete:
            counts[L - 1] += room
        elif room % span == 0:           # the code space ends inside a prefix
            continue
        short = (1 << K) - prefixes           # short codes cover this many prefixes: its bits
        for j in range(K):
            if short >> j & 1:
                counts[K - j - 1] += 1
        if sum(counts) <= 200:
            return counts


def table_of(counts, rng, *, escape_len=None, avoid=()):
    """``(counts, symbols)`` with these counts and random symbols (not in ``avoid``); with
    ``escape_len`` the escape is the last symbol of that length."""
    pool = [s for s in range(256) if s not in avoid]
    syms = rng.sample(pool, sum(counts))
    lengths, i = {}, 0
    for ln, c in enumerate(counts, 1):
        for _ in range(c):
            lengths[syms[i]] = ln
            i += 1
    if escape_len is not None:
        victim = next(s for s, ln in lengths.items() if ln == escape_len)
        del lengths[victim]
        lengths[spec.ESCAPE] = escape_len
    return spec.table_from_lengths(lengths, max_len=len(counts), escape=escape_len is not None)


def filler_entries(tables, max_len, bits):
    """Load two tables through :class:`CompactTableLoader` into ``TableFiller(long_lengths=True)``
    and read back every entry of both banks."""
    m = Module()
    m.submodules.loader = loader = CompactTableLoader(max_len=max_len)
    m.submodules.filler = filler = TableFiller(max_len, False, index=False, rw_check=False, bits=bits,
                                               long_lengths=True)
    for name in ("count", "ok", "off_en", "off_addr", "off_data", "sym_en", "sym_addr"):
        m.d.comb += getattr(filler, f"i_{name}").eq(getattr(loader, f"o_{name}"))
    words = [spec.serialize_table(*t, max_len) for t in tables]
    got = []

    async def bench(ctx):
        ctx.set(loader.i_permit, 1)
        for ws in words:
            for i, w in enumerate(ws):
                await stream_put(ctx, loader.i_table, {"data": w, "first": int(i == 0)})
        for _ in range(20000):
            if ctx.get(filler.o_filled) == len(tables):
                break
            await ctx.tick()
        assert ctx.get(filler.o_filled) == len(tables), "the filler hung"
        for bank in range(2):
            entries = []
            for p in range(1 << bits):
                ctx.set(filler.i_raddr, bank << bits | p)
                await ctx.tick()
                entries.append(ctx.get(filler.o_rdata.length))
            got.append(entries)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("max_len", [8, 12, 16])
def test_filler_long_entries(max_len):
    """Every entry of random codes with long codes sharing prefixes (complete and incomplete) and a
    chain (one code per length), as the window model says; 4-bit entries up to L = 12."""
    K = wide_table_bits(max_len)
    assert long_entry_bits(max_len, K) == (4 if max_len <= 12 else 5)
    rng = random.Random(max_len)
    chain = [1] * (max_len - 1) + [2]
    cases = [(chain, long_counts(max_len, K, rng, complete=False))]
    cases += [(long_counts(max_len, K, rng, complete=True), long_counts(max_len, K, rng, complete=False))
              for _ in range(2)]
    for pair in cases:
        tables = [table_of(c, rng) for c in pair]
        got = filler_entries(tables, max_len, K)
        want = [expected_entries(t[0], max_len, K) for t in tables]
        assert any(e > max_len for w in want for e in w), "no boundary prefix in the case"
        assert got == want


def test_long_counts_make_every_boundary():
    """The cases above reach boundary prefixes that start at every long length (and the no-code
    tail), at L = 12."""
    L, K = 12, wide_table_bits(12)
    rng = random.Random(12)
    seen = set()
    for _ in range(40):
        entries = expected_entries(long_counts(L, K, rng, complete=rng.random() < 0.5), L, K)
        seen |= {e for e in entries if e > L}
    assert seen == {L - K + l0 for l0 in range(K + 1, L + 1)}


@pytest.mark.parametrize("max_len,window_compare,fill_step", [
    (12, "b", "candidates"), (16, "b", "candidates"), (12, "a", "candidates"), (16, "a", "candidates"),
    (12, "a", "escape_last"), (16, "b", "escape_last")])
def test_table_lane_boundary_prefixes(max_len, window_compare, fill_step):
    """The two-context table lane, escape codes, on codes whose long lengths share prefixes: every
    symbol of two tables (escaped symbols too) with and without raw bits, and per table a block
    with a window past the (incomplete) code space, inside the last long prefix (encoded with the
    table and extra codes of length L there: the golden model flags it as an invalid code). With
    the boundary compares in stage B or in stage A (``window_compare``), and the fill's escape
    choice in the candidates' selects or last (``fill_step``)."""
    L, K = max_len, wide_table_bits(max_len)
    rng = random.Random(100 + L)
    beats, tables = [], []
    extras = list(range(250, 256))          # past the table's symbols in canonical order
    for t in range(2):
        counts = long_counts(L, K, rng, complete=False)
        esc_len = rng.choice([ln for ln in range(K + 1, L) if counts[ln - 1]])
        table = table_of(counts, rng, escape_len=esc_len, avoid=extras)
        tables.append(spec.serialize_table(*table, L, escape=True))
        coded = [s for s in table[1] if s != spec.ESCAPE]
        escaped = [s for s in range(250) if s not in coded][:6]
        for r in (0, 8):
            values = coded + escaped
            rng.shuffle(values)
            values = [v << r | rng.randrange(1 << r) for v in values][:2 * (len(values) // 2)]
            beats += g.encode_block(values, n_lanes=2, mode=spec.MODE_INT, r=r, parity=t, table=table)[0]
        # the free windows at the end: codes of length L past the table's (the table's symbols
        # keep their codes: the extra symbols sort last, the escape is shorter)
        room = (1 << L) - sum(c << (L - ln) for ln, c in enumerate(table[0], 1))
        more = extras[:min(room, len(extras))]
        wide = (list(table[0][:L - 1]) + [table[0][L - 1] + len(more)], list(table[1]) + more)
        values = [coded[i % len(coded)] for i in range(6)] + [extras[0]] + coded[:5] * (len(coded) >= 5)
        values += [coded[0]] * (len(values) % 2)
        values = [v << 8 | rng.randrange(1, 256) for v in values]      # the zeroed values had raw bits
        beats += g.encode_block(values, n_lanes=2, mode=spec.MODE_INT, r=8, parity=t, table=wide)[0]
    dut = HuffmanDecoder(max_len=L, lanes=1, raw_bits=8, fifo_depth=8, contexts=2, impl="table",
                         escape=True, window_compare=window_compare, fill_step=fill_step)
    res, ref = check_against_golden(dut, beats, g.table_stream(tables), stall=0.2, seed=L)
    assert sum(b["err"] for b in ref) == 2, "the invalid windows are not flagged"
    assert res["errors"] & spec.ERR_INVALID


def test_filler_long_lengths_parameter():
    """``long_lengths`` is a bool, and only for entries without the symbol index."""
    with pytest.raises(ValueError, match="long_lengths"):
        TableFiller(12, False, index=True, long_lengths=True)
    with pytest.raises(TypeError, match="long_lengths"):
        TableFiller(12, False, index=False, long_lengths=1)
