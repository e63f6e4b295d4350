"""The table loader's verdict equals the format's validity check (:func:`hw.huffman.spec.check_table_words`),
including count words far beyond the code space (which must not wrap the loader's Kraft arithmetic)."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from hw.huffman import spec
from hw.huffman.decoder import HuffmanDecoder
from hw.huffman.lane_table import CompactTableLoader, TableFiller
from hw.huffman.lane_table_cslow import CSlowTableLoader, wide_table_bits
from hw.huffman.table_loader import TableLoader
from sim.huffman import golden as g
from sim.streams import stream_put
from tests.test_huffman_rtl import check_against_golden

MAX_LEN = 8


def table_words(counts, nsyms, rng):
    """A table's word list with these count words, ``nsyms`` random symbols and a correct CRC."""
    words = [spec.TABLE_MARK << 13 | len(counts) << 8 | (nsyms - 1), *counts]
    words += rng.sample(range(256), nsyms)
    return words + [spec.crc16(words)]


def wrapping_counts(rng, counts, max_len):
    """``counts`` with multiples of ``2**(max_len + 2)`` added to some of them so that their sum grows
    by a multiple of 2**17 (the loader's symbol count register): the Kraft sums and the total are
    unchanged modulo the loader's register widths, but the table is no prefix code."""
    unit = 1 << (max_len + 2)
    room = [(0xFFFF - c) // unit for c in counts]
    out = list(counts)
    if sum(room) * unit < 1 << 17:          # too few count words to wrap the total: one large count
        out[0] += room[0] * unit
        return out
    need = (1 << 17) // unit * rng.randrange(1, 1 + min(3, sum(room) * unit >> 17))
    while need:
        i = rng.choice([i for i, r in enumerate(room) if r])
        k = rng.randrange(1, min(room[i], need) + 1)
        out[i] += k * unit
        room[i] -= k
        need -= k
    return out


def valid_counts(rng, max_len):
    """Counts of a random canonical code (maxlen 1..max_len, 1..40 symbols, Kraft sum <= 1)."""
    while True:
        maxlen = rng.randrange(1, max_len + 1)
        counts, code = [], 0
        for length in range(1, maxlen + 1):
            c = rng.randrange(0, min(8, (1 << length) - code) + 1)
            counts.append(c)
            code = (code + c) << 1
        if 1 <= sum(counts) <= 40:
            return counts


def random_table(rng, max_len):
    """A table word list of one of several kinds: valid, Kraft overflow, wrong total, counts that wrap
    the loader's arithmetic, or random 16-bit count words."""
    kind = rng.choice(("valid", "valid", "kraft", "total", "wrap", "wrap", "random"))
    counts = valid_counts(rng, max_len)
    nsyms = sum(counts)
    if kind == "kraft":
        i = rng.randrange(len(counts))
        counts[i] += rng.choice((1, 2, 1 << (i + 1), rng.randrange(1, 0x10000 - counts[i])))
        nsyms = min(256, max(1, sum(counts) & 0xFF or 1))
    elif kind == "total":
        nsyms = max(1, min(256, nsyms + rng.choice((-2, -1, 1, 3))))
    elif kind == "wrap":
        counts = wrapping_counts(rng, counts, max_len)
    elif kind == "random":
        counts = [rng.choice((rng.randrange(4), rng.randrange(1 << 16), rng.randrange(1, 64) << max_len + 2))
                  for _ in counts]
        nsyms = rng.randrange(1, 41)
    return table_words(counts, nsyms, rng)


def loader_verdicts(tables, *, max_len=MAX_LEN, stall=0.3, seed=0, loader=None):
    """Run :class:`TableLoader` on ``tables`` (word lists) with random input stalls; return, per table,
    ``(ok, limits)``: the loader's verdict and, for an accepted table, its ``o_limit`` entries 1..L."""
    dut = loader or TableLoader(max_len=max_len)
    verdicts = []

    async def producer(ctx):
        rng = random.Random(seed)
        ctx.set(dut.i_permit, 1)
        for words in tables:
            for i, w in enumerate(words):
                await stream_put(ctx, dut.i_table, {"data": w, "first": int(i == 0)}, rng=rng, stall=stall)

    async def monitor(ctx):
        count = 0
        while len(verdicts) < len(tables):
            await ctx.tick()
            new = ctx.get(dut.o_count)
            if new != count:
                assert new == (count + 1) % 256, "the loader skipped a table"
                bank = count & 1
                ok = bool((ctx.get(dut.o_ok) >> bank) & 1)
                limits = [ctx.get(dut.o_limit[bank][ln]) for ln in range(1, max_len + 1)] if ok else None
                verdicts.append((ok, limits))
                count = new

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(monitor)
    sim.run_until(1e-6 * (100 + 4 * sum(len(t) + 10 for t in tables)))
    assert len(verdicts) == len(tables), "the loader hung"
    return verdicts


def expected(words, max_len):
    """``(ok, limits)`` from the format's check (limits unshifted, as the loader stores them)."""
    table = spec.check_table_words(words, max_len)
    if table is None:
        return False, None
    limit, _ = spec.decode_tables(table[0], max_len)
    return True, [limit[ln] >> (max_len - ln) for ln in range(1, max_len + 1)]


# count words carrying multiples of 2**(L+2) = 1024 (L = 8) on top of a valid code's counts [1, 1, 2]:
# modulo 1024 every Kraft partial sum is the valid code's, and the total is 4 modulo 2**17
LARGE_COUNTS = {
    "three_large": [1 + 63 * 1024, 1 + 63 * 1024, 2 + 2 * 1024],
    "all_large": [1 + 40 * 1024, 1 + 40 * 1024, 2 + 48 * 1024],
}


def test_large_count_words_are_rejected():
    rng = random.Random(1)
    tables = [table_words(counts, 4, rng) for counts in LARGE_COUNTS.values()]
    tables.append(table_words([1, 1, 2], 4, rng))                  # the valid code they imitate
    assert [expected(t, MAX_LEN)[0] for t in tables] == [False, False, True]
    assert loader_verdicts(tables) == [expected(t, MAX_LEN) for t in tables]


@pytest.mark.parametrize("impl", ["comparator", "table"])
def test_large_count_table_does_not_decode(impl):
    """End to end: a block using the large-count table is skipped and flagged (ERR_TABLE), as the
    golden model says; the next block, on a valid table, decodes."""
    rng = random.Random(3)
    values = [rng.randrange(4) for _ in range(16)]
    good = g.build_table(values, MAX_LEN)
    assert good[0] == [1, 1, 2]
    bad = table_words(LARGE_COUNTS["three_large"], 4, rng)
    bad[1 + 3:1 + 3 + 4] = good[1]                 # the valid code's symbols
    bad[-1] = spec.crc16(bad[:-1])
    blocks = g.encode_block(values, n_lanes=1, mode=spec.MODE_INT, parity=0, table=good)[0]
    blocks += g.encode_block(values, n_lanes=1, mode=spec.MODE_INT, parity=1, table=good)[0]
    dut = HuffmanDecoder(max_len=MAX_LEN, lanes=1, raw_bits=8, fifo_depth=4, impl=impl)
    tables = g.table_stream([bad, spec.serialize_table(*good, MAX_LEN)])
    res, ref = check_against_golden(dut, blocks, tables, stall=0.2, seed=3)
    assert [b["err"] for b in ref] == [True, False]
    assert res["errors"] == spec.ERR_TABLE


@pytest.mark.parametrize("max_len,n_tables", [(8, 400), (12, 100)])
def test_random_count_vectors_match_the_format_check(max_len, n_tables):
    """Random count vectors (valid, Kraft overflow, wrong total, wrapping multiples of 2**(L+2), random
    16-bit words): the loader accepts exactly the tables the format check accepts, with its limits."""
    rng = random.Random(max_len)
    tables = [random_table(rng, max_len) for _ in range(n_tables)]
    want = [expected(t, max_len) for t in tables]
    assert n_tables // 5 <= sum(ok for ok, _ in want) <= n_tables * 4 // 5   # both verdicts well represented
    large = sum(t[1:1 + max_len] != [c % (4 << max_len) for c in t[1:1 + max_len]] for t in tables)
    assert large >= n_tables // 10                  # count words of 2**(L+2) and more
    got = loader_verdicts(tables, max_len=max_len, seed=max_len)
    mismatches = [(i, tables[i][1:1 + ((tables[i][0] >> 8) & 0x1F)], got[i][0], want[i][0])
                  for i in range(len(tables)) if got[i] != want[i]]
    assert not mismatches, f"{len(mismatches)} verdicts differ (index, counts, rtl, golden): {mismatches[:3]}"


@pytest.mark.parametrize("contexts,impl", [(1, "comparator"), (2, "comparator"), (1, "table"), (2, "table")])
def test_every_block_on_a_rejected_table_is_zeroed(contexts, impl):
    """A lane keeps its table from block to block while the parity stays the same: every such block
    on a rejected table is flagged and zeroed (golden), not only the first one after the load."""
    rng = random.Random(5)
    values = [rng.randrange(4) for _ in range(16)]
    good = g.build_table(values, MAX_LEN)
    bad = table_words(LARGE_COUNTS["three_large"], 4, rng)
    bad[1 + 3:1 + 3 + 4] = good[1]
    bad[-1] = spec.crc16(bad[:-1])
    n_lanes = contexts                              # one hardware lane serving `contexts` format lanes
    blocks = []
    for _ in range(3):
        blocks += g.encode_block(values, n_lanes=n_lanes, mode=spec.MODE_INT, parity=0, table=good)[0]
    dut = HuffmanDecoder(max_len=MAX_LEN, lanes=1, raw_bits=8, fifo_depth=4, contexts=contexts, impl=impl)
    res, ref = check_against_golden(dut, blocks, g.table_stream([bad]), stall=0.2, seed=5)
    assert [b["err"] for b in ref] == [True, True, True]
    assert res["errors"] == spec.ERR_TABLE


def escape_table(rng, max_len):
    """A table word list with one escape (or two, or none): at the end of a random non-empty length
    (the last length, L - 1, or any), or at a random place; codes that reach length L mostly."""
    while True:
        counts = valid_counts(rng, max_len)
        if rng.random() < 0.8 and len(counts) < max_len:       # reach L: one code each at L - 1, L
            code = 0
            for c in counts:
                code = (code + c) << 1
            room = code << (max_len - len(counts) - 1)         # the first code of length L
            if room <= (1 << max_len) - 3:
                counts += [0] * (max_len - len(counts))
                counts[-2] += 1
                counts[-1] += 1
        if sum(counts) <= 256:
            break
    nsyms = sum(counts)
    symbols = rng.sample(range(256), nsyms)
    ends = [sum(counts[:i + 1]) for i, c in enumerate(counts) if c]
    kind = rng.choice(("end_last", "end_before_last", "end", "random", "two", "none"))
    at = {"end_last": ends[-1], "end_before_last": ends[-2] if len(ends) > 1 else ends[-1],
          "end": rng.choice(ends)}.get(kind, rng.randrange(1, nsyms + 1))
    if kind != "none":
        symbols[at - 1] = spec.ESCAPE
    if kind == "two" and nsyms > 1:
        symbols[rng.randrange(nsyms)] = spec.ESCAPE
    words = [spec.TABLE_MARK << 13 | len(counts) << 8 | (nsyms - 1), *counts, *symbols]
    return words + [spec.crc16(words)]


@pytest.mark.parametrize("loader_class", [CompactTableLoader, CSlowTableLoader])
@pytest.mark.parametrize("max_len", [8, 12, 16])
def test_compact_loader_escape_check_matches_the_format(max_len, loader_class):
    """The table lanes' loaders (escape placement from the offsets, no per-length registers; the
    two-context lanes' with it registered) accept exactly the escape tables the format check
    accepts: random codes with the escape at every place, twice, or not at all."""
    rng = random.Random(40 + max_len)
    tables = [escape_table(rng, max_len) for _ in range(150)]
    want = [spec.check_table_words(t, max_len, escape=True) is not None for t in tables]
    assert 30 <= sum(want) <= 130
    # accepted with the escape last of its length but not the table's last symbol, and with the
    # escape the last symbol of length L, many times over
    last = [t[1 + ((t[0] >> 8) & 0x1F):-1][-1] == spec.ESCAPE for t in tables]
    full = [(t[0] >> 8) & 0x1F == max_len and t[max_len] > 0 for t in tables]
    assert sum(ok and not la for ok, la in zip(want, last, strict=True)) >= 10
    assert sum(ok and la and f for ok, la, f in zip(want, last, full, strict=True)) >= 5
    got = loader_verdicts(tables, max_len=max_len, seed=max_len,
                          loader=loader_class(max_len=max_len, escape=True))
    assert [ok for ok, _ in got] == want


@pytest.mark.parametrize("max_len,end_offset", [(8, False), (12, False), (16, False), (8, True), (12, True),
                                                (14, True)])
def test_filler_escape_check_matches_the_format(max_len, end_offset):
    """``escape_check="filler"`` (the iCEBreaker GEMM group's decoder): the loader without its
    placement check (``CSlowTableLoader(placement=False)``) and the lane's filler checking the
    escape in its walk give, per table, the format check's verdict (the filler's ``o_ok`` as it
    counts the table), and each rejected table pulses exactly one of the loader's and the filler's
    ``o_err``. With ``end_offset`` (the loader writes ``offset[L + 1]``, the filler keeps no
    symbol counts) as without."""
    rng = random.Random(90 + max_len)

    def misplaced(t):                  # one escape, rejected: the filler's failure
        return (spec.check_table_words(t, max_len, escape=True) is None
                and sum(w == spec.ESCAPE for w in t[1 + ((t[0] >> 8) & 0x1F):-1]) == 1)

    # random tables until at least 5 are the filler's failures (the loader's: two escapes)
    tables = []
    while len(tables) < 40 or sum(map(misplaced, tables)) < 5:
        tables.append(escape_table(rng, max_len))
    want = [spec.check_table_words(t, max_len, escape=True) is not None for t in tables]
    assert sum(want) >= 10 and len(tables) - sum(want) - sum(map(misplaced, tables)) >= 2
    K = wide_table_bits(max_len)
    m = Module()
    m.submodules.loader = loader = CSlowTableLoader(max_len=max_len, escape=True, placement=False,
                                                    end_offset=end_offset)
    m.submodules.filler = filler = TableFiller(max_len, True, index=False, rw_check=False, bits=K,
                                               long_lengths=True, escape_check=True, end_offset=end_offset)
    for name in ("count", "ok", "off_en", "off_addr", "off_data", "sym_en", "sym_addr", "esc_on", "esc_code"):
        m.d.comb += getattr(filler, f"i_{name}").eq(getattr(loader, f"o_{name}"))
    # a table overwrites table t - 2: only once the filler has built table t - 1
    m.d.comb += loader.i_permit.eq(filler.o_filled == loader.o_count)
    got, errs = [], []

    async def producer(ctx):
        prng = random.Random(max_len)
        for words in tables:
            for i, w in enumerate(words):
                await stream_put(ctx, loader.i_table, {"data": w, "first": int(i == 0)}, rng=prng, stall=0.3)

    async def monitor(ctx):
        filled = 0
        for _ in range(2000 * len(tables)):
            await ctx.tick()
            errs.append(ctx.get(loader.o_err) + ctx.get(filler.o_err))
            new = ctx.get(filler.o_filled)
            if new != filled:
                assert new == filled + 1
                got.append(bool((ctx.get(filler.o_ok) >> (filled & 1)) & 1))
                filled = new
                if filled == len(tables):
                    for _ in range(4):
                        await ctx.tick()
                        errs.append(ctx.get(loader.o_err) + ctx.get(filler.o_err))
                    return

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(monitor)
    sim.run()
    assert got == want
    assert max(errs) == 1 and sum(errs) == len(tables) - sum(want)


@pytest.mark.parametrize("escape_check", ["loader", "filler"])
def test_misplaced_escape_in_the_gemm_decoder(escape_check):
    """The iCEBreaker GEMM group's decoder (table lanes, two contexts, L = 12, escape codes, no raw
    bits, chained blocks, header fields): a table whose escape is not the last of its length zeroes
    and flags its blocks (``ERR_TABLE``), the next table decodes; with the check in the filler as
    in the loader."""
    max_len = 12
    good = spec.table_from_lengths({0: 1, 1: 2, spec.ESCAPE: 2}, max_len, escape=True)
    bad = (good[0], [0, spec.ESCAPE, 1])
    first = [spec.TABLE_MARK << 13 | len(bad[0]) << 8 | (len(bad[1]) - 1), *bad[0], *bad[1]]
    first.append(spec.crc16(first))
    assert spec.check_table_words(first, max_len, escape=True) is None
    rng = random.Random(12)
    values = [rng.choice([0, 1, 7, 200]) for _ in range(24)]
    b1, _ = g.encode_block(values, n_lanes=2, mode=spec.MODE_INT, table=good, parity=0)
    b2, _ = g.encode_block(values, n_lanes=2, mode=spec.MODE_INT, table=good, parity=1)
    dut = HuffmanDecoder(max_len=max_len, lanes=1, raw_bits=0, fifo_depth=8, escape=True, contexts=2,
                         impl="table", chain=True, header_regs="fields", counter_bits=16,
                         escape_check=escape_check)
    second = spec.serialize_table(*good, max_len, escape=True)
    res, ref = check_against_golden(dut, b1 + b2, g.table_stream([first, second]), stall=0.2, seed=4)
    assert [b["err"] for b in ref] == [True, False]
    assert res["errors"] == spec.ERR_TABLE


def test_escape_check_is_checked():
    with pytest.raises(ValueError, match="escape_check"):
        HuffmanDecoder(escape_check="lane")
    with pytest.raises(ValueError, match="escape_check"):
        HuffmanDecoder(impl="table", contexts=1, escape=True, escape_check="filler")
    with pytest.raises(ValueError, match="escape_check"):
        HuffmanDecoder(impl="table", contexts=2, escape=False, escape_check="filler")
    with pytest.raises(ValueError, match="escape_check"):
        TableFiller(12, False, escape_check=True)
    with pytest.raises(TypeError, match="placement"):
        CSlowTableLoader(max_len=12, escape=True, placement=0)
    with pytest.raises(ValueError, match="end_offset"):
        CSlowTableLoader(max_len=15, escape=True, end_offset=True)
    with pytest.raises(ValueError, match="end_offset"):
        TableFiller(16, True, escape_check=True, end_offset=True)
    with pytest.raises(ValueError, match="escape_check"):
        HuffmanDecoder(impl="table", contexts=2, escape=True, max_len=16, escape_check="filler")
